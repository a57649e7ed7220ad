"""Auth rule 4 (5 in room 12): m.room.member events, for rooms 10, 11 and 12."""

from __future__ import annotations

import base64
from typing import Any

import canonicaljson
import nacl.signing
import pytest

from federation.auth import AuthError, MissingAuthEvent
from tests.federation.auth_rooms import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    VERSIONS,
    Room,
    standard_room,
)

pytestmark = pytest.mark.parametrize("version", VERSIONS)


# ------------------------------------------------------------------ 4.1 / 4.8


def test_member_without_membership_rejected(version: str) -> None:
    room = standard_room(version, "public")
    pdu = room.event("m.room.member", BOB, {"displayname": "Bob"}, state_key=BOB)
    room.rejects(pdu, "4.1")


def test_member_without_state_key_rejected(version: str) -> None:
    room = standard_room(version, "public")
    room.rejects(room.event("m.room.member", BOB, {"membership": "join"}), "4.1")


@pytest.mark.parametrize("membership", ["private", "JOIN", 1, None, ["join"]])
def test_unknown_membership_rejected(version: str, membership: object) -> None:
    room = standard_room(version, "public")
    room.rejects(room.member_event(BOB, membership, sender=ALICE), "4.8")  # type: ignore[arg-type]


# ------------------------------------------------------------------ join


def test_creator_first_join(version: str) -> None:
    room = Room(version)
    pdu = room.member_event(ALICE, "join", prev_events=[room.create_id])
    pdu["prev_events"] = [room.create_id]
    room.check(pdu)


def test_creator_join_with_other_prev_event_follows_normal_rules(version: str) -> None:
    room = Room(version)
    # No join rules event: the default join rule is invite, and Alice is not invited.
    room.rejects(room.member_event(ALICE, "join"), "4.3.4")


def test_non_creator_first_join_rejected(version: str) -> None:
    room = Room(version)
    pdu = room.member_event(BOB, "join")
    pdu["prev_events"] = [room.create_id]
    room.rejects(pdu, "4.3.4")


def test_first_join_with_two_prev_events_is_not_first_join(version: str) -> None:
    room = Room(version)
    pdu = room.member_event(ALICE, "join")
    pdu["prev_events"] = [room.create_id, "$other"]
    room.rejects(pdu, "4.3.4")


def test_join_for_someone_else_rejected(version: str) -> None:
    room = standard_room(version, "public")
    room.rejects(room.member_event(BOB, "join", sender=ALICE), "4.3.2")


@pytest.mark.parametrize("join_rule", ["public", "invite", "restricted", "knock"])
def test_banned_user_cannot_join(version: str, join_rule: str) -> None:
    room = standard_room(version, join_rule).set_member(BOB, "ban", sender=ALICE)
    room.rejects(room.member_event(BOB, "join"), "4.3.3")


def test_public_join(version: str) -> None:
    room = standard_room(version, "public")
    room.check(room.member_event(BOB, "join"))


@pytest.mark.parametrize("prior", [None, "leave", "knock"])
@pytest.mark.parametrize("join_rule", ["invite", "knock"])
def test_invite_only_join_without_invite_rejected(
    version: str, join_rule: str, prior: str | None
) -> None:
    room = standard_room(version, join_rule)
    if prior:
        room.set_member(BOB, prior)
    room.rejects(room.member_event(BOB, "join"), "4.3.4")


@pytest.mark.parametrize("prior", ["invite", "join"])
@pytest.mark.parametrize("join_rule", ["invite", "knock", "restricted", "knock_restricted"])
def test_join_when_invited_or_joined(version: str, join_rule: str, prior: str) -> None:
    room = standard_room(version, join_rule).set_member(BOB, prior, sender=ALICE)
    room.check(room.member_event(BOB, "join"))


def test_no_join_rules_event_means_invite(version: str) -> None:
    room = Room(version).set_member(ALICE, "join")
    room.rejects(room.member_event(BOB, "join"), "4.3.4")
    room.set_member(BOB, "invite", sender=ALICE)
    room.check(room.member_event(BOB, "join"))


