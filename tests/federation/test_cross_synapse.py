"""Cross-check of Kairan's protocol engine against Synapse, run as an oracle process.

Synapse (the reference homeserver) runs in its own virtualenv (``interop.synapse_env``)
behind ``tests/oracle/synapse_oracle.py``; nothing of it is imported here.  For
generated PDUs and rooms of versions 10, 11 and 12 this compares content hashes, event
and room IDs, redaction, event signatures, the auth events selection, auth decisions and
state resolution.  A disagreement fails with both answers (and Synapse's reason).

The fixture ``synapse_oracle`` (tests/federation/conftest.py) fails, never skips, when
Synapse cannot be installed.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation import auth as kauth
from federation.canonical import encode_canonical_json
from federation.errors import FederationError, InvalidPDU, SignatureError
from federation.events import (
    check_pdu_format,
    compute_content_hash,
    compute_event_id,
    compute_room_id,
    redact,
    required_signers,
    sign_event,
    verify_pdu,
)
from federation.signing import encode_base64, signing_key_from_seed
from federation.state import resolve
from tests.federation import strategies as S
from tests.oracle.client import SynapseOracle

pytestmark = pytest.mark.oracle

#: Examples per property; raise it (e.g. KAIRAN_ORACLE_EXAMPLES=5000) for a deeper search.
EXAMPLES = int(os.environ.get("KAIRAN_ORACLE_EXAMPLES", "250"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _ours(fn: Any, *args: Any) -> tuple[bool, Any]:
    """(True, result) or (False, "ExceptionType: message") for Kairan's engine."""
    try:
        return True, fn(*args)
    except (FederationError, ValueError, TypeError, KeyError) as e:
        return False, f"{type(e).__name__}: {e}"


def _theirs(answer: dict[str, Any]) -> tuple[bool, Any]:
    return (True, answer["result"]) if answer["ok"] else (False, answer["error"])


def _agree(what: str, pdu: Any, ours: tuple[bool, Any], theirs: tuple[bool, Any]) -> None:
    """Both succeed with equal results, or both fail."""
    if ours[0] and theirs[0]:
        assert ours[1] == theirs[1], (
            f"{what} differs\n pdu:     {_show(pdu)}\n kairan:  {_show(ours[1])}\n synapse: {_show(theirs[1])}"
        )
    else:
        assert ours[0] == theirs[0], (
            f"{what}: only one side accepted the input\n pdu:     {_show(pdu)}\n"
            f" kairan:  {ours[1]!s}\n synapse: {theirs[1]!s}"
        )


# --------------------------------------------------------------------------- hashes, IDs, redaction

version_and_pdu = st.sampled_from(S.ROOM_VERSIONS).flatmap(
    lambda v: st.tuples(st.just(v), S.pdus(room_version=v))
)


@SETTINGS
@given(vp=version_and_pdu)
def test_content_hash_event_id_and_redaction(
    synapse_oracle: SynapseOracle, vp: tuple[str, dict[str, Any]]
) -> None:
    version, pdu = vp
    answers = synapse_oracle.batch(
        [
            {"op": "content_hash", "pdu": pdu},
            {"op": "event_id", "pdu": pdu, "room_version": version},
            {"op": "redact", "pdu": pdu, "room_version": version},
        ]
    )
    _agree("content hash", pdu, _ours(compute_content_hash, pdu), _theirs(answers[0]))
    theirs_id = _theirs(answers[1])
    _agree(
        f"event ID (room {version})",
        pdu,
        _ours(compute_event_id, pdu, version),
        (theirs_id[0], theirs_id[1]["event_id"] if theirs_id[0] else theirs_id[1]),
    )
    # Synapse keeps part of ``unsigned`` on redacted events for its own bookkeeping; the
    # spec's algorithm drops it, and neither IDs nor signatures cover it.
    theirs_redacted = _theirs(answers[2])
    if theirs_redacted[0]:
        theirs_redacted[1].pop("unsigned", None)
    _agree(f"redaction (room {version})", pdu, _ours(redact, pdu, version), theirs_redacted)
    if (
        version == "12"
        and pdu["type"] == "m.room.create"
        and pdu.get("content", {}).get("room_version") == "12"
        and theirs_id[0]
    ):
        _agree("room ID", pdu, _ours(compute_room_id, pdu), (True, theirs_id[1]["room_id"]))


