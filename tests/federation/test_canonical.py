"""Strict JSON parsing and canonical encoding."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from federation.canonical import MAX_INT, MIN_INT, canonicalize, encode_canonical_json, parse_json
from federation.errors import CanonicalJSONError


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": 1.5}', "floats are not allowed"),
        ('{"a": 1e3}', "floats are not allowed"),
        ('{"a": NaN}', "NaN is not valid JSON"),
        ('{"a": Infinity}', "Infinity is not valid JSON"),
        ('{"a": -Infinity}', "-Infinity is not valid JSON"),
        ('{"a": 9007199254740992}', "integer out of range"),
        ('{"a": -9007199254740992}', "integer out of range"),
        ('{"a": 1, "a": 2}', "duplicate key"),
        ('{"a": {"b": 1, "b": 1}}', "duplicate key"),
        ('{"a": "\\ud800"}', "lone surrogate"),
        ('{"\\udfff": 1}', "lone surrogate"),
        ('{"a": ', "malformed JSON"),
        ("", "malformed JSON"),
        ("{'a': 1}", "malformed JSON"),
    ],
)
def test_rejects(text: str, message: str) -> None:
    with pytest.raises(CanonicalJSONError, match=message):
        parse_json(text)


def test_rejects_invalid_utf8() -> None:
    with pytest.raises(CanonicalJSONError, match="invalid UTF-8 at byte 7"):
        parse_json(b'{"a": "\xff"}')


def test_rejects_non_text() -> None:
    with pytest.raises(CanonicalJSONError, match="expected bytes or str"):
        parse_json(12)  # type: ignore[arg-type]


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(CanonicalJSONError):
        parse_json("[" * 100_000 + "]" * 100_000)


def test_accepts_boundaries_and_surrogate_pairs() -> None:
    value = parse_json(f'{{"max": {MAX_INT}, "min": {MIN_INT}, "emoji": "\\ud83d\\ude00"}}')
    assert value == {"max": MAX_INT, "min": MIN_INT, "emoji": "😀"}


def test_integral_floats_only_when_asked() -> None:
    assert canonicalize('{"a": -0, "b": 1e10, "c": 2.0}') == b'{"a":0,"b":10000000000,"c":2}'
    with pytest.raises(CanonicalJSONError, match="non-integral"):
        canonicalize('{"a": 1.5}')
    with pytest.raises(CanonicalJSONError, match="floats are not allowed"):
        parse_json('{"b": 1e10}')


def test_encoding_is_sorted_compact_utf8() -> None:
    assert encode_canonical_json({"b": "日本", "a": [1, {"d": None, "c": True}]}) == (
        '{"a":[1,{"c":true,"d":null}],"b":"日本"}'.encode()
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(MIN_INT, MAX_INT) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_round_trip(value: object) -> None:
    encoded = encode_canonical_json(value)
    assert parse_json(encoded) == value
    assert encode_canonical_json(json.loads(encoded)) == encoded


def test_check_json_value() -> None:
    from federation.canonical import check_json_value

    check_json_value({"a": [1, "x", None, True, {"b": MAX_INT}]})
    with pytest.raises(CanonicalJSONError, match="floats are not allowed in Matrix JSON: a.b"):
        check_json_value({"a": {"b": 1.0}})
    with pytest.raises(CanonicalJSONError, match="out of range"):
        check_json_value({"a": [MAX_INT + 1]})
    with pytest.raises(CanonicalJSONError, match="keys must be strings"):
        check_json_value({1: 2})
    with pytest.raises(CanonicalJSONError, match="not a JSON value: set"):
        check_json_value({"a": {1}})
