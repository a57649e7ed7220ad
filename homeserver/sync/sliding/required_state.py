"""Which state a room's entry carries (``required_state``), as Synapse picks it.

The config is a set of ``[type, state_key]`` pairs: ``*`` as the type means all state, as
the state key all of that type; ``$ME`` is the user; ``["m.room.member", "$LAZY"]`` the
members the timeline needs (its senders and the members its membership events are about).

A room sent from the start gets all matching state.  Afterwards, only what changed:
the state deltas that match (with ``$LAZY``, every membership change, or on a limited
timeline those of its members), the members the timeline needs that this connection was
not sent yet, and, when the client asks for more than before, the newly matching state.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from homeserver.rooms.cache import StateKey
from homeserver.storage.events import StoredEvent
from homeserver.sync.sliding.request import LAZY, ME, WILDCARD, RoomConfig

MEMBER = "m.room.member"


@dataclass(frozen=True)
class Matcher:
    """A required_state config, ready to test state keys against."""

    everything: bool
    lazy: bool
    by_type: dict[str, set[str]]

    @classmethod
    def of(cls, config: RoomConfig, user_id: str) -> Matcher:
        by_type: dict[str, set[str]] = {}
        for event_type, state_key in config.required_state:
            if (event_type, state_key) == (MEMBER, LAZY):
                continue
            by_type.setdefault(event_type, set()).add(user_id if state_key == ME else state_key)
        return cls(
            everything=WILDCARD in by_type,
            lazy=(MEMBER, LAZY) in config.required_state,
            by_type=by_type,
        )

    def matches(self, key: StateKey) -> bool:
        if self.everything:
            return True
        keys = self.by_type.get(key[0], ())
        return WILDCARD in keys or key[1] in keys


def timeline_members(timeline: list[StoredEvent]) -> set[str]:
    found: set[str] = set()
    for event in timeline:
        found.add(event.sender)
        if event.type == MEMBER and event.state_key is not None:
            found.add(event.state_key)
    return found


def required_keys(
    config: RoomConfig,
    previous: RoomConfig | None,
    user_id: str,
    state: Mapping[StateKey, str],
    timeline: list[StoredEvent],
    *,
    initial: bool,
    limited: bool,
    changed: Collection[StateKey],
    lazy_sent: Collection[str],
) -> list[StateKey]:
    """The state keys of ``state`` to send (see the module's docstring)."""
    if not config.required_state:
        return []
    now = Matcher.of(config, user_id)
    members = timeline_members(timeline) if now.lazy else set()
    if initial:
        return [k for k in state if now.matches(k) or (k[0] == MEMBER and k[1] in members)]
    keys = [
        k
        for k in changed
        if k in state
        and (now.matches(k) or (now.lazy and k[0] == MEMBER and (not limited or k[1] in members)))
    ]
    keys += [
        k
        for u in sorted(members)
        if u not in lazy_sent and (k := (MEMBER, u)) in state and not now.matches(k)
    ]
    if previous is not None and previous.required_state != config.required_state:
        before = Matcher.of(previous, user_id)
        keys += [k for k in state if now.matches(k) and not before.matches(k)]
    return list(dict.fromkeys(keys))
