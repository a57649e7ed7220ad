"""Auth rules 5-10 (6-11 in room 12): non-member events and m.room.power_levels changes.

Create/membership rules are in test_auth_create.py and test_auth_membership.py, the
auth events selection and ``build_auth_state`` in test_auth_selection.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from federation.auth import AuthError, check
from tests.federation.auth_rooms import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    VERSIONS,
    Room,
    pl_rule,
    rule,
    standard_room,
)

pytestmark = pytest.mark.parametrize("version", VERSIONS)


def _room(version: str, **levels: Any) -> Room:
    """Alice (creator) joined; Bob joined at 50, Carol joined at 0, Dave not in the room."""
    room = standard_room(version).set_member(BOB, "join").set_member(CAROL, "join")
    users = dict(levels.pop("users", {}))
    users.setdefault(BOB, 50)
    room.set_power_levels(users=users, **levels)
    return room


# ------------------------------------------------------------------ rule 5: sender joined


@pytest.mark.parametrize("membership", [None, "invite", "leave", "ban", "knock"])
def test_sender_must_be_joined(version: str, membership: str | None) -> None:
    room = _room(version)
    if membership:
        room.set_member(DAVE, membership, sender=ALICE)
    room.rejects(room.event("m.room.message", DAVE, {"body": "hi"}), "5")


def test_joined_member_can_send_message(version: str) -> None:
    room = _room(version)
    room.check(room.event("m.room.message", CAROL, {"body": "hi"}))


# ------------------------------------------------------------------ rule 6: third_party_invite


def test_third_party_invite_event_needs_invite_level(version: str) -> None:
    room = _room(version, invite=50)
    content = {"display_name": "x", "public_key": "AAAA", "key_validity_url": "https://x"}
    room.rejects(room.event("m.room.third_party_invite", CAROL, content, "tok"), "6.1")
    room.check(room.event("m.room.third_party_invite", BOB, content, "tok"))


def test_third_party_invite_event_ignores_state_default(version: str) -> None:
    # Rule 6 allows before the required power level (rule 7) is consulted.
    room = _room(version, state_default=100, events={"m.room.third_party_invite": 100})
    room.check(room.event("m.room.third_party_invite", CAROL, {}, "tok"))


def test_third_party_invite_event_sender_must_be_joined(version: str) -> None:
    room = _room(version)
    room.rejects(room.event("m.room.third_party_invite", DAVE, {}, "tok"), "5")


# ------------------------------------------------------------------ rule 7: required power


def test_events_default(version: str) -> None:
    room = _room(version, events_default=10)
    room.rejects(room.event("m.room.message", CAROL, {"body": "hi"}), "7")
    room.check(room.event("m.room.message", BOB, {"body": "hi"}))


def test_state_default(version: str) -> None:
    room = _room(version, state_default=60)
    room.rejects(room.event("m.room.topic", BOB, {"topic": "t"}, ""), "7")
    room.set_power_levels(users={BOB: 60}, state_default=60)
    room.check(room.event("m.room.topic", BOB, {"topic": "t"}, ""))


def test_state_default_defaults_to_50(version: str) -> None:
    room = _room(version)
    room.check(room.event("m.room.topic", BOB, {"topic": "t"}, ""))
    room.rejects(room.event("m.room.topic", CAROL, {"topic": "t"}, ""), "7")


def test_events_map_overrides_defaults(version: str) -> None:
    room = _room(version, events={"m.room.topic": 0, "m.reaction": 60}, state_default=100)
    room.check(room.event("m.room.topic", CAROL, {"topic": "t"}, ""))
    room.rejects(room.event("m.reaction", BOB, {}), "7")
    room.rejects(room.event("m.room.name", BOB, {"name": "n"}, ""), "7")


def test_empty_state_key_and_custom_state_use_state_default(version: str) -> None:
    room = _room(version)
    room.rejects(room.event("org.example.custom", CAROL, {}, "anything"), "7")
    room.check(room.event("org.example.custom", CAROL, {}))  # not state: events_default


def test_without_power_levels_only_creator_sends_state(version: str) -> None:
    room = Room(version).set_member(ALICE, "join").set_member(BOB, "join")
    room.check(room.event("m.room.name", ALICE, {"name": "n"}, ""))
    room.check(room.event("m.room.message", BOB, {"body": "hi"}))
    room.rejects(room.event("m.room.name", BOB, {"name": "n"}, ""), "7")


def test_redaction_needs_only_send_level(version: str) -> None:
    room = _room(version, redact=100)
    redaction = room.event("m.room.redaction", CAROL, {"redacts": "$x"}, redacts="$x")
    room.check(redaction)  # the redact level is not an auth rule
    room.set_power_levels(events={"m.room.redaction": 40})
    room.rejects(redaction, "7")


def test_user_level_from_users_default(version: str) -> None:
    room = _room(version, users_default=20, events_default=20)
    room.check(room.event("m.room.message", CAROL, {"body": "hi"}))


def test_room12_creator_beats_any_level(version: str) -> None:
    room = _room(version, state_default=1_000_000, events={"m.room.name": 1_000_000})
    pdu = room.event("m.room.name", ALICE, {"name": "n"}, "")
    if version == "12":
        room.check(pdu)
    else:
        room.rejects(pdu, "7")


# ------------------------------------------------------------------ rule 8: @ state keys


def test_state_key_of_another_user_rejected(version: str) -> None:
    room = _room(version, state_default=0)
    room.rejects(room.event("org.example.status", CAROL, {}, BOB), "8")
    room.rejects(room.event("org.example.status", ALICE, {}, BOB), "8")


def test_state_key_of_own_user_allowed(version: str) -> None:
    room = _room(version, state_default=0)
    room.check(room.event("org.example.status", CAROL, {}, CAROL))
    room.check(room.event("org.example.status", CAROL, {}, "not-a-user"))


def test_state_key_with_user_suffix_rejected(version: str) -> None:
    # MSC3757 is not part of rooms 10-12: "@carol:c.example_x" is simply not the sender.
    room = _room(version, state_default=0)
    room.rejects(room.event("org.example.status", CAROL, {}, CAROL + "_x"), "8")


# ------------------------------------------------------------------ rule 9: power levels


def _pl(room: Room, sender: str, **content: Any) -> dict[str, Any]:
    return room.event("m.room.power_levels", sender, content, "")


def _rejects_pl(room: Room, pdu: dict[str, Any], sub: str) -> AuthError:
    """Assert a power levels rejection under sub-rule ``sub`` of rule 9 (10 in room 12)."""
    with pytest.raises(AuthError) as info:
        room.check(pdu)
    assert info.value.rule == pl_rule(room.version, sub), info.value
    return info.value


def _users(room: Room) -> dict[str, int]:
    """A copy of the current users map (what a sender would copy before editing it)."""
    return dict(room.state[("m.room.power_levels", "")]["content"]["users"])


@pytest.mark.parametrize(
    "key", ["users_default", "events_default", "state_default", "ban", "redact", "kick", "invite"]
)
@pytest.mark.parametrize("bad", ["50", 50.0, True, None, [50]])
def test_power_levels_top_level_must_be_integers(version: str, key: str, bad: Any) -> None:
    room = _room(version)
    _rejects_pl(room, _pl(room, ALICE, users=_users(room), **{key: bad}), "1")


@pytest.mark.parametrize("key", ["events", "notifications"])
@pytest.mark.parametrize("bad", [{"m.room.name": "50"}, {"x": True}, [], "50", None])
def test_power_levels_maps_must_hold_integers(version: str, key: str, bad: Any) -> None:
    room = _room(version)
    _rejects_pl(room, _pl(room, ALICE, users=_users(room), **{key: bad}), "2")


@pytest.mark.parametrize(
    "users",
    [
        ["@a:b.c"],
        "x",
        {"not-a-user": 10},
        {"@a": 10},
        {BOB: "50"},
        {BOB: 5.0},
        {BOB: False},
        {BOB: None},
    ],
)
def test_power_levels_users_validated(version: str, users: Any) -> None:
    room = _room(version)
    _rejects_pl(room, _pl(room, ALICE, users=users), "3")


def test_first_power_levels_allowed(version: str) -> None:
    room = Room(version).set_member(ALICE, "join")
    users = {BOB: 100} if version == "12" else {ALICE: 100, BOB: 100}
    room.check(_pl(room, ALICE, users=users, ban=100, events={"m.room.name": 100}))


def test_first_power_levels_still_validated(version: str) -> None:
    room = Room(version).set_member(ALICE, "join")
    _rejects_pl(room, _pl(room, ALICE, users={BOB: "100"}), "3")


def test_first_power_levels_needs_state_power(version: str) -> None:
    room = Room(version).set_member(ALICE, "join").set_member(BOB, "join")
    room.rejects(_pl(room, BOB, users={BOB: 100}), "7")


def test_room12_creators_must_not_be_in_users(version: str) -> None:
    room = Room(version, additional_creators=[CAROL]).set_member(ALICE, "join")
    for users in ({ALICE: 100}, {CAROL: 50, BOB: 10}):
        pdu = _pl(room, ALICE, users=users)
        if version == "12":
            with pytest.raises(AuthError) as info:
                room.check(pdu)
            assert info.value.rule == "10.4"
        else:
            room.check(pdu)


def test_room12_creators_in_users_rejected_even_with_previous_levels(version: str) -> None:
    room = _room(version)
    pdu = _pl(room, ALICE, users={**_users(room), ALICE: 100})
    if version == "12":
        with pytest.raises(AuthError) as info:
            room.check(pdu)
        assert info.value.rule == "10.4"
    else:
        room.check(pdu)


@pytest.mark.parametrize(
    "key", ["users_default", "events_default", "state_default", "ban", "redact", "kick", "invite"]
)
def test_cannot_raise_top_level_above_own(version: str, key: str) -> None:
    room = _room(version, state_default=0)
    _rejects_pl(room, _pl(room, BOB, users=_users(room), **{key: 51}), "5.2")
    room.check(_pl(room, BOB, users=_users(room), **{key: 50}))


@pytest.mark.parametrize(
    "key", ["users_default", "events_default", "state_default", "ban", "redact", "kick", "invite"]
)
def test_cannot_change_or_remove_top_level_above_own(version: str, key: str) -> None:
    room = _room(version, events={"m.room.power_levels": 50}, **{key: 60})
    _rejects_pl(room, _pl(room, BOB, users=_users(room), **{key: 10}), "5.1")
    _rejects_pl(room, _pl(room, BOB, users=_users(room)), "5.1")  # removed


def test_unchanged_high_top_level_is_fine(version: str) -> None:
    room = _room(version, ban=100, state_default=0)
    room.check(_pl(room, BOB, users=_users(room), ban=100, kick=40))


@pytest.mark.parametrize("map_key", ["events", "notifications"])
def test_cannot_add_map_entry_above_own(version: str, map_key: str) -> None:
    room = _room(version, state_default=0)
    _rejects_pl(room, _pl(room, BOB, users=_users(room), **{map_key: {"room": 51}}), "7.1")
    room.check(_pl(room, BOB, users=_users(room), **{map_key: {"room": 50}}))


@pytest.mark.parametrize("map_key", ["events", "notifications"])
def test_cannot_change_or_remove_map_entry_above_own(version: str, map_key: str) -> None:
    room = _room(version, state_default=0, **{map_key: {"room": 60, "other": 10}})
    _rejects_pl(
        room, _pl(room, BOB, users=_users(room), **{map_key: {"room": 0, "other": 10}}), "6.1"
    )
    _rejects_pl(room, _pl(room, BOB, users=_users(room), **{map_key: {"other": 10}}), "6.1")
    room.check(_pl(room, BOB, users=_users(room), **{map_key: {"room": 60, "other": 20}}))


def test_cannot_change_peer_at_own_level(version: str) -> None:
    room = _room(version, users={BOB: 50, CAROL: 50})
    _rejects_pl(room, _pl(room, BOB, users={**_users(room), CAROL: 0}), "8.1")
    removed = _users(room)
    del removed[CAROL]
    _rejects_pl(room, _pl(room, BOB, users=removed), "8.1")


def test_can_change_lower_users(version: str) -> None:
    room = _room(version, users={BOB: 50, CAROL: 10})
    room.check(_pl(room, BOB, users={**_users(room), CAROL: 40}))
    lowered = _users(room)
    del lowered[CAROL]
    room.check(_pl(room, BOB, users=lowered))


def test_cannot_give_more_than_own_level(version: str) -> None:
    room = _room(version)
    _rejects_pl(room, _pl(room, BOB, users={**_users(room), CAROL: 51}), "9.1")
    room.check(_pl(room, BOB, users={**_users(room), CAROL: 50}))


def test_cannot_raise_self(version: str) -> None:
    room = _room(version)
    _rejects_pl(room, _pl(room, BOB, users={**_users(room), BOB: 51}), "9.1")


def test_can_demote_self(version: str) -> None:
    room = _room(version)
    room.check(_pl(room, BOB, users={**_users(room), BOB: 0}))


def test_room10_11_creator_at_100_cannot_demote_peer_at_100(version: str) -> None:
    room = _room(version, users={CAROL: 100})
    pdu = _pl(room, ALICE, users={**_users(room), CAROL: 0})
    if version == "12":
        room.check(pdu)  # infinite power
    else:
        _rejects_pl(room, pdu, "8.1")


def test_room12_creator_can_set_any_level(version: str) -> None:
    room = _room(version)
    pdu = _pl(room, ALICE, users={**_users(room), CAROL: 2**53 - 1}, ban=2**53 - 1)
    if version == "12":
        room.check(pdu)
    else:
        _rejects_pl(room, pdu, "5.2")


def test_power_levels_rule_numbers_shift_in_room12(version: str) -> None:
    room = _room(version)
    err = _rejects_pl(room, _pl(room, BOB, users={**_users(room), CAROL: 51}), "9.1")
    assert err.rule == {"10": "9.9.1", "11": "9.9.1", "12": "10.10.1"}[version]


# ------------------------------------------------------------------ malformed input


@pytest.mark.parametrize(
    "pdu",
    [
        {"type": "m.room.message", "content": {}},
        {"type": 5, "sender": ALICE, "content": {}},
        {"type": "m.room.message", "sender": "alice", "content": {}},
        {"type": "m.room.message", "sender": ALICE, "content": None},
        {"type": "m.room.topic", "sender": ALICE, "content": {}, "state_key": 3},
    ],
)
def test_malformed_pdu_is_auth_error(version: str, pdu: dict[str, Any]) -> None:
    room = _room(version)
    with pytest.raises(AuthError) as info:
        check(pdu, room.state, version)
    assert info.value.rule == "event-format"


def test_malformed_join_rules_content_is_handled(version: str) -> None:
    room = _room(version)
    room.state[("m.room.join_rules", "")]["content"] = "public"
    room.rejects(room.member_event(DAVE, "join"), "4.3.4")  # default: invite


def test_rule_helper_matches_engine(version: str) -> None:
    room = _room(version)
    err = room.rejects(room.event("m.room.message", DAVE, {}), "5")
    assert err.rule == rule(version, "5")


@pytest.mark.parametrize("key", ["@x:bad domain!", "@:", "@x:", "@a\x00:b.example"])
def test_power_levels_users_keys_read_as_synapse_does(version: str, key: str) -> None:
    # "@localpart:domain" is enough; Synapse does not validate the server name here.
    room = _room(version)
    room.check(_pl(room, ALICE, users={**_users(room), key: 5}))
