"""Push rules: the spec's server-default rules, each user's own rules, and their changes.

A user's row in ``push_rules`` holds ``{"user": {kind: [rule, ...]}, "defaults":
{rule_id: {"enabled": bool, "actions": [...]}}}``: their own rules in priority order, and
what they changed on server-default rules.  Every change is also written as the
``m.push_rules`` account data event (the whole rule set), which /sync delivers.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

from homeserver.accounts.service import Requester
from homeserver.common.errors import MatrixError, bad_json, invalid_param, not_found
from homeserver.common.notifier import Notifier
from homeserver.push.room_rules import successor_rules, with_rules
from homeserver.storage import push as store
from homeserver.storage import userdata as userdata_store
from homeserver.storage.database import Database

KINDS = ("override", "content", "room", "sender", "underride")
ME = "[the user's Matrix ID]"
STRING_ACTIONS = ("notify", "dont_notify", "coalesce")
MAX_RULES_PER_KIND = 1000

SOUND_DEFAULT = {"set_tweak": "sound", "value": "default"}
HIGHLIGHT = {"set_tweak": "highlight"}


def _match(key: str, pattern: str) -> dict[str, Any]:
    return {"kind": "event_match", "key": key, "pattern": pattern}


def _rule(rule_id: str, conditions: list[dict[str, Any]], actions: list[Any]) -> dict[str, Any]:
    return {
        "rule_id": rule_id,
        "default": True,
        "enabled": True,
        "conditions": conditions,
        "actions": actions,
    }


#: The server-default rules of the spec (v1.17), in priority order per kind.
MASTER: dict[str, Any] = {**_rule(".m.rule.master", [], []), "enabled": False}
DEFAULT_OVERRIDE: list[dict[str, Any]] = [
    _rule(".m.rule.suppress_notices", [_match("content.msgtype", "m.notice")], []),
    _rule(
        ".m.rule.invite_for_me",
        [
            _match("type", "m.room.member"),
            _match("content.membership", "invite"),
            _match("state_key", ME),
        ],
        ["notify", SOUND_DEFAULT],
    ),
    _rule(".m.rule.member_event", [_match("type", "m.room.member")], []),
    _rule(
        ".m.rule.is_user_mention",
        [{"kind": "event_property_contains", "key": "content.m\\.mentions.user_ids", "value": ME}],
        ["notify", SOUND_DEFAULT, HIGHLIGHT],
    ),
    _rule(
        ".m.rule.is_room_mention",
        [
            {"kind": "event_property_is", "key": "content.m\\.mentions.room", "value": True},
            {"kind": "sender_notification_permission", "key": "room"},
        ],
        ["notify", HIGHLIGHT],
    ),
    _rule(
        ".m.rule.tombstone",
        [_match("type", "m.room.tombstone"), _match("state_key", "")],
        ["notify", HIGHLIGHT],
    ),
    _rule(".m.rule.reaction", [_match("type", "m.reaction")], []),
    _rule(
        ".m.rule.room.server_acl",
        [_match("type", "m.room.server_acl"), _match("state_key", "")],
        [],
    ),
    _rule(
        ".m.rule.suppress_edits",
        [
            {
                "kind": "event_property_is",
                "key": "content.m\\.relates_to.rel_type",
                "value": "m.replace",
            }
        ],
        [],
    ),
]
DEFAULT_UNDERRIDE: list[dict[str, Any]] = [
    _rule(
        ".m.rule.call",
        [_match("type", "m.call.invite")],
        ["notify", {"set_tweak": "sound", "value": "ring"}],
    ),
    _rule(
        ".m.rule.encrypted_room_one_to_one",
        [{"kind": "room_member_count", "is": "2"}, _match("type", "m.room.encrypted")],
        ["notify", SOUND_DEFAULT],
    ),
    _rule(
        ".m.rule.room_one_to_one",
        [{"kind": "room_member_count", "is": "2"}, _match("type", "m.room.message")],
        ["notify", SOUND_DEFAULT],
    ),
    _rule(".m.rule.message", [_match("type", "m.room.message")], ["notify"]),
    _rule(".m.rule.encrypted", [_match("type", "m.room.encrypted")], ["notify"]),
]
DEFAULT_KIND: dict[str, str] = {
    MASTER["rule_id"]: "override",
    **{r["rule_id"]: "override" for r in DEFAULT_OVERRIDE},
    **{r["rule_id"]: "underride" for r in DEFAULT_UNDERRIDE},
}


def _for_user(value: Any, user_id: str) -> Any:
    if value == ME:
        return user_id
    if isinstance(value, dict):
        return {k: _for_user(v, user_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_for_user(v, user_id) for v in value]
    return value


def _empty() -> dict[str, Any]:
    return {"user": {kind: [] for kind in KINDS}, "defaults": {}}


#: Users whose push rules are kept in memory (all forgotten past this).
_CACHED_USERS = 10_000


def render(data: dict[str, Any], user_id: str | None) -> dict[str, Any]:
    """The ``global`` rule set as GET /pushrules/ returns it; with ``user_id`` None the
    default rules keep the spec's placeholder for the user's ID (for the evaluator)."""

    def default(rule: dict[str, Any]) -> dict[str, Any]:
        rendered = copy.deepcopy(rule) if user_id is None else _for_user(rule, user_id)
        rendered.update(data["defaults"].get(rule["rule_id"], {}))
        return dict(rendered)

    user = {kind: [dict(r) for r in data["user"].get(kind, [])] for kind in KINDS}
    return {
        "override": [default(MASTER), *user["override"], *map(default, DEFAULT_OVERRIDE)],
        "content": user["content"],
        "room": user["room"],
        "sender": user["sender"],
        "underride": [*user["underride"], *map(default, DEFAULT_UNDERRIDE)],
    }


def evaluation_order(data: dict[str, Any] | None) -> list[tuple[str, dict[str, Any]]]:
    """A user's stored rules (None: never changed) as ``(kind, rule)`` in priority order."""
    rendered = render(data or _empty(), None)
    return [(kind, rule) for kind in KINDS for rule in rendered[kind]]


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise invalid_param(f"Unknown push rule kind {kind!r}")


