"""A user's push rules for one room, copied to the room that replaces it on an upgrade, as
Synapse's ``copy_push_rules_from_room_to_room_for_user`` does: every enabled rule of the
user that names the old room (a ``room`` rule, whose ID is the room's, or an ``override``
or ``underride`` rule with a ``room_id`` condition on it) gets a copy whose ID is the new
room's and whose ``room_id`` conditions name the new room.  ``content`` and ``sender``
rules never name a room.  Where two rules of a kind would get the same ID (Synapse lets
the later overwrite the earlier), the one of higher priority is kept."""

from __future__ import annotations

import copy
from typing import Any

#: The kinds whose rules may name a room.
ROOM_KINDS = ("override", "room", "underride")


def _names_room(rule: dict[str, Any], kind: str, room_id: str) -> bool:
    if kind == "room":
        return rule.get("rule_id") == room_id
    conditions = rule.get("conditions")
    return isinstance(conditions, list) and any(
        isinstance(c, dict) and c.get("key") == "room_id" and c.get("pattern") == room_id
        for c in conditions
    )


def _for_room(rule: dict[str, Any], room_id: str) -> dict[str, Any]:
    moved = copy.deepcopy(rule)
    moved["rule_id"] = room_id
    if isinstance(moved.get("conditions"), list):
        moved["conditions"] = [
            {**c, "pattern": room_id} if isinstance(c, dict) and c.get("key") == "room_id" else c
            for c in moved["conditions"]
        ]
    return moved


def successor_rules(
    user_rules: dict[str, list[dict[str, Any]]], old_room_id: str, new_room_id: str
) -> dict[str, dict[str, Any]]:
    """Per kind, the copy for the new room of the user's rule naming the old room."""
    copies: dict[str, dict[str, Any]] = {}
    for kind in ROOM_KINDS:
        for rule in user_rules.get(kind, []):
            if rule.get("enabled", True) is False or not _names_room(rule, kind, old_room_id):
                continue
            copies.setdefault(kind, _for_room(rule, new_room_id))
    return copies


def with_rules(
    user_rules: dict[str, list[dict[str, Any]]], copies: dict[str, dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """The user's rules with ``copies`` added first in their kinds (the highest priority,
    as a rule added without ``before`` or ``after``), replacing any of the same ID."""
    updated = dict(user_rules)
    for kind, rule in copies.items():
        rest = [r for r in user_rules.get(kind, []) if r.get("rule_id") != rule["rule_id"]]
        updated[kind] = [rule, *rest]
    return updated
