"""Globs of push rules (``*``, ``?``), matched case-insensitively against a whole value
or, for ``content.body``, against words of a longer text.  Pure code."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

_WILDCARDS = re.compile(r"([^?*]*)([?*]*)")

Matcher = Callable[[str], bool]


def glob_to_regex(glob: str, *, word: bool) -> str:
    """The regular expression of a glob: runs of wildcards collapse (``?*?`` is ``.{2,}``),
    so no pattern can make matching slow."""
    chunks: list[str] = []
    for literal, wildcards in _WILDCARDS.findall(glob):
        chunks.append(re.escape(literal))
        if wildcards:
            count = wildcards.count("?")
            chunks.append(f".{{{count},}}" if "*" in wildcards else f".{{{count}}}")
    body = "".join(chunks)
    if word:
        # With re.ASCII, \b and \W use exactly the spec's word characters [A-Za-z0-9_].
        return rf"(?:\A|\b|\W){body}(?:\b|\W|\Z)"
    return rf"\A{body}\Z"


@functools.lru_cache(maxsize=8192)
def glob_matcher(glob: str, *, word: bool) -> Matcher:
    """A case-insensitive matcher of ``glob``; ``word`` matches words of a longer text.

    Globs with ``*`` run as a bit-parallel automaton (linear in the text): as a backtracking
    regular expression, ``*a*a*a*b`` against a long body would take polynomial time, and
    anyone's push rule would then stall everyone's notifications."""
    lowered = glob.lower()
    if "*" in glob:
        return _StarGlob(lowered, word).match
    if "?" not in glob and not word:
        return lambda value: value.lower() == lowered
    regex = re.compile(glob_to_regex(lowered, word=word), re.ASCII | re.DOTALL)
    if "?" not in glob:

        def literal_word(value: str) -> bool:
            text = value.lower()
            return lowered in text and regex.search(text) is not None

        return literal_word
    return lambda value: regex.search(value.lower()) is not None


def _is_word(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char == "_")


class _StarGlob:
    """Shift-And matching of a glob: bit k of the state says "the first k tokens matched"."""

    def __init__(self, lowered: str, word: bool) -> None:
        tokens: list[str] = []
        for literal, wildcards in _WILDCARDS.findall(lowered):
            tokens.extend(literal)
            tokens.extend("?" * wildcards.count("?"))
            if "*" in wildcards:
                tokens.append("*")
        self.word = word
        self.star = self.any = 0
        self.chars: dict[str, int] = {}
        for k, token in enumerate(tokens):
            bit = 1 << (k + 1)
            if token == "*":
                self.star |= bit
            elif token == "?":
                self.any |= bit
            else:
                self.chars[token] = self.chars.get(token, 0) | bit
        self.accept = 1 << len(tokens)

    def _close(self, state: int) -> int:
        # A star may match nothing (runs of stars were collapsed: one step is enough).
        return state | ((state << 1) & self.star)

    def _step(self, state: int, char: str) -> int:
        moved = (state << 1) & (self.chars.get(char, 0) | self.any)
        return self._close(moved | (state & self.star))

    def match(self, value: str) -> bool:
        text = value.lower()
        if not self.word:
            state = self._close(1)
            for char in text:
                state = self._step(state, char)
                if not state:
                    return False
            return bool(state & self.accept)
        # Words: a match starts and ends at a boundary (the ends of the text or a
        # character outside [A-Za-z0-9_] on either side), as Synapse's (?:^|\b|\W).
        state, size, previous = 0, len(text), False
        for index in range(size + 1):
            current = index < size and _is_word(text[index])
            if not (previous and current):
                state = self._close(state | 1)
                if state & self.accept:
                    return True
            if index == size:
                break
            state = self._step(state, text[index])
            previous = current
        return False
