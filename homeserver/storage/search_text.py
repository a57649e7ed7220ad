"""Text for the search index: substring search with no word boundaries (pure code).

Japanese is written without spaces, so a word index finds nothing inside 地域防災計画 when
asked for 防災.  The index holds character bigrams instead, and a query is a phrase of
consecutive bigrams, which matches exactly where the query is a substring:

- the text is normalised (NFKC, then case folded, then NFKC again) so that full-width and
  half-width forms (ＡＢＣ, ｶﾀｶﾅ) and upper and lower case match each other;
- it is cut into *runs* of letters and digits (``str.isalnum``: kanji, kana, the long vowel
  mark ー, Latin, digits); spaces and punctuation separate runs;
- each run becomes its bigrams followed by its last character alone: 地域防災計画 gives
  ``地域 域防 防災 災計 計画 画``, a one-character run ``x`` gives ``x``.

A query's runs must all be found (AND).  A run of two characters or more is the phrase of
its bigrams (防災計画 = ``防災 災計 計画``, consecutive), found exactly where it is a
substring of a run of the text; a one-character run ``x`` is a prefix query ``x*``: the
bigrams that start with ``x`` and the lone last characters cover every place of ``x``.
The lone last character between two runs keeps a phrase from matching across them.

The same tokens serve SQLite (an FTS5 table with the ``ascii`` tokenizer, which splits
only on ASCII spaces and punctuation and so keeps each token whole) and PostgreSQL (a
``tsvector`` written with its positions, queried with ``<->``).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

#: Characters of a text that are indexed (the rest of a longer text is not searchable):
#: PostgreSQL keeps positions up to 16383 in a tsvector.
MAX_INDEXED_CHARS = 16_000

#: Which event types are indexed, and under which of the spec's ``keys``.
KEY_OF_TYPE = {
    "m.room.message": "content.body",
    "m.room.name": "content.name",
    "m.room.topic": "content.topic",
}
ALL_KEYS = ("content.body", "content.name", "content.topic")


def normalise(text: str) -> str:
    """The text as the index compares it: NFKC, case folded (Unicode's NFKC_Casefold in
    spirit)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def runs(text: str) -> list[str]:
    """The runs of letters and digits of a normalised text, in order."""
    found: list[str] = []
    current: list[str] = []
    for char in text:
        if char.isalnum():
            current.append(char)
        elif current:
            found.append("".join(current))
            current = []
    if current:
        found.append("".join(current))
    return found


def tokens(text: str) -> list[str]:
    """The index's tokens for a (not yet normalised) text, in order."""
    out: list[str] = []
    for run in runs(normalise(text)[:MAX_INDEXED_CHARS]):
        out.extend(run[i : i + 2] for i in range(len(run) - 1))
        out.append(run[-1])
    return out


def indexed(event_type: str, content: object) -> tuple[str, str] | None:
    """(key, text) of an event the index holds, or None: ``content.body`` of a message,
    ``content.name`` and ``content.topic`` of the room's name and topic."""
    key = KEY_OF_TYPE.get(event_type)
    if key is None or not isinstance(content, dict):
        return None
    value = content.get(key.removeprefix("content."))
    if not isinstance(value, str) or not value.strip():
        return None
    return key, value


@dataclass(frozen=True)
class Query:
    """A search term as the index reads it."""

    #: Each run of the term: a phrase of bigrams, or one character (a prefix query).
    parts: tuple[tuple[str, ...], ...]
    #: Words to highlight: the term's words as typed and as normalised.
    highlights: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.parts

    def fts5(self) -> str:
        """An FTS5 MATCH expression: quoted phrases (a lone character with ``*``), ANDed."""
        out = []
        for part in self.parts:
            phrase = '"' + " ".join(part).replace('"', '""') + '"'
            out.append(phrase + " *" if len(part[0]) == 1 else phrase)
        return " AND ".join(out)

    def tsquery(self) -> str:
        """A PostgreSQL tsquery (its text form): ``<->`` phrases, ``:*`` prefixes, ``&``."""
        out = []
        for part in self.parts:
            lexemes = [_lexeme(t) for t in part]
            if len(part[0]) == 1:
                out.append(lexemes[0] + ":*")
            else:
                out.append("(" + " <-> ".join(lexemes) + ")")
        return " & ".join(out)


def parse_query(term: str) -> Query:
    """The query for a search term (no parts when it has no letter or digit)."""
    parts: list[tuple[str, ...]] = []
    for run in runs(normalise(term)):
        if len(run) == 1:
            parts.append((run,))
        else:
            parts.append(tuple(run[i : i + 2] for i in range(len(run) - 1)))
    words = [w for w in term.split() if w]
    highlights = dict.fromkeys([*words, *runs(normalise(term))])
    return Query(tuple(dict.fromkeys(parts)), tuple(highlights))


def _lexeme(token: str) -> str:
    return "'" + token.replace("\\", "\\\\").replace("'", "''") + "'"


def tsvector(words: list[str]) -> str:
    """The text form of a tsvector of ``words`` with their positions (1-based)."""
    return " ".join(f"{_lexeme(w)}:{i}" for i, w in enumerate(words[:16383], start=1))
