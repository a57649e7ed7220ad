"""Auth rule 1 (create), room 12 rule 2 (room ID derivation), creators and power levels."""

from __future__ import annotations

import pytest

from federation.auth import (
    AuthError,
    MissingAuthEvent,
    check,
    creators,
    named_level,
    required_power_for_event,
    user_power_level,
)
from federation.errors import AuthError as EngineAuthError
from federation.errors import UnsupportedRoomVersion
from tests.federation.auth_rooms import (
    ALICE,
    BOB,
    CAROL,
    VERSIONS,
    Room,
    make_create,
    rule,
    standard_room,
)


def test_auth_error_is_reexported() -> None:
    assert AuthError is EngineAuthError
    assert issubclass(MissingAuthEvent, AuthError)


@pytest.mark.parametrize("version", VERSIONS)
def test_create_allowed(version: str) -> None:
    check(make_create(version), {}, version)


@pytest.mark.parametrize("version", VERSIONS)
def test_create_with_prev_events_rejected(version: str) -> None:
    create = make_create(version)
    create["prev_events"] = ["$x"]
    with pytest.raises(AuthError) as info:
        check(create, {}, version)
    assert info.value.rule == "1.1"


@pytest.mark.parametrize("version", ["10", "11"])
def test_create_room_id_domain_must_match_sender(version: str) -> None:
    create = make_create(version)
    create["room_id"] = "!room:elsewhere.example"
    with pytest.raises(AuthError) as info:
        check(create, {}, version)
    assert info.value.rule == "1.2"
    assert "domain" in info.value.reason


@pytest.mark.parametrize("version", ["10", "11"])
def test_create_without_room_id_rejected_before_12(version: str) -> None:
    create = make_create(version)
    del create["room_id"]
    with pytest.raises(AuthError) as info:
        check(create, {}, version)
    assert info.value.rule == "1.2"


def test_room12_create_must_not_have_room_id() -> None:
    create = make_create("12")
    create["room_id"] = "!room:a.example"
    with pytest.raises(AuthError) as info:
        check(create, {}, "12")
    assert info.value.rule == "1.2"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("bad", ["99", "", 11, None])
def test_create_unrecognised_room_version_rejected(version: str, bad: object) -> None:
    create = make_create(version, room_version=bad)
    with pytest.raises(AuthError) as info:
        check(create, {}, version)
    assert info.value.rule == "1.3"


@pytest.mark.parametrize("version", VERSIONS)
def test_create_without_room_version_means_1_and_is_recognised(version: str) -> None:
    create = make_create(version)
    del create["content"]["room_version"]
    check(create, {}, version)


def test_room10_create_needs_creator() -> None:
    create = make_create("10")
    del create["content"]["creator"]
    with pytest.raises(AuthError) as info:
        check(create, {}, "10")
    assert info.value.rule == "1.4"


@pytest.mark.parametrize("version", ["11", "12"])
def test_create_without_creator_allowed_from_11(version: str) -> None:
    check(make_create(version), {}, version)


@pytest.mark.parametrize(
    "bad",
    [BOB, {"u": BOB}, [BOB, 3], [BOB, "bob"], ["@:"], [BOB, "@x:" + "a" * 300]],
)
def test_room12_additional_creators_validated(bad: object) -> None:
    with pytest.raises(AuthError) as info:
        check(make_create("12", additional_creators=bad), {}, "12")
    assert info.value.rule == "1.4"


def test_room12_additional_creators_valid() -> None:
    check(make_create("12", additional_creators=[BOB, CAROL]), {}, "12")
    check(make_create("12", additional_creators=[]), {}, "12")


def test_room11_ignores_additional_creators() -> None:
    check(make_create("11", additional_creators="nonsense"), {}, "11")


@pytest.mark.parametrize("version", VERSIONS)
def test_create_with_malformed_content_is_auth_error(version: str) -> None:
    create = make_create(version)
    create["content"] = ["not", "an", "object"]
    with pytest.raises(AuthError) as info:
        check(create, {}, version)
    assert info.value.rule == "event-format"