def check_actions(actions: Any) -> list[Any]:
    if not isinstance(actions, list):
        raise bad_json("'actions' must be a list")
    for action in actions:
        if isinstance(action, str):
            if action not in STRING_ACTIONS:
                raise invalid_param(f"Unrecognised action {action!r}")
        elif isinstance(action, dict):
            if not isinstance(action.get("set_tweak"), str):
                raise invalid_param("An object action must have a string 'set_tweak'")
        else:
            raise bad_json("An action is a string or an object")
    return actions


def _check_conditions(conditions: Any) -> list[dict[str, Any]]:
    if not isinstance(conditions, list):
        raise bad_json("'conditions' must be a list")
    for condition in conditions:
        if not isinstance(condition, dict) or not isinstance(condition.get("kind"), str):
            raise bad_json("Each condition must be an object with a string 'kind'")
    return conditions


class PushRulesService:
    def __init__(
        self, db: Database, notifier: Notifier, on_change: Sequence[Callable[[str], None]] = ()
    ) -> None:
        self.db = db
        self.notifier = notifier
        #: Called with the user ID after each change of their rules (compiled rule caches).
        self.on_change = tuple(on_change)
        #: user ID -> (stream position read at, stored rules): valid while the account
        #: data tracker saw nothing newer for the user (each change of the rules writes
        #: their m.push_rules account data in the same transaction).
        self._cache: dict[str, tuple[int, dict[str, Any]]] = {}

    async def _load(self, user_id: str) -> dict[str, Any]:
        """The user's stored rules (a copy the caller may change)."""
        return copy.deepcopy(await self._read(user_id))

    async def _read(self, user_id: str) -> dict[str, Any]:
        """The user's stored rules, shared: not to be changed."""
        cached = self._cache.get(user_id)
        if cached is not None and not self.db.changes.account_data.changed_since(
            user_id, cached[0]
        ):
            return cached[1]
        position = self.db.stream.current
        async with self.db.read() as conn:
            data = await store.get_push_rules(conn, user_id) or _empty()
        if len(self._cache) >= _CACHED_USERS:
            self._cache.clear()
        self._cache[user_id] = (position, data)
        return data

    async def _save(self, user_id: str, data: dict[str, Any]) -> None:
        with self.db.stream.allocate() as position:
            async with self.db.write() as conn:
                await store.set_push_rules(conn, user_id, data)
                await userdata_store.put_account_data(
                    conn, user_id, "", "m.push_rules", {"global": render(data, user_id)}, position
                )
        for hook in self.on_change:
            hook(user_id)
        self.notifier.notify([user_id])

    async def all_rules(self, user_id: str) -> dict[str, Any]:
        return {"global": render(await self._read(user_id), user_id)}

    async def get_rule(self, user_id: str, kind: str, rule_id: str) -> dict[str, Any]:
        check_kind(kind)
        rendered = render(await self._read(user_id), user_id)
        for rule in rendered[kind]:
            if rule["rule_id"] == rule_id:
                return dict(rule)
        raise not_found("The push rule was not found.")

    async def put_rule(
        self,
        user_id: str,
        kind: str,
        rule_id: str,
        body: dict[str, Any],
        before: str | None,
        after: str | None,
    ) -> None:
        check_kind(kind)
        if rule_id.startswith("."):
            raise invalid_param("Rule IDs starting with '.' are reserved for server-default rules")
        if not rule_id or "/" in rule_id or "\\" in rule_id or len(rule_id) > 255:
            raise invalid_param("Invalid rule ID")
        if "actions" not in body:
            raise MatrixError(400, "M_MISSING_PARAM", "Missing 'actions'")
        rule: dict[str, Any] = {
            "rule_id": rule_id,
            "default": False,
            "enabled": True,
            "actions": check_actions(body["actions"]),
        }
        if kind in ("override", "underride"):
            rule["conditions"] = _check_conditions(body.get("conditions", []))
        elif kind == "content":
            pattern = body.get("pattern")
            if pattern is None:
                raise MatrixError(400, "M_MISSING_PARAM", "Content rules need a 'pattern'")
            if not isinstance(pattern, str):
                raise bad_json("'pattern' must be a string")
            rule["pattern"] = pattern
        data = await self._load(user_id)
        rules: list[dict[str, Any]] = data["user"].setdefault(kind, [])
        index = next((i for i, r in enumerate(rules) if r["rule_id"] == rule_id), None)
        if index is not None:
            rule["enabled"] = rules[index].get("enabled", True)
        for anchor in (before, after):
            if anchor is not None and anchor.startswith("."):
                raise invalid_param("Rules cannot be placed relative to a server-default rule")
        if before is None and after is None and index is not None:
            rules[index] = rule
        else:
            if index is not None:
                del rules[index]
            elif len(rules) >= MAX_RULES_PER_KIND:
                raise MatrixError(400, "M_LIMIT_EXCEEDED", "Too many push rules")
            position = 0
            anchor = before if before is not None else after
            if anchor is not None:
                found = next((i for i, r in enumerate(rules) if r["rule_id"] == anchor), None)
                if found is None:
                    raise MatrixError(400, "M_UNKNOWN", f"before/after rule not found: {anchor}")
                position = found if before is not None else found + 1
            rules.insert(position, rule)
        await self._save(user_id, data)

    async def delete_rule(self, user_id: str, kind: str, rule_id: str) -> None:
        check_kind(kind)
        if DEFAULT_KIND.get(rule_id) == kind:
            raise invalid_param("Server-default rules cannot be deleted")
        data = await self._load(user_id)
        rules = data["user"].get(kind, [])
        remaining = [r for r in rules if r["rule_id"] != rule_id]
        if len(remaining) == len(rules):
            raise not_found("The push rule was not found.")
        data["user"][kind] = remaining
        await self._save(user_id, data)

    async def copy_room_rules(self, user_id: str, old_room_id: str, new_room_id: str) -> None:
        """On a room upgrade: the user's rules for the old room, copied to the new room
        (``room_rules.py``)."""
        data = await self._load(user_id)
        copies = successor_rules(data["user"], old_room_id, new_room_id)
        if copies:
            data["user"] = with_rules(data["user"], copies)
            await self._save(user_id, data)

    async def set_attribute(
        self, user_id: str, kind: str, rule_id: str, attribute: str, value: Any
    ) -> None:
        """Set ``enabled`` or ``actions`` of a user rule or a server-default rule."""
        check_kind(kind)
        data = await self._load(user_id)
        if DEFAULT_KIND.get(rule_id) == kind:
            data["defaults"].setdefault(rule_id, {})[attribute] = value
        else:
            rule = next((r for r in data["user"].get(kind, []) if r["rule_id"] == rule_id), None)
            if rule is None:
                raise not_found("The push rule was not found.")
            rule[attribute] = value
        await self._save(user_id, data)

    async def sync_extension(
        self,
        requester: Requester,
        since: int | None,
        upto: int,
        response: dict[str, Any],
        joined_rooms: Sequence[str],
    ) -> None:
        """On an initial sync, users who never changed their rules get the defaults too."""
        if since is not None:
            return
        events = response.get("account_data", {}).get("events")
        if isinstance(events, list) and not any(e.get("type") == "m.push_rules" for e in events):
            events.append(
                {"type": "m.push_rules", "content": await self.all_rules(requester.user_id)}
            )
