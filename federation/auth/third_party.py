"""Rule 4.4.1: an invite made by redeeming an ``m.room.third_party_invite`` token.

The ``signed`` block of ``content.third_party_invite`` must carry an ed25519 signature
that verifies with one of the public keys of the ``m.room.third_party_invite`` event
whose ``state_key`` is the token.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from federation.auth._util import THIRD_PARTY_INVITE, AuthState, content_of, membership_of, rule
from federation.errors import AuthError
from federation.room_versions import RoomVersion
from federation.signing import verify_json


def third_party_token(content: dict[str, Any]) -> str | None:
    """``content.third_party_invite.signed.token`` if it is a string, else ``None``."""
    invite = content.get("third_party_invite")
    signed = invite.get("signed") if isinstance(invite, dict) else None
    token = signed.get("token") if isinstance(signed, dict) else None
    return token if isinstance(token, str) else None


def public_keys(invite_event: dict[str, Any]) -> Iterator[str]:
    """The public keys of an ``m.room.third_party_invite`` event (``public_key`` first).

    Entries that are not strings (or objects without a string ``public_key``) are skipped.
    """
    content = content_of(invite_event)
    single = content.get("public_key")
    if isinstance(single, str):
        yield single
    many = content.get("public_keys")
    if isinstance(many, list):
        for entry in many:
            key = entry.get("public_key") if isinstance(entry, dict) else None
            if isinstance(key, str):
                yield key


def signed_block_verifies(signed: dict[str, Any], keys: list[str]) -> bool:
    """Whether an ed25519 signature in ``signed`` verifies with one of ``keys`` (rule 4.4.1.7).

    Read as Synapse does, so that rooms converge: for each public key in turn, only the
    first ed25519 signature (server names, then key IDs, in sorted order: Synapse holds
    event content in sorted maps) is tried; if it does not verify, the next public key is
    tried. With the usual single signature this is exactly the spec's "any signature
    matches any key".
    """
    signatures = signed.get("signatures")
    if not isinstance(signatures, dict):
        return False
    for public_key in keys:
        first = _first_ed25519_signature(signatures)
        if first is None:
            return False
        server, key_id = first
        try:
            verify_json(signed, server, key_id, public_key)
        except Exception:
            # Any failure (bad signature, bad key, unencodable JSON) means no match.
            continue
        return True
    return False


def _first_ed25519_signature(signatures: dict[str, Any]) -> tuple[str, str] | None:
    for server in sorted(signatures):
        by_key = signatures[server]
        if not isinstance(by_key, dict):
            continue
        for key_id in sorted(by_key):
            if key_id.startswith("ed25519:"):
                return server, key_id
    return None


def check_third_party_invite(pdu: dict[str, Any], auth_state: AuthState, rv: RoomVersion) -> None:
    """Rules 4.4.1.1-4.4.1.8; returns if the invite is allowed, raises otherwise."""
    content = content_of(pdu)
    target = pdu["state_key"]
    if membership_of(target, auth_state) == "ban":
        raise AuthError(f"the invited user {target} is banned", rule(rv, "4.4.1.1"))

    invite = content.get("third_party_invite")
    signed = invite.get("signed") if isinstance(invite, dict) else None
    if not isinstance(signed, dict):
        raise AuthError("content.third_party_invite has no signed object", rule(rv, "4.4.1.2"))
    mxid, token = signed.get("mxid"), signed.get("token")
    if not isinstance(mxid, str) or not isinstance(token, str):
        raise AuthError(
            "content.third_party_invite.signed lacks a string mxid or token", rule(rv, "4.4.1.3")
        )
    if mxid != target:
        raise AuthError(
            f"signed.mxid {mxid!r} does not match the state_key {target!r}", rule(rv, "4.4.1.4")
        )
    invite_event = auth_state.get((THIRD_PARTY_INVITE, token))
    if invite_event is None:
        raise AuthError(
            f"no m.room.third_party_invite event for token {token!r}", rule(rv, "4.4.1.5")
        )
    if invite_event.get("sender") != pdu["sender"]:
        raise AuthError(
            "the sender does not match the sender of the m.room.third_party_invite event",
            rule(rv, "4.4.1.6"),
        )
    if signed_block_verifies(signed, list(public_keys(invite_event))):
        return
    raise AuthError(
        "no signature in signed verifies with a public key of the m.room.third_party_invite event",
        rule(rv, "4.4.1.8"),
    )