def test_unsupported_room_version() -> None:
    with pytest.raises(UnsupportedRoomVersion):
        check(make_create("9"), {}, "9")


# ------------------------------------------------------------------ room 12 rule 2


def test_room12_room_id_must_derive_from_create() -> None:
    room = standard_room("12")
    pdu = room.event("m.room.message", ALICE, {"body": "hi"})
    room.check(pdu)
    pdu["room_id"] = "!AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    with pytest.raises(AuthError) as info:
        room.check(pdu)
    assert info.value.rule == "2"
    assert "not derived" in info.value.reason


def test_room12_room_id_from_another_create_rejected() -> None:
    room = standard_room("12")
    other = Room("12", creator=BOB)
    pdu = room.event("m.room.message", ALICE, {"body": "hi"}, room_id=other.room_id)
    with pytest.raises(AuthError) as info:
        room.check(pdu)
    assert info.value.rule == "2"


def test_room12_missing_create_is_missing_auth_event() -> None:
    room = standard_room("12")
    del room.state[("m.room.create", "")]
    with pytest.raises(MissingAuthEvent) as info:
        room.check(room.event("m.room.message", ALICE, {}))
    assert info.value.rule == "2"


@pytest.mark.parametrize("version", ["10", "11"])
def test_missing_create_is_missing_auth_event(version: str) -> None:
    room = standard_room(version)
    del room.state[("m.room.create", "")]
    with pytest.raises(MissingAuthEvent) as info:
        room.check(room.event("m.room.message", ALICE, {}))
    assert info.value.rule == "2.4"


# ------------------------------------------------------------------ m.federate (rule 3)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("flag", [False, "false", 0, None])
def test_unfederated_room_rejects_other_servers(version: str, flag: object) -> None:
    room = Room(version, **{"m.federate": flag})
    room.set_member(ALICE, "join").set_join_rule("public")
    room.rejects(room.member_event(BOB, "join"), "3")


@pytest.mark.parametrize("version", VERSIONS)
def test_unfederated_room_allows_same_server(version: str) -> None:
    room = Room(version, **{"m.federate": False})
    room.set_member(ALICE, "join").set_join_rule("public")
    room.check(room.member_event("@eve:a.example", "join"))
    room.check(room.event("m.room.message", ALICE, {"body": "hi"}))


@pytest.mark.parametrize("version", VERSIONS)
def test_unfederated_room_rejects_inviting_other_server(version: str) -> None:
    # Synapse also applies m.federate to the target of member events.
    room = Room(version, **{"m.federate": False})
    room.set_member(ALICE, "join")
    room.rejects(room.member_event(BOB, "invite", sender=ALICE), "3")


@pytest.mark.parametrize("version", VERSIONS)
def test_federate_true_allows_other_servers(version: str) -> None:
    room = Room(version, **{"m.federate": True})
    room.set_member(ALICE, "join").set_join_rule("public")
    room.check(room.member_event(BOB, "join"))


# ------------------------------------------------------------------ creators and power


def test_creators_by_version() -> None:
    assert creators(Room("10", creator=ALICE).state, "10") == {ALICE}
    assert creators(Room("11", creator=BOB).state, "11") == {BOB}
    room = Room("12", additional_creators=[BOB, CAROL])
    assert creators(room.state, "12") == {ALICE, BOB, CAROL}


def test_room10_creator_is_content_creator_not_sender() -> None:
    room = Room("10")
    room.create["content"]["creator"] = BOB
    assert creators(room.state, "10") == {BOB}
    assert user_power_level(BOB, room.state, "10") == 100
    assert user_power_level(ALICE, room.state, "10") == 0


def test_room11_additional_creators_are_not_creators() -> None:
    room = Room("11", additional_creators=[BOB])
    assert creators(room.state, "11") == {ALICE}