@pytest.mark.parametrize("join_rule", ["private", "", None, ["public"]])
def test_unknown_join_rule_rejects_join(version: str, join_rule: Any) -> None:
    room = standard_room(version)
    room.state[("m.room.join_rules", "")]["content"]["join_rule"] = join_rule
    room.rejects(room.member_event(BOB, "join"), "4.3.7")


def _restricted_join(room: Room, authoriser: str, *, signed: bool = True) -> dict[str, Any]:
    pdu = room.member_event(BOB, "join", join_authorised_via_users_server=authoriser)
    if signed:
        pdu["signatures"][authoriser.split(":", 1)[1]] = {"ed25519:k": "c2ln"}
    return pdu


@pytest.mark.parametrize("join_rule", ["restricted", "knock_restricted"])
def test_restricted_join_authorised_by_joined_inviter(version: str, join_rule: str) -> None:
    room = standard_room(version, join_rule, invite=50)
    room.set_power_levels(users={CAROL: 50}, invite=50).set_member(CAROL, "join")
    room.check(_restricted_join(room, CAROL))


@pytest.mark.parametrize("join_rule", ["restricted", "knock_restricted"])
def test_restricted_join_authoriser_without_power(version: str, join_rule: str) -> None:
    room = standard_room(version, join_rule)
    room.set_power_levels(users={CAROL: 10}, invite=50).set_member(CAROL, "join")
    err = room.rejects(_restricted_join(room, CAROL), "4.3.5.2")
    assert "power" in err.reason


@pytest.mark.parametrize("authoriser_membership", [None, "invite", "leave", "ban"])
def test_restricted_join_authoriser_not_joined(
    version: str, authoriser_membership: str | None
) -> None:
    room = standard_room(version, "restricted")
    room.set_power_levels(users={CAROL: 100})
    if authoriser_membership:
        room.set_member(CAROL, authoriser_membership, sender=ALICE)
    err = room.rejects(_restricted_join(room, CAROL), "4.3.5.2")
    assert "not joined" in err.reason


def test_restricted_join_without_authoriser_rejected(version: str) -> None:
    room = standard_room(version, "restricted")
    room.rejects(room.member_event(BOB, "join"), "4.3.5.2")


def test_restricted_join_needs_authorising_server_signature(version: str) -> None:
    room = standard_room(version, "restricted").set_member(CAROL, "join")
    room.rejects(_restricted_join(room, CAROL, signed=False), "4.2")


@pytest.mark.parametrize("authoriser", ["carol", 5, "@carol"])
def test_restricted_join_authoriser_must_be_user_id(version: str, authoriser: Any) -> None:
    room = standard_room(version, "restricted")
    pdu = room.member_event(BOB, "join", join_authorised_via_users_server=authoriser)
    room.rejects(pdu, "4.2")


def test_creator_can_authorise_restricted_join(version: str) -> None:
    room = standard_room(version, "restricted", invite=100)
    room.check(_restricted_join(room, ALICE))


def test_authoriser_irrelevant_in_public_room_but_signature_required(version: str) -> None:
    room = standard_room(version, "public")
    room.check(_restricted_join(room, DAVE))  # Dave is not even in the room
    room.rejects(_restricted_join(room, DAVE, signed=False), "4.2")


# ------------------------------------------------------------------ invite


def test_invite(version: str) -> None:
    room = standard_room(version)
    room.check(room.member_event(BOB, "invite", sender=ALICE))


@pytest.mark.parametrize("inviter_membership", [None, "invite", "leave", "knock"])
def test_inviter_must_be_joined(version: str, inviter_membership: str | None) -> None:
    room = standard_room(version)
    if inviter_membership:
        room.set_member(CAROL, inviter_membership, sender=ALICE)
    room.rejects(room.member_event(BOB, "invite", sender=CAROL), "4.4.2")


