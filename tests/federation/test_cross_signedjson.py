"""Cross-check of ``federation.signing`` against matrix-org's ``signedjson``.

ed25519 is deterministic, so for the same key and object both libraries must produce
byte-identical signatures; each must verify the other's, and both must reject a
tampered object.
"""

from __future__ import annotations

import copy
import io
from typing import Any

import pytest
import signedjson.key
import signedjson.sign
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from federation.errors import SignatureError
from federation.signing import encode_base64, load_signing_key, sign_json, verify_json
from tests.federation.strategies import json_objects, json_values, key_versions, seeds, servers

SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Objects to sign: arbitrary JSON objects, sometimes with existing signatures and unsigned.
signable = st.builds(
    lambda body, sigs, unsigned: {
        **body,
        **({"signatures": sigs} if sigs is not None else {}),
        **({"unsigned": unsigned} if unsigned is not None else {}),
    },
    json_objects,
    st.one_of(
        st.none(),
        st.dictionaries(
            servers, st.dictionaries(st.just("ed25519:old"), st.just("c2ln")), max_size=2
        ),
    ),
    st.one_of(st.none(), st.dictionaries(st.just("age"), json_values(2), max_size=1)),
)


def _keys(seed: bytes, version: str) -> tuple[Any, Any]:
    ours = load_signing_key(f"ed25519 {version} {encode_base64(seed)}")
    theirs = signedjson.key.decode_signing_key_base64("ed25519", version, encode_base64(seed))
    return ours, theirs


def _vk(signing_key: Any) -> Any:
    return signedjson.key.get_verify_key(signing_key)


def _tamper(obj: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    tampered = copy.deepcopy(obj)
    choice = data.draw(st.sampled_from(["add", "change"]))
    signed_keys = [k for k in tampered if k not in ("signatures", "unsigned")]
    if choice == "change" and signed_keys:
        k = data.draw(st.sampled_from(sorted(signed_keys)))
        new = data.draw(json_values(3))
        assume(new != tampered[k])
        tampered[k] = new
    else:
        k = data.draw(st.text(min_size=1, max_size=5).filter(lambda s: s not in tampered))
        assume(k not in ("signatures", "unsigned"))
        tampered[k] = data.draw(json_values(3))
    return tampered


@SETTINGS
@given(obj=signable, seed=seeds, version=key_versions, server=servers)
def test_signatures_are_byte_identical(
    obj: dict[str, Any], seed: bytes, version: str, server: str
) -> None:
    ours, theirs = _keys(seed, version)
    assert ours.key_id == f"ed25519:{version}"
    assert ours.public_key_base64 == signedjson.key.encode_verify_key_base64(_vk(theirs))
    ours_signed = sign_json(copy.deepcopy(obj), server, ours)
    theirs_signed = signedjson.sign.sign_json(copy.deepcopy(obj), server, theirs)
    assert ours_signed == theirs_signed
    # signing returns a copy and keeps earlier signatures
    for other_server, sigs in obj.get("signatures", {}).items():
        for key_id, sig in sigs.items():
            if (other_server, key_id) != (server, ours.key_id):
                assert ours_signed["signatures"][other_server][key_id] == sig


@SETTINGS
@given(obj=signable, seed=seeds, version=key_versions, server=servers)
def test_we_verify_theirs_and_they_verify_ours(
    obj: dict[str, Any], seed: bytes, version: str, server: str
) -> None:
    ours, theirs = _keys(seed, version)
    theirs_signed = signedjson.sign.sign_json(copy.deepcopy(obj), server, theirs)
    verify_json(theirs_signed, server, ours.key_id, ours.public_key_base64)
    ours_signed = sign_json(copy.deepcopy(obj), server, ours)
    signedjson.sign.verify_signed_json(ours_signed, server, _vk(theirs))


@SETTINGS
@given(obj=signable, seed=seeds, version=key_versions, server=servers, data=st.data())
def test_tampered_objects_fail_in_both(
    obj: dict[str, Any], seed: bytes, version: str, server: str, data: st.DataObject
) -> None:
    ours, theirs = _keys(seed, version)
    signed = sign_json(copy.deepcopy(obj), server, ours)
    tampered = _tamper(signed, data)
    with pytest.raises(SignatureError):
        verify_json(tampered, server, ours.key_id, ours.public_key_base64)
    with pytest.raises(signedjson.sign.SignatureVerifyException):
        signedjson.sign.verify_signed_json(tampered, server, _vk(theirs))
    # unsigned and other servers' signatures are not covered: changing them verifies in both
    loose = copy.deepcopy(signed)
    loose["unsigned"] = {"age": 1}
    loose["signatures"]["elsewhere.example"] = {"ed25519:x": "c2ln"}
    verify_json(loose, server, ours.key_id, ours.public_key_base64)
    signedjson.sign.verify_signed_json(loose, server, _vk(theirs))


@SETTINGS
@given(obj=signable, seed=seeds, other_seed=seeds, version=key_versions, server=servers)
def test_wrong_key_or_server_fails_in_both(
    obj: dict[str, Any], seed: bytes, other_seed: bytes, version: str, server: str
) -> None:
    assume(seed != other_seed)
    ours, theirs = _keys(seed, version)
    other_ours, other_theirs = _keys(other_seed, version)
    signed = sign_json(copy.deepcopy(obj), server, ours)
    with pytest.raises(SignatureError):
        verify_json(signed, server, ours.key_id, other_ours.public_key_base64)
    with pytest.raises(signedjson.sign.SignatureVerifyException):
        signedjson.sign.verify_signed_json(signed, server, _vk(other_theirs))
    with pytest.raises(SignatureError):
        verify_json(signed, "nobody.example", ours.key_id, ours.public_key_base64)
    with pytest.raises(signedjson.sign.SignatureVerifyException):
        signedjson.sign.verify_signed_json(signed, "nobody.example", _vk(theirs))


@SETTINGS
@given(seed=seeds, version=key_versions)
def test_key_files_are_interchangeable(seed: bytes, version: str) -> None:
    ours, _ = _keys(seed, version)
    # a key file line written by signedjson loads in Kairan, and the reverse
    theirs = signedjson.key.decode_signing_key_base64("ed25519", version, encode_base64(seed))
    buf = io.StringIO()
    signedjson.key.write_signing_keys(buf, [theirs])
    assert load_signing_key(buf.getvalue()).public_key_base64 == ours.public_key_base64
    (read_back,) = signedjson.key.read_signing_keys(io.StringIO(ours.key_file_line()))
    assert read_back.version == version
    assert signedjson.key.encode_verify_key_base64(_vk(read_back)) == ours.public_key_base64
