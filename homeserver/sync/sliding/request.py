"""A sliding sync request body, checked as Synapse's model checks it (strict types: a
wrong one is 400 ``M_BAD_JSON``), and the per-room configuration it asks for."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from homeserver.common.errors import bad_json

MAX_TIMELINE_LIMIT = 1000
MAX_LISTS = 100
MAX_LIST_KEY = 64
MAX_CONN_ID = 255
WILDCARD = "*"
LAZY = "$LAZY"
ME = "$ME"


@dataclass(frozen=True)
class RoomConfig:
    """What the client wants of a room: timeline length and required state pairs."""

    timeline_limit: int
    required_state: frozenset[tuple[str, str]]

    @property
    def lazy(self) -> bool:
        """Whether members are lazy-loaded (``["m.room.member", "$LAZY"]``)."""
        return ("m.room.member", LAZY) in self.required_state

    def combine(self, other: RoomConfig) -> RoomConfig:
        """The superset of two configs (a room in several lists or also subscribed to)."""
        return RoomConfig(
            max(self.timeline_limit, other.timeline_limit),
            self.required_state | other.required_state,
        )

    def to_json(self) -> list[Any]:
        return [self.timeline_limit, sorted(self.required_state)]

    @classmethod
    def from_json(cls, value: Any) -> RoomConfig:
        limit, pairs = value
        return cls(int(limit), frozenset((str(t), str(k)) for t, k in pairs))


@dataclass(frozen=True)
class Filters:
    is_dm: bool | None = None
    is_encrypted: bool | None = None
    is_invite: bool | None = None
    #: Room types to keep (None in the list: rooms without a type); None: any.
    room_types: list[str | None] | None = None
    not_room_types: list[str | None] | None = None
    spaces: list[str] | None = None
    room_name_like: str | None = None
    tags: list[str] | None = None
    not_tags: list[str] | None = None


@dataclass(frozen=True)
class ListConfig:
    room: RoomConfig
    ranges: list[tuple[int, int]] | None
    filters: Filters | None
    slow_get_all_rooms: bool = False


@dataclass(frozen=True)
class ScopedExtension:
    """account_data, receipts, typing: on or off, and which lists and rooms it covers."""

    enabled: bool = False
    lists: list[str] = field(default_factory=lambda: [WILDCARD])
    rooms: list[str] = field(default_factory=lambda: [WILDCARD])


@dataclass(frozen=True)
class ExtensionsConfig:
    to_device: bool = False
    to_device_limit: int = 100
    to_device_since: int | None = None
    e2ee: bool = False
    account_data: ScopedExtension = ScopedExtension()
    receipts: ScopedExtension = ScopedExtension()
    typing: ScopedExtension = ScopedExtension()


@dataclass(frozen=True)
class SlidingSyncRequest:
    conn_id: str
    lists: dict[str, ListConfig]
    room_subscriptions: dict[str, RoomConfig]
    extensions: ExtensionsConfig


def parse_body(body: dict[str, Any]) -> SlidingSyncRequest:
    conn_id = _optional(body, "conn_id", str, "conn_id")
    if conn_id is not None and len(conn_id) > MAX_CONN_ID:
        raise bad_json(f"conn_id is longer than {MAX_CONN_ID} characters")
    lists_json = _optional(body, "lists", dict, "lists") or {}
    if len(lists_json) > MAX_LISTS:
        raise bad_json(f"At most {MAX_LISTS} lists")
    lists: dict[str, ListConfig] = {}
    for name, value in lists_json.items():
        if len(name.encode()) > MAX_LIST_KEY:
            raise bad_json(f"List names are at most {MAX_LIST_KEY} bytes")
        lists[name] = _list(_object(value, f"lists.{name}"), f"lists.{name}")
    subs_json = _optional(body, "room_subscriptions", dict, "room_subscriptions") or {}
    subscriptions = {
        room_id: _room_config(_object(value, f"room_subscriptions.{room_id}"), room_id)
        for room_id, value in subs_json.items()
    }
    extensions = _extensions(_optional(body, "extensions", dict, "extensions") or {})
    return SlidingSyncRequest(conn_id or "", lists, subscriptions, extensions)


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_json(f"{where} must be an object")
    return value


def _optional(body: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise bad_json(f"{where} must be of type {kind.__name__}")
    return value


def _strings(value: Any, where: str, allow_null: bool = False) -> list[Any]:
    if not isinstance(value, list) or not all(
        isinstance(v, str) or (allow_null and v is None) for v in value
    ):
        raise bad_json(f"{where} must be a list of strings")
    return value


def _room_config(body: dict[str, Any], where: str) -> RoomConfig:
    limit = body.get("timeline_limit")
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise bad_json(f"{where}.timeline_limit must be an integer")
    if not 0 <= limit <= MAX_TIMELINE_LIMIT:
        raise bad_json(f"{where}.timeline_limit must be within 0-{MAX_TIMELINE_LIMIT}")
    pairs = body.get("required_state")
    if not isinstance(pairs, list):
        raise bad_json(f"{where}.required_state must be a list of [type, state_key]")
    required: set[tuple[str, str]] = set()
    for pair in pairs:
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
        ):
            raise bad_json(f"{where}.required_state entries are [type, state_key] strings")
        required.add((pair[0], pair[1]))
    return RoomConfig(limit, frozenset(required))


def _list(body: dict[str, Any], where: str) -> ListConfig:
    room = _room_config(body, where)
    ranges_json = body.get("ranges")
    ranges: list[tuple[int, int]] | None = None
    if ranges_json is not None:
        if not isinstance(ranges_json, list):
            raise bad_json(f"{where}.ranges must be a list of [start, end]")
        ranges = []
        for r in ranges_json:
            if not (
                isinstance(r, list)
                and len(r) == 2
                and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in r)
            ):
                raise bad_json(f"{where}.ranges entries are [start, end], integers >= 0")
            ranges.append((r[0], r[1]))
    slow = _optional(body, "slow_get_all_rooms", bool, f"{where}.slow_get_all_rooms") or False
    filters_json = _optional(body, "filters", dict, f"{where}.filters")
    filters = _filters(filters_json, f"{where}.filters") if filters_json is not None else None
    return ListConfig(room, ranges, filters, slow)


def _filters(body: dict[str, Any], where: str) -> Filters:
    def flag(key: str) -> bool | None:
        value = _optional(body, key, bool, f"{where}.{key}")
        return value if value is None else bool(value)

    def strings(key: str, allow_null: bool = False) -> list[Any] | None:
        value = body.get(key)
        return None if value is None else _strings(value, f"{where}.{key}", allow_null)

    return Filters(
        is_dm=flag("is_dm"),
        is_encrypted=flag("is_encrypted"),
        is_invite=flag("is_invite"),
        room_types=strings("room_types", allow_null=True),
        not_room_types=strings("not_room_types", allow_null=True),
        spaces=strings("spaces"),
        room_name_like=_optional(body, "room_name_like", str, f"{where}.room_name_like"),
        tags=strings("tags"),
        not_tags=strings("not_tags"),
    )


def _scoped(body: dict[str, Any], where: str) -> ScopedExtension:
    enabled = _optional(body, "enabled", bool, f"{where}.enabled") or False
    lists = body.get("lists")
    rooms = body.get("rooms")
    return ScopedExtension(
        enabled,
        [WILDCARD] if lists is None else _strings(lists, f"{where}.lists"),
        [WILDCARD] if rooms is None else _strings(rooms, f"{where}.rooms"),
    )


def _extensions(body: dict[str, Any]) -> ExtensionsConfig:
    """Unknown extensions are ignored (the MSC: for clients newer than the server)."""
    to_device = _object(body.get("to_device") or {}, "extensions.to_device")
    limit = to_device.get("limit", 100)
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise bad_json("extensions.to_device.limit must be an integer")
    since = _optional(to_device, "since", str, "extensions.to_device.since")
    if since is not None and not (since.isascii() and since.isdigit() and len(since) <= 18):
        raise bad_json("extensions.to_device.since is invalid (should look like an int)")
    e2ee = _object(body.get("e2ee") or {}, "extensions.e2ee")
    return ExtensionsConfig(
        to_device=bool(_optional(to_device, "enabled", bool, "extensions.to_device.enabled")),
        to_device_limit=max(0, limit),
        to_device_since=int(since) if since is not None else None,
        e2ee=bool(_optional(e2ee, "enabled", bool, "extensions.e2ee.enabled")),
        account_data=_scoped(
            _object(body.get("account_data") or {}, "extensions.account_data"),
            "extensions.account_data",
        ),
        receipts=_scoped(
            _object(body.get("receipts") or {}, "extensions.receipts"), "extensions.receipts"
        ),
        typing=_scoped(_object(body.get("typing") or {}, "extensions.typing"), "extensions.typing"),
    )
