"""Canonical JSON (spec appendix "Canonical JSON") and strict parsing of incoming JSON.

``encode_canonical_json`` produces the bytes that are hashed and signed.
``parse_json`` accepts only what Matrix allows in events and federation bodies:
no floats, no NaN or Infinity, integers within [-(2**53)+1, (2**53)-1], no duplicate
keys, valid UTF-8 and no lone surrogates.
"""

from __future__ import annotations

import json
import re
from typing import Any

import canonicaljson

from federation.errors import CanonicalJSONError

MIN_INT = -(2**53) + 1
MAX_INT = (2**53) - 1

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


def encode_canonical_json(value: Any) -> bytes:
    """The canonical JSON bytes of ``value`` (sorted keys, no spaces, UTF-8)."""
    try:
        return bytes(canonicaljson.encode_canonical_json(value))
    except (TypeError, ValueError, UnicodeEncodeError) as e:
        raise CanonicalJSONError(f"cannot encode as canonical JSON: {e}") from e


def check_json_value(value: Any, path: str = "") -> None:
    """Raise :class:`CanonicalJSONError` if ``value`` holds anything Matrix JSON forbids.

    For values built in memory (a client's event content): floats, integers out of range,
    non-string keys and types that are not JSON.
    """
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        _check_int(value, f"{path or 'value'}={value}")
    elif isinstance(value, float):
        raise CanonicalJSONError(f"floats are not allowed in Matrix JSON: {path or 'value'}")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalJSONError(f"object keys must be strings: {path}")
            check_json_value(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json_value(item, f"{path}[{index}]")
    else:
        raise CanonicalJSONError(f"not a JSON value: {type(value).__name__} at {path}")


def _reject_float(text: str) -> Any:
    raise CanonicalJSONError(f"floats are not allowed in Matrix JSON: {text}")


def _integral_float(text: str) -> int:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")) or not value.is_integer():
        raise CanonicalJSONError(f"non-integral number: {text}")
    return _check_int(int(value), text)


def _check_int(value: int, text: str) -> int:
    if value < MIN_INT or value > MAX_INT:
        raise CanonicalJSONError(f"integer out of range [-(2**53)+1, (2**53)-1]: {text}")
    return value


def _parse_int(text: str) -> int:
    return _check_int(int(text), text)


def _reject_constant(name: str) -> Any:
    raise CanonicalJSONError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise CanonicalJSONError(f"duplicate key in JSON object: {key!r}")
            seen.add(key)
    return obj


def _check_no_lone_surrogates(value: Any) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise CanonicalJSONError("JSON string contains a lone surrogate escape") from e
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_no_lone_surrogates(k)
            _check_no_lone_surrogates(v)
    elif isinstance(value, list):
        for v in value:
            _check_no_lone_surrogates(v)


# Built once: json.loads with keyword arguments builds a new decoder on every call.
_STRICT_DECODER = json.JSONDecoder(
    parse_float=_reject_float,
    parse_int=_parse_int,
    parse_constant=_reject_constant,
    object_pairs_hook=_no_duplicates,
)
_LENIENT_DECODER = json.JSONDecoder(
    parse_float=_integral_float,
    parse_int=_parse_int,
    parse_constant=_reject_constant,
    object_pairs_hook=_no_duplicates,
)


def parse_json(data: bytes | str, *, integral_floats: bool = False) -> Any:
    """Parse JSON strictly, raising :class:`CanonicalJSONError` on anything Matrix forbids.

    ``integral_floats=True`` turns whole-number floats such as ``1e10`` or ``-0.0`` into
    integers instead of rejecting them (the spec's canonical JSON examples need this); other
    floats are still rejected.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as e:
            raise CanonicalJSONError(f"invalid UTF-8 at byte {e.start}") from e
    elif isinstance(data, str):
        text = data
    else:
        raise CanonicalJSONError(f"expected bytes or str, got {type(data).__name__}")
    try:
        value = (_LENIENT_DECODER if integral_floats else _STRICT_DECODER).decode(text)
    except CanonicalJSONError:
        raise
    except RecursionError as e:
        raise CanonicalJSONError("JSON nested too deeply") from e
    except ValueError as e:  # json.JSONDecodeError is a ValueError
        raise CanonicalJSONError(f"malformed JSON: {e}") from e
    if _SURROGATE_ESCAPE.search(text):
        _check_no_lone_surrogates(value)
    return value


def canonicalize(data: bytes | str) -> bytes:
    """Parse JSON text (whole-number floats allowed) and return its canonical encoding."""
    return encode_canonical_json(parse_json(data, integral_floats=True))
