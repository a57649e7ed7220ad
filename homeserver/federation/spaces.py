"""Spaces on other servers: their ``/hierarchy`` answers, checked and cached.

When the hierarchy walk meets a room this node is not in, it asks up to three of the
``via`` servers of the ``m.space.child`` event that names it (``GET /_matrix/federation/
v1/hierarchy``), as Synapse does. An answer is kept for five minutes per (room,
``suggested_only``). Answers are checked before use: the room must be the one asked for,
its ``children_state`` well-formed events, and every summary is reduced to the spec's
fields with the spec's types (a summary without its required fields is dropped), so that
nothing another server sends reaches a client in a shape the spec does not allow.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from federation.client import FederationClient, FederationClientError
from federation.identifiers import is_valid_server_name
from homeserver.common.clock import Clock
from homeserver.rooms.ports import RemoteHierarchy
from homeserver.rooms.summary import child_order_key, strip_child, valid_via

log = logging.getLogger(__name__)

CACHE_TTL_MS = 5 * 60 * 1000
CACHE_SIZE = 1000
#: At most this many ``via`` servers are asked about one room (as Synapse).
MAX_SERVERS_PER_ROOM = 3
REQUEST_TIMEOUT_S = 15.0

_STRING_FIELDS = (
    "name", "topic", "canonical_alias", "avatar_url", "join_rule", "room_type", "encryption",
    "room_version",
)  # fmt: skip


class InvalidHierarchy(Exception):
    """A server's ``/hierarchy`` answer is not what the spec says."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def clean_summary(raw: Any) -> dict[str, Any] | None:
    """The spec's summary fields of ``raw`` with the right types; None without a room ID,
    member count and the two booleans the spec requires."""
    if not isinstance(raw, dict):
        return None
    room_id, members = raw.get("room_id"), raw.get("num_joined_members")
    if (
        not isinstance(room_id, str)
        or not room_id.startswith("!")
        or not isinstance(members, int)
        or isinstance(members, bool)
        or members < 0
        or not isinstance(raw.get("world_readable"), bool)
        or not isinstance(raw.get("guest_can_join"), bool)
    ):
        return None
    summary: dict[str, Any] = {
        "room_id": room_id,
        "num_joined_members": members,
        "world_readable": raw["world_readable"],
        "guest_can_join": raw["guest_can_join"],
    }
    for field in _STRING_FIELDS:
        if isinstance(raw.get(field), str):
            summary[field] = raw[field]
    allowed = raw.get("allowed_room_ids")
    if isinstance(allowed, list):
        summary["allowed_room_ids"] = [
            r for r in allowed if isinstance(r, str) and r.startswith("!")
        ]
    return summary


def _child_event(raw: Any) -> dict[str, Any] | None:
    """A ``children_state`` entry: malformed ones make the whole answer invalid (as
    Synapse); well-formed ones that are no link (no ``via``, another type) or lack the
    sender or timestamp a stripped child event must have are left out."""
    if not isinstance(raw, dict):
        raise InvalidHierarchy("children_state holds a non-object")
    content = raw.get("content")
    if (
        not isinstance(raw.get("type"), str)
        or not isinstance(raw.get("state_key"), str)
        or not isinstance(content, dict)
        or not isinstance(content.get("via", []), list)
    ):
        raise InvalidHierarchy("malformed event in children_state")
    if (
        raw["type"] != "m.space.child"
        or not raw["state_key"].startswith("!")
        or not valid_via(content)
        or not isinstance(raw.get("sender"), str)
        or not _is_int(raw.get("origin_server_ts"))
    ):
        return None
    return strip_child(raw)


def parse_hierarchy(raw: Any, room_id: str) -> RemoteHierarchy:
    if not isinstance(raw, dict) or not isinstance(raw.get("room"), dict):
        raise InvalidHierarchy("'room' must be an object")
    room = clean_summary(raw["room"])
    if room is None or room["room_id"] != room_id:
        raise InvalidHierarchy("the answer is not a summary of the room asked for")
    children_state = raw["room"].get("children_state", [])
    children = raw.get("children", [])
    inaccessible = raw.get("inaccessible_children", [])
    if not isinstance(children_state, list) or not isinstance(children, list):
        raise InvalidHierarchy("'children_state' and 'children' must be arrays")
    if not isinstance(inaccessible, list) or not all(isinstance(r, str) for r in inaccessible):
        raise InvalidHierarchy("'inaccessible_children' must be an array of room IDs")
    events = [e for e in (_child_event(raw_event) for raw_event in children_state) if e]
    summaries = [s for s in (clean_summary(c) for c in children) if s is not None]
    return RemoteHierarchy(
        room=room,
        children_state=sorted(events, key=child_order_key),
        children={s["room_id"]: s for s in summaries},
        inaccessible=frozenset(inaccessible),
    )


class RemoteSpaces:
    def __init__(self, client: FederationClient, clock: Clock, server_name: str) -> None:
        self.client = client
        self.clock = clock
        self.server_name = server_name
        self._cache: OrderedDict[tuple[str, bool], tuple[int, RemoteHierarchy]] = OrderedDict()

    async def hierarchy(
        self, room_id: str, via: Iterable[str], suggested_only: bool
    ) -> RemoteHierarchy | None:
        """The room as one of ``via`` describes it (cached), or None when none answers
        well."""
        key = (room_id, suggested_only)
        now = self.clock.now_ms()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        servers = [
            s for s in dict.fromkeys(via) if s != self.server_name and is_valid_server_name(s)
        ]
        for server in servers[:MAX_SERVERS_PER_ROOM]:
            try:
                raw = await self.client.get_room_hierarchy(
                    server, room_id, suggested_only, timeout_s=REQUEST_TIMEOUT_S
                )
                found = parse_hierarchy(raw, room_id)
            except (FederationClientError, InvalidHierarchy) as e:
                log.info("hierarchy of %s via %s failed: %s", room_id, server, e)
                continue
            self._cache[key] = (now + CACHE_TTL_MS, found)
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
            return found
        return None