@pytest.mark.parametrize("target_membership", ["join", "ban"])
def test_cannot_invite_joined_or_banned(version: str, target_membership: str) -> None:
    room = standard_room(version).set_member(BOB, target_membership, sender=ALICE)
    room.rejects(room.member_event(BOB, "invite", sender=ALICE), "4.4.3")


@pytest.mark.parametrize("target_membership", ["invite", "leave", "knock"])
def test_can_reinvite(version: str, target_membership: str) -> None:
    room = standard_room(version).set_member(BOB, target_membership)
    room.check(room.member_event(BOB, "invite", sender=ALICE))


def test_invite_needs_invite_level(version: str) -> None:
    room = standard_room(version)
    room.set_power_levels(users={CAROL: 49}, invite=50).set_member(CAROL, "join")
    room.rejects(room.member_event(BOB, "invite", sender=CAROL), "4.4.5")
    room.set_power_levels(users={CAROL: 50}, invite=50)
    room.check(room.member_event(BOB, "invite", sender=CAROL))


def test_invite_level_defaults_to_zero(version: str) -> None:
    room = standard_room(version).set_member(CAROL, "join")
    room.check(room.member_event(BOB, "invite", sender=CAROL))


# ------------------------------------------------------------------ third-party invites

_SEED = bytes(range(32))
_IDENTITY_KEY = nacl.signing.SigningKey(_SEED)
_OTHER_KEY = nacl.signing.SigningKey(bytes(range(1, 33)))


def _b64(data: bytes, urlsafe: bool = False) -> str:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return encode(data).rstrip(b"=").decode()


def _signed_block(
    mxid: str, token: str, key: nacl.signing.SigningKey = _IDENTITY_KEY
) -> dict[str, Any]:
    signed: dict[str, Any] = {"mxid": mxid, "token": token, "sender": ALICE}
    signature = key.sign(canonicaljson.encode_canonical_json(signed)).signature
    signed["signatures"] = {"id.example": {"ed25519:0": _b64(signature)}}
    return signed


def _tpi_room(version: str, **invite_content: Any) -> Room:
    room = standard_room(version)
    content = {
        "display_name": "b...@example.com",
        "key_validity_url": "https://id.example/_matrix/identity/v2/pubkey/isvalid",
        "public_key": _b64(bytes(_IDENTITY_KEY.verify_key)),
        **invite_content,
    }
    room.put(room.event("m.room.third_party_invite", ALICE, content, state_key="tok"))
    return room


def _tpi_invite(room: Room, signed: Any, sender: str = ALICE) -> dict[str, Any]:
    return room.member_event(
        BOB, "invite", sender=sender, third_party_invite={"display_name": "b", "signed": signed}
    )


def test_third_party_invite_with_valid_signature(version: str) -> None:
    room = _tpi_room(version)
    room.check(_tpi_invite(room, _signed_block(BOB, "tok")))


def test_third_party_invite_key_in_public_keys_list(version: str) -> None:
    room = _tpi_room(
        version,
        public_key=_b64(bytes(_OTHER_KEY.verify_key)),
        public_keys=[
            {"public_key": "not base64!"},
            "junk",
            {"public_key": _b64(bytes(_IDENTITY_KEY.verify_key), urlsafe=True)},
        ],
    )
    room.check(_tpi_invite(room, _signed_block(BOB, "tok")))


def test_third_party_invite_wrong_key_rejected(version: str) -> None:
    room = _tpi_room(version)
    room.rejects(_tpi_invite(room, _signed_block(BOB, "tok", key=_OTHER_KEY)), "4.4.1.8")


def test_third_party_invite_tampered_block_rejected(version: str) -> None:
    room = _tpi_room(version)
    signed = _signed_block(BOB, "tok")
    signed["sender"] = CAROL
    room.rejects(_tpi_invite(room, signed), "4.4.1.8")


def test_third_party_invite_without_signatures_rejected(version: str) -> None:
    room = _tpi_room(version)
    room.rejects(_tpi_invite(room, {"mxid": BOB, "token": "tok"}), "4.4.1.8")


