"""Glob matching of push rule patterns: the bit-parallel automaton used for patterns with
``*`` agrees with the (backtracking) regular expression of the same glob, and stays linear
on inputs that make the regular expression take polynomial time."""

from __future__ import annotations

import random
import re

import pytest

from homeserver.push.globs import glob_matcher, glob_to_regex


def _reference(glob: str, word: bool, value: str) -> bool:
    return (
        re.search(glob_to_regex(glob.lower(), word=word), value.lower(), re.ASCII | re.DOTALL)
        is not None
    )


def test_glob_regex_collapses_wildcard_runs() -> None:
    assert glob_to_regex("simple?*?*", word=False) == r"\Asimple.{2,}\Z"
    assert glob_to_regex("simple???", word=False) == r"\Asimple.{3}\Z"
    assert glob_to_regex("escape.", word=False) == r"\Aescape\.\Z"


@pytest.mark.parametrize("word", [False, True])
def test_glob_automaton_agrees_with_the_regular_expression(word: bool) -> None:
    rng = random.Random(7)
    alphabet = "ab_ -*?"
    for _ in range(3000):
        glob = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        value = "".join(rng.choice("abAB_ -.") for _ in range(rng.randint(0, 10)))
        assert glob_matcher(glob, word=word)(value) is _reference(glob, word, value), (glob, value)


def test_pathological_globs_stay_linear() -> None:
    # As a backtracking regex this takes polynomial time; the automaton answers at once.
    body = "a" * 60_000
    assert glob_matcher("*a*a*a*a*a*a*b", word=True)(body) is False
    assert glob_matcher("*a*a*a*a*a*a*b", word=False)(body) is False
    assert glob_matcher("*a*a*a*a*a*a*", word=False)(body) is True
