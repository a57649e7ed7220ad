"""Push rule evaluation: which actions a user's push rules give for an event.  Pure code.

A user's rules are compiled once (:func:`compile_rules`) into a :class:`RuleSet`; an
:class:`EventFacts` is built once per event (the event flattened into dotted keys, the
room's member count, the sender's power level and the ``notifications`` power levels) and
evaluates any number of users' rule sets against it.  Conditions that do not depend on the
user (most of them) are evaluated once per event and rule set, so a room with many local
members costs little more than one lookup per user.

Conditions and their semantics are in :mod:`homeserver.push.conditions`, the globs they
match with in :mod:`homeserver.push.globs`.  Of a rule's actions, ``dont_notify`` and
``coalesce`` are dropped; a ``set_tweak`` without ``value`` means ``true``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from homeserver.push.conditions import (
    NEVER,
    Condition,
    compile_condition,
    contains_display_name,
    event_match,
    flatten,
)

HISTORICAL_ACTIONS = ("dont_notify", "coalesce")


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
        conditions = [event_match("content.body", pattern) if isinstance(pattern, str) else NEVER]
    elif kind == "room":
        conditions = [event_match("room_id", rule_id)]
    elif kind == "sender":
        conditions = [event_match("sender", rule_id)]
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
        c.test is contains_display_name for r in rules if r.enabled for c in r.personal
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