def test_third_party_invite_non_ed25519_signature_ignored(version: str) -> None:
    room = _tpi_room(version)
    signed = _signed_block(BOB, "tok")
    signed["signatures"]["id.example"] = {
        "curve:0": signed["signatures"]["id.example"]["ed25519:0"]
    }
    room.rejects(_tpi_invite(room, signed), "4.4.1.8")


def test_third_party_invite_target_banned(version: str) -> None:
    room = _tpi_room(version).set_member(BOB, "ban", sender=ALICE)
    room.rejects(_tpi_invite(room, _signed_block(BOB, "tok")), "4.4.1.1")


@pytest.mark.parametrize("tpi", [{"display_name": "b"}, "string", {"signed": "nope"}])
def test_third_party_invite_without_signed(version: str, tpi: Any) -> None:
    room = _tpi_room(version)
    pdu = room.member_event(BOB, "invite", sender=ALICE, third_party_invite=tpi)
    room.rejects(pdu, "4.4.1.2")


@pytest.mark.parametrize("drop", ["mxid", "token"])
def test_third_party_invite_signed_needs_mxid_and_token(version: str, drop: str) -> None:
    room = _tpi_room(version)
    signed = _signed_block(BOB, "tok")
    del signed[drop]
    room.rejects(_tpi_invite(room, signed), "4.4.1.3")


def test_third_party_invite_mxid_must_match_state_key(version: str) -> None:
    room = _tpi_room(version)
    room.rejects(_tpi_invite(room, _signed_block(CAROL, "tok")), "4.4.1.4")


def test_third_party_invite_unknown_token(version: str) -> None:
    room = _tpi_room(version)
    room.rejects(_tpi_invite(room, _signed_block(BOB, "other")), "4.4.1.5")


def test_third_party_invite_sender_must_match(version: str) -> None:
    room = _tpi_room(version).set_member(CAROL, "join")
    room.rejects(_tpi_invite(room, _signed_block(BOB, "tok"), sender=CAROL), "4.4.1.6")


# ------------------------------------------------------------------ leave


@pytest.mark.parametrize("membership", ["join", "invite", "knock"])
def test_leave_self(version: str, membership: str) -> None:
    room = standard_room(version).set_member(BOB, membership)
    room.check(room.member_event(BOB, "leave"))


@pytest.mark.parametrize("membership", [None, "leave", "ban"])
def test_leave_self_when_not_in_room(version: str, membership: str | None) -> None:
    room = standard_room(version)
    if membership:
        room.set_member(BOB, membership, sender=ALICE)
    room.rejects(room.member_event(BOB, "leave"), "4.5.1")


def test_kick_needs_sender_joined(version: str) -> None:
    room = standard_room(version).set_member(BOB, "join")
    room.set_power_levels(users={CAROL: 100}).set_member(CAROL, "leave")
    room.rejects(room.member_event(BOB, "leave", sender=CAROL), "4.5.2")


def test_kick(version: str) -> None:
    room = standard_room(version).set_member(BOB, "join")
    room.check(room.member_event(BOB, "leave", sender=ALICE))


def test_kick_needs_kick_level(version: str) -> None:
    room = standard_room(version).set_member(BOB, "join").set_member(CAROL, "join")
    room.set_power_levels(users={CAROL: 49, BOB: 0}, kick=50)
    room.rejects(room.member_event(BOB, "leave", sender=CAROL), "4.5.5")


def test_kick_needs_more_power_than_target(version: str) -> None:
    room = standard_room(version).set_member(BOB, "join").set_member(CAROL, "join")
    room.set_power_levels(users={CAROL: 50, BOB: 50})
    room.rejects(room.member_event(BOB, "leave", sender=CAROL), "4.5.5")
    room.set_power_levels(users={CAROL: 51, BOB: 50})
    room.check(room.member_event(BOB, "leave", sender=CAROL))


def test_revoke_invite_is_a_kick(version: str) -> None:
    room = standard_room(version).set_member(BOB, "invite", sender=ALICE)
    room.check(room.member_event(BOB, "leave", sender=ALICE))
    room.set_member(CAROL, "join")
    room.rejects(room.member_event(BOB, "leave", sender=CAROL), "4.5.5")


