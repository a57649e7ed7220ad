"""Helpers for the E2EE, device and push rule tests: real ed25519-signed key objects and a
client whose every response is validated against the spec's OpenAPI in the conformance
run (tests/homeserver/conformance.py)."""

from __future__ import annotations

import copy
import secrets
from typing import Any

import nacl.signing

from federation.signing import (
    SigningKey,
    encode_base64,
    generate_signing_key,
    sign_json,
    signing_bytes,
)
from tests.homeserver.client import User

V3 = "/_matrix/client/v3"
OLM = "m.olm.v1.curve25519-aes-sha2"
MEGOLM = "m.megolm.v1.aes-sha2"


def curve25519() -> str:
    return encode_base64(secrets.token_bytes(32))


class Device:
    """A device's identity key pair (ed25519, real) and what it uploads."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.ed25519: SigningKey = generate_signing_key(user.device_id)
        self._next = 0

    @property
    def key_id(self) -> str:
        return f"ed25519:{self.user.device_id}"

    def device_keys(self) -> dict[str, Any]:
        device_id = self.user.device_id
        return sign_json(
            {
                "user_id": self.user.user_id,
                "device_id": device_id,
                "algorithms": [OLM, MEGOLM],
                "keys": {
                    f"curve25519:{device_id}": curve25519(),
                    f"ed25519:{device_id}": self.ed25519.public_key_base64,
                },
            },
            self.user.user_id,
            self.ed25519,
        )

    def signed_key(self, *, fallback: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"key": curve25519()}
        if fallback:
            body["fallback"] = True
        return sign_json(body, self.user.user_id, self.ed25519)

    def one_time_keys(self, count: int) -> dict[str, Any]:
        keys = {}
        for _ in range(count):
            self._next += 1
            keys[f"signed_curve25519:AAAA{self._next}"] = self.signed_key()
        return keys

    def fallback_keys(self) -> dict[str, Any]:
        self._next += 1
        return {f"signed_curve25519:FB{self._next}": self.signed_key(fallback=True)}


class CrossSigningKey:
    """A cross-signing key: its key ID is ``ed25519:<public key>``."""

    def __init__(self, user_id: str, usage: str) -> None:
        self.user_id = user_id
        self.usage = usage
        self._key = nacl.signing.SigningKey.generate()
        self.public = encode_base64(bytes(self._key.verify_key))
        self.key_id = f"ed25519:{self.public}"

    def sign(self, obj: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``obj`` with this key's signature added."""
        signature = encode_base64(self._key.sign(signing_bytes(obj)).signature)
        signed = copy.deepcopy(obj)
        signed.setdefault("signatures", {}).setdefault(self.user_id, {})[self.key_id] = signature
        return signed

    def public_key(self, signed_by: CrossSigningKey | None = None) -> dict[str, Any]:
        key = {"user_id": self.user_id, "usage": [self.usage], "keys": {self.key_id: self.public}}
        return signed_by.sign(key) if signed_by else key


async def upload_keys(user: User, **body: Any) -> dict[str, Any]:
    result: dict[str, Any] = await user.ok("POST", f"{V3}/keys/upload", body)
    return result
