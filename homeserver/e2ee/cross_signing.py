"""Cross-signing: a user's master, self-signing and user-signing keys, and the signatures
users upload on their devices, their own keys and other users' master keys.

Functions on an open connection (``conn``) of a write; :class:`KeysService` runs them,
records the device list change and tells the users and servers concerned.
"""

from __future__ import annotations

import copy
from typing import Any

from federation.errors import FederationError
from federation.signing import signing_bytes, verify_json
from homeserver.common.errors import MatrixError, bad_json, invalid_param, not_found
from homeserver.e2ee import validate
from homeserver.storage import keys as store


def uploaded_keys(body: dict[str, Any], user_id: str) -> dict[str, dict[str, Any]]:
    """The cross-signing keys of an upload by key type, checked, without ``unsigned``."""
    uploaded: dict[str, dict[str, Any]] = {}
    for key_type in store.CROSS_SIGNING_TYPES:
        value = body.get(f"{key_type}_key")
        if value is not None:
            key, _, _ = validate.cross_signing_key(value, key_type, user_id)
            uploaded[key_type] = {k: v for k, v in key.items() if k != "unsigned"}
    return uploaded


def render(envelope: dict[str, Any], viewer: str) -> dict[str, Any]:
    """A stored key as ``viewer`` sees it: with the signatures only the viewer may see."""
    key = copy.deepcopy(envelope["key"])
    private = envelope.get("private_signatures", {}).get(viewer)
    if private:
        key.setdefault("signatures", {}).setdefault(viewer, {}).update(private)
    return dict(key)


async def needs_uia(conn: Any, user_id: str, uploaded: dict[str, dict[str, Any]]) -> bool:
    """Whether an upload must be confirmed with UIA: not for a first master key, nor for
    re-uploading exactly the stored keys."""
    stored = await store.get_cross_signing_keys(conn, user_id)
    if "master" not in stored:
        return False
    return any(
        key_type not in stored or stored[key_type]["key"] != key
        for key_type, key in uploaded.items()
    )


async def store_keys(conn: Any, user_id: str, uploaded: dict[str, dict[str, Any]]) -> bool:
    """Store uploaded cross-signing keys (the others must be signed by the master key, the
    uploaded or the stored one); whether any stored key changed."""
    stored = await store.get_cross_signing_keys(conn, user_id)
    master = uploaded.get("master") or (stored.get("master") or {}).get("key")
    if master is None:
        raise MatrixError(400, "M_MISSING_PARAM", "Upload a master key with or before the others")
    master_kid, master_public = next(iter(master["keys"].items()))
    for key_type in ("self_signing", "user_signing"):
        if key_type in uploaded:
            try:
                verify_json(uploaded[key_type], user_id, master_kid, master_public)
            except (FederationError, ValueError):
                raise invalid_param(f"The {key_type} key is not signed by the master key") from None
    changed = False
    for key_type, key in uploaded.items():
        old = stored.get(key_type)
        if old is not None and old["key"] == key:
            continue
        envelope = {"key": key, "private_signatures": {}}
        await store.set_cross_signing_key(conn, user_id, key_type, envelope)
        changed = True
    return changed


async def store_signatures(
    conn: Any, signer: str, body: dict[str, Any]
) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    """Add the signatures of a ``/keys/signatures/upload`` body: (failures by user and key,
    the keys signed by user)."""
    failures: dict[str, dict[str, Any]] = {}
    signed_keys: dict[str, list[str]] = {}
    keys_of_signer = await signer_keys(conn, signer)
    for user_id, objects in body.items():
        if not validate.is_user_id(user_id) or not isinstance(objects, dict):
            raise bad_json("Expected an object of user IDs to signed keys")
        for target, signed in objects.items():
            try:
                await apply_signatures(conn, signer, keys_of_signer, user_id, target, signed)
                signed_keys.setdefault(user_id, []).append(target)
            except MatrixError as e:
                failures.setdefault(user_id, {})[target] = {
                    "errcode": e.errcode,
                    "error": e.message,
                }
    return failures, signed_keys


async def signer_keys(conn: Any, user_id: str) -> dict[str, tuple[str, str]]:
    """key ID -> (public key, kind) of every key of the user that may sign."""
    found: dict[str, tuple[str, str]] = {}
    for key_type, envelope in (await store.get_cross_signing_keys(conn, user_id)).items():
        for kid, public in envelope["key"]["keys"].items():
            found[kid] = (public, key_type)
    for device in await store.devices_with_keys(conn, user_id):
        if device.keys is not None:
            kid = f"ed25519:{device.device_id}"
            public = device.keys.get("keys", {}).get(kid)
            if isinstance(public, str):
                found[kid] = (public, "device")
    return found


async def apply_signatures(
    conn: Any,
    signer: str,
    signer_keys: dict[str, tuple[str, str]],
    user_id: str,
    target: str,
    signed: Any,
) -> None:
    if not isinstance(signed, dict):
        raise bad_json("A signed key must be an object")
    sigs = signed.get("signatures")
    if not isinstance(sigs, dict) or not isinstance(sigs.get(signer), dict):
        raise invalid_param("No signatures by you on this key")
    # Find what is being signed: one of the user's devices or cross-signing keys.
    cross = await store.get_cross_signing_keys(conn, user_id)
    envelope_type = next(
        (t for t, e in cross.items() if f"ed25519:{target}" in e["key"]["keys"]), None
    )
    if envelope_type is not None:
        stored = cross[envelope_type]["key"]
    elif user_id == signer:
        device_keys = await store.get_device_keys(conn, user_id, target)
        if device_keys is None or target.startswith(store.CROSS_SIGNING_PREFIX):
            raise not_found(f"Unknown key {target}")
        stored = device_keys
    else:
        raise not_found(f"Unknown key {target}")
    if signing_bytes(signed) != signing_bytes(stored):
        raise invalid_param("The signed object differs from the stored key")
    new_sigs: dict[str, str] = {}
    for kid, signature in sigs[signer].items():
        if not isinstance(signature, str):
            raise bad_json("A signature must be a string")
        if stored.get("signatures", {}).get(signer, {}).get(kid) == signature:
            continue  # already there
        if kid not in signer_keys:
            raise invalid_param(f"Unknown signing key {kid}")
        public, kind = signer_keys[kid]
        if user_id != signer and kind != "user_signing":
            raise invalid_param("Other users' keys are signed with the user-signing key")
        try:
            verify_json({**stored, "signatures": {signer: {kid: signature}}}, signer, kid, public)
        except (FederationError, ValueError):
            raise invalid_param(f"Invalid signature by {kid}") from None
        new_sigs[kid] = signature
    if not new_sigs:
        return
    if envelope_type is not None:
        envelope = cross[envelope_type]
        if user_id == signer:
            envelope["key"].setdefault("signatures", {}).setdefault(signer, {}).update(new_sigs)
        else:
            envelope.setdefault("private_signatures", {}).setdefault(signer, {}).update(new_sigs)
        await store.set_cross_signing_key(conn, user_id, envelope_type, envelope)
    else:
        stored.setdefault("signatures", {}).setdefault(signer, {}).update(new_sigs)
        await store.set_device_keys(conn, user_id, target, stored)
