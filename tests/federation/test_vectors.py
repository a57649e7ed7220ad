"""Every byte-exact test vector of the Matrix spec (spec/vectors/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from federation import canonical, events, identifiers, room_versions, signing

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "spec/vectors/matrix-spec-vectors.json").read_text()
)


def _by_kind(kind: str) -> list[Any]:
    found = [v for v in VECTORS["vectors"] if v["kind"] == kind]
    assert found, kind
    return [pytest.param(v, id=v["name"]) for v in found]


def _spec_key() -> signing.SigningKey:
    seed = VECTORS["signing_key"]["seed_unpadded_base64"]
    return signing.load_signing_key(f"ed25519 1 {seed}")


def test_every_vector_kind_is_covered() -> None:
    kinds = {v["kind"] for v in VECTORS["vectors"]}
    assert kinds == {
        "unpadded_base64", "canonical_json", "json_signing", "event_signing",
        "server_name_valid", "room_version_valid", "user_localpart_mapping",
        "dot_separated_path", "identifier_format",
    }  # fmt: skip


@pytest.mark.parametrize("vector", _by_kind("unpadded_base64"))
def test_unpadded_base64(vector: dict[str, Any]) -> None:
    raw = vector["input"].encode()
    assert signing.encode_base64(raw) == vector["expected"]
    assert signing.decode_base64(vector["expected"]) == raw


@pytest.mark.parametrize("vector", _by_kind("canonical_json"))
def test_canonical_json(vector: dict[str, Any]) -> None:
    assert canonical.canonicalize(vector["input_text"]) == vector["expected"].encode("utf-8")


def test_spec_seed_accepted_in_both_encodings() -> None:
    derived = VECTORS["derived_not_in_spec"]
    spec_form = signing.load_signing_key(
        f"ed25519 1 {VECTORS['signing_key']['seed_unpadded_base64']}"
    )
    canonical_form = signing.load_signing_key(
        f"ed25519 1 {derived['seed_canonical_unpadded_base64']}"
    )
    assert spec_form.public_key_base64 == derived["ed25519_public_key_for_seed"]
    assert canonical_form.public_key_base64 == derived["ed25519_public_key_for_seed"]
    assert canonical_form.seed_base64 == derived["seed_canonical_unpadded_base64"]


@pytest.mark.parametrize("vector", _by_kind("json_signing"))
def test_json_signing(vector: dict[str, Any]) -> None:
    key = _spec_key()
    signed = signing.sign_json(vector["input"], "domain", key)
    assert signed == vector["expected"]
    signing.verify_json(signed, "domain", "ed25519:1", key.public_key_base64)


@pytest.mark.parametrize("vector", _by_kind("event_signing"))
def test_event_signing_room_10(vector: dict[str, Any]) -> None:
    signed = events.sign_event(vector["input"], "10", "domain", _spec_key())
    assert signed == vector["expected"]


@pytest.mark.parametrize("vector", _by_kind("event_signing"))
@pytest.mark.parametrize("version", ["11", "12"])
def test_event_signing_differs_under_v11_redaction(vector: dict[str, Any], version: str) -> None:
    """The vectors keep top-level ``origin``, which v11 redaction strips: signatures differ."""
    signed = events.sign_event(vector["input"], version, "domain", _spec_key())
    assert signed["hashes"] == vector["expected"]["hashes"]
    assert signed["signatures"] != vector["expected"]["signatures"]


def test_room_v12_create_and_join() -> None:
    example = VECTORS["derived_not_in_spec"]["room_v12_example"]
    create, join = example["create_event"], example["join_event"]
    assert events.compute_event_id(create, "12") == example["create_event_id"]
    assert events.compute_room_id(create) == example["room_id"]
    assert events.compute_event_id(join, "12") == example["join_event_id"]
    unsigned_create = {k: v for k, v in create.items() if k not in ("hashes", "signatures")}
    assert events.sign_event(unsigned_create, "12", "domain", _spec_key()) == create
    key = _spec_key()

    def lookup(server: str, key_id: str, ts: int) -> str | None:
        return key.public_key_base64 if (server, key_id) == ("domain", "ed25519:1") else None

    for pdu, event_id in ((create, example["create_event_id"]), (join, example["join_event_id"])):
        verified = events.verify_pdu(json.dumps(pdu).encode(), "12", lookup)
        assert verified.event_id == event_id
        assert not verified.redacted


@pytest.mark.parametrize("vector", _by_kind("server_name_valid"))
def test_server_names(vector: dict[str, Any]) -> None:
    assert identifiers.is_valid_server_name(vector["input"]) is vector["expected"]


@pytest.mark.parametrize("vector", _by_kind("room_version_valid"))
def test_room_version_grammar(vector: dict[str, Any]) -> None:
    assert room_versions.is_valid_room_version_id(vector["input"]) is vector["expected"]


@pytest.mark.parametrize("vector", _by_kind("user_localpart_mapping"))
def test_localpart_mapping(vector: dict[str, Any]) -> None:
    assert identifiers.map_to_localpart(vector["input"]) == vector["expected"]


@pytest.mark.parametrize("vector", _by_kind("dot_separated_path"))
def test_dot_separated_paths(vector: dict[str, Any]) -> None:
    assert identifiers.split_dot_path(vector["input"]) == vector["expected"]


@pytest.mark.parametrize("vector", _by_kind("identifier_format"))
def test_identifier_formats(vector: dict[str, Any]) -> None:
    value = vector["input"]
    expected = vector["expected"]
    assert value[0] == expected["sigil"]
    body = value[1:]
    if expected["alphabet"] == "url-safe":
        assert "+" not in body and "/" not in body
    assert len(signing.decode_base64(body)) == expected["hash_bytes"]
