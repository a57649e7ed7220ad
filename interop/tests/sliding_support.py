"""Normalising Simplified Sliding Sync responses so that two servers' answers compare.

What legitimately differs between two servers is mapped away: room IDs become the labels
the scenario gave its rooms, user IDs the scenario's role names (display names equal to a
user's localpart too), event IDs, stream tokens (``pos``, ``prev_batch``, ``next_batch``),
``bump_stamp`` values and timestamps are reduced to their presence, and events to their
type, sender, state key, top-level keys and the content fields the scenario sets.  What
stays is what a client shows: room order per list, counts, names, heroes, joined/invited
and notification counts, timelines, ``limited``, required state (type, state_key) sets,
invite state and which extension fields are there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interop.client import JsonDict

#: Content fields an event's normalised form keeps (those the scenario sets or a client shows).
CONTENT_KEYS = ("body", "membership", "name", "join_rule", "is_direct")


class Names:
    """Maps one server's room and user IDs to the scenario's labels."""

    def __init__(self) -> None:
        self.rooms: dict[str, str] = {}
        self.users: dict[str, str] = {}
        self.localparts: dict[str, str] = {}

    def add_user(self, role: str, user_id: str) -> None:
        self.users[user_id] = role
        self.localparts[user_id[1:].split(":", 1)[0]] = role

    def add_room(self, label: str, room_id: str) -> None:
        self.rooms[room_id] = label

    def room(self, room_id: str) -> str:
        return self.rooms.get(room_id, f"?room:{room_id}")

    def user(self, value: Any) -> Any:
        """A user ID (or a state key that is one) as its role; anything else unchanged."""
        if isinstance(value, str) and value in self.users:
            return self.users[value]
        return value

    def display(self, value: Any) -> Any:
        """A display name that is a user's localpart (the servers' default) as its role."""
        if isinstance(value, str) and value in self.localparts:
            return self.localparts[value]
        return self.user(value)


def event(names: Names, e: JsonDict) -> JsonDict:
    """An event as type, sender, state key, its top-level keys and a few content fields."""
    content = e.get("content") if isinstance(e.get("content"), dict) else {}
    out: JsonDict = {
        "type": e.get("type"),
        "sender": names.user(e.get("sender")),
        "keys": sorted(k for k in e if k != "unsigned"),
    }
    if "state_key" in e:
        out["state_key"] = names.user(e["state_key"])
    kept = {k: names.display(content[k]) for k in CONTENT_KEYS if k in content}
    if kept:
        out["content"] = kept
    return out


def state_pairs(names: Names, events: Any) -> list[tuple[str, str]]:
    """The sorted (type, state_key) pairs of a list of state events."""
    if not isinstance(events, list):
        return [("?not a list", repr(events)[:60])]
    return sorted((str(e.get("type")), str(names.user(e.get("state_key")))) for e in events)


def hero(names: Names, h: Any) -> Any:
    if not isinstance(h, dict):
        return h
    return {k: names.display(v) if k == "displayname" else names.user(v) for k, v in h.items()}


#: Room fields reduced to "present" (their values are server-specific tokens or orderings).
OPAQUE_ROOM_KEYS = ("prev_batch", "bump_stamp")


def room(names: Names, r: JsonDict) -> JsonDict:
    out: JsonDict = {"keys": sorted(r)}
    for key, value in r.items():
        if key in OPAQUE_ROOM_KEYS:
            out[key] = isinstance(value, (str, int)) and not isinstance(value, bool)
        elif key == "timeline":
            out[key] = [event(names, e) for e in value] if isinstance(value, list) else value
        elif key in ("required_state", "invite_state"):
            out[key] = state_pairs(names, value)
        elif key == "heroes":
            out[key] = [hero(names, h) for h in value] if isinstance(value, list) else value
        else:
            out[key] = value
    return out


def lists(names: Names, value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    out: JsonDict = {}
    for name, one in value.items():
        if not isinstance(one, dict):
            out[name] = one
            continue
        normal: JsonDict = {"keys": sorted(one), "count": one.get("count")}
        ops = one.get("ops")
        if isinstance(ops, list):
            normal["ops"] = [
                {
                    **{k: v for k, v in op.items() if k != "room_ids"},
                    "room_ids": [names.room(r) for r in op.get("room_ids", [])],
                }
                for op in ops
                if isinstance(op, dict)
            ]
        out[name] = normal
    return out


def _by_room(names: Names, rooms: Any) -> Any:
    if not isinstance(rooms, dict):
        return rooms
    return {names.room(k): v for k, v in sorted(rooms.items(), key=lambda kv: names.room(kv[0]))}


def extensions(names: Names, ext: Any) -> Any:
    """Which extensions answered, with the fields each has and what the scenario can know."""
    if not isinstance(ext, dict):
        return ext
    out: JsonDict = {}
    for key, value in ext.items():
        if not isinstance(value, dict):
            out[key] = value
            continue
        normal: JsonDict = {"keys": sorted(value)}
        if key == "account_data":
            glob = value.get("global")
            normal["global"] = (
                sorted(e.get("type") for e in glob) if isinstance(glob, list) else glob
            )
            normal["rooms"] = {
                label: sorted(e.get("type") for e in events) if isinstance(events, list) else events
                for label, events in _by_room(names, value.get("rooms", {})).items()
            }
        elif key == "receipts":
            normal["rooms"] = {
                label: _receipts(names, event_)
                for label, event_ in _by_room(names, value.get("rooms", {})).items()
            }
        elif key == "typing":
            normal["rooms"] = {
                label: sorted(names.user(u) for u in event_.get("content", {}).get("user_ids", []))
                for label, event_ in _by_room(names, value.get("rooms", {})).items()
            }
        elif key == "to_device":
            normal["events"] = len(value.get("events") or [])
            normal["next_batch"] = isinstance(value.get("next_batch"), str)
        elif key == "e2ee":
            lists_ = value.get("device_lists")
            if isinstance(lists_, dict):
                normal["device_lists"] = {
                    k: sorted(names.user(u) for u in v) if isinstance(v, list) else v
                    for k, v in lists_.items()
                }
            normal["device_one_time_keys_count"] = value.get("device_one_time_keys_count")
            normal["device_unused_fallback_key_types"] = value.get(
                "device_unused_fallback_key_types"
            )
        out[key] = normal
    return out


def _receipts(names: Names, edu: Any) -> Any:
    """A receipt EDU as sorted (receipt type, user) pairs, plus its type."""
    if not isinstance(edu, dict):
        return edu
    pairs = sorted(
        (receipt_type, str(names.user(user)))
        for by_type in (edu.get("content") or {}).values()
        for receipt_type, by_user in by_type.items()
        for user in by_user
    )
    return {"type": edu.get("type"), "receipts": pairs}


def response(names: Names, r: JsonDict) -> JsonDict:
    """A whole sliding sync response, normalised."""
    return {
        "keys": sorted(r),
        "pos": isinstance(r.get("pos"), str),
        "lists": lists(names, r.get("lists", {})),
        "rooms": {
            label: room(names, v) for label, v in _by_room(names, r.get("rooms", {})).items()
        },
        "extensions": extensions(names, r.get("extensions", {})),
    }


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Every place where ``actual`` differs from ``expected``, one line each."""
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        found: list[str] = []
        for key in sorted(set(expected) | set(actual), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in actual:
                found.append(f"{where}: missing (expected {_short(expected[key])})")
            elif key not in expected:
                found.append(f"{where}: unexpected {_short(actual[key])}")
            else:
                found += differences(expected[key], actual[key], where)
        return found
    if (
        isinstance(expected, list)
        and isinstance(actual, list)
        and len(expected) == len(actual)
        and any(isinstance(x, (dict, list)) for x in expected)
    ):
        found = []
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            found += differences(e, a, f"{path}[{i}]")
        return found
    if expected != actual:
        return [f"{path}: expected {_short(expected)}, got {_short(actual)}"]
    return []


def _short(value: Any, limit: int = 400) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
