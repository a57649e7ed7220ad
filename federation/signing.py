"""Unpadded base64, ed25519 signing keys, JSON signatures and server-key documents.

Key files use Synapse's format, one key a line: ``ed25519 <version> <unpadded base64 seed>``.
Signing follows the spec appendix "Signing JSON": ``signatures`` and ``unsigned`` are
removed, the rest is encoded as canonical JSON and signed with ed25519.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import nacl.exceptions
import nacl.signing

from federation.canonical import encode_canonical_json
from federation.errors import Base64Error, KeyFormatError, SignatureError

ED25519 = "ed25519"
_KEY_VERSION = re.compile(r"[a-zA-Z0-9_]+")

#: Remote keys are trusted for at most this long past the time they were fetched.
MAX_KEY_VALIDITY_MS = 7 * 24 * 3600 * 1000


# ---------------------------------------------------------------------------- base64


def encode_base64(data: bytes, *, urlsafe: bool = False) -> str:
    """Unpadded base64 (standard alphabet, or URL-safe when asked)."""
    encoded = base64.urlsafe_b64encode(data) if urlsafe else base64.b64encode(data)
    return encoded.rstrip(b"=").decode("ascii")


def decode_base64(text: str) -> bytes:
    """Decode unpadded (or padded) base64 in the standard or URL-safe alphabet.

    Non-zero trailing bits are accepted: the spec's own test seed ends in ``XA1``.
    """
    if not isinstance(text, str):
        raise Base64Error(f"expected a base64 string, got {type(text).__name__}")
    stripped = text.rstrip("=")
    if len(stripped) % 4 == 1:
        raise Base64Error(f"invalid base64 length: {text!r}")
    if "-" in stripped or "_" in stripped:
        stripped = stripped.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(stripped + "=" * (-len(stripped) % 4), validate=True)
    except (binascii.Error, ValueError) as e:
        raise Base64Error(f"invalid base64: {text!r}") from e


# ---------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class SigningKey:
    """An ed25519 signing key with its version (the part after ``ed25519:``)."""

    version: str
    _key: nacl.signing.SigningKey = field(repr=False, compare=False)

    @property
    def key_id(self) -> str:
        return f"{ED25519}:{self.version}"

    @property
    def public_key_base64(self) -> str:
        return encode_base64(bytes(self._key.verify_key))

    @property
    def verify_key(self) -> nacl.signing.VerifyKey:
        return self._key.verify_key

    @property
    def seed_base64(self) -> str:
        return encode_base64(bytes(self._key))

    def key_file_line(self) -> str:
        """The key in the key file format (Synapse's), without a newline."""
        return f"{ED25519} {self.version} {self.seed_base64}"

    def sign(self, message: bytes) -> bytes:
        return bytes(self._key.sign(message).signature)


def _check_version(version: str) -> str:
    if not _KEY_VERSION.fullmatch(version):
        raise KeyFormatError(f"invalid key version {version!r}: use letters, digits and _")
    return version


def signing_key_from_seed(seed: bytes, version: str) -> SigningKey:
    if len(seed) != 32:
        raise KeyFormatError(f"an ed25519 seed is 32 bytes, got {len(seed)}")
    return SigningKey(_check_version(version), nacl.signing.SigningKey(seed))


def generate_signing_key(version: str | None = None) -> SigningKey:
    """A new random key; the version defaults to ``a_`` plus four random letters."""
    if version is None:
        version = "a_" + "".join(
            secrets.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4)
        )
    return signing_key_from_seed(secrets.token_bytes(32), version)


def load_signing_key(line: str) -> SigningKey:
    """Parse one key file line: ``ed25519 <version> <unpadded base64 seed>``."""
    parts = line.strip().split()
    if len(parts) != 3:
        raise KeyFormatError("a key line has three fields: 'ed25519 <version> <base64 seed>'")
    algorithm, version, seed = parts
    if algorithm != ED25519:
        raise KeyFormatError(f"unsupported key algorithm {algorithm!r} (only ed25519)")
    try:
        raw = decode_base64(seed)
    except Base64Error as e:
        raise KeyFormatError(f"key seed is not unpadded base64: {e}") from e
    return signing_key_from_seed(raw, version)


