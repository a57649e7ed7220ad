"""Room upgrades over real HTTP (``POST /rooms/{roomId}/upgrade``), every response validated
against the spec's OpenAPI when the run has it."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import pytest

from homeserver.push.room_rules import successor_rules, with_rules
from homeserver.rooms.carry_over import with_successor
from homeserver.rooms.upgrade import raised_power, restricted_power, without_creators
from tests.homeserver.client import User
from tests.homeserver.conftest import Node
from tests.homeserver.openapi import ValidatingClient
from tests.homeserver.rooms.room_setup import users_with_room

V3 = "/_matrix/client/v3"
UPGRADE = "POST /_matrix/client/v3/rooms/{roomId}/upgrade"


def room_path(room_id: str) -> str:
    return f"{V3}/rooms/{quote(room_id, safe='')}"


async def state(user: User, room_id: str, event_type: str, key: str = "") -> Any:
    path = f"{room_path(room_id)}/state/{event_type}/{quote(key, safe='')}"
    return await user.ok("GET", path)


async def full_state(user: User, room_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    events = await user.ok("GET", f"{room_path(room_id)}/state")
    return {(e["type"], e["state_key"]): e for e in events}


@pytest.fixture
def client(vclient: ValidatingClient) -> ValidatingClient:
    return vclient  # tests/homeserver/conftest.py: every response checked


async def test_who_may_not_upgrade(client: ValidatingClient) -> None:
    (alice, bob, eve), room = await users_with_room(
        client, "alice", "bob", "eve", preset="public_chat", room_version="10"
    )
    path = f"{room_path(room)}/upgrade"
    # Not in the room at all.
    r = await eve.request("POST", path, {"new_version": "11"})
    assert (r.status, r.body["errcode"]) == (403, "M_FORBIDDEN"), r
    # Joined without the power to send the tombstone.
    await bob.join(room)
    r = await bob.request("POST", path, {"new_version": "11"})
    assert (r.status, r.body["errcode"]) == (403, "M_FORBIDDEN"), r
    # Bad requests.
    r = await alice.request("POST", path, {"new_version": "999"})
    assert (r.status, r.body["errcode"]) == (400, "M_UNSUPPORTED_ROOM_VERSION"), r
    r = await alice.request("POST", path, {"new_version": 11})
    assert (r.status, r.body["errcode"]) == (400, "M_UNSUPPORTED_ROOM_VERSION"), r
    r = await alice.request("POST", path, {})
    assert (r.status, r.body["errcode"]) == (400, "M_MISSING_PARAM"), r
    r = await alice.request("POST", path, {"new_version": "12", "additional_creators": "bob"})
    assert (r.status, r.body["errcode"]) == (400, "M_BAD_JSON"), r
    r = await alice.request("POST", f"{room_path('!nope:' + room.split(':', 1)[1])}/upgrade",
                            {"new_version": "11"})  # fmt: skip
    assert (r.status, r.body["errcode"]) == (404, "M_NOT_FOUND"), r
    # Nothing happened to the room.
    assert "m.room.tombstone" not in {k[0] for k in await full_state(alice, room)}
    client.check(UPGRADE)


async def test_upgrade_carries_state_over(client: ValidatingClient, node: Node) -> None:
    (alice, bob, carol, dave), room = await users_with_room(
        client, "alice", "bob", "carol", "dave",
        preset="public_chat", room_version="10", name="防災", topic="地域防災計画",
        room_alias_name="bousai", visibility="public",
    )  # fmt: skip
    await alice.ok("PUT", f"{room_path(room)}/state/m.room.avatar", {"url": "mxc://x/y"})
    await alice.ok("PUT", f"{room_path(room)}/state/m.room.encryption",
                   {"algorithm": "m.megolm.v1.aes-sha2"})  # fmt: skip
    await bob.join(room)
    await carol.join(room)
    await dave.join(room)
    power = await state(alice, room, "m.room.power_levels")
    power["users"][bob.user_id] = 50
    await alice.ok("PUT", f"{room_path(room)}/state/m.room.power_levels", power)
    await alice.ok("POST", f"{room_path(room)}/ban", {"user_id": carol.user_id, "reason": "spam"})

    # dave's tags and direct chats follow the room (as Synapse's carry-over).
    dave_path = f"{V3}/user/{quote(dave.user_id)}"
    await dave.ok("PUT", f"{dave_path}/rooms/{quote(room)}/tags/m.favourite", {"order": 0.5})
    await dave.ok("PUT", f"{dave_path}/account_data/m.direct", {alice.user_id: [room]})

    body = await alice.ok("POST", f"{room_path(room)}/upgrade", {"new_version": "11"})
    new = body["replacement_room"]
    tags = await dave.ok("GET", f"{dave_path}/rooms/{quote(new)}/tags")
    assert tags == {"tags": {"m.favourite": {"order": 0.5}}}
    direct = await dave.ok("GET", f"{dave_path}/account_data/m.direct")
    assert direct == {alice.user_id: [room, new]}
    old_state = await full_state(alice, room)
    new_state = await full_state(alice, new)

    tombstone = old_state[("m.room.tombstone", "")]
    assert tombstone["content"]["replacement_room"] == new
    create = new_state[("m.room.create", "")]["content"]
    assert create["room_version"] == "11"
    assert create["predecessor"] == {"room_id": room, "event_id": tombstone["event_id"]}
    for key in ("m.room.name", "m.room.topic", "m.room.avatar", "m.room.encryption",
                "m.room.join_rules", "m.room.history_visibility"):  # fmt: skip
        assert new_state[(key, "")]["content"] == old_state[(key, "")]["content"], key
    # The power levels end as the old room's were; the old room's are restricted.
    assert new_state[("m.room.power_levels", "")]["content"] == power
    old_power = old_state[("m.room.power_levels", "")]["content"]
    assert old_power["events_default"] == 50 and old_power["invite"] == 50
    assert old_power["users"] == power["users"]
    # The ban is copied; nobody is invited (members follow the tombstone).
    assert new_state[("m.room.member", carol.user_id)]["content"] == {
        "membership": "ban", "reason": "spam"
    }  # fmt: skip
    assert ("m.room.member", bob.user_id) not in new_state
    # The alias moved, with the canonical alias; the directory entry moved too.
    server = node.server_name
    alias = await client.ok("GET", f"{V3}/directory/room/{quote('#bousai:' + server)}")
    assert alias["room_id"] == new
    assert new_state[("m.room.canonical_alias", "")]["content"] == {"alias": f"#bousai:{server}"}
    assert old_state[("m.room.canonical_alias", "")]["content"] == {}
    public = await client.ok("GET", f"{V3}/publicRooms")
    assert [r["room_id"] for r in public["chunk"]] == [new]
    # Regular members cannot speak in the old room any more; the new room is joinable.
    r = await dave.request("PUT", f"{room_path(room)}/send/m.room.message/1",
                           {"msgtype": "m.text", "body": "hi"})  # fmt: skip
    assert (r.status, r.body["errcode"]) == (403, "M_FORBIDDEN"), r
    await bob.send(room, "moderators still can")
    await dave.join(new)
    await dave.send(new, "hello")
    client.check(UPGRADE)


async def test_upgrade_to_room_12_creators(client: ValidatingClient) -> None:
    (alice, bob), room = await users_with_room(
        client, "alice", "bob", preset="private_chat", room_version="11", name="人事"
    )
    await alice.invite(room, bob.user_id)
    await bob.join(room)
    power = await state(alice, room, "m.room.power_levels")
    power["users"][bob.user_id] = 100
    await alice.ok("PUT", f"{room_path(room)}/state/m.room.power_levels", power)
    # bob (100) upgrades and names alice a creator too.
    body = await bob.ok("POST", f"{room_path(room)}/upgrade",
                        {"new_version": "12", "additional_creators": [alice.user_id]})  # fmt: skip
    new = body["replacement_room"]
    new_state = await full_state(bob, new)
    create = new_state[("m.room.create", "")]
    assert create["sender"] == bob.user_id
    assert create["content"]["additional_creators"] == [alice.user_id]
    assert create["content"]["predecessor"] == {"room_id": room}  # the ID is the create's hash
    users = new_state[("m.room.power_levels", "")]["content"]["users"]
    assert bob.user_id not in users and alice.user_id not in users
    assert new_state[("m.room.guest_access", "")]["content"] == {"guest_access": "can_join"}
    old_state = await full_state(bob, room)
    assert old_state[("m.room.tombstone", "")]["content"]["replacement_room"] == new
    # alice, a creator, may join (invite only) after an invite from bob, and upgrade again.
    await bob.invite(new, alice.user_id)
    await alice.join(new)
    again = await alice.ok("POST", f"{room_path(new)}/upgrade", {"new_version": "12"})
    newest = await full_state(alice, again["replacement_room"])
    assert newest[("m.room.create", "")]["content"].get("additional_creators") is None
    client.check(UPGRADE)


def test_power_level_rules() -> None:
    """The pure rules: the upgrader's raise, the old room's restriction, creators left out."""
    power = {"users": {"@a:x": 50, "@b:x": 100}, "users_default": 0, "state_default": 50,
             "ban": 60, "events": {"m.room.tombstone": 150, "m.room.name": 20}}  # fmt: skip
    assert raised_power(power, "@a:x")["users"] == {"@a:x": 150, "@b:x": 100}
    assert raised_power(power, "@b:x")["users"]["@b:x"] == 150
    assert raised_power({"users": "junk", "ban": True}, "@c:x")["users"] == {"@c:x": 50}
    assert power["users"]["@a:x"] == 50  # not changed in place
    assert restricted_power(power) == {**power, "invite": 50, "events_default": 50}
    assert (restricted_power({"users_default": 70}) or {})["events_default"] == 71
    assert restricted_power({"invite": 50, "events_default": 50}) is None
    assert without_creators(power, {"@b:x", "@z:x"})["users"] == {"@a:x": 50}
    assert without_creators({"users": None}, {"@a:x"}) == {"users": None}


def test_direct_chats_name_the_successor() -> None:
    assert with_successor({"@a:x": ["!old", "!b"], "@c:x": ["!b"]}, "!old", "!new") == {
        "@a:x": ["!old", "!b", "!new"], "@c:x": ["!b"]
    }  # fmt: skip
    assert with_successor({"@a:x": ["!b"]}, "!old", "!new") is None
    assert with_successor({"@a:x": ["!old", "!new"]}, "!old", "!new") is None
    assert with_successor(["junk"], "!old", "!new") is None


async def test_same_upgrade_asked_twice_at_once(client: ValidatingClient) -> None:
    alice = await client.register("alice")
    room = await alice.create_room(preset="private_chat", room_version="11")
    path = f"{room_path(room)}/upgrade"
    first, second = await asyncio.gather(
        alice.ok("POST", path, {"new_version": "12"}), alice.ok("POST", path, {"new_version": "12"})
    )
    assert first == second  # one upgrade, one answer
    joined = (await alice.ok("GET", f"{V3}/joined_rooms"))["joined_rooms"]
    assert sorted(joined) == sorted([room, first["replacement_room"]])
    client.check(UPGRADE)


async def test_upgrade_copies_room_push_rules(client: ValidatingClient) -> None:
    """As Synapse: each local member's enabled rules naming the old room (its room rule,
    override and underride rules with a room_id condition on it) are copied to the new room,
    with the new room's ID as rule ID and in their room_id conditions."""
    alice, dave, bob = [await client.register(n) for n in ("alice", "dave", "bob")]
    room = await alice.create_room(preset="public_chat", room_version="10")
    elsewhere = await alice.create_room(preset="private_chat")
    await dave.join(room)
    rules = "/_matrix/client/v3/pushrules/global"
    on_room = {"kind": "event_match", "key": "room_id", "pattern": room}
    notices = {"kind": "event_match", "key": "content.msgtype", "pattern": "m.notice"}
    sound = ["notify", {"set_tweak": "sound", "value": "bell"}]
    await alice.ok("PUT", f"{rules}/room/{quote(room)}", {"actions": sound})
    await alice.ok("PUT", f"{rules}/override/quiet", {"actions": [], "conditions": [on_room]})
    # Added later, so of higher priority, but disabled: not copied.
    await alice.ok("PUT", f"{rules}/override/off", {"actions": ["notify"], "conditions": [on_room]})
    await alice.ok("PUT", f"{rules}/override/off/enabled", {"enabled": False})
    await alice.ok("PUT", f"{rules}/underride/notices",
                   {"actions": ["notify"], "conditions": [notices, on_room]})  # fmt: skip
    await alice.ok("PUT", f"{rules}/override/other", {"actions": [], "conditions": [
        {"kind": "event_match", "key": "room_id", "pattern": elsewhere}]})  # fmt: skip
    await alice.ok("PUT", f"{rules}/content/word", {"actions": ["notify"], "pattern": "防災"})
    await dave.ok("PUT", f"{rules}/room/{quote(room)}", {"actions": []})
    await bob.ok("PUT", f"{rules}/room/{quote(room)}", {"actions": []})  # not in the room

    before = await alice.ok("GET", f"{rules}/")
    new = (await alice.ok("POST", f"{room_path(room)}/upgrade", {"new_version": "11"}))[
        "replacement_room"
    ]
    after = await alice.ok("GET", f"{rules}/")
    # The old room's rules stay; the copies come first in their kinds.
    for kind in ("override", "room", "underride", "content"):
        copied = [r for r in after[kind] if r["rule_id"] == new]
        assert [r for r in after[kind] if r["rule_id"] != new] == before[kind], kind
        assert len(copied) == (0 if kind == "content" else 1), (kind, after[kind])
    on_new = {**on_room, "pattern": new}
    assert after["room"][0] == {"rule_id": new, "default": False, "enabled": True, "actions": sound}
    assert after["override"][1] == {"rule_id": new, "default": False, "enabled": True,
                                    "actions": [], "conditions": [on_new]}  # fmt: skip
    assert after["underride"][0] == {"rule_id": new, "default": False, "enabled": True,
                                     "actions": ["notify"], "conditions": [notices, on_new]}  # fmt: skip
    assert after["override"][0]["rule_id"] == ".m.rule.master"
    # The same set in the m.push_rules account data /sync delivers.
    synced = await alice.ok("GET", f"{V3}/sync", params={"timeout": "0"})
    pushed = [e for e in synced["account_data"]["events"] if e["type"] == "m.push_rules"]
    assert pushed[0]["content"]["global"]["room"] == after["room"]
    # Every local member's, not only the upgrader's; not those of a user who was not in it.
    dave_rule = await dave.ok("GET", f"{rules}/room/{quote(new)}")
    assert dave_rule["actions"] == []
    r = await bob.request("GET", f"{rules}/room/{quote(new)}")
    assert (r.status, r.body["errcode"]) == (404, "M_NOT_FOUND"), r


def test_successor_rules_keep_the_higher_priority_one() -> None:
    old, new = "!old:x", "!new:x"
    cond = {"kind": "event_match", "key": "room_id", "pattern": old}
    user = {
        "override": [
            {"rule_id": "a", "enabled": True, "actions": ["notify"], "conditions": [cond]},
            {"rule_id": "b", "enabled": True, "actions": [], "conditions": [cond]},
            {"rule_id": new, "enabled": True, "actions": ["x"], "conditions": []},
        ],
        "sender": [{"rule_id": old, "enabled": True, "actions": []}],
    }
    copies = successor_rules(user, old, new)
    assert copies == {"override": {"rule_id": new, "enabled": True, "actions": ["notify"],
                      "conditions": [{**cond, "pattern": new}]}}  # fmt: skip
    merged = with_rules(user, copies)
    assert [r["rule_id"] for r in merged["override"]] == [new, "a", "b"]
    assert user["override"][0]["conditions"] == [cond]  # the input is left as it was
