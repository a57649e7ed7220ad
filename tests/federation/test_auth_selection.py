"""Auth events selection and the rules about an event's ``auth_events`` list (rule 2; 3 in 12)."""

from __future__ import annotations

from typing import Any

import pytest

from federation.auth import (
    AuthError,
    MissingAuthEvent,
    auth_types_for_event,
    build_auth_state,
    check,
)
from tests.federation.auth_rooms import ALICE, BOB, CAROL, VERSIONS, Room, rule, standard_room

CREATE = ("m.room.create", "")
PL = ("m.room.power_levels", "")
JR = ("m.room.join_rules", "")


def _member(user: str) -> tuple[str, str]:
    return ("m.room.member", user)


def _base(version: str) -> set[tuple[str, str]]:
    return {PL} if version == "12" else {PL, CREATE}


# ------------------------------------------------------------------ auth_types_for_event


@pytest.mark.parametrize("version", VERSIONS)
def test_create_selects_nothing(version: str) -> None:
    assert auth_types_for_event(Room(version).create, version) == set()


@pytest.mark.parametrize("version", VERSIONS)
def test_message_selection(version: str) -> None:
    room = Room(version)
    types = auth_types_for_event(room.event("m.room.message", BOB, {}), version)
    assert types == _base(version) | {_member(BOB)}


def test_room12_never_selects_create() -> None:
    room = Room("12")
    for pdu in (room.event("m.room.message", BOB, {}), room.member_event(BOB, "join")):
        assert CREATE not in auth_types_for_event(pdu, "12")
        assert CREATE in auth_types_for_event(pdu, "11")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("membership", ["join", "invite", "knock"])
def test_member_selection_with_join_rules(version: str, membership: str) -> None:
    room = Room(version)
    pdu = room.member_event(BOB, membership, sender=ALICE)
    assert auth_types_for_event(pdu, version) == _base(version) | {_member(ALICE), _member(BOB), JR}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("membership", ["leave", "ban", "bogus"])
def test_member_selection_without_join_rules(version: str, membership: str) -> None:
    room = Room(version)
    pdu = room.member_event(BOB, membership, sender=ALICE)
    assert auth_types_for_event(pdu, version) == _base(version) | {_member(ALICE), _member(BOB)}


@pytest.mark.parametrize("version", VERSIONS)
def test_third_party_invite_selection(version: str) -> None:
    room = Room(version)
    pdu = room.member_event(
        BOB, "invite", sender=ALICE, third_party_invite={"signed": {"token": "tok", "mxid": BOB}}
    )
    assert ("m.room.third_party_invite", "tok") in auth_types_for_event(pdu, version)
    malformed = room.member_event(BOB, "invite", sender=ALICE, third_party_invite="x")
    assert not any(
        t == "m.room.third_party_invite" for t, _ in auth_types_for_event(malformed, version)
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_restricted_join_selects_authoriser(version: str) -> None:
    room = Room(version)
    pdu = room.member_event(BOB, "join", join_authorised_via_users_server=CAROL)
    assert _member(CAROL) in auth_types_for_event(pdu, version)
    leave = room.member_event(BOB, "leave", join_authorised_via_users_server=CAROL)
    assert _member(CAROL) not in auth_types_for_event(leave, version)


# ------------------------------------------------------------------ build_auth_state


def _stored(room: Room) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], str]]:
    """Give every state event of ``room`` an ID; returns (id -> event, key -> id)."""
    by_id: dict[str, dict[str, Any]] = {}
    ids: dict[tuple[str, str], str] = {}
    for key, event in room.state.items():
        event_id = room.create_id if key == CREATE else f"${key[0]}/{key[1]}"
        by_id[event_id] = event
        ids[key] = event_id
    return by_id, ids


def _listing(room: Room, ids: dict[tuple[str, str], str], *keys: tuple[str, str]) -> list[str]:
    return [ids[k] for k in keys]


@pytest.mark.parametrize("version", VERSIONS)
def test_build_auth_state_then_check(version: str) -> None:
    room = standard_room(version, "public")
    by_id, ids = _stored(room)
    pdu = room.member_event(BOB, "join")
    keys = [PL, JR] + ([] if version == "12" else [CREATE])
    pdu["auth_events"] = _listing(room, ids, *keys)
    state = build_auth_state(pdu, by_id, version, create_event=room.create)
    assert set(state) == {CREATE, PL, JR}
    assert state[CREATE] is room.create
    check(pdu, state, version)


@pytest.mark.parametrize("version", VERSIONS)
def test_build_auth_state_of_create_is_empty(version: str) -> None:
    assert build_auth_state(Room(version).create, {}, version) == {}


@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_auth_event_is_missing(version: str) -> None:
    room = standard_room(version)
    by_id, ids = _stored(room)
    pdu = room.event("m.room.message", ALICE, {})
    pdu["auth_events"] = [*_listing(room, ids, PL), "$unknown"]
    with pytest.raises(MissingAuthEvent) as info:
        build_auth_state(pdu, by_id, version, create_event=room.create)
    assert info.value.rule == rule(version, "2")


@pytest.mark.parametrize("version", VERSIONS)
def test_duplicate_auth_event_pair_rejected(version: str) -> None:
    room = standard_room(version)
    by_id, ids = _stored(room)
    by_id["$pl2"] = dict(room.state[PL])
    pdu = room.event("m.room.message", ALICE, {})
    pdu["auth_events"] = [ids[PL], "$pl2"]
    with pytest.raises(AuthError) as info:
        build_auth_state(pdu, by_id, version, create_event=room.create)
    assert info.value.rule == rule(version, "2.1")


