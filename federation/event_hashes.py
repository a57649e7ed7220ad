"""Event hashes and the IDs made of them: content hashes, reference hashes, event IDs and
the room IDs of room-12 rooms.

Room versions 10-12 use hashed event IDs: ``$`` + URL-safe unpadded base64 of the
reference hash (SHA-256 of the canonical JSON of the redacted event without
``signatures`` and ``unsigned``).  In room 12 (MSC4291) the room ID is ``!`` + the
same hash of the ``m.room.create`` event, which itself carries no ``room_id``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from federation.canonical import encode_canonical_json
from federation.errors import Base64Error, HashMismatch, InvalidPDU
from federation.redaction import redact
from federation.room_versions import RoomVersion, get
from federation.signing import decode_base64, encode_base64, signing_bytes


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


#: Top-level keys left out of the content hash.  The spec names the first three; Synapse
#: also leaves out the legacy ``age_ts``, ``outlier`` and ``destinations``, and rooms shared
#: with Synapse must agree on which events have a valid hash, so Kairan does the same.
CONTENT_HASH_EXCLUDED = frozenset(
    {"unsigned", "signatures", "hashes", "age_ts", "outlier", "destinations"}
)


def _content_hash_bytes(pdu: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in pdu.items() if k not in CONTENT_HASH_EXCLUDED}
    return _sha256(encode_canonical_json(body))


def compute_content_hash(pdu: Mapping[str, Any]) -> str:
    """SHA-256 over the event without the keys in :data:`CONTENT_HASH_EXCLUDED` (unpadded b64)."""
    return encode_base64(_content_hash_bytes(pdu))


def add_content_hash(pdu: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``pdu`` with ``hashes.sha256`` set to its content hash (other algorithms'
    hashes are kept, as Synapse keeps them)."""
    hashed = dict(pdu)
    existing = pdu.get("hashes")
    hashed["hashes"] = {
        **(existing if isinstance(existing, dict) else {}),
        "sha256": compute_content_hash(pdu),
    }
    return hashed


def check_content_hash(pdu: Mapping[str, Any]) -> None:
    """Raise :class:`HashMismatch` unless ``hashes.sha256`` matches the content."""
    hashes = pdu.get("hashes")
    claimed = hashes.get("sha256") if isinstance(hashes, dict) else None
    if not isinstance(claimed, str):
        raise HashMismatch("event has no sha256 content hash")
    try:
        claimed_bytes = decode_base64(claimed)
    except Base64Error as e:
        raise HashMismatch("event's sha256 content hash is not base64") from e
    actual = _content_hash_bytes(pdu)
    if actual != claimed_bytes:
        raise HashMismatch(
            f"content hash mismatch: event says {claimed}, content hashes to {encode_base64(actual)}"
        )


def reference_hash(pdu: Mapping[str, Any], room_version: str | RoomVersion) -> bytes:
    """SHA-256 of the redacted event without ``signatures`` and ``unsigned``."""
    redacted = redact(dict(pdu), room_version)
    return _sha256(signing_bytes(redacted))


def compute_event_id(pdu: Mapping[str, Any], room_version: str | RoomVersion) -> str:
    """``$`` + URL-safe unpadded base64 of the reference hash (room versions 4 and later)."""
    return "$" + encode_base64(reference_hash(pdu, room_version), urlsafe=True)


def compute_room_id(create_pdu: Mapping[str, Any]) -> str:
    """The room ID of a room-12 room: ``!`` + the create event's reference hash (MSC4291)."""
    if create_pdu.get("type") != "m.room.create":
        raise InvalidPDU("a room ID is derived from an m.room.create event only")
    version = get(_create_room_version(create_pdu))
    if not version.room_id_is_create_hash:
        raise InvalidPDU(f"room version {version.identifier} room IDs are not create-event hashes")
    return "!" + encode_base64(reference_hash(create_pdu, version), urlsafe=True)


def _create_room_version(create_pdu: Mapping[str, Any]) -> str:
    content = create_pdu.get("content")
    version = content.get("room_version", "1") if isinstance(content, dict) else None
    if not isinstance(version, str):
        raise InvalidPDU("m.room.create content.room_version must be a string")
    return version
