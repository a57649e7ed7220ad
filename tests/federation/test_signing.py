"""Keys, JSON signatures and server-key documents."""

from __future__ import annotations

import pytest

from federation import signing
from federation.errors import Base64Error, KeyFormatError, SignatureError

SEED = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"


def key() -> signing.SigningKey:
    return signing.load_signing_key(f"ed25519 1 {SEED}")


def test_base64_alphabets_and_padding() -> None:
    raw = bytes(range(256))
    assert signing.decode_base64(signing.encode_base64(raw)) == raw
    assert signing.decode_base64(signing.encode_base64(raw, urlsafe=True)) == raw
    assert signing.decode_base64("Zm9vYg==") == b"foob"


@pytest.mark.parametrize("text", ["a", "Zm9v!", "Zm 9v", "Zm9vY"])
def test_bad_base64(text: str) -> None:
    with pytest.raises(Base64Error):
        signing.decode_base64(text)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "three fields"),
        ("ed25519 1", "three fields"),
        (f"rsa 1 {SEED}", "unsupported key algorithm"),
        (f"ed25519 a:b {SEED}", "invalid key version"),
        ("ed25519 1 !!!!", "not unpadded base64"),
        ("ed25519 1 Zm9v", "32 bytes"),
    ],
)
def test_bad_key_lines(line: str, message: str) -> None:
    with pytest.raises(KeyFormatError, match=message):
        signing.load_signing_key(line)


def test_key_file_round_trip() -> None:
    generated = signing.generate_signing_key()
    assert generated.version.startswith("a_")
    loaded = signing.load_signing_keys(f"# comment\n\n{generated.key_file_line()}\n")
    assert loaded[0].public_key_base64 == generated.public_key_base64
    assert loaded[0].key_id == generated.key_id
    with pytest.raises(KeyFormatError, match="no key"):
        signing.load_signing_keys("# nothing\n")


def test_several_signatures_and_unsigned() -> None:
    other = signing.generate_signing_key("2")
    obj = {"a": 1, "unsigned": {"age": 5}}
    signed = signing.sign_json(signing.sign_json(obj, "one", key()), "two", other)
    assert set(signed["signatures"]) == {"one", "two"}
    assert signed["unsigned"] == {"age": 5}
    assert obj == {"a": 1, "unsigned": {"age": 5}}  # the input is not modified
    signing.verify_json(signed, "one", "ed25519:1", key().public_key_base64)
    signing.verify_json(signed, "two", "ed25519:2", other.public_key_base64)
    signed["unsigned"]["age"] = 6  # unsigned is not covered
    signing.verify_json(signed, "one", "ed25519:1", key().public_key_base64)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda o: o.update(a=2), "bad signature"),
        (lambda o: o.pop("signatures"), "no signatures"),
        (lambda o: o["signatures"].pop("one"), "no signature from one"),
        (lambda o: o["signatures"]["one"].update({"ed25519:1": 5}), "not a string"),
        (lambda o: o["signatures"]["one"].update({"ed25519:1": "!!"}), "not base64"),
        (lambda o: o["signatures"]["one"].update({"ed25519:1": "AAAA"}), "bad signature"),
    ],
)
def test_verify_failures(mutate: object, message: str) -> None:
    signed = signing.sign_json({"a": 1}, "one", key())
    mutate(signed)  # type: ignore[operator]
    with pytest.raises(SignatureError, match=message):
        signing.verify_json(signed, "one", "ed25519:1", key().public_key_base64)


def test_verify_rejects_bad_keys_and_ids() -> None:
    signed = signing.sign_json({"a": 1}, "one", key())
    with pytest.raises(SignatureError, match="32 bytes"):
        signing.verify_json(signed, "one", "ed25519:1", "Zm9v")
    with pytest.raises(SignatureError, match="unsupported signature algorithm"):
        signing.verify_json(signed, "one", "curve25519:1", key().public_key_base64)
    with pytest.raises(KeyFormatError):
        signing.verify_json(signed, "one", "nocolon", key().public_key_base64)


def test_server_keys_document() -> None:
    old = signing.generate_signing_key("old")
    doc = signing.build_server_keys(
        "example.org", key(), 2_000, {old.key_id: (old.public_key_base64, 1_000)}
    )
    parsed = signing.parse_server_keys(doc, "example.org", now_ms=1_500)
    assert parsed.verify_keys == {"ed25519:1": key().public_key_base64}
    assert parsed.key_for("ed25519:old") == old.public_key_base64
    assert parsed.key_for("ed25519:nope") is None
    assert parsed.effective_valid_until(0) == 2_000
    assert parsed.effective_valid_until(-signing.MAX_KEY_VALIDITY_MS) == 0


def test_server_keys_refusals() -> None:
    doc = signing.build_server_keys("example.org", key(), 2_000)
    with pytest.raises(SignatureError, match="expired"):
        signing.parse_server_keys(doc, "example.org", now_ms=3_000)
    with pytest.raises(SignatureError, match="not 'evil.org'"):
        signing.parse_server_keys(doc, "evil.org")
    forged = dict(doc, valid_until_ts=9_999_999)
    with pytest.raises(SignatureError, match="bad signature"):
        signing.parse_server_keys(forged, "example.org")
    stranger = signing.sign_json(doc, "example.org", signing.generate_signing_key("x"))
    with pytest.raises(SignatureError, match="not in verify_keys"):
        signing.parse_server_keys(stranger, "example.org")
    unsigned = {k: v for k, v in doc.items() if k != "signatures"}
    with pytest.raises(SignatureError, match="not signed"):
        signing.parse_server_keys(unsigned, "example.org")
    with pytest.raises(SignatureError, match="not a JSON object"):
        signing.parse_server_keys([], "example.org")
