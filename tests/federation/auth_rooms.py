"""Test helpers for the auth rule tests: tiny rooms built from plain PDU dicts.

Only what the auth rules read is filled in (no hashes or signatures), except the create
event of a room-12 room, whose reference hash is the room ID.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from federation.auth import check
from federation.errors import AuthError
from federation.events import compute_event_id, compute_room_id

VERSIONS = ("10", "11", "12")

ALICE = "@alice:a.example"  # the creator
BOB = "@bob:b.example"
CAROL = "@carol:c.example"
DAVE = "@dave:d.example"
EVE = "@eve:a.example"

_ids = itertools.count()


def rule(version: str, number: str) -> str:
    """A rule number written for rooms 10/11, as room ``version`` numbers it."""
    if version != "12":
        return number
    head, sep, tail = number.partition(".")
    return f"{int(head) + 1}{sep}{tail}" if int(head) >= 2 else number


def pl_rule(version: str, sub: str) -> str:
    """Power-levels sub-rule ``9.<sub>`` as room ``version`` numbers it (10.4 inserted in 12)."""
    first, _, rest = sub.partition(".")
    n = int(first)
    if version == "12" and n >= 4:
        n += 1
    return rule(version, f"9.{n}" + (f".{rest}" if rest else ""))


def make_create(version: str, sender: str = ALICE, **content: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"room_version": version}
    if version == "10":
        body["creator"] = sender
    body.update(content)
    pdu: dict[str, Any] = {
        "type": "m.room.create",
        "state_key": "",
        "sender": sender,
        "content": body,
        "prev_events": [],
        "auth_events": [],
        "depth": 1,
        "origin_server_ts": 1_700_000_000_000,
        "hashes": {"sha256": "aGFzaA"},
        "signatures": {},
    }
    if version != "12":
        pdu["room_id"] = "!room:" + sender.split(":", 1)[1]
    return pdu


class Room:
    """A room's auth state plus builders for PDUs in it."""

    def __init__(self, version: str, creator: str = ALICE, **create_content: Any) -> None:
        self.version = version
        self.creator = creator
        self.create = make_create(version, creator, **create_content)
        if version == "12":
            self.room_id = compute_room_id(self.create)
            self.create_id = "$" + self.room_id[1:]
        else:
            self.room_id = self.create["room_id"]
            self.create_id = compute_event_id(self.create, version)
        self.state: dict[tuple[str, str], dict[str, Any]] = {("m.room.create", ""): self.create}

    # -- building PDUs

    def event(
        self,
        type_: str,
        sender: str,
        content: dict[str, Any] | None = None,
        state_key: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        pdu: dict[str, Any] = {
            "type": type_,
            "sender": sender,
            "room_id": self.room_id,
            "content": {} if content is None else content,
            "prev_events": [f"$prev{next(_ids)}"],
            "auth_events": [],
            "depth": 5,
            "origin_server_ts": 1_700_000_000_000,
            "hashes": {"sha256": "aGFzaA"},
            "signatures": {sender.split(":", 1)[1]: {"ed25519:k": "c2ln"}},
        }
        if state_key is not None:
            pdu["state_key"] = state_key
        pdu.update(fields)
        return pdu

    def member_event(
        self, target: str, membership: str, sender: str | None = None, **content: Any
    ) -> dict[str, Any]:
        return self.event(
            "m.room.member",
            target if sender is None else sender,
            {"membership": membership, **content},
            state_key=target,
        )

    # -- setting state directly (no auth)

    def put(self, pdu: dict[str, Any]) -> dict[str, Any]:
        self.state[(pdu["type"], pdu["state_key"])] = pdu
        return pdu

    def set_member(self, target: str, membership: str, sender: str | None = None) -> Room:
        self.put(self.member_event(target, membership, sender))
        return self

    def set_join_rule(self, join_rule: str) -> Room:
        self.put(self.event("m.room.join_rules", self.creator, {"join_rule": join_rule}, ""))
        return self

    def set_power_levels(self, users: dict[str, int] | None = None, **levels: Any) -> Room:
        """Power levels; in rooms 10/11 the creator is given 100 unless listed."""
        users = dict(users or {})
        if self.version != "12":
            users.setdefault(self.creator, 100)
        self.put(self.event("m.room.power_levels", self.creator, {"users": users, **levels}, ""))
        return self

    # -- checking

    def check(self, pdu: dict[str, Any]) -> None:
        check(pdu, self.state, self.version)

    def rejects(self, pdu: dict[str, Any], expected_rule: str) -> AuthError:
        """Assert ``pdu`` is rejected with ``expected_rule`` (room-10/11 numbering)."""
        with pytest.raises(AuthError) as info:
            self.check(pdu)
        assert info.value.rule == rule(self.version, expected_rule), info.value
        assert info.value.reason
        return info.value


def standard_room(version: str, join_rule: str = "invite", **levels: Any) -> Room:
    """Alice created the room and joined; power levels (Bob 50 if joined later), join rule."""
    room = Room(version)
    room.set_member(ALICE, "join")
    room.set_power_levels(**levels)
    room.set_join_rule(join_rule)
    return room
