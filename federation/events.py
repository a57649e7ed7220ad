"""Events (PDUs): content hashes, reference hashes, event and room IDs, signing, checking.

Room versions 10-12 use hashed event IDs: ``$`` + URL-safe unpadded base64 of the
reference hash (SHA-256 of the canonical JSON of the redacted event without
``signatures`` and ``unsigned``).  In room 12 (MSC4291) the room ID is ``!`` + the
same hash of the ``m.room.create`` event, which itself carries no ``room_id``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from federation.canonical import check_json_value, encode_canonical_json, parse_json
from federation.errors import (
    Base64Error,
    CanonicalJSONError,
    HashMismatch,
    InvalidPDU,
    SignatureError,
)
from federation.identifiers import domain_of, is_valid_user_id
from federation.redaction import redact
from federation.room_versions import RoomVersion, get
from federation.signing import (
    SigningKey,
    decode_base64,
    decode_verify_key,
    encode_base64,
    get_signature,
    signing_bytes,
    verify_signature,
)

__all__ = [
    "MAX_PDU_BYTES",
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
    "verify_event_signatures",
    "verify_pdu",
]

#: The largest PDU allowed, as canonical JSON with its signatures.
MAX_PDU_BYTES = 65_536
#: The longest ``sender``, ``room_id``, ``type``, ``state_key`` and ``event_id``, in bytes.
MAX_ID_BYTES = 255
MAX_PREV_EVENTS = 20
MAX_AUTH_EVENTS = 10

#: ``(server_name, key_id, origin_server_ts) -> public key`` (unpadded base64) or None when
#: the key is unknown or had expired before ``origin_server_ts``.
KeyLookup = Callable[[str, str, int], str | None]


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


def sign_event(
    pdu: dict[str, Any], room_version: str | RoomVersion, server_name: str, key: SigningKey
) -> dict[str, Any]:
    """A copy of ``pdu`` with its content hash and ``server_name``'s signature added.

    The signature covers the redacted event, so it survives redaction.
    """
    hashed = add_content_hash(pdu)
    signature = encode_base64(key.sign(signing_bytes(redact(hashed, room_version))))
    signatures = {server: dict(sigs) for server, sigs in pdu.get("signatures", {}).items()}
    signatures.setdefault(server_name, {})[key.key_id] = signature
    hashed["signatures"] = signatures
    return hashed


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


# ---------------------------------------------------------------------------- checking


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


def required_signers(pdu: Mapping[str, Any], room_version: str | RoomVersion) -> set[str]:
    """Servers whose signature the event must carry.

    The sender's server (except for an invite from a third-party invite), and for a
    restricted join the server of the user named in ``join_authorised_via_users_server``.
    """
    get(room_version)
    servers: set[str] = set()
    content = pdu.get("content", {})
    is_member = pdu.get("type") == "m.room.member" and isinstance(content, dict)
    if not (
        is_member and content.get("membership") == "invite" and "third_party_invite" in content
    ):
        # An invite made from a third-party invite is vouched for by the signed token the
        # auth rules check, not by the sender's server (as in Synapse).
        servers.add(domain_of(pdu["sender"]))
    if is_member:
        authoriser = content.get("join_authorised_via_users_server")
        if content.get("membership") == "join" and isinstance(authoriser, str):
            servers.add(domain_of(authoriser))
    return servers


def verify_event_signatures(
    pdu: Mapping[str, Any], room_version: str | RoomVersion, key_lookup: KeyLookup
) -> None:
    """Check the signatures of every required server on the redacted event.

    For each required server every signature by a key that ``key_lookup`` knows must
    verify, and at least one must; signatures by unknown or expired keys are skipped.
    """
    redacted = redact(dict(pdu), room_version)
    _verify_signatures(pdu, redacted, signing_bytes(redacted), room_version, key_lookup)


def _verify_signatures(
    pdu: Mapping[str, Any],
    redacted: Mapping[str, Any],
    message: bytes,
    room_version: str | RoomVersion,
    key_lookup: KeyLookup,
) -> None:
    signatures = pdu.get("signatures")
    if not isinstance(signatures, dict):
        raise SignatureError("event has no signatures")
    ts = pdu.get("origin_server_ts", 0)
    for server in sorted(required_signers(pdu, room_version)):
        by_server = signatures.get(server)
        if not isinstance(by_server, dict) or not by_server:
            raise SignatureError(f"event is not signed by {server}")
        verified = 0
        for key_id in by_server:
            if not key_id.startswith("ed25519:"):
                continue
            public_key = key_lookup(server, key_id, ts)
            if public_key is None:
                continue
            verify_signature(
                message,
                get_signature(redacted, server, key_id),
                decode_verify_key(public_key),
                f"event signed by {server} {key_id}",
            )
            verified += 1
        if not verified:
            raise SignatureError(f"no signature of {server} by a known, unexpired key")


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
    _verify_signatures(pdu, redacted, message, version, key_lookup)
    event_id = "$" + encode_base64(_sha256(message), urlsafe=True)
    try:
        check_content_hash(pdu)
    except HashMismatch:
        return VerifiedPDU(event_id, redacted, True)
    return VerifiedPDU(event_id, pdu, False)
