"""Synapse as an oracle: a JSON-lines server run by the *Synapse* virtualenv's python.

This script is Kairan's own code.  It imports Synapse (AGPL), so it is never imported by
Kairan or by pytest (``tests/oracle/conftest.py`` ignores it); tests start it in a
separate process with the interpreter from ``interop.synapse_env.ensure_synapse_venv``
and talk to it through ``tests/oracle/client.py``.

Protocol: one JSON object per line on stdin, one answer per line on stdout, in order.
Every request has ``"op"`` and an optional ``"id"`` echoed back.  An answer is
``{"id": ..., "ok": true, "result": ...}`` or, when the operation raised,
``{"id": ..., "ok": false, "error": "<ExceptionType>: <message>"}``.

Operations (``room_version`` is a version string such as ``"11"``):

* ``event_id``      {pdu, room_version} -> {"event_id", "room_id"}
* ``content_hash``  {pdu} -> unpadded base64 sha256 content hash
* ``redact``        {pdu, room_version} -> the redacted event dict
* ``sign_event``    {pdu, room_version, server_name, key_version, seed} -> the event with
                    ``hashes`` and ``signatures`` added (seed: unpadded base64 ed25519 seed)
* ``auth``          {pdu, auth_state: [pdu...], room_version, [store_events: [pdu...]],
                    [validate: bool]} -> {"allowed": bool, "phase": ..., "error_type": ...,
                    "reason": ...}; phases: "validate" (size limits and which servers
                    signed: signatures are present, not verified), "independent" (create
                    event rules and the auth_events list), "dependent" (the rules against
                    the auth state)
* ``auth_types``    {pdu, room_version} -> sorted [type, state_key] pairs
* ``verify_event``  {pdu, room_version, servers: {server: {key_id: public_key}}} ->
                    {"signatures_ok", "hash_ok", "failures"}
* ``validate``      {pdu, room_version} -> {"valid": bool, "error_type", "reason"}: the
                    event parses and passes the size limits and signer checks
* ``resolve``       {room_version, state_sets: [[[type, state_key, event_id]...]...],
                    events: [pdu...], [mode: "store"|"event_map"]}
                    -> [[type, state_key, event_id]...] sorted
* ``version``       {} -> the Synapse version string
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sys
import traceback
from collections.abc import Collection, Iterable
from typing import Any

logging.basicConfig(level=logging.CRITICAL, stream=sys.stderr)

# Imported after logging is configured so that nothing Synapse logs reaches stdout.
import synapse  # noqa: E402
from signedjson.key import decode_signing_key_base64, decode_verify_key_bytes  # noqa: E402
from signedjson.sign import SignatureVerifyException, verify_signed_json  # noqa: E402
from synapse.api.errors import AuthError, SynapseError  # noqa: E402
from synapse.api.room_versions import KNOWN_ROOM_VERSIONS  # noqa: E402
from synapse.crypto.event_signing import (  # noqa: E402
    add_hashes_and_signatures,
    check_event_content_hash,
    compute_content_hash,
)
from synapse.event_auth import (  # noqa: E402
    auth_types_for_event,
    check_state_dependent_auth_rules,
    check_state_independent_auth_rules,
    validate_event_for_room_version,
)
from synapse.events import EventBase, make_event_from_dict  # noqa: E402
from synapse.state import v2 as state_v2  # noqa: E402
from synapse.storage.databases.main.event_federation import StateDifference  # noqa: E402
from synapse.synapse_rust.events import redact_event, redact_event_dict  # noqa: E402
from unpaddedbase64 import decode_base64, encode_base64  # noqa: E402

JsonDict = dict[str, Any]


def _room_version(version: str) -> Any:
    try:
        return KNOWN_ROOM_VERSIONS[version]
    except KeyError:
        raise ValueError(f"unknown room version {version!r}") from None


def _event(pdu: JsonDict, version: str, rejected_reason: str | None = None) -> EventBase:
    return make_event_from_dict(dict(pdu), _room_version(version), rejected_reason=rejected_reason)


class _EventStore:
    """Just enough of Synapse's event store for the auth checks and state resolution.

    ``get_auth_chain_difference`` computes, from the events it holds, the auth chain
    difference of the state sets and (for v2.1) the conflicted subgraph: every event
    that lies on an ``auth_events`` path from one conflicted event to another.
    """

    def __init__(self, events: Iterable[EventBase]) -> None:
        self.events: dict[str, EventBase] = {e.event_id: e for e in events}

    async def get_events(
        self, event_ids: Collection[str], *args: Any, **kwargs: Any
    ) -> dict[str, EventBase]:
        return {eid: self.events[eid] for eid in event_ids if eid in self.events}

    def _auth_chain(self, event_ids: Iterable[str]) -> set[str]:
        """The given events and everything reachable from them through auth_events."""
        seen: set[str] = set()
        todo = list(event_ids)
        while todo:
            eid = todo.pop()
            if eid in seen:
                continue
            seen.add(eid)
            ev = self.events.get(eid)
            if ev is not None:
                todo.extend(ev.auth_event_ids())
        return seen

    async def get_auth_chain_difference(
        self,
        room_id: str,
        state_sets: list[set[str]],
        conflicted_state: set[str] | None = None,
        additional_backwards_reachable_conflicted_events: set[str] | None = None,
    ) -> StateDifference:
        chains = [self._auth_chain(s) for s in state_sets]
        union = set().union(*chains) if chains else set()
        inter = set(chains[0]).intersection(*chains[1:]) if chains else set()
        difference = union - inter
        subgraph: set[str] | None = None
        if conflicted_state is not None:
            starts = set(conflicted_state) | set(
                additional_backwards_reachable_conflicted_events or ()
            )
            backwards = self._auth_chain(starts)
            # forwards: events from which some conflicted event is reachable
            children: dict[str, set[str]] = {}
            for ev in self.events.values():
                for aid in ev.auth_event_ids():
                    children.setdefault(aid, set()).add(ev.event_id)
            forwards: set[str] = set()
            todo = list(conflicted_state)
            while todo:
                eid = todo.pop()
                if eid in forwards:
                    continue
                forwards.add(eid)
                todo.extend(children.get(eid, ()))
            subgraph = backwards & forwards
        return StateDifference(auth_difference=difference, conflicted_subgraph=subgraph)


class _Clock:
    async def sleep(self, duration: Any) -> None:
        return None


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- operations -------------------------------------------------------------------------


def op_version(req: JsonDict) -> Any:
    return synapse.__version__


def op_event_id(req: JsonDict) -> Any:
    ev = _event(req["pdu"], req["room_version"])
    try:
        room_id = ev.room_id
    except Exception:  # an event without room_id outside room 12
        room_id = None
    return {"event_id": ev.event_id, "room_id": room_id}


def op_content_hash(req: JsonDict) -> Any:
    _name, digest = compute_content_hash(dict(req["pdu"]), hash_algorithm=hashlib.sha256)
    return encode_base64(digest)


def op_redact(req: JsonDict) -> Any:
    return redact_event_dict(_room_version(req["room_version"]), req["pdu"])


def op_sign_event(req: JsonDict) -> Any:
    key = decode_signing_key_base64("ed25519", req["key_version"], req["seed"])
    pdu = json.loads(json.dumps(req["pdu"]))
    add_hashes_and_signatures(_room_version(req["room_version"]), pdu, req["server_name"], key)
    return pdu


def _auth_answer(allowed: bool, phase: str | None, exc: BaseException | None) -> JsonDict:
    answer: JsonDict = {"allowed": allowed, "phase": phase}
    if exc is not None:
        answer["error_type"] = type(exc).__name__
        answer["reason"] = getattr(exc, "msg", None) or str(exc)
    return answer


def op_auth(req: JsonDict) -> Any:
    """Synapse's decision on receipt.

    An exception other than Synapse's own auth errors (e.g. the RuntimeError Synapse
    raises for a room-12 event listing its create event) counts as a rejection too,
    since Synapse then never accepts the event; its phase is marked ``"(crash)"``.
    """
    version = req["room_version"]
    event = _event(req["pdu"], version)
    auth_state = [_event(p, version) for p in req.get("auth_state", [])]
    extra = [_event(p, version) for p in req.get("store_events", [])]
    store = _EventStore([*auth_state, *extra])

    def validate() -> None:
        if req.get("validate", True):
            validate_event_for_room_version(event)

    def independent() -> None:
        _run(check_state_independent_auth_rules(store, event))

    def dependent() -> None:
        # The rules run against the events the PDU names (in room 12 that includes the
        # create event implied by the room ID), as Synapse does on receipt.
        named = [store.events[eid] for eid in event.auth_event_ids() if eid in store.events]
        check_state_dependent_auth_rules(event, named)

    for phase, step in (
        ("validate", validate),
        ("independent", independent),
        ("dependent", dependent),
    ):
        try:
            step()
        except (AuthError, SynapseError) as e:
            return _auth_answer(False, phase, e)
        except Exception as e:
            return _auth_answer(False, phase + " (crash)", e)
    return _auth_answer(True, None, None)


def op_verify_event(req: JsonDict) -> Any:
    """Synapse's checks of a received event's signatures and content hash.

    Each server of ``servers`` ({server_name: {key_id: public key (unpadded b64)}}) must
    have signed the redacted event (as Synapse's keyring verifies it); the content hash
    is checked as Synapse does before deciding to redact the event.
    """
    event = _event(req["pdu"], req["room_version"])
    redacted = redact_event(event).get_pdu_json()
    failures: list[str] = []
    for server, keys in req["servers"].items():
        for key_id, public_key in keys.items():
            algorithm, _, version = key_id.partition(":")
            verify_key = decode_verify_key_bytes(key_id, decode_base64(public_key))
            verify_key.alg, verify_key.version = algorithm, version
            try:
                verify_signed_json(redacted, server, verify_key)
            except SignatureVerifyException as e:
                failures.append(f"{server} {key_id}: {e}")
    try:
        hash_ok = check_event_content_hash(event)
    except SynapseError as e:
        hash_ok = False
        failures.append(f"hash: {e.msg}")
    return {
        "signatures_ok": not [f for f in failures if not f.startswith("hash:")],
        "hash_ok": hash_ok,
        "failures": failures,
    }


def op_validate(req: JsonDict) -> Any:
    """Synapse's checks of a PDU's shape on receipt: parsing into an event, then the size
    limits and which servers signed (signatures present, not verified)."""
    try:
        event = _event(req["pdu"], req["room_version"])
        validate_event_for_room_version(event)
    except Exception as e:
        return {
            "valid": False,
            "error_type": type(e).__name__,
            "reason": getattr(e, "msg", None) or str(e),
        }
    return {"valid": True}


def op_auth_types(req: JsonDict) -> Any:
    version = req["room_version"]
    event = _event(req["pdu"], version)
    return sorted([t, sk] for t, sk in auth_types_for_event(_room_version(version), event))


def op_resolve(req: JsonDict) -> Any:
    version = req["room_version"]
    rv = _room_version(version)
    rejected = set(req.get("rejected", []))
    events: list[EventBase] = []
    for pdu in req["events"]:
        ev = _event(pdu, version)
        if ev.event_id in rejected:
            ev = _event(pdu, version, rejected_reason="rejected by test")
        events.append(ev)
    store = _EventStore(events)
    room_ids = {e.room_id for e in events}
    if len(room_ids) != 1:
        raise ValueError(f"events of several rooms: {sorted(room_ids)}")
    (room_id,) = room_ids
    state_sets = [{(t, sk): eid for t, sk, eid in s} for s in req["state_sets"]]
    event_map = dict(store.events) if req.get("mode") == "event_map" else None
    if event_map is not None:
        store = _EventStore([])
    resolved = _run(
        state_v2.resolve_events_with_store(_Clock(), room_id, rv, state_sets, event_map, store)
    )
    return sorted([t, sk, eid] for (t, sk), eid in resolved.items())


OPS = {
    "version": op_version,
    "event_id": op_event_id,
    "content_hash": op_content_hash,
    "redact": op_redact,
    "sign_event": op_sign_event,
    "auth": op_auth,
    "auth_types": op_auth_types,
    "validate": op_validate,
    "verify_event": op_verify_event,
    "resolve": op_resolve,
}


def handle(line: str) -> JsonDict:
    req_id: Any = None
    try:
        req = json.loads(line)
        req_id = req.get("id")
        op = OPS.get(req.get("op"))
        if op is None:
            raise ValueError(f"unknown op {req.get('op')!r}")
        return {"id": req_id, "ok": True, "result": op(req)}
    except BaseException as e:  # every failure becomes an answer, never a crash
        if isinstance(e, KeyboardInterrupt | SystemExit):
            raise
        tb = traceback.format_exception(type(e), e, e.__traceback__)
        return {
            "id": req_id,
            "ok": False,
            "error": f"{type(e).__name__}: {e}",
            "traceback": "".join(tb[-3:]),
        }


def _default(obj: Any) -> Any:
    # Synapse hands back immutable mappings and sequences; make them plain JSON.
    if hasattr(obj, "items"):
        return dict(obj.items())
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    try:
        return list(obj)
    except TypeError:
        return str(obj)


def main() -> None:
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        answer = handle(line)
        out.write(json.dumps(answer, default=_default, sort_keys=True) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