@SETTINGS
@given(
    vp=version_and_pdu,
    seed=S.seeds,
    key_version=S.key_versions,
    server=S.servers,
)
def test_event_signatures(
    synapse_oracle: SynapseOracle,
    vp: tuple[str, dict[str, Any]],
    seed: bytes,
    key_version: str,
    server: str,
) -> None:
    version, pdu = vp
    key = signing_key_from_seed(seed, key_version)
    theirs = synapse_oracle.request(
        "sign_event",
        pdu=pdu,
        room_version=version,
        server_name=server,
        key_version=key_version,
        seed=encode_base64(seed),
    )
    ours = _ours(sign_event, copy.deepcopy(pdu), version, server, key)
    _agree(
        f"signed event (room {version}, {server} ed25519:{key_version})", pdu, ours, _theirs(theirs)
    )


# --------------------------------------------------------------------------- auth


def _kairan_auth(scn: S.AuthScenario) -> tuple[bool, str]:
    """Kairan's decision: the rules about the auth_events list, then the auth rules."""
    version = scn.room_version
    try:
        by_id = {compute_event_id(ev, version): ev for ev in scn.auth_events}
        state = kauth.build_auth_state(
            scn.pdu, by_id, version, create_event=scn.create if version == "12" else None
        )
        kauth.check(scn.pdu, state, version)
    except kauth.AuthError as e:
        return False, f"{type(e).__name__}: {e}"
    return True, "allowed"


def _synapse_auth(oracle: SynapseOracle, scn: S.AuthScenario) -> dict[str, Any]:
    answer = oracle.request(
        "auth",
        pdu=scn.pdu,
        auth_state=scn.auth_event_pdus(),
        room_version=scn.room_version,
    )
    assert answer["ok"], f"the oracle failed: {answer['error']}\n{scn.describe()}"
    return answer["result"]  # type: ignore[no-any-return]


@SETTINGS
@given(scn=S.auth_scenarios())
def test_auth_decisions(synapse_oracle: SynapseOracle, scn: S.AuthScenario) -> None:
    theirs = _synapse_auth(synapse_oracle, scn)
    ours_ok, ours_reason = _kairan_auth(scn)
    assert ours_ok == theirs["allowed"], (
        f"auth decisions differ: kairan {'accepts' if ours_ok else 'rejects'}, "
        f"synapse {'accepts' if theirs['allowed'] else 'rejects'}\n"
        f" kairan:  {ours_reason}\n"
        f" synapse: [{theirs.get('phase')}] {theirs.get('error_type')}: {theirs.get('reason')}\n"
        f"{scn.describe()}"
    )


