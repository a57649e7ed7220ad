"""Cross-check of ``federation.auth`` against Synapse's event auth (run as an oracle process).

Deterministic pseudo-random rooms of versions 10, 11 and 12 (memberships, join rules,
power levels, additional creators, ``m.federate``) and PDUs in them (every membership,
restricted joins with and without the authorising server's signature, creator first
joins, messages, state with ``@`` state keys, power levels changes including malformed
ones, signed third-party invites). Each PDU gets the ``auth_events`` list the selection
algorithm gives; Kairan (``build_auth_state`` + ``check``) and Synapse must agree on
allow/reject. Synapse crashing on malformed input counts as a rejection.
"""

from __future__ import annotations

import base64
import copy
import json
import random
from typing import Any

import canonicaljson
import nacl.signing
import pytest

from federation import auth
from federation.events import compute_event_id
from tests.federation.auth_rooms import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    EVE,
    VERSIONS,
    Room,
    standard_room,
)
from tests.oracle.client import SynapseOracle

pytestmark = pytest.mark.oracle

CASES_PER_VERSION = 600
USERS = (ALICE, BOB, CAROL, DAVE, EVE)
_TPI_KEY = nacl.signing.SigningKey(bytes(32))
_WRONG_KEY = nacl.signing.SigningKey(bytes(range(32)))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).rstrip(b"=").decode()


def _room(rng: random.Random, version: str) -> Room:
    extra: dict[str, Any] = {}
    if version == "12" and rng.random() < 0.3:
        extra["additional_creators"] = [BOB]
    if rng.random() < 0.1:
        extra["m.federate"] = rng.choice([False, "false", True])
    room = Room(version, **extra)
    for user in USERS:
        if user == ALICE:
            membership: str | None = rng.choice(["join", "join", "join", "leave"])
        else:
            membership = rng.choice(["join", "invite", "leave", "ban", "knock", None])
        if membership:
            room.set_member(
                user, membership, sender=ALICE if membership in ("invite", "ban") else user
            )
    join_rule = rng.choice(
        ["public", "invite", "knock", "restricted", "knock_restricted", "private", None]
    )
    if join_rule:
        room.set_join_rule(join_rule)
    if rng.random() < 0.85:
        creators = auth.creators(room.state, version) if version == "12" else frozenset()
        users = {
            u: rng.choice([0, 10, 50, 100])
            for u in USERS
            if rng.random() < 0.6 and u not in creators
        }
        keys = [
            "invite",
            "kick",
            "ban",
            "state_default",
            "events_default",
            "users_default",
            "redact",
        ]
        levels: dict[str, Any] = {
            k: rng.choice([0, 25, 50, 75, 100]) for k in keys if rng.random() < 0.4
        }
        if rng.random() < 0.3:
            levels["events"] = {
                "m.room.name": rng.choice([0, 50, 100]),
                "m.room.power_levels": rng.choice([0, 50, 100]),
            }
        room.put(room.event("m.room.power_levels", ALICE, {"users": users, **levels}, ""))
    return room


def _member_pdu(rng: random.Random, room: Room, sender: str, target: str) -> dict[str, Any]:
    membership = rng.choice(["join", "invite", "leave", "ban", "knock", "join", "join"])
    content: dict[str, Any] = {}
    if membership == "join" and rng.random() < 0.3:
        content["join_authorised_via_users_server"] = rng.choice(USERS)
    pdu = room.member_event(
        target if rng.random() < 0.3 else sender, membership, sender=sender, **content
    )
    if content and rng.random() < 0.7:
        server = content["join_authorised_via_users_server"].split(":")[1]
        pdu["signatures"][server] = {"ed25519:k": "c2ln"}
    if membership == "join" and sender == room.creator and rng.random() < 0.3:
        pdu["prev_events"] = [room.create_id]
    return pdu


