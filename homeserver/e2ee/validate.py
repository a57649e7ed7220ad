"""Shape checks for the key objects clients upload (each failure is a 400 Matrix error)."""

from __future__ import annotations

from typing import Any

from homeserver.common.errors import MatrixError, bad_json, invalid_param

MAX_ID_LENGTH = 255


def is_user_id(value: Any) -> bool:
    return (
        isinstance(value, str)
        and value.startswith("@")
        and ":" in value
        and len(value.encode()) <= MAX_ID_LENGTH
    )


def string_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise bad_json(f"'{where}' must be an object of strings")
    return value


def key_id(value: Any, where: str) -> tuple[str, str]:
    """``algorithm:id`` split in two."""
    if not isinstance(value, str) or len(value.encode()) > MAX_ID_LENGTH:
        raise bad_json(f"invalid key ID in '{where}'")
    algorithm, sep, ident = value.partition(":")
    if not sep or not algorithm or not ident:
        raise invalid_param(f"key ID {value!r} in '{where}' is not 'algorithm:id'")
    return algorithm, ident


def signatures(value: Any, where: str) -> dict[str, dict[str, str]]:
    if not isinstance(value, dict):
        raise bad_json(f"'{where}.signatures' must be an object")
    for signer, sigs in value.items():
        if not is_user_id(signer):
            raise invalid_param(f"'{where}.signatures' has an invalid user ID {signer!r}")
        for kid in string_map(sigs, f"{where}.signatures.{signer}"):
            key_id(kid, f"{where}.signatures")
    return value


def device_keys(value: Any, user_id: str, device_id: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_json("'device_keys' must be an object")
    if value.get("user_id") != user_id:
        raise invalid_param("device_keys.user_id must be your user ID")
    if value.get("device_id") != device_id:
        raise invalid_param("device_keys.device_id must be the device of the access token")
    algorithms = value.get("algorithms")
    if not isinstance(algorithms, list) or not all(isinstance(a, str) for a in algorithms):
        raise bad_json("device_keys.algorithms must be a list of strings")
    keys = string_map(value.get("keys"), "device_keys.keys")
    if not keys:
        raise invalid_param("device_keys.keys must not be empty")
    for kid in keys:
        _, ident = key_id(kid, "device_keys.keys")
        if ident != device_id:
            raise invalid_param(f"device key {kid!r} is not named after the device")
    if "signatures" not in value:
        raise MatrixError(400, "M_MISSING_PARAM", "device_keys.signatures is missing")
    signatures(value["signatures"], "device_keys")
    return value


def one_time_key(kid: str, value: Any, where: str, *, fallback: bool = False) -> Any:
    """A one-time or fallback key: an unpadded base64 string, or a signed key object."""
    key_id(kid, where)
    if isinstance(value, str):
        if fallback:
            raise bad_json(f"fallback key {kid!r} must be a signed key object")
        return value
    if not isinstance(value, dict) or not isinstance(value.get("key"), str):
        raise bad_json(f"key {kid!r} in '{where}' must be a string or an object with 'key'")
    if "signatures" in value:
        signatures(value["signatures"], f"{where}.{kid}")
    if fallback and value.get("fallback") not in (None, True):
        raise bad_json(f"fallback key {kid!r}: 'fallback' must be true")
    return value


def key_map(value: Any, where: str, *, fallback: bool = False) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_json(f"'{where}' must be an object")
    return {kid: one_time_key(kid, v, where, fallback=fallback) for kid, v in value.items()}


def cross_signing_key(value: Any, usage: str, user_id: str) -> tuple[dict[str, Any], str, str]:
    """A cross-signing key, with its key ID and public key."""
    where = f"{usage}_key"
    if not isinstance(value, dict):
        raise bad_json(f"'{where}' must be an object")
    if value.get("user_id") != user_id:
        raise invalid_param(f"{where}.user_id must be your user ID")
    usages = value.get("usage")
    if not isinstance(usages, list) or usage not in usages:
        raise invalid_param(f"{where}.usage must contain {usage!r}")
    keys = string_map(value.get("keys"), f"{where}.keys")
    if len(keys) != 1:
        raise invalid_param(f"{where}.keys must hold exactly one key")
    ((kid, public),) = keys.items()
    algorithm, ident = key_id(kid, f"{where}.keys")
    if algorithm != "ed25519" or ident != public:
        raise invalid_param(f"{where}: key ID must be 'ed25519:<public key>'")
    if "signatures" in value:
        signatures(value["signatures"], where)
    return value, kid, public
