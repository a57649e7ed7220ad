"""The directory's pure rules: search normalisation, readings, local government codes.

No I/O.  Search works on *normalised* text: NFKC (full-width letters and digits become
ASCII, half-width katakana full-width), case folded, katakana as hiragana, without spaces
or control characters.  So 'ネムロ', 'ねむろ' and 'ﾈﾑﾛ' are one string, and the reading
of a kanji name (pykakasi) is searchable as well as the name: '根室' and 'ねむろ' both
find 根室市.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

#: Longest query accepted (characters, before normalising) and most terms in one query.
MAX_QUERY_CHARS = 100
MAX_TERMS = 5
#: Separates the fields of a staff member's search text: no query can contain it
#: (normalising removes control characters), so a match never spans two fields.
FIELD_SEPARATOR = "\x1f"


def to_hiragana(text: str) -> str:
    return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in text)


def normalise(text: str) -> str:
    """The form search compares: NFKC, case folded, katakana as hiragana, no spaces or
    control characters."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(c for c in folded if not c.isspace() and unicodedata.category(c)[0] != "C")
    return to_hiragana(kept)


@lru_cache(maxsize=50_000)
def reading(text: str) -> str:
    """The hiragana reading of ``text`` (kanji read by pykakasi), normalised; '' when the
    text has none (pykakasi does not know every variant kanji)."""
    if not text:
        return ""
    return normalise("".join(item["hira"] for item in _kakasi().convert(text)))


@lru_cache(maxsize=1)
def _kakasi() -> Any:
    import pykakasi

    return pykakasi.kakasi()  # type: ignore[no-untyped-call]


def is_kana(text: str) -> bool:
    """Whether a (normalised) reading is hiragana only (with ー and the iteration marks)."""
    return all("ぁ" <= c <= "ゖ" or c in "ーゝゞ・" for c in text)


def search_text(fields: Iterable[tuple[str, str | None]]) -> str:
    """The text a staff member is found by: each field normalised, with its reading (given,
    or derived from its kanji when None), joined by :data:`FIELD_SEPARATOR`."""
    parts: list[str] = []
    for text, known in fields:
        if not text:
            continue
        plain = normalise(text)
        parts.append(plain)
        read = reading(text) if known is None else normalise(known)
        if read and read != plain:
            parts.append(read)
    return FIELD_SEPARATOR + FIELD_SEPARATOR.join(parts) + FIELD_SEPARATOR


def query_terms(query: str) -> list[str]:
    """The normalised terms of a query (split at spaces: each must match somewhere).

    Raises ValueError when the query is too long or has too many terms."""
    if len(query) > MAX_QUERY_CHARS:
        raise ValueError(f"the search term is longer than {MAX_QUERY_CHARS} characters")
    spaced = unicodedata.normalize("NFKC", query).split()
    terms = [t for t in (normalise(part) for part in spaced) if t]
    if len(terms) > MAX_TERMS:
        raise ValueError(f"the search term has more than {MAX_TERMS} words")
    return _dedupe(terms)


def _dedupe(terms: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for term in terms:
        if term not in seen:
            seen.append(term)
    return seen


def like_pattern(term: str) -> str:
    """A LIKE pattern matching ``term`` anywhere, its ``%``, ``_`` and ``\\`` literal
    (with ``ESCAPE '\\'``)."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# ---------------------------------------------------------------------- organisations


def check_digit(first_five: str) -> int:
    """The JIS X 0402 check digit of a local government code's first five digits: the
    digits weighted 6, 5, 4, 3, 2, summed, and the last digit of 11 minus the sum mod 11."""
    total = sum(int(d) * w for d, w in zip(first_five, (6, 5, 4, 3, 2), strict=True))
    return (11 - total % 11) % 10


def org_code_error(code: str) -> str | None:
    """Why ``code`` is not a valid six-digit local government code, or None."""
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return f"団体コード/org_code {code!r} must be 6 digits (JIS X 0402, with its check digit)"
    expected = check_digit(code[:5])
    if int(code[5]) != expected:
        return f"団体コード/org_code {code} has a wrong check digit (expected {code[:5]}{expected})"
    return None


def split_department(value: str) -> tuple[str, ...]:
    """A nested department, 「総務部/総務課」 or 「総務部 > 総務課」 (full-width too)."""
    unified = value
    for separator in ("／", "＞", ">"):
        unified = unified.replace(separator, "/")
    return tuple(part.strip() for part in unified.split("/") if part.strip())


def join_department(parts: Iterable[str]) -> str:
    return "/".join(parts)