@pytest.mark.parametrize("version", VERSIONS)
def test_unselected_auth_event_rejected(version: str) -> None:
    room = standard_room(version)
    by_id, ids = _stored(room)
    pdu = room.event("m.room.message", ALICE, {})
    pdu["auth_events"] = _listing(room, ids, PL, JR)  # join rules are not for messages
    with pytest.raises(AuthError) as info:
        build_auth_state(pdu, by_id, version, create_event=room.create)
    assert info.value.rule == rule(version, "2.2")


@pytest.mark.parametrize("version", VERSIONS)
def test_other_users_member_event_rejected(version: str) -> None:
    room = standard_room(version).set_member(CAROL, "join")
    by_id, ids = _stored(room)
    pdu = room.event("m.room.message", ALICE, {})
    pdu["auth_events"] = _listing(room, ids, PL, _member(CAROL))
    with pytest.raises(AuthError) as info:
        build_auth_state(pdu, by_id, version, create_event=room.create)
    assert info.value.rule == rule(version, "2.2")


@pytest.mark.parametrize("version", VERSIONS)
def test_rejected_auth_event_rejected(version: str) -> None:
    room = standard_room(version)
    by_id, ids = _stored(room)
    pdu = room.event("m.room.message", ALICE, {})
    pdu["auth_events"] = _listing(room, ids, PL, _member(ALICE))
    with pytest.raises(AuthError) as info:
        build_auth_state(pdu, by_id, version, create_event=room.create, rejected={ids[PL]})
    assert info.value.rule == rule(version, "2.3")


@pytest.mark.parametrize("version", ["10", "11"])
def test_create_must_be_listed_before_12(version: str) -> None:
    room = standard_room(version)
    by_id, ids = _stored(room)
    pdu = room.event("m.room.message", ALICE, {})
    pdu["auth_events"] = _listing(room, ids, PL, _member(ALICE))
    with pytest.raises(AuthError) as info:
        build_auth_state(pdu, by_id, version)
    assert info.value.rule == "2.4"


@pytest.mark.parametrize("version", VERSIONS)
def test_auth_event_from_another_room_rejected(version: str) -> None:
    room = standard_room(version)
    by_id, ids = _stored(room)
    by_id[ids[PL]] = {**room.state[PL], "room_id": "!other:a.example"}
    pdu = room.event("m.room.message", ALICE, {})
    pdu["auth_events"] = _listing(room, ids, PL)
    with pytest.raises(AuthError) as info:
        build_auth_state(pdu, by_id, version, create_event=room.create)
    assert info.value.rule == rule(version, "2.5")


def test_room12_must_not_list_create() -> None:
    room = standard_room("12")
    by_id, ids = _stored(room)
    pdu = room.event("m.room.message", ALICE, {})
    pdu["auth_events"] = _listing(room, ids, CREATE, PL)
    with pytest.raises(AuthError) as info:
        build_auth_state(pdu, by_id, "12", create_event=room.create)
    assert info.value.rule == "3.2"


def test_room12_needs_create_event_argument() -> None:
    room = standard_room("12")
    by_id, ids = _stored(room)
    pdu = room.event("m.room.message", ALICE, {})
    pdu["auth_events"] = _listing(room, ids, PL)
    with pytest.raises(MissingAuthEvent) as info:
        build_auth_state(pdu, by_id, "12")
    assert info.value.rule == "2"


def test_room12_rejected_create_event() -> None:
    room = standard_room("12")
    by_id, ids = _stored(room)
    pdu = room.event("m.room.message", ALICE, {})
    pdu["auth_events"] = _listing(room, ids, PL)
    with pytest.raises(AuthError) as info:
        build_auth_state(pdu, by_id, "12", create_event=room.create, rejected={room.create_id})
    assert info.value.rule == "2"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("bad", [None, "$x", [1], {"$x": 1}])
def test_malformed_auth_events_list(version: str, bad: Any) -> None:
    room = standard_room(version)
    pdu = room.event("m.room.message", ALICE, {}, auth_events=bad)
    with pytest.raises(AuthError) as info:
        build_auth_state(pdu, {}, version, create_event=room.create)
    assert info.value.rule == rule(version, "2")


@pytest.mark.parametrize("version", VERSIONS)
def test_build_auth_state_of_restricted_join(version: str) -> None:
    room = standard_room(version, "restricted").set_member(CAROL, "join")
    by_id, ids = _stored(room)
    pdu = room.member_event(BOB, "join", join_authorised_via_users_server=CAROL)
    pdu["signatures"]["c.example"] = {"ed25519:k": "c2ln"}
    keys = [PL, JR, _member(CAROL)] + ([] if version == "12" else [CREATE])
    pdu["auth_events"] = _listing(room, ids, *keys)
    state = build_auth_state(pdu, by_id, version, create_event=room.create)
    check(pdu, state, version)
    pdu["auth_events"] = _listing(room, ids, *[k for k in keys if k != _member(CAROL)])
    state = build_auth_state(pdu, by_id, version, create_event=room.create)
    with pytest.raises(AuthError) as info:
        check(pdu, state, version)
    assert info.value.rule == rule(version, "4.3.5.2")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("state_key", [None, ["x"], 5])
def test_non_state_auth_event_rejected(version: str, state_key: Any) -> None:
    room = standard_room(version)
    by_id, ids = _stored(room)
    by_id["$msg"] = room.event("m.room.message", ALICE, {}, state_key=state_key)
    pdu = room.event("m.room.message", ALICE, {})
    pdu["auth_events"] = [*_listing(room, ids, PL), "$msg"]
    with pytest.raises(AuthError) as info:
        build_auth_state(pdu, by_id, version, create_event=room.create)
    assert info.value.rule == rule(version, "2.2")
