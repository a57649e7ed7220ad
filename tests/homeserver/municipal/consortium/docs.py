"""Consortium documents for the tests: deterministic admin and server keys."""

from __future__ import annotations

import hashlib
from typing import Any

from federation.signing import SigningKey, sign_json, signing_key_from_seed
from homeserver.municipal.consortium import document

DAY_MS = 86_400_000
#: A fixed "now" for the pure tests (2026-11-01T00:00:00Z).
NOW = 1_793_491_200_000


def key(name: str) -> SigningKey:
    """The same key for the same name, every run."""
    return signing_key_from_seed(hashlib.sha256(name.encode()).digest(), name.replace("-", "_"))


ADMINS = [key("admin1"), key("admin2"), key("admin3")]


def admins_of(keys: list[SigningKey]) -> dict[str, str]:
    return {k.key_id: k.public_key_base64 for k in keys}


def first_version(
    members: dict[str, SigningKey] | None = None,
    *,
    admins: list[SigningKey] = ADMINS,
    threshold: int = 2,
    signers: list[SigningKey] | None = None,
    valid_until_ts: int = NOW + 30 * DAY_MS,
    doc_id: str = "kanto",
) -> dict[str, Any]:
    """Version 1 with ``members`` (server -> its key), signed by ``signers`` (default:
    the first ``threshold`` admins)."""
    obj = document.new_draft(
        doc_id, "関東LGWAN連携", "かんとうえるじーわんれんけい", admins_of(admins), threshold,
        valid_until_ts,
    )  # fmt: skip
    for server, server_key in (members or {}).items():
        obj = document.with_member(
            obj, server, {server_key.key_id: server_key.public_key_base64},
            {"code": "131016", "name": "千代田区", "reading": "ちよだく"},
        )  # fmt: skip
    return sign_all(obj, signers if signers is not None else admins[:threshold])


def sign_all(obj: dict[str, Any], signers: list[SigningKey]) -> dict[str, Any]:
    """Signed by each of ``signers``, admins or not (an attacker's signatures too)."""
    for signer in signers:
        obj = sign_json(obj, obj["id"], signer)
    return obj


def next_version(
    obj: dict[str, Any],
    *,
    add: dict[str, SigningKey] | None = None,
    remove: tuple[str, ...] = (),
    signers: list[SigningKey] | None = None,
    admins: list[SigningKey] | None = None,
    threshold: int | None = None,
) -> dict[str, Any]:
    """The version after ``obj`` (signed), with members added or removed, and maybe new
    admins; signed by ``signers`` (default: the first K admins of ``obj``)."""
    draft = document.start_edit(obj, signed=True)
    for server, server_key in (add or {}).items():
        draft = document.with_member(
            draft, server, {server_key.key_id: server_key.public_key_base64}, None
        )
    for server in remove:
        draft = document.without_member(draft, server)
    if admins is not None:
        draft["admins"] = admins_of(admins)
    if threshold is not None:
        draft["threshold"] = threshold
    if signers is None:
        held = document.parse(obj)
        by_id = {k.key_id: k for k in [*ADMINS, *(admins or [])]}
        signers = [by_id[i] for i in sorted(held.admins.keys)][: held.admins.threshold]
    return sign_all(draft, signers)