def _odd_pdu(rng: random.Random, room: Room, sender: str, target: str) -> dict[str, Any]:
    roll = rng.random()
    if roll < 0.15:
        return room.member_event(target, "xx", sender=sender)
    if roll < 0.5:
        content: dict[str, Any] = {"users": {sender: 100}}
        key = rng.choice(["ban", "kick", "events", "notifications", "users", "users_default"])
        content[key] = rng.choice(
            ["50", True, 50, {"a": "1"}, {"a": 1}, [], {"notauser": 5}, {"@x:y.z": "5"}]
        )
        return room.event("m.room.power_levels", sender, content, "")
    good, wrong = _b64(bytes(_TPI_KEY.verify_key)), _b64(bytes(_WRONG_KEY.verify_key))
    keys = rng.choice(
        [
            {"public_key": good},
            {"public_key": wrong, "public_keys": [{"public_key": good}]},
            {"public_keys": [{"public_key": wrong}]},
        ]
    )
    room.put(room.event("m.room.third_party_invite", rng.choice([ALICE, sender]), keys, "tok"))
    signed: dict[str, Any] = {
        "mxid": target if rng.random() < 0.8 else DAVE,
        "token": rng.choice(["tok", "tok", "no"]),
    }
    message = canonicaljson.encode_canonical_json(signed)
    signers = rng.sample(
        [("id.example", "ed25519:0", _TPI_KEY), ("id2.example", "ed25519:1", _WRONG_KEY)],
        rng.choice([1, 2]),
    )
    signed["signatures"] = {}
    for server, key_id, key in signers:
        signed["signatures"].setdefault(server, {})[key_id] = _b64(key.sign(message).signature)
    if rng.random() < 0.2:
        signed["mxid"] += "x"  # breaks the signature and the mxid match
    return room.member_event(
        target, "invite", sender=sender, third_party_invite={"display_name": "d", "signed": signed}
    )


def _power_levels_change(
    rng: random.Random, room: Room, sender: str, target: str
) -> dict[str, Any]:
    old = room.state.get(("m.room.power_levels", ""))
    content = copy.deepcopy(old["content"]) if old else {"users": {}}
    for _ in range(rng.choice([1, 1, 2])):
        roll = rng.random()
        level = rng.choice([0, 25, 50, 75, 100, 101])
        if roll < 0.3:
            content["users"][target] = level
        elif roll < 0.45:
            content["users"].pop(rng.choice([target, sender]), None)
        elif roll < 0.65:
            keys = ["ban", "kick", "invite", "redact", "state_default", "events_default"]
            content[rng.choice([*keys, "users_default"])] = level
        elif roll < 0.75:
            content.pop(rng.choice(["ban", "kick", "state_default", "events"]), None)
        else:
            which = rng.choice(["events", "notifications"])
            name = rng.choice(["m.room.name", "room", "m.room.power_levels"])
            content.setdefault(which, {})[name] = level
    return room.event("m.room.power_levels", sender, content, "")


def _scenario(rng: random.Random, version: str) -> tuple[Room, dict[str, Any]]:
    room = _room(rng, version)
    sender, target = rng.choice(USERS), rng.choice(USERS)
    kind = rng.random()
    if kind < 0.55:
        pdu = _member_pdu(rng, room, sender, target)
    elif kind < 0.7:
        event_type = rng.choice(["m.room.message", "m.room.redaction", "m.reaction"])
        pdu = room.event(event_type, sender, {"body": "x", "redacts": "$x"})
    elif kind < 0.8:
        state_key = rng.choice(["", sender, target])
        pdu = room.event(
            rng.choice(["m.room.name", "m.room.topic", "org.example"]), sender, {}, state_key
        )
    elif kind < 0.9:
        pdu = _odd_pdu(rng, room, sender, target)
    else:
        pdu = _power_levels_change(rng, room, sender, target)
    return room, pdu


def _attach_auth_events(room: Room, pdu: dict[str, Any], version: str) -> dict[str, dict[str, Any]]:
    by_id: dict[str, dict[str, Any]] = {}
    id_of: dict[tuple[str, str], str] = {}
    for key, event in room.state.items():
        event_id = (
            room.create_id if key == ("m.room.create", "") else compute_event_id(event, version)
        )
        by_id[event_id] = event
        id_of[key] = event_id
    selected = sorted(auth.auth_types_for_event(pdu, version))
    pdu["auth_events"] = [
        id_of[k]
        for k in selected
        if k in id_of and not (version == "12" and k[0] == "m.room.create")
    ]
    return by_id


