"""Push rule evaluation: which actions a user's push rules give for an event.  Pure code.

A user's rules are compiled once (:func:`compile_rules`) into a :class:`RuleSet`; an
:class:`EventFacts` is built once per event (the event flattened into dotted keys, the
room's member count, the sender's power level and the ``notifications`` power levels) and
evaluates any number of users' rule sets against it.  Conditions that do not depend on the
user (most of them) are evaluated once per event and rule set, so a room with many local
members costs little more than one lookup per user.

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
* Unknown or malformed conditions never match.  ``dont_notify`` and ``coalesce`` are
  dropped from actions; a ``set_tweak`` without ``value`` means ``true``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: What the spec's default rules write for the user's own Matrix ID.
ME = "[the user's Matrix ID]"
HISTORICAL_ACTIONS = ("dont_notify", "coalesce")
_INEQUALITY = re.compile(r"([=<>]*)([0-9]+)")
_WILDCARDS = re.compile(r"([^?*]*)([?*]*)")
#: Integers outside this range are not canonical JSON values.
_MAX_INT = 2**53 - 1

Matcher = Callable[[str], bool]


# ---------------------------------------------------------------- globs


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


def _event_match(key: str, pattern: str) -> Condition:
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


def _display_name(facts: EventFacts, user: str, name: str | None) -> bool:
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
            return _event_match(key, pattern)
    elif kind in ("event_property_is", "event_property_contains"):
        if isinstance(key, str) and "value" in raw and is_simple(raw["value"]):
            build = _property_is if kind == "event_property_is" else _property_contains
            return build(key, raw["value"])
    elif kind == "contains_display_name":
        return Condition(_display_name, personal=True, bulk=_display_name_bulk)
    elif kind == "room_member_count":
        spec = raw.get("is")
        if isinstance(spec, str):
            return _member_count(spec)
    elif kind == "sender_notification_permission" and isinstance(key, str):
        return _sender_permission(key)
    return NEVER


# ---------------------------------------------------------------- rules


@dataclass(frozen=True)
class Outcome:
    """What a matching rule asks for (historical actions already removed)."""

    actions: tuple[Any, ...]
    notify: bool
    highlight: bool
    tweaks: Mapping[str, Any]


def outcome_of(actions: Iterable[Any]) -> Outcome:
    kept = tuple(a for a in actions if a not in HISTORICAL_ACTIONS)
    tweaks: dict[str, Any] = {}
    for action in kept:
        if isinstance(action, Mapping) and isinstance(action.get("set_tweak"), str):
            tweaks[action["set_tweak"]] = action.get("value", True)
    return Outcome(kept, "notify" in kept, bool(tweaks.get("highlight", False)), tweaks)


@dataclass(frozen=True)
class Rule:
    rule_id: str
    kind: str
    enabled: bool
    shared: tuple[Condition, ...]
    personal: tuple[Condition, ...]
    outcome: Outcome


@dataclass(eq=False)
class RuleSet:
    """A user's rules in evaluation order (override, content, room, sender, underride)."""

    rules: tuple[Rule, ...]
    needs_display_name: bool = False


def compile_rule(kind: str, raw: Mapping[str, Any]) -> Rule:
    rule_id = raw.get("rule_id")
    rule_id = rule_id if isinstance(rule_id, str) else ""
    conditions: list[Condition]
    if kind in ("override", "underride"):
        listed = raw.get("conditions", [])
        conditions = [compile_condition(c) for c in listed] if isinstance(listed, list) else [NEVER]
    elif kind == "content":
        pattern = raw.get("pattern")
        conditions = [_event_match("content.body", pattern) if isinstance(pattern, str) else NEVER]
    elif kind == "room":
        conditions = [_event_match("room_id", rule_id)]
    elif kind == "sender":
        conditions = [_event_match("sender", rule_id)]
    else:
        conditions = [NEVER]
    actions = raw.get("actions", [])
    return Rule(
        rule_id=rule_id,
        kind=kind,
        enabled=raw.get("enabled", True) is not False,
        shared=tuple(c for c in conditions if not c.personal),
        personal=tuple(c for c in conditions if c.personal),
        outcome=outcome_of(actions if isinstance(actions, list) else []),
    )


def compile_rules(ordered: Iterable[tuple[str, Mapping[str, Any]]]) -> RuleSet:
    """Compile ``(kind, rule)`` pairs, highest priority first."""
    rules = tuple(compile_rule(kind, raw) for kind, raw in ordered)
    needs_name = any(
        c.test is _display_name for r in rules if r.enabled for c in r.personal
    )  # fmt: skip
    return RuleSet(rules, needs_name)


# ---------------------------------------------------------------- evaluation


@dataclass(eq=False)
class EventFacts:
    """One event and its room as the conditions see them; evaluates many users' rules."""

    flat: dict[str, Any]
    member_count: int
    sender_level: int | float | None
    notification_levels: Mapping[str, int]
    _candidates: dict[RuleSet, list[tuple[tuple[Condition, ...], Outcome]]] = field(
        default_factory=dict
    )

    @classmethod
    def of(
        cls,
        event: Mapping[str, Any],
        *,
        member_count: int,
        sender_level: int | float | None,
        power_levels: Mapping[str, Any] | None = None,
    ) -> EventFacts:
        notifications = (power_levels or {}).get("notifications")
        levels = {
            k: v
            for k, v in (notifications.items() if isinstance(notifications, Mapping) else ())
            if type(v) is int
        }
        return cls(flatten(event), member_count, sender_level, levels)

    def run(self, rules: RuleSet, user_id: str, display_name: str | None = None) -> Outcome | None:
        """The outcome of the first enabled rule that matches, or None when none does."""
        names = {user_id: display_name} if display_name else {}
        return self.run_many(rules, [user_id], names).get(user_id)

    def run_many(
        self, rules: RuleSet, users: list[str], names: Mapping[str, str]
    ) -> dict[str, Outcome]:
        """The outcomes of many users sharing ``rules``, a rule at a time: each candidate
        rule's per-user conditions are tested for all the remaining users in one pass.
        Users whom no rule matches are left out."""
        candidates = self._candidates.get(rules)
        if candidates is None:
            candidates = self._candidates[rules] = self._candidates_for(
                rules, users[0] if users else ""
            )
        found: dict[str, Outcome] = {}
        remaining = users
        for personal, outcome in candidates:
            if not remaining:
                break
            matched = remaining
            for condition in personal:
                if condition.bulk is not None:
                    matched = condition.bulk(self, matched, names)
                else:
                    matched = [u for u in matched if condition.test(self, u, names.get(u))]
                if not matched:
                    break
            if matched:
                for user in matched:
                    found[user] = outcome
                if len(matched) < len(remaining):
                    chosen = set(matched)
                    remaining = [u for u in remaining if u not in chosen]
                else:
                    remaining = []
        return found

    def _candidates_for(
        self, rules: RuleSet, user_id: str
    ) -> list[tuple[tuple[Condition, ...], Outcome]]:
        """The enabled rules whose user-independent conditions hold for this event, in
        order, up to the first that has no per-user condition (it matches everyone): each
        user then tests only these rules' per-user conditions."""
        found: list[tuple[tuple[Condition, ...], Outcome]] = []
        for rule in rules.rules:
            if rule.enabled and all(c.test(self, user_id, None) for c in rule.shared):
                found.append((rule.personal, rule.outcome))
                if not rule.personal:
                    break
        return found