def test_unban_needs_ban_level(version: str) -> None:
    room = standard_room(version).set_member(BOB, "ban", sender=ALICE).set_member(CAROL, "join")
    room.set_power_levels(users={CAROL: 60}, kick=50, ban=70)
    room.rejects(room.member_event(BOB, "leave", sender=CAROL), "4.5.3")
    room.set_power_levels(users={CAROL: 70}, kick=50, ban=70)
    room.check(room.member_event(BOB, "leave", sender=CAROL))


def test_unban_also_needs_kick_level(version: str) -> None:
    room = standard_room(version).set_member(BOB, "ban", sender=ALICE).set_member(CAROL, "join")
    room.set_power_levels(users={CAROL: 60}, kick=80, ban=50)
    room.rejects(room.member_event(BOB, "leave", sender=CAROL), "4.5.5")


# ------------------------------------------------------------------ ban


def test_ban(version: str) -> None:
    room = standard_room(version).set_member(BOB, "join")
    room.check(room.member_event(BOB, "ban", sender=ALICE))
    room.check(room.member_event(DAVE, "ban", sender=ALICE))  # never in the room


def test_ban_needs_sender_joined(version: str) -> None:
    room = standard_room(version).set_member(CAROL, "invite", sender=ALICE)
    room.set_power_levels(users={CAROL: 100})
    room.rejects(room.member_event(BOB, "ban", sender=CAROL), "4.6.1")


def test_ban_needs_ban_level(version: str) -> None:
    room = standard_room(version).set_member(CAROL, "join")
    room.set_power_levels(users={CAROL: 40}, ban=50)
    room.rejects(room.member_event(BOB, "ban", sender=CAROL), "4.6.3")


def test_ban_needs_more_power_than_target(version: str) -> None:
    room = standard_room(version).set_member(CAROL, "join").set_member(BOB, "join")
    room.set_power_levels(users={CAROL: 60, BOB: 60})
    room.rejects(room.member_event(BOB, "ban", sender=CAROL), "4.6.3")


def test_cannot_ban_self_without_higher_level(version: str) -> None:
    room = standard_room(version).set_member(CAROL, "join")
    room.set_power_levels(users={CAROL: 60})
    room.rejects(room.member_event(CAROL, "ban", sender=CAROL), "4.6.3")


def test_nobody_can_ban_the_creator(version: str) -> None:
    room = standard_room(version).set_member(CAROL, "join")
    room.set_power_levels(users={CAROL: 100})
    # Rooms 10/11: Carol's 100 is not above Alice's 100. Room 12: Alice's power is infinite.
    room.rejects(room.member_event(ALICE, "ban", sender=CAROL), "4.6.3")


# ------------------------------------------------------------------ knock


@pytest.mark.parametrize("join_rule", ["knock", "knock_restricted"])
@pytest.mark.parametrize("prior", [None, "leave"])
def test_knock(version: str, join_rule: str, prior: str | None) -> None:
    room = standard_room(version, join_rule)
    if prior:
        room.set_member(BOB, prior)
    room.check(room.member_event(BOB, "knock"))


@pytest.mark.parametrize("join_rule", ["public", "invite", "restricted", "private"])
def test_knock_needs_knock_join_rule(version: str, join_rule: str) -> None:
    room = standard_room(version, join_rule)
    room.rejects(room.member_event(BOB, "knock"), "4.7.1")


def test_knock_for_someone_else(version: str) -> None:
    room = standard_room(version, "knock")
    room.rejects(room.member_event(BOB, "knock", sender=ALICE), "4.7.2")


@pytest.mark.parametrize("prior", ["ban", "invite", "join"])
def test_knock_when_banned_invited_or_joined(version: str, prior: str) -> None:
    room = standard_room(version, "knock").set_member(BOB, prior, sender=ALICE)
    room.rejects(room.member_event(BOB, "knock"), "4.7.4")


# ------------------------------------------------------------------ malformed state