def _kairan_allows(
    room: Room, pdu: dict[str, Any], version: str, by_id: dict[str, dict[str, Any]]
) -> tuple[bool, str]:
    try:
        state = auth.build_auth_state(pdu, by_id, version, create_event=room.create)
        auth.check(pdu, state, version)
    except auth.AuthError as e:
        return False, f"{e.rule}: {e.reason}"
    return True, ""


@pytest.mark.parametrize("version", VERSIONS)
def test_auth_agrees_with_synapse(synapse_oracle: SynapseOracle, version: str) -> None:
    rng = random.Random(f"kairan-auth-{version}")
    requests, cases = [], []
    for _ in range(CASES_PER_VERSION):
        room, pdu = _scenario(rng, version)
        by_id = _attach_auth_events(room, pdu, version)
        state = [by_id[i] for i in pdu["auth_events"]] + ([room.create] if version == "12" else [])
        requests.append({"op": "auth", "pdu": pdu, "auth_state": state, "room_version": version})
        cases.append((room, pdu, by_id))
    answers = synapse_oracle.results(requests)
    allowed = 0
    disagreements = []
    for (room, pdu, by_id), answer in zip(cases, answers, strict=True):
        ours, why = _kairan_allows(room, pdu, version, by_id)
        theirs = answer["ok"] and answer["result"]["allowed"]
        allowed += ours
        if ours != theirs:
            disagreements.append(
                f"kairan={ours} ({why}) synapse={answer}\n  {json.dumps(pdu)[:500]}"
            )
    assert not disagreements, "\n".join(disagreements[:10])
    # The scenarios must exercise both outcomes substantially.
    assert CASES_PER_VERSION * 0.1 < allowed < CASES_PER_VERSION * 0.9


@pytest.mark.parametrize("version", VERSIONS)
def test_auth_events_list_rules_agree_with_synapse(
    synapse_oracle: SynapseOracle, version: str
) -> None:
    """Duplicates, unselected entries, other rooms, a missing or (room 12) listed create."""
    room = standard_room(version, "public").set_member(CAROL, "join")
    id_of = {
        k: room.create_id if k[0] == "m.room.create" else compute_event_id(e, version)
        for k, e in room.state.items()
    }
    by_id = {id_of[k]: e for k, e in room.state.items()}

    def add(event: dict[str, Any]) -> str:
        event_id = compute_event_id(event, version)
        by_id[event_id] = event
        return event_id

    pl = room.state[("m.room.power_levels", "")]
    second_pl = add({**pl, "content": {**pl["content"], "ban": 1}})
    foreign_pl = add({**pl, "room_id": "!other:a.example"})
    message = add(room.event("m.room.message", ALICE, {}))
    base = [id_of[("m.room.power_levels", "")], id_of[("m.room.member", ALICE)]]
    if version != "12":
        base.append(room.create_id)
    lists = {
        "selected": (base, True),
        "duplicate": ([*base, second_pl], False),
        "join rules": ([*base, id_of[("m.room.join_rules", "")]], False),
        "other member": ([*base, id_of[("m.room.member", CAROL)]], False),
        "other room": ([foreign_pl, *base[1:]], False),
        "not state": ([*base, message], False),
        "without create": (base[:2], version == "12"),
    }
    if version == "12":
        lists["listing create"] = ([*base, room.create_id], False)
    for name, (listed, expected) in lists.items():
        pdu = room.event("m.room.message", ALICE, {"body": "x"}, auth_events=listed)
        answer = synapse_oracle.request(
            "auth",
            pdu=pdu,
            auth_state=list(room.state.values()),
            store_events=list(by_id.values()),
            room_version=version,
        )
        theirs = answer["ok"] and answer["result"]["allowed"]
        ours, why = _kairan_allows(room, pdu, version, by_id)
        assert ours == theirs == expected, (name, why, answer)
