"""Event signatures: signing a PDU, the servers that must sign one, and checking their
signatures on the redacted event (so that they survive redaction)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from federation.errors import SignatureError
from federation.event_hashes import add_content_hash
from federation.identifiers import domain_of
from federation.redaction import redact
from federation.room_versions import RoomVersion, get
from federation.signing import (
    SigningKey,
    decode_verify_key,
    encode_base64,
    get_signature,
    signing_bytes,
    verify_signature,
)

#: ``(server_name, key_id, origin_server_ts) -> public key`` (unpadded base64) or None when
#: the key is unknown or had expired before ``origin_server_ts``.
KeyLookup = Callable[[str, str, int], str | None]


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
    check_signatures(pdu, redacted, signing_bytes(redacted), room_version, key_lookup)


def check_signatures(
    pdu: Mapping[str, Any],
    redacted: Mapping[str, Any],
    message: bytes,
    room_version: str | RoomVersion,
    key_lookup: KeyLookup,
) -> None:
    """:func:`verify_event_signatures` on an event already redacted (``redacted``) and
    encoded for signing (``message``)."""
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