def test_malformed_member_state_counts_as_no_membership(version: str) -> None:
    room = standard_room(version)
    room.put(room.event("m.room.member", BOB, {"membership": ["join"]}, state_key=BOB))
    room.rejects(room.member_event(BOB, "leave"), "4.5.1")


def test_member_event_needs_create(version: str) -> None:
    room = standard_room(version, "public")
    del room.state[("m.room.create", "")]
    with pytest.raises(MissingAuthEvent):
        room.check(room.member_event(BOB, "join"))


def test_malformed_content_is_auth_error(version: str) -> None:
    room = standard_room(version, "public")
    pdu = room.member_event(BOB, "join")
    pdu["content"] = "join"
    with pytest.raises(AuthError) as info:
        room.check(pdu)
    assert info.value.rule == "event-format"


def test_authoriser_signature_only_required_on_joins(version: str) -> None:
    # Synapse applies rule 4.2 to joins only; a leave carrying the key needs no signature.
    room = standard_room(version).set_member(BOB, "join")
    room.check(room.member_event(BOB, "leave", join_authorised_via_users_server=CAROL))


def test_creator_first_join_does_not_compare_sender(version: str) -> None:
    # Rule 4.3.1 allows before 4.3.2 compares sender and state_key (as Synapse does).
    room = Room(version)
    pdu = room.member_event(ALICE, "join", sender=BOB)
    pdu["prev_events"] = [room.create_id]
    room.check(pdu)


def _signed_with(*signers: tuple[str, str, nacl.signing.SigningKey]) -> dict[str, Any]:
    """A signed block for Bob/"tok" carrying (server, key ID, key) signatures in order."""
    signed: dict[str, Any] = {"mxid": BOB, "token": "tok"}
    message = canonicaljson.encode_canonical_json(signed)
    signatures: dict[str, dict[str, str]] = {}
    for server, key_id, key in signers:
        signatures.setdefault(server, {})[key_id] = _b64(key.sign(message).signature)
    signed["signatures"] = signatures
    return signed


def test_third_party_invite_good_signature_first_allowed(version: str) -> None:
    room = _tpi_room(version)
    signed = _signed_with(
        ("id.example", "ed25519:0", _IDENTITY_KEY), ("id.example", "ed25519:1", _OTHER_KEY)
    )
    room.check(_tpi_invite(room, signed))


@pytest.mark.parametrize("second_server", ["id.example", "other.example"])
def test_third_party_invite_only_first_signature_counts(version: str, second_server: str) -> None:
    # Synapse's reading of rule 4.4.1.7, followed so rooms converge: per public key, the
    # first ed25519 signature decides.
    room = _tpi_room(version)
    signed = _signed_with(
        ("id.example", "ed25519:0", _OTHER_KEY), (second_server, "ed25519:1", _IDENTITY_KEY)
    )
    room.rejects(_tpi_invite(room, signed), "4.4.1.8")


def test_third_party_invite_first_signature_checked_against_every_key(version: str) -> None:
    room = _tpi_room(
        version,
        public_key=_b64(bytes(_OTHER_KEY.verify_key)),
        public_keys=[{"public_key": _b64(bytes(_IDENTITY_KEY.verify_key))}],
    )
    room.check(_tpi_invite(room, _signed_with(("id.example", "ed25519:0", _IDENTITY_KEY))))


def test_third_party_invite_signatures_taken_in_sorted_order(version: str) -> None:
    # Synapse holds content in sorted maps: a.example's signature is "first" even when
    # b.example's comes first on the wire.
    room = _tpi_room(version)
    wire_good_first = _signed_with(
        ("b.example", "ed25519:0", _IDENTITY_KEY), ("a.example", "ed25519:0", _OTHER_KEY)
    )
    room.rejects(_tpi_invite(room, wire_good_first), "4.4.1.8")
    sorted_good_first = _signed_with(
        ("b.example", "ed25519:0", _OTHER_KEY), ("a.example", "ed25519:0", _IDENTITY_KEY)
    )
    room.check(_tpi_invite(room, sorted_good_first))