def load_signing_keys(text: str) -> list[SigningKey]:
    """Every key of a key file (blank lines and ``#`` comments allowed)."""
    keys = [
        load_signing_key(line)
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not keys:
        raise KeyFormatError("the key file holds no key")
    return keys


def split_key_id(key_id: str) -> tuple[str, str]:
    algorithm, sep, version = key_id.partition(":") if isinstance(key_id, str) else ("", "", "")
    if not sep or not algorithm or not version:
        raise KeyFormatError(f"invalid key ID {key_id!r}: expected 'algorithm:version'")
    return algorithm, version


@lru_cache(maxsize=4096)
def decode_verify_key(public_key: str) -> nacl.signing.VerifyKey:
    """A verify key from its unpadded base64 form (cached: keys repeat)."""
    try:
        raw = decode_base64(public_key)
    except Base64Error as e:
        raise SignatureError(f"public key is not base64: {e}") from e
    if len(raw) != 32:
        raise SignatureError(f"an ed25519 public key is 32 bytes, got {len(raw)}")
    return nacl.signing.VerifyKey(raw)


# ---------------------------------------------------------------------------- JSON signatures


def signing_bytes(obj: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: canonical JSON of ``obj`` without signatures and unsigned."""
    stripped = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    return encode_canonical_json(stripped)


def sign_json(obj: dict[str, Any], server_name: str, key: SigningKey) -> dict[str, Any]:
    """A copy of ``obj`` with ``server_name``'s signature by ``key`` added to the others."""
    if not isinstance(obj, dict):
        raise TypeError("only JSON objects can be signed")
    signature = encode_base64(key.sign(signing_bytes(obj)))
    signed = dict(obj)
    signatures = copy.deepcopy(obj.get("signatures", {}))
    signatures.setdefault(server_name, {})[key.key_id] = signature
    signed["signatures"] = signatures
    return signed


def get_signature(obj: Mapping[str, Any], server_name: str, key_id: str) -> bytes:
    """The raw signature of ``server_name`` with ``key_id`` on ``obj``."""
    signatures = obj.get("signatures")
    if not isinstance(signatures, dict):
        raise SignatureError("object has no signatures")
    by_server = signatures.get(server_name)
    if not isinstance(by_server, dict) or key_id not in by_server:
        raise SignatureError(f"no signature from {server_name} with key {key_id}")
    encoded = by_server[key_id]
    if not isinstance(encoded, str):
        raise SignatureError(f"signature {server_name} {key_id} is not a string")
    try:
        return decode_base64(encoded)
    except Base64Error as e:
        raise SignatureError(f"signature {server_name} {key_id} is not base64") from e


def verify_signature(
    message: bytes, signature: bytes, verify_key: nacl.signing.VerifyKey, what: str
) -> None:
    try:
        verify_key.verify(message, signature)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError) as e:
        raise SignatureError(f"bad signature for {what}") from e


def verify_json(obj: dict[str, Any], server_name: str, key_id: str, public_key: str) -> None:
    """Check ``server_name``'s signature with ``key_id`` on ``obj``; raise SignatureError if not."""
    if not isinstance(obj, dict):
        raise SignatureError("only JSON objects carry signatures")
    algorithm, _ = split_key_id(key_id)
    if algorithm != ED25519:
        raise SignatureError(f"unsupported signature algorithm {algorithm!r}")
    signature = get_signature(obj, server_name, key_id)
    verify_signature(
        signing_bytes(obj), signature, decode_verify_key(public_key), f"{server_name} {key_id}"
    )


# ---------------------------------------------------------------------------- server keys


@dataclass(frozen=True)
class ServerKeys:
    """A verified ``/_matrix/key/v2/server`` document."""

    server_name: str
    valid_until_ts: int
    verify_keys: dict[str, str]
    #: key ID -> (public key, expired_ts)
    old_verify_keys: dict[str, tuple[str, int]]
    document: dict[str, Any]

    def effective_valid_until(self, fetched_at_ms: int) -> int:
        """The spec caps trust in a fetched key at 7 days after fetching it."""
        return min(self.valid_until_ts, fetched_at_ms + MAX_KEY_VALIDITY_MS)

    def key_for(self, key_id: str) -> str | None:
        if key_id in self.verify_keys:
            return self.verify_keys[key_id]
        old = self.old_verify_keys.get(key_id)
        return old[0] if old else None


def build_server_keys(
    server_name: str,
    keys: list[SigningKey] | SigningKey,
    valid_until_ts: int,
    old_verify_keys: Mapping[str, tuple[str, int]] | None = None,
) -> dict[str, Any]:
    """The signed response body of ``GET /_matrix/key/v2/server``, signed by every current key."""
    current = [keys] if isinstance(keys, SigningKey) else list(keys)
    doc: dict[str, Any] = {
        "server_name": server_name,
        "valid_until_ts": int(valid_until_ts),
        "verify_keys": {k.key_id: {"key": k.public_key_base64} for k in current},
        "old_verify_keys": {
            key_id: {"key": public, "expired_ts": int(expired)}
            for key_id, (public, expired) in (old_verify_keys or {}).items()
        },
    }
    for key in current:
        doc = sign_json(doc, server_name, key)
    return doc


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise SignatureError(message)


def parse_server_keys(
    doc: Any, expected_server_name: str, *, now_ms: int | None = None
) -> ServerKeys:
    """Check a remote server-key document and return its keys.

    The document must be for ``expected_server_name``, be signed by that server, carry no
    signature by a key it does not list in ``verify_keys``, and every such signature must
    verify.  With ``now_ms`` a document whose ``valid_until_ts`` has passed is refused.
    """
    _expect(isinstance(doc, dict), "server key document is not a JSON object")
    _expect(
        doc.get("server_name") == expected_server_name,
        f"server key document is for {doc.get('server_name')!r}, not {expected_server_name!r}",
    )
    valid_until = doc.get("valid_until_ts")
    _expect(
        isinstance(valid_until, int) and not isinstance(valid_until, bool),
        "valid_until_ts must be an integer",
    )
    if now_ms is not None:
        _expect(
            valid_until >= now_ms, f"server keys of {expected_server_name} expired at {valid_until}"
        )
    verify_keys: dict[str, str] = {}
    raw_keys = doc.get("verify_keys")
    _expect(isinstance(raw_keys, dict) and bool(raw_keys), "verify_keys must be a non-empty object")
    for key_id, entry in raw_keys.items():
        _expect(
            isinstance(entry, dict) and isinstance(entry.get("key"), str),
            f"verify key {key_id} has no 'key' string",
        )
        verify_keys[key_id] = entry["key"]
    old: dict[str, tuple[str, int]] = {}
    raw_old = doc.get("old_verify_keys", {})
    _expect(isinstance(raw_old, dict), "old_verify_keys must be an object")
    for key_id, entry in raw_old.items():
        _expect(
            isinstance(entry, dict)
            and isinstance(entry.get("key"), str)
            and isinstance(entry.get("expired_ts"), int),
            f"old verify key {key_id} is malformed",
        )
        old[key_id] = (entry["key"], entry["expired_ts"])
    signatures = doc.get("signatures")
    _expect(
        isinstance(signatures, dict)
        and isinstance(signatures.get(expected_server_name), dict)
        and bool(signatures[expected_server_name]),
        f"server key document is not signed by {expected_server_name}",
    )
    for key_id in signatures[expected_server_name]:
        if not key_id.startswith(ED25519 + ":"):
            continue
        _expect(key_id in verify_keys, f"signature by {key_id}, which is not in verify_keys")
        verify_json(doc, expected_server_name, key_id, verify_keys[key_id])
    return ServerKeys(expected_server_name, valid_until, verify_keys, old, doc)