def test_auth_scenarios_are_interesting(synapse_oracle: SynapseOracle) -> None:
    """The generator must produce accepted and rejected events, for every room version."""
    seen: list[tuple[str, bool, str | None]] = []

    # Derandomized: a share of random draws is a statistic, and a random seed made it dip
    # below the bound now and then (27 of 200 once); the fixed draws are checked as they are.
    @settings(
        max_examples=200,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(scn=S.auth_scenarios())
    def collect(scn: S.AuthScenario) -> None:
        theirs = _synapse_auth(synapse_oracle, scn)
        seen.append((scn.room_version, theirs["allowed"], theirs.get("phase")))

    collect()
    accepted = sum(allowed for _, allowed, _ in seen)
    assert 0.15 < accepted / len(seen) < 0.85, f"{accepted} of {len(seen)} accepted"
    print(f"\n{accepted} of {len(seen)} generated events accepted")
    for version in S.ROOM_VERSIONS:
        outcomes = {allowed for v, allowed, _ in seen if v == version}
        assert outcomes == {True, False}, f"room {version}: only {outcomes}"
    # rejections must mostly come from the rules against the room state, not from
    # malformed scenarios
    phases = [phase for _, allowed, phase in seen if not allowed]
    assert phases.count("dependent") > len(phases) / 2, phases


@SETTINGS
@given(data=st.data(), version=st.sampled_from(S.ROOM_VERSIONS))
def test_auth_events_selection(
    synapse_oracle: SynapseOracle, data: st.DataObject, version: str
) -> None:
    pdu = data.draw(
        st.one_of(
            S.pdus(room_version=version),
            S.auth_scenarios(room_version=version).map(lambda s: s.pdu),
        )
    )
    theirs = synapse_oracle.request("auth_types", pdu=pdu, room_version=version)
    if not theirs["ok"]:
        # Synapse cannot select for some malformed events (e.g. a member event without
        # membership); Kairan must still answer without crashing.
        kauth.auth_types_for_event(pdu, version)
        return
    expected = {tuple(k) for k in theirs["result"]}
    if version == "12":
        # Synapse lists the create event, which room 12 implies by the room ID instead.
        expected.discard(("m.room.create", ""))
    ours = kauth.auth_types_for_event(pdu, version)
    assert ours == expected, (
        f"auth events selection differs for {_show(pdu)}\n kairan:  {sorted(ours)}\n synapse: {sorted(expected)}"
    )


# --------------------------------------------------------------------------- state resolution


@SETTINGS
@given(scn=S.state_res_scenarios(), mode=st.sampled_from(["store", "event_map"]))
def test_state_resolution(
    synapse_oracle: SynapseOracle, scn: S.StateResScenario, mode: str
) -> None:
    answer = synapse_oracle.request(
        "resolve",
        room_version=scn.room_version,
        state_sets=[sorted([t, sk, eid] for (t, sk), eid in s.items()) for s in scn.state_sets],
        events=list(scn.events.values()),
        rejected=sorted(scn.rejected),
        mode=mode,
    )
    assert answer["ok"], f"the oracle failed: {answer['error']}"
    theirs = {(t, sk): eid for t, sk, eid in answer["result"]}
    ours = resolve(scn.room_version, scn.state_sets, scn.events, rejected=scn.rejected)
    if ours != theirs:
        diff = {
            k: {"kairan": ours.get(k), "synapse": theirs.get(k)}
            for k in sorted(ours.keys() | theirs.keys())
            if ours.get(k) != theirs.get(k)
        }
        described = "\n".join(
            f"  {eid}: {ev['type']} [{ev['state_key']}] by {ev['sender']} ts={ev['origin_server_ts']} "
            f"{_show(ev['content'])} auth={ev['auth_events']}"
            for eid, ev in scn.events.items()
        )
        pytest.fail(
            f"state resolution (room {scn.room_version}, oracle mode {mode}) differs: {diff}\n"
            f"state sets: {scn.state_sets}\nrejected: {sorted(scn.rejected)}\nevents:\n{described}"
        )


# --------------------------------------------------------------------------- legacy keys

#: Top-level keys that Synapse leaves out of the content hash besides ``unsigned``,
#: ``signatures`` and ``hashes`` (remnants of its old internal event format).  The spec
#: names only those three; Kairan follows Synapse here so that both agree on which
#: events fail their hash check (and get redacted).
SYNAPSE_EXTRA_HASH_EXCLUSIONS = ("age_ts", "outlier", "destinations")


@pytest.mark.parametrize("key", SYNAPSE_EXTRA_HASH_EXCLUSIONS)
def test_content_hash_of_legacy_top_level_keys(synapse_oracle: SynapseOracle, key: str) -> None:
    pdu = {
        "type": "m.room.message",
        "sender": "@alice:a.example",
        "room_id": "!room:a.example",
        "content": {"body": "hi"},
        "depth": 3,
        "origin_server_ts": 1,
        "prev_events": [],
        "auth_events": [],
        key: 1,
    }
    _agree(
        f"content hash with top-level {key!r}",
        pdu,
        _ours(compute_content_hash, pdu),
        _theirs(synapse_oracle.request("content_hash", pdu=pdu)),
    )


def test_signing_keeps_hashes_of_other_algorithms(synapse_oracle: SynapseOracle) -> None:
    """Synapse sets ``hashes.sha256`` and keeps any other entry of ``hashes``; since
    ``hashes`` survives redaction, the signature covers them, so dropping them changes
    the signature."""
    seed = bytes(range(32))
    pdu = {
        "type": "m.room.message",
        "sender": "@alice:a.example",
        "room_id": "!room:a.example",
        "content": {"body": "hi"},
        "depth": 3,
        "origin_server_ts": 1,
        "prev_events": [],
        "auth_events": [],
        "hashes": {"sha512": "b3RoZXI"},
    }
    theirs = synapse_oracle.request(
        "sign_event",
        pdu=pdu,
        room_version="11",
        server_name="a.example",
        key_version="k",
        seed=encode_base64(seed),
    )
    ours = _ours(
        sign_event, copy.deepcopy(pdu), "11", "a.example", signing_key_from_seed(seed, "k")
    )
    _agree("signed event with an extra hash algorithm", pdu, ours, _theirs(theirs))


def _small_room(version: str) -> tuple[dict[str, Any], dict[tuple[str, str], dict[str, Any]]]:
    """A public room of ``version`` where @alice (the creator) holds power 100."""
    alice = "@alice:a.example"
    create: dict[str, Any] = {
        "type": "m.room.create",
        "state_key": "",
        "sender": alice,
        "content": {"room_version": version, **({"creator": alice} if version == "10" else {})},
        "depth": 1,
        "origin_server_ts": 1,
        "prev_events": [],
        "auth_events": [],
        "hashes": {"sha256": "x" * 43},
    }
    room_id = compute_room_id(create) if version == "12" else "!room:a.example"
    if version != "12":
        create["room_id"] = room_id

    def ev(
        event_type: str, content: dict[str, Any], depth: int, state_key: str = ""
    ) -> dict[str, Any]:
        return {
            "type": event_type,
            "state_key": state_key,
            "sender": alice,
            "content": content,
            "room_id": room_id,
            "depth": depth,
            "origin_server_ts": depth,
            "prev_events": [],
            "auth_events": [],
            "hashes": {"sha256": "x" * 43},
        }

    state = {
        ("m.room.create", ""): create,
        ("m.room.member", alice): ev("m.room.member", {"membership": "join"}, 2, alice),
        ("m.room.power_levels", ""): ev(
            "m.room.power_levels", {"users": {} if version == "12" else {alice: 100}}, 3
        ),
        ("m.room.join_rules", ""): ev("m.room.join_rules", {"join_rule": "public"}, 4),
    }
    return create, state


def test_member_events_whose_state_key_is_not_a_user_id(synapse_oracle: SynapseOracle) -> None:
    """Invites, bans and kicks of a target that is not a user ID (no ``:``): Synapse
    rejects them all ("Invalid ID"); both must decide alike."""
    disagreements = []
    for version in S.ROOM_VERSIONS:
        create, state = _small_room(version)
        for target in ("notauser", "@nocolon", ""):
            for membership in ("invite", "ban", "leave"):
                pdu: dict[str, Any] = {
                    "type": "m.room.member",
                    "state_key": target,
                    "sender": "@alice:a.example",
                    "content": {"membership": membership},
                    "room_id": state[("m.room.member", "@alice:a.example")]["room_id"],
                    "depth": 5,
                    "origin_server_ts": 5,
                    "prev_events": [],
                    "hashes": {"sha256": "x" * 43},
                    "signatures": {"a.example": {"ed25519:k": "c2ln"}},
                }
                selected = S.spec_auth_types(pdu, version)
                listed = [e for k, e in state.items() if k in selected]
                pdu["auth_events"] = [compute_event_id(e, version) for e in listed]
                scn = S.AuthScenario(version, create, state, pdu, {}, listed)
                theirs = _synapse_auth(synapse_oracle, scn)
                ours_ok, ours_reason = _kairan_auth(scn)
                if ours_ok != theirs["allowed"]:
                    disagreements.append(
                        f"room {version} {membership} of {target!r}: kairan {ours_reason}; "
                        f"synapse {theirs.get('reason') or 'allowed'}"
                    )
    assert not disagreements, "auth decisions differ:\n" + "\n".join(disagreements)


@pytest.mark.parametrize("version", ["11", "12"])
@pytest.mark.parametrize(
    "third_party_invite", [{}, {"display_name": "x"}, {"signed": {"mxid": "@a:a.example"}}]
)
def test_redacting_member_event_with_third_party_invite(
    synapse_oracle: SynapseOracle, version: str, third_party_invite: dict[str, Any]
) -> None:
    """Rooms 11+ keep ``third_party_invite.signed`` of member events.  For an object
    without ``signed`` Synapse keeps ``third_party_invite: {}``; the redacted form feeds
    event IDs and signatures, so both must produce the same."""
    pdu: dict[str, Any] = {
        "type": "m.room.member",
        "state_key": "@bob:b.example",
        "sender": "@alice:a.example",
        "room_id": "!room:a.example",
        "content": {"membership": "invite", "third_party_invite": third_party_invite},
        "depth": 3,
        "origin_server_ts": 1,
        "prev_events": [],
        "auth_events": [],
        "hashes": {"sha256": "x" * 43},
    }
    answers = synapse_oracle.batch(
        [
            {"op": "redact", "pdu": pdu, "room_version": version},
            {"op": "event_id", "pdu": pdu, "room_version": version},
        ]
    )
    theirs_redacted = _theirs(answers[0])
    if theirs_redacted[0]:
        theirs_redacted[1].pop("unsigned", None)
    _agree(f"redaction (room {version})", pdu, _ours(redact, pdu, version), theirs_redacted)
    theirs_id = _theirs(answers[1])
    _agree(
        f"event ID (room {version})",
        pdu,
        _ours(compute_event_id, pdu, version),
        (theirs_id[0], theirs_id[1]["event_id"] if theirs_id[0] else theirs_id[1]),
    )


# --------------------------------------------------------------------------- size limits


def _sized_pdu(version: str, field: str, value: Any) -> dict[str, Any]:
    pdu: dict[str, Any] = {
        "type": "m.room.message",
        "sender": "@alice:a.example",
        "room_id": "!" + "r" * 43 if version == "12" else "!room:a.example",
        "content": {"body": ""},
        "depth": 1,
        "origin_server_ts": 1,
        "prev_events": [],
        "auth_events": [],
        "hashes": {"sha256": "x" * 43},
        "signatures": {"a.example": {"ed25519:k": "c2ln"}},
    }
    if field == "total":
        # pad the body so that the whole PDU is ``value`` bytes of canonical JSON
        pdu["content"]["body"] = "a" * (value - len(encode_canonical_json(pdu)))
        assert len(encode_canonical_json(pdu)) == value
    elif field == "total+unsigned":
        # the same, but the bulk is in an unsigned key Synapse does not know
        pdu["unsigned"] = {"org.example.pad": ""}
        pdu["unsigned"]["org.example.pad"] = "a" * (value - len(encode_canonical_json(pdu)))
    elif field == "sender":
        pdu["sender"] = value
        pdu["signatures"] = {value.split(":", 1)[1]: {"ed25519:k": "c2ln"}}
    else:
        pdu[field] = value
    return pdu


SIZE_CASES = [
    ("total", 65522),
    ("total", 65523),
    ("total", 65536),
    ("total", 65537),
    ("total+unsigned", 65536),
    ("total+unsigned", 65600),
    ("state_key", "a" * 255),
    ("state_key", "a" * 256),
    ("state_key", "é" * 127 + "a"),  # 255 bytes
    ("state_key", "é" * 128),  # 128 code points, 256 bytes
    ("type", "a" * 255),
    ("type", "é" * 128),
    ("sender", "@" + "a" * 243 + ":a.example"),  # 254 bytes
    ("sender", "@" + "é" * 122 + ":a.example"),  # 255 bytes
    ("sender", "@" + "é" * 123 + ":a.example"),  # 257 bytes
]


@pytest.mark.parametrize("version", S.ROOM_VERSIONS)
@pytest.mark.parametrize(("field", "value"), SIZE_CASES, ids=lambda v: str(v)[:12])
def test_size_limits(synapse_oracle: SynapseOracle, version: str, field: str, value: Any) -> None:
    """The PDU and ID size limits: Kairan's ``check_pdu_format`` and Synapse's checks on
    receipt must accept and reject the same events."""
    pdu = _sized_pdu(version, field, value)
    theirs = synapse_oracle.call("validate", pdu=pdu, room_version=version)
    ours = _ours(check_pdu_format, pdu, version)
    size = len(encode_canonical_json(pdu))
    assert ours[0] == theirs["valid"], (
        f"{field}={value if isinstance(value, int) else repr(value)[:24]} "
        f"(room {version}, PDU of {size} bytes of canonical JSON): "
        f"kairan {'accepts' if ours[0] else 'rejects (' + str(ours[1]) + ')'}, "
        f"synapse {'accepts' if theirs['valid'] else 'rejects (' + str(theirs.get('reason')) + ')'}"
    )


# --------------------------------------------------------------------------- required signers


def _domain(user_id: Any) -> str | None:
    if isinstance(user_id, str) and ":" in user_id:
        return user_id.split(":", 1)[1]
    return None


@SETTINGS
@given(data=st.data(), version=st.sampled_from(S.ROOM_VERSIONS))
def test_required_signers(synapse_oracle: SynapseOracle, data: st.DataObject, version: str) -> None:
    """Whose signatures an event needs: Synapse rejects an event on receipt when one of
    them is missing; Kairan's ``required_signers`` must name exactly those servers."""
    pdu = data.draw(
        st.one_of(
            S.pdus(room_version=version),
            S.auth_scenarios(room_version=version).map(lambda s: s.pdu),
        )
    )
    content = pdu.get("content", {})
    candidates = {
        d
        for d in (
            _domain(pdu["sender"]),
            _domain(content.get("join_authorised_via_users_server")),
            "other.example",
        )
        if d
    }
    sig = {"ed25519:k": "c2ln"}
    with_all = {**pdu, "signatures": {d: sig for d in sorted(candidates)}}
    requests = [{"op": "validate", "pdu": with_all, "room_version": version}]
    order = sorted(candidates)
    for d in order:
        without = {**pdu, "signatures": {e: sig for e in order if e != d}}
        requests.append({"op": "validate", "pdu": without, "room_version": version})
    answers = synapse_oracle.batch(requests)
    if not (answers[0]["ok"] and answers[0]["result"]["valid"]):
        return  # rejected for other reasons (size, unparseable): nothing to compare
    theirs = {d for d, a in zip(order, answers[1:], strict=True) if not a["result"]["valid"]}
    ours = _ours(required_signers, pdu, version)
    assert ours[0], f"required_signers failed on {_show(pdu)}: {ours[1]}"
    assert set(ours[1]) & candidates == theirs, (
        f"required signers differ for {_show(pdu)}\n kairan:  {sorted(ours[1])}\n synapse: {sorted(theirs)}"
    )


# --------------------------------------------------------------------------- verifying events


def _tampered(pdu: dict[str, Any], how: str) -> dict[str, Any]:
    """``pdu`` changed after signing: in content (hash breaks; the signature too if the
    key survives redaction), in a covered top-level key, or only in ``unsigned``."""
    changed = copy.deepcopy(pdu)
    if how == "content":
        changed["content"] = {**changed["content"], "org.example.tamper": 1}
    elif how == "membership" and pdu["type"] == "m.room.member":
        changed["content"] = {**changed["content"], "membership": "ban"}
    elif how == "depth":
        changed["depth"] += 1
    elif how == "unsigned":
        changed["unsigned"] = {"age_ts": 5}
    return changed


@SETTINGS
@given(
    vp=version_and_pdu,
    seed=S.seeds,
    how=st.sampled_from(["none", "content", "membership", "depth", "unsigned"]),
)
def test_event_verification(
    synapse_oracle: SynapseOracle, vp: tuple[str, dict[str, Any]], seed: bytes, how: str
) -> None:
    """Kairan signs; Synapse checks signatures and content hash of the (maybe tampered)
    event; Kairan's ``verify_pdu`` must reach the same verdicts: a bad signature is an
    error, a bad content hash means the event is redacted."""
    version, pdu = vp
    pdu = {k: v for k, v in pdu.items() if k not in ("signatures", "hashes")}
    key = signing_key_from_seed(seed, "v1")
    signers = sorted(set(required_signers(pdu, version)))
    signed = pdu
    for server in signers:
        signed = sign_event(signed, version, server, key)
    event = _tampered(signed, how)
    public = {server: {key.key_id: key.public_key_base64} for server in signers}
    answer = synapse_oracle.request("verify_event", pdu=event, room_version=version, servers=public)
    if not answer["ok"]:
        return  # an event Synapse cannot even parse: covered by the format tests
    theirs = answer["result"]
    try:
        verified = verify_pdu(
            event, version, lambda server, key_id, ts: public.get(server, {}).get(key_id)
        )
        ours_sig_ok, ours_hash_ok, why = True, not verified.redacted, ""
    except SignatureError as e:
        ours_sig_ok, ours_hash_ok, why = False, None, str(e)
    except InvalidPDU:
        return  # Kairan refuses the shape (checked against Synapse by test_size_limits)
    assert ours_sig_ok == theirs["signatures_ok"], (
        f"signature verdicts differ ({how}): kairan {why or 'ok'}, synapse {theirs['failures'] or 'ok'}\n"
        f" event: {_show(event)}"
    )
    if ours_sig_ok:
        assert ours_hash_ok == theirs["hash_ok"], (
            f"content hash verdicts differ ({how}): kairan {ours_hash_ok}, synapse {theirs['hash_ok']}\n"
            f" event: {_show(event)}"
        )
