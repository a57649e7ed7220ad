"""Conditions of push rules, compiled once per rule and tested against an event's facts
(:class:`~homeserver.push.evaluator.EventFacts`).  Pure code.

The semantics are the spec's "Push Notifications" module (v1.19), with Synapse's reading
where the spec leaves room (``synapse/push/``, ``rust/src/push/``):

* ``event_match``: a glob (``*``, ``?``) matched case-insensitively against the whole
  string value of a dotted path (``content.m\\.relates_to.rel_type``: ``\\.`` and ``\\\\``
  escape a dot and a backslash within a name); for ``content.body`` against any substring
  starting and ending at a word boundary, where word characters are exactly
  ``[A-Za-z0-9_]`` as the spec defines them (so Japanese text, which has no spaces, matches
  a name written inside a sentence).
* ``event_property_is`` / ``event_property_contains``: exact, type-strict comparison of
  strings, integers, booleans and null (``1`` is not ``true``).
* ``room_member_count``: ``is`` of ``[==|<|>|<=|>=]N`` against the joined member count.
* ``sender_notification_permission``: the sender's power level against
  ``notifications[key]`` (default 50).
* ``contains_display_name``: the user's display name as a word of ``content.body`` (an
  empty display name never matches).
* Unknown or malformed conditions never match.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from homeserver.push.globs import glob_matcher


class EventFacts(Protocol):
    """What conditions read of an event and its room (the evaluator's EventFacts; a
    Protocol here, so that this module does not import the evaluator, which imports it)."""

    @property
    def flat(self) -> dict[str, Any]: ...

    @property
    def member_count(self) -> int: ...

    @property
    def sender_level(self) -> int | float | None: ...

    @property
    def notification_levels(self) -> Mapping[str, int]: ...


#: What the spec's default rules write for the user's own Matrix ID.
ME = "[the user's Matrix ID]"
_INEQUALITY = re.compile(r"([=<>]*)([0-9]+)")
#: Integers outside this range are not canonical JSON values.
_MAX_INT = 2**53 - 1


# ---------------------------------------------------------------- events


def is_simple(value: Any) -> bool:
    """A value ``event_property_is`` can compare: string, integer in range, bool, null."""
    if value is None or isinstance(value, (str, bool)):
        return True
    return type(value) is int and -_MAX_INT <= value <= _MAX_INT


def _escape(name: str) -> str:
    return name.replace("\\", "\\\\").replace(".", "\\.")


def flatten(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event's simple values and arrays (of their simple members) by dotted path."""
    flat: dict[str, Any] = {}

    def walk(value: Mapping[str, Any], prefix: str) -> None:
        for name, item in value.items():
            if not isinstance(name, str):
                continue
            key = prefix + _escape(name)
            if is_simple(item):
                flat[key] = item
            elif isinstance(item, list):
                flat[key] = [v for v in item if is_simple(v)]
            elif isinstance(item, Mapping):
                walk(item, key + ".")

    walk(event, "")
    return flat


def same_value(a: Any, b: Any) -> bool:
    """Equality of canonical JSON values without Python's ``True == 1``."""
    return type(a) is type(b) and a == b


# ---------------------------------------------------------------- conditions


@dataclass(frozen=True)
class Condition:
    """A compiled condition: ``personal`` ones depend on the user being evaluated."""

    test: Callable[[EventFacts, str, str | None], bool]
    personal: bool = False
    #: For a personal condition: the users (of many, with their display names) for whom
    #: it holds, in one pass (the same answers as ``test``; see :meth:`EventFacts.run_many`).
    bulk: Callable[[EventFacts, list[str], Mapping[str, str]], list[str]] | None = None


NEVER = Condition(lambda facts, user, name: False)


def event_match(key: str, pattern: str) -> Condition:
    word = key == "content.body"
    if pattern == ME:

        def mine(facts: EventFacts, user: str, name: str | None) -> bool:
            value = facts.flat.get(key)
            return isinstance(value, str) and glob_matcher(user, word=word)(value)

        def mine_bulk(facts: EventFacts, users: list[str], names: Mapping[str, str]) -> list[str]:
            value = facts.flat.get(key)
            if not isinstance(value, str):
                return []
            lowered = value.lower()
            # A literal glob can only match where its lowered text occurs.
            return [
                u
                for u in users
                if (u.lower() in lowered or "*" in u or "?" in u)
                and glob_matcher(u, word=word)(value)
            ]

        return Condition(mine, personal=True, bulk=mine_bulk)
    matcher = glob_matcher(pattern, word=word)

    def match(facts: EventFacts, user: str, name: str | None) -> bool:
        value = facts.flat.get(key)
        return isinstance(value, str) and matcher(value)

    return Condition(match)


