"""Other servers' public room directories: ``/publicRooms?server=...`` asks that server
(``POST /_matrix/federation/v1/publicRooms``), as Synapse does, and passes on only what the
spec allows: each entry reduced to the spec's fields with the spec's types
(:func:`~homeserver.federation.spaces.clean_summary`), the pagination tokens if they are
strings, the estimate if it is a count."""

from __future__ import annotations

from typing import Any

from federation.client import FederationClient, FederationClientError, RefusedDestination
from federation.identifiers import is_valid_server_name
from homeserver.common.errors import MatrixError, forbidden
from homeserver.federation.spaces import clean_summary

REQUEST_TIMEOUT_S = 15.0
#: At most this many entries of one answer are passed on.
MAX_ENTRIES = 500
MAX_RESPONSE_BYTES = 4 * 1024 * 1024


class RemotePublicRooms:
    def __init__(self, client: FederationClient) -> None:
        self.client = client

    async def public_rooms(
        self, server: str, search: str, limit: int, since: str | None
    ) -> dict[str, Any]:
        if not is_valid_server_name(server):
            raise MatrixError(400, "M_INVALID_PARAM", f"Invalid server name {server!r}")
        body: dict[str, Any] = {"limit": limit}
        if search:
            body["filter"] = {"generic_search_term": search}
        if since is not None:
            body["since"] = since
        path = "/_matrix/federation/v1/publicRooms"
        try:
            answer = await self.client.request(
                server, "POST", path, body=body,
                timeout_s=REQUEST_TIMEOUT_S, max_bytes=MAX_RESPONSE_BYTES,
            )  # fmt: skip
        except RefusedDestination as e:
            raise forbidden(f"This server does not federate with {server}: {e}") from None
        except FederationClientError as e:
            raise MatrixError(502, "M_UNKNOWN", f"{server} did not list its rooms: {e}") from None
        return clean_answer(answer, limit)


def clean_answer(answer: Any, limit: int) -> dict[str, Any]:
    """A server's public room list as the spec shapes it (what does not fit is dropped)."""
    if not isinstance(answer, dict) or not isinstance(answer.get("chunk"), list):
        raise MatrixError(502, "M_UNKNOWN", "The server's room list is malformed")
    chunk = [s for s in map(clean_summary, answer["chunk"][:MAX_ENTRIES]) if s is not None]
    result: dict[str, Any] = {"chunk": chunk[: max(limit, 0)]}
    for token in ("next_batch", "prev_batch"):
        if isinstance(answer.get(token), str):
            result[token] = answer[token]
    estimate = answer.get("total_room_count_estimate")
    if isinstance(estimate, int) and not isinstance(estimate, bool) and estimate >= 0:
        result["total_room_count_estimate"] = estimate
    return result