@pytest.mark.parametrize("version", ["10", "11"])
def test_power_without_power_levels_event(version: str) -> None:
    room = Room(version)
    assert user_power_level(ALICE, room.state, version) == 100
    assert user_power_level(BOB, room.state, version) == 0


def test_room12_creators_have_infinite_power() -> None:
    room = Room("12", additional_creators=[BOB])
    room.set_power_levels(users={CAROL: 100}, users_default=10)
    assert user_power_level(ALICE, room.state, "12") == float("inf")
    assert user_power_level(BOB, room.state, "12") == float("inf")
    assert user_power_level(CAROL, room.state, "12") == 100
    assert user_power_level("@x:y.example", room.state, "12") == 10
    del room.state[("m.room.power_levels", "")]
    assert user_power_level(ALICE, room.state, "12") == float("inf")
    assert user_power_level(CAROL, room.state, "12") == 0


@pytest.mark.parametrize("version", VERSIONS)
def test_power_from_power_levels(version: str) -> None:
    room = Room(version)
    room.set_power_levels(users={BOB: 42}, users_default=7)
    assert user_power_level(BOB, room.state, version) == 42
    assert user_power_level(CAROL, room.state, version) == 7
    expected_creator = float("inf") if version == "12" else 100
    assert user_power_level(ALICE, room.state, version) == expected_creator


@pytest.mark.parametrize("version", ["10", "11"])
def test_creator_without_users_entry_gets_users_default(version: str) -> None:
    room = Room(version)
    room.put(room.event("m.room.power_levels", ALICE, {"users": {}}, ""))
    assert user_power_level(ALICE, room.state, version) == 0


def test_named_and_required_levels_defaults() -> None:
    room = Room("11")
    assert named_level(room.state, "invite") == 0
    assert named_level(room.state, "kick") == 50
    assert named_level(room.state, "ban") == 50
    assert named_level(room.state, "redact") == 50
    assert required_power_for_event("m.room.topic", True, room.state) == 50
    assert required_power_for_event("m.room.message", False, room.state) == 0
    room.set_power_levels(
        events={"m.room.topic": 5, "m.reaction": 3}, state_default=20, events_default=1
    )
    assert required_power_for_event("m.room.topic", True, room.state) == 5
    assert required_power_for_event("m.room.name", True, room.state) == 20
    assert required_power_for_event("m.reaction", False, room.state) == 3
    assert required_power_for_event("m.room.message", False, room.state) == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_malformed_current_power_levels_is_auth_error(version: str) -> None:
    room = standard_room(version)
    room.state[("m.room.power_levels", "")]["content"]["users_default"] = "0"
    with pytest.raises(AuthError) as info:
        user_power_level(BOB, room.state, version)
    assert info.value.rule == "power-levels-state"


def test_rule_numbering_helper() -> None:
    assert rule("10", "4.3.2") == "4.3.2"
    assert rule("12", "4.3.2") == "5.3.2"
    assert rule("12", "1.2") == "1.2"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("experimental", ["org.matrix.hydra.11", "org.matrix.msc3757.10"])
def test_create_accepts_versions_synapse_recognises(version: str, experimental: str) -> None:
    check(make_create(version, room_version=experimental), {}, version)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("unknown", ["13", "org.matrix.msc2176", "11 "])
def test_create_rejects_unknown_versions(version: str, unknown: str) -> None:
    with pytest.raises(AuthError) as info:
        check(make_create(version, room_version=unknown), {}, version)
    assert info.value.rule == "1.3"


def test_room12_additional_creators_use_synapse_user_id_validation() -> None:
    # Localparts are not checked further (historical IDs), server names are.
    check(make_create("12", additional_creators=["@Odd Local:b.example"]), {}, "12")
    with pytest.raises(AuthError) as info:
        check(make_create("12", additional_creators=["@x:bad domain"]), {}, "12")
    assert info.value.rule == "1.4"