def _property_is(key: str, wanted: Any) -> Condition:
    if wanted == ME:

        def is_bulk(facts: EventFacts, users: list[str], names: Mapping[str, str]) -> list[str]:
            value = facts.flat.get(key)
            return [u for u in users if value == u]

        return Condition(
            lambda facts, user, name: facts.flat.get(key) == user, personal=True, bulk=is_bulk
        )

    def match(facts: EventFacts, user: str, name: str | None) -> bool:
        value = facts.flat.get(key, _ABSENT)
        return value is not _ABSENT and not isinstance(value, list) and same_value(value, wanted)

    return Condition(match)


def _property_contains(key: str, wanted: Any) -> Condition:
    def contains(values: Any, target: Any) -> bool:
        return isinstance(values, list) and any(same_value(v, target) for v in values)

    if wanted == ME:

        def contains_bulk(
            facts: EventFacts, users: list[str], names: Mapping[str, str]
        ) -> list[str]:
            values = facts.flat.get(key)
            if not isinstance(values, list):
                return []
            return [u for u in users if contains(values, u)]

        return Condition(
            lambda facts, user, name: contains(facts.flat.get(key), user),
            personal=True,
            bulk=contains_bulk,
        )
    return Condition(lambda facts, user, name: contains(facts.flat.get(key), wanted))


def contains_display_name(facts: EventFacts, user: str, name: str | None) -> bool:
    body = facts.flat.get("content.body")
    if not name or not isinstance(body, str):
        return False
    return glob_matcher(name, word=True)(body)


def _display_name_bulk(facts: EventFacts, users: list[str], names: Mapping[str, str]) -> list[str]:
    body = facts.flat.get("content.body")
    if not isinstance(body, str):
        return []
    lowered = body.lower()
    found = []
    for user in users:
        name = names.get(user)
        # A literal name can only match where its lowered text occurs in the body.
        if (
            name
            and (name.lower() in lowered or "*" in name or "?" in name)
            and glob_matcher(name, word=True)(body)
        ):
            found.append(user)
    return found


def _member_count(spec: str) -> Condition:
    found = _INEQUALITY.fullmatch(spec)
    if found is None:
        return NEVER
    op, number = found.group(1), int(found.group(2))
    compare: dict[str, Callable[[int], bool]] = {
        "": lambda n: n == number,
        "==": lambda n: n == number,
        "<": lambda n: n < number,
        ">": lambda n: n > number,
        "<=": lambda n: n <= number,
        ">=": lambda n: n >= number,
    }
    test = compare.get(op)
    if test is None:
        return NEVER
    return Condition(lambda facts, user, name: test(facts.member_count))


def _sender_permission(key: str) -> Condition:
    def match(facts: EventFacts, user: str, name: str | None) -> bool:
        if facts.sender_level is None:
            return False
        return facts.sender_level >= facts.notification_levels.get(key, 50)

    return Condition(match)


class _Absent:
    pass


_ABSENT = _Absent()


def compile_condition(raw: Any) -> Condition:
    """One condition of a rule; anything unknown or malformed never matches."""
    if not isinstance(raw, Mapping):
        return NEVER
    kind = raw.get("kind")
    key = raw.get("key")
    if kind == "event_match":
        pattern = raw.get("pattern")
        if isinstance(key, str) and isinstance(pattern, str):
            return event_match(key, pattern)
    elif kind in ("event_property_is", "event_property_contains"):
        if isinstance(key, str) and "value" in raw and is_simple(raw["value"]):
            build = _property_is if kind == "event_property_is" else _property_contains
            return build(key, raw["value"])
    elif kind == "contains_display_name":
        return Condition(contains_display_name, personal=True, bulk=_display_name_bulk)
    elif kind == "room_member_count":
        spec = raw.get("is")
        if isinstance(spec, str):
            return _member_count(spec)
    elif kind == "sender_notification_permission" and isinstance(key, str):
        return _sender_permission(key)
    return NEVER
