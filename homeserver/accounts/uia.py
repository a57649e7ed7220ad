"""User-interactive authentication (UIA) sessions, kept in memory for a few minutes."""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from homeserver.common.errors import MatrixError

SESSION_LIFETIME_S = 600

#: stage -> async checker(auth dict, session) returning True when the stage is passed.
StageChecker = Callable[[dict[str, Any], "Session"], Awaitable[bool]]


@dataclass
class Session:
    id: str
    created: float
    completed: list[str] = field(default_factory=list)
    #: What the session was started for (the first request's body), so a later request
    #: cannot change it under the same session.
    data: dict[str, Any] = field(default_factory=dict)


class UIA:
    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}

    def _session(self, session_id: Any) -> Session | None:
        now = time.monotonic()
        for sid in [s for s, v in self._sessions.items() if now - v.created > SESSION_LIFETIME_S]:
            del self._sessions[sid]
        return self._sessions.get(session_id) if isinstance(session_id, str) else None

    def _challenge(
        self,
        session: Session,
        flows: list[list[str]],
        params: dict[str, Any],
        error: MatrixError | None = None,
    ) -> MatrixError:
        body: dict[str, Any] = {
            "flows": [{"stages": f} for f in flows],
            "params": params,
            "session": session.id,
        }
        if session.completed:
            body["completed"] = list(session.completed)
        if error is not None:
            return MatrixError(401, error.errcode, error.message, **body)
        return MatrixError(401, "M_UNAUTHORIZED", "Authentication required", **body)

    async def authenticate(
        self,
        body: dict[str, Any],
        flows: list[list[str]],
        checkers: dict[str, StageChecker],
        params: dict[str, Any] | None = None,
    ) -> Session:
        """Return the session once one of ``flows`` is complete; else raise a 401 challenge."""
        params = params or {}
        auth = body.get("auth")
        session = self._session(auth.get("session")) if isinstance(auth, dict) else None
        if session is None:
            session = Session(secrets.token_urlsafe(16), time.monotonic())
            self._sessions[session.id] = session
        if isinstance(auth, dict) and "type" in auth:
            stage = auth["type"]
            checker = checkers.get(stage) if isinstance(stage, str) else None
            if checker is None or not any(stage in f for f in flows):
                raise self._challenge(
                    session, flows, params, MatrixError(400, "M_UNRECOGNIZED", "Unknown auth stage")
                )
            try:
                passed = await checker(auth, session)
            except MatrixError as e:
                if e.status == 429:  # rate limits are answered as they are, as Synapse does
                    raise
                raise self._challenge(session, flows, params, e) from None
            if not passed:
                raise self._challenge(
                    session, flows, params, MatrixError(401, "M_FORBIDDEN", "Authentication failed")
                )
            if stage not in session.completed:
                session.completed.append(stage)
        for flow in flows:
            if all(stage in session.completed for stage in flow):
                self._sessions.pop(session.id, None)
                return session
        raise self._challenge(session, flows, params)
