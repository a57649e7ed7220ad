"""Events (PDUs): building a new one (:func:`build_event`) and the checks on receipt of one
(:func:`verify_pdu`).

The parts live in modules of their own, and their public names are importable from here:
content and reference hashes, event IDs and the room IDs of room-12 rooms
(``event_hashes``), the event format and its size limits (``pdu_format``), signing and the
signature checks (``event_signatures``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from federation.canonical import parse_json
from federation.errors import HashMismatch
from federation.event_hashes import (
    CONTENT_HASH_EXCLUDED,
    add_content_hash,
    check_content_hash,
    compute_content_hash,
    compute_event_id,
    compute_room_id,
    reference_hash,
)
from federation.event_signatures import (
    KeyLookup,
    check_signatures,
    required_signers,
    sign_event,
    verify_event_signatures,
)
from federation.pdu_format import (
    MAX_AUTH_EVENTS,
    MAX_ID_BYTES,
    MAX_PDU_BYTES,
    MAX_PREV_EVENTS,
    check_pdu_format,
    size_basis,
)
from federation.redaction import redact
from federation.room_versions import RoomVersion, get
from federation.signing import SigningKey, encode_base64, signing_bytes

__all__ = [
    "CONTENT_HASH_EXCLUDED",
    "MAX_AUTH_EVENTS",
    "MAX_ID_BYTES",
    "MAX_PDU_BYTES",
    "MAX_PREV_EVENTS",
    "KeyLookup",
    "VerifiedPDU",
    "add_content_hash",
    "build_event",
    "check_content_hash",
    "check_pdu_format",
    "compute_content_hash",
    "compute_event_id",
    "compute_room_id",
    "redact",
    "reference_hash",
    "required_signers",
    "sign_event",
    "size_basis",
    "verify_event_signatures",
    "verify_pdu",
]


def build_event(
    room_version: str | RoomVersion,
    *,
    event_type: str,
    sender: str,
    content: dict[str, Any],
    room_id: str | None,
    prev_events: list[str],
    auth_events: list[str],
    depth: int,
    origin_server_ts: int,
    server_name: str,
    key: SigningKey,
    state_key: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Build, hash and sign a new PDU; returns ``(event_id, pdu)``.

    ``room_id`` is None only for the create event of a room-12 room.  ``extra`` adds
    further top-level keys (e.g. ``redacts`` in room 10).
    """
    version = get(room_version)
    pdu: dict[str, Any] = {
        "type": event_type,
        "sender": sender,
        "content": content,
        "prev_events": list(prev_events),
        "auth_events": list(auth_events),
        "depth": depth,
        "origin_server_ts": origin_server_ts,
    }
    if room_id is not None:
        pdu["room_id"] = room_id
    if state_key is not None:
        pdu["state_key"] = state_key
    if extra:
        pdu.update(extra)
    check_pdu_format(pdu, version, signed=False)
    signed = sign_event(pdu, version, server_name, key)
    return compute_event_id(signed, version), signed


@dataclass(frozen=True)
class VerifiedPDU:
    """A received PDU that passed the format and signature checks."""

    event_id: str
    #: The event to process: the original, or its redaction when the content hash failed.
    pdu: dict[str, Any]
    #: True when the content hash did not match and the event was redacted.
    redacted: bool


def verify_pdu(
    data: bytes | str | dict[str, Any],
    room_version: str | RoomVersion,
    key_lookup: KeyLookup,
) -> VerifiedPDU:
    """Steps 1-3 of the spec's checks on receipt of a PDU.

    Parses strictly (bytes or str), checks the event format and size, the signatures of
    the required servers and the content hash.  An event with a bad content hash is
    redacted, as the spec orders, and returned with ``redacted=True``.  Raises
    :class:`CanonicalJSONError`, :class:`InvalidPDU` or :class:`SignatureError`.
    """
    version = get(room_version)
    if isinstance(data, dict):
        pdu, raw_size = data, None
    else:
        pdu, raw_size = parse_json(data), len(data)
    # Canonical JSON is never longer than the JSON it was parsed from, and the size basis
    # adds at most an empty "unsigned" (15 bytes): smaller input needs no second encoding.
    small = raw_size is not None and raw_size <= MAX_PDU_BYTES - len(',"unsigned":{}')
    check_pdu_format(pdu, version, size_known_within_limit=small)

    redacted = redact(pdu, version)
    message = signing_bytes(redacted)  # what is signed, and what the event ID hashes
    check_signatures(pdu, redacted, message, version, key_lookup)
    event_id = "$" + encode_base64(hashlib.sha256(message).digest(), urlsafe=True)
    try:
        check_content_hash(pdu)
    except HashMismatch:
        return VerifiedPDU(event_id, redacted, True)
    return VerifiedPDU(event_id, pdu, False)
