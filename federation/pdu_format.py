"""The event format of a room version: the types of a PDU's top-level keys, its lists of
prev and auth events, its hashes and signatures, and the spec's size limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federation.canonical import check_json_value, encode_canonical_json
from federation.errors import CanonicalJSONError, InvalidPDU
from federation.identifiers import is_valid_user_id
from federation.room_versions import RoomVersion, get

#: The largest PDU allowed, as canonical JSON with its signatures.
MAX_PDU_BYTES = 65_536
#: The longest ``sender``, ``room_id``, ``type``, ``state_key`` and ``event_id``, in bytes.
MAX_ID_BYTES = 255
MAX_PREV_EVENTS = 20
MAX_AUTH_EVENTS = 10


def _fail(message: str) -> InvalidPDU:
    return InvalidPDU(message)


def _too_long(value: str) -> bool:
    # A character is at most 4 bytes of UTF-8: short strings need no encoding.
    return (
        len(value) * 4 > MAX_ID_BYTES and len(value.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES
    )


def _check_id_length(pdu: Mapping[str, Any], key: str) -> None:
    value = pdu.get(key)
    if value is not None and _too_long(value):
        raise _fail(f"{key} is longer than {MAX_ID_BYTES} bytes")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_event_id_list(pdu: Mapping[str, Any], key: str, limit: int) -> None:
    ids = pdu.get(key)
    if not isinstance(ids, list):
        raise _fail(f"{key} must be a list of event IDs")
    if len(ids) > limit:
        raise _fail(f"{key} lists {len(ids)} events; at most {limit} are allowed")
    for event_id in ids:
        if not isinstance(event_id, str) or not event_id.startswith("$"):
            raise _fail(f"{key} holds something that is not an event ID: {event_id!r}")
        if _too_long(event_id):
            raise _fail(f"an event ID in {key} is longer than {MAX_ID_BYTES} bytes")


def check_pdu_format(
    pdu: Any,
    room_version: str | RoomVersion,
    *,
    signed: bool = True,
    size_known_within_limit: bool = False,
) -> None:
    """Raise :class:`InvalidPDU` unless ``pdu`` has the event format of ``room_version``.

    Checks the types of the top-level keys, the size limits of the spec (65,536 bytes in
    all, 255 bytes for IDs, type and state key), the lists of prev and auth events and,
    with ``signed``, that ``hashes`` and ``signatures`` are present and well formed.
    ``size_known_within_limit`` skips encoding the event to measure it, for a caller that
    parsed it from at most :data:`MAX_PDU_BYTES` of JSON text.
    """
    version = get(room_version)
    if not isinstance(pdu, dict):
        raise _fail("a PDU must be a JSON object")
    _check_fields(pdu)
    _check_room_id(pdu, version)
    _check_event_id_list(pdu, "prev_events", MAX_PREV_EVENTS)
    _check_event_id_list(pdu, "auth_events", MAX_AUTH_EVENTS)
    for key in ("sender", "room_id", "type", "state_key", "event_id"):
        _check_id_length(pdu, key)
    if "unsigned" in pdu and not isinstance(pdu["unsigned"], dict):
        raise _fail("unsigned must be an object")
    if "redacts" in pdu and not isinstance(pdu["redacts"], str):
        raise _fail("redacts must be an event ID")
    if signed:
        _check_hashes_and_signatures(pdu)
    if not size_known_within_limit:
        _check_size(pdu, version)


def _check_fields(pdu: dict[str, Any]) -> None:
    """The types of sender, type, state_key, content, depth and origin_server_ts."""
    for key in ("type", "sender"):
        if not isinstance(pdu.get(key), str):
            raise _fail(f"{key} must be a string")
    if not is_valid_user_id(pdu["sender"]):
        raise _fail(f"sender is not a user ID: {pdu['sender']!r}")
    if "state_key" in pdu and not isinstance(pdu["state_key"], str):
        raise _fail("state_key must be a string")
    if not isinstance(pdu.get("content"), dict):
        raise _fail("content must be an object")
    for key in ("depth", "origin_server_ts"):
        if not _is_int(pdu.get(key)):
            raise _fail(f"{key} must be an integer")
    if pdu["depth"] < 0:
        raise _fail("depth must not be negative")


def _check_room_id(pdu: dict[str, Any], version: RoomVersion) -> None:
    """A room ID, but none on the create event of rooms whose ID is its hash."""
    is_create = pdu["type"] == "m.room.create" and pdu.get("state_key") == ""
    if version.room_id_is_create_hash and is_create:
        if "room_id" in pdu:
            raise _fail(f"the create event of a room-{version.identifier} room has no room_id")
    else:
        room_id = pdu.get("room_id")
        if not isinstance(room_id, str) or not room_id.startswith("!"):
            raise _fail("room_id must be a room ID")
        if version.room_id_is_create_hash and ":" in room_id:
            raise _fail(f"room-{version.identifier} room IDs have no server name")


def _check_hashes_and_signatures(pdu: dict[str, Any]) -> None:
    hashes = pdu.get("hashes")
    if not isinstance(hashes, dict) or not isinstance(hashes.get("sha256"), str):
        raise _fail("hashes.sha256 must be a string")
    signatures = pdu.get("signatures")
    if not isinstance(signatures, dict) or not all(
        isinstance(s, dict) and all(isinstance(v, str) for v in s.values())
        for s in signatures.values()
    ):
        raise _fail("signatures must map server names to objects of key ID -> signature")


def _check_size(pdu: dict[str, Any], version: RoomVersion) -> None:
    """At most :data:`MAX_PDU_BYTES` as canonical JSON (which it must be, strictly, in
    room versions that require it)."""
    if version.strict_canonical_json:
        # A PDU that arrived inside a larger JSON document (a transaction) was not parsed
        # strictly: floats and integers outside [-(2**53)+1, 2**53-1] (e.g. a depth of
        # 2**60) still encode, so they would be signed, stored and sent on.
        try:
            check_json_value(pdu)
        except CanonicalJSONError as e:
            raise _fail(f"event is not canonical JSON: {e}") from e
        except RecursionError as e:
            raise _fail("event JSON is nested too deeply") from e
    try:
        size = len(encode_canonical_json(size_basis(pdu)))
    except CanonicalJSONError as e:
        raise _fail(str(e)) from e
    if size > MAX_PDU_BYTES:
        raise _fail(f"PDU is {size} bytes as canonical JSON; the limit is {MAX_PDU_BYTES}")


#: ``unsigned`` keys that count towards an event's size (Synapse drops the others on receipt).
_UNSIGNED_KEPT = frozenset({"age"})
_UNSIGNED_KEPT_MEMBER = frozenset({"age", "invite_room_state", "knock_room_state"})


def size_basis(pdu: Mapping[str, Any]) -> dict[str, Any]:
    """The form of a PDU whose canonical JSON the size limit applies to.

    As Synapse measures it, so the two servers accept and refuse the same events: ``unsigned``
    always present (``{}`` when absent) and holding only the keys kept on receipt.
    """
    unsigned = pdu.get("unsigned")
    kept = _UNSIGNED_KEPT_MEMBER if pdu.get("type") == "m.room.member" else _UNSIGNED_KEPT
    basis = dict(pdu)
    basis["unsigned"] = (
        {k: v for k, v in unsigned.items() if k in kept} if isinstance(unsigned, dict) else {}
    )
    return basis
