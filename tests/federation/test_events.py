"""Event hashes, IDs, signing, and the checks on a received PDU."""

from __future__ import annotations

import json
from typing import Any

import pytest

from federation import events, signing
from federation.canonical import encode_canonical_json
from federation.errors import CanonicalJSONError, HashMismatch, InvalidPDU, SignatureError

ORIGIN_KEY = signing.generate_signing_key("1")
OTHER_KEY = signing.generate_signing_key("1")
KEYS = {("origin.test", "ed25519:1"): ORIGIN_KEY, ("other.test", "ed25519:1"): OTHER_KEY}


def lookup(server: str, key_id: str, ts: int) -> str | None:
    found = KEYS.get((server, key_id))
    return found.public_key_base64 if found else None


def make(version: str = "12", **overrides: Any) -> tuple[str, dict[str, Any]]:
    fields: dict[str, Any] = {
        "event_type": "m.room.message",
        "sender": "@alice:origin.test",
        "content": {"msgtype": "m.text", "body": "回覧板です"},
        "room_id": "!abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        "prev_events": ["$prev"],
        "auth_events": ["$auth"],
        "depth": 5,
        "origin_server_ts": 1_700_000_000_000,
        "server_name": "origin.test",
        "key": ORIGIN_KEY,
    }
    if version != "12":
        fields["room_id"] = "!room:origin.test"
    fields.update(overrides)
    return events.build_event(version, **fields)


@pytest.mark.parametrize("version", ["10", "11", "12"])
def test_build_and_verify(version: str) -> None:
    event_id, pdu = make(version)
    assert event_id == events.compute_event_id(pdu, version)
    assert event_id.startswith("$") and len(event_id) == 44
    verified = events.verify_pdu(encode_canonical_json(pdu), version, lookup)
    assert verified == events.VerifiedPDU(event_id, pdu, False)
    events.check_content_hash(pdu)


def test_event_id_survives_redaction_and_unsigned() -> None:
    event_id, pdu = make()
    assert events.compute_event_id(events.redact(pdu, "12"), "12") == event_id
    assert events.compute_event_id({**pdu, "unsigned": {"age": 1}}, "12") == event_id
    assert events.compute_event_id({**pdu, "depth": 6}, "12") != event_id


def test_bad_content_hash_means_redacted() -> None:
    event_id, pdu = make()
    tampered = {**pdu, "content": {"body": "改ざん"}}
    with pytest.raises(HashMismatch, match="content hash mismatch"):
        events.check_content_hash(tampered)
    verified = events.verify_pdu(tampered, "12", lookup)
    assert verified.redacted
    assert verified.pdu["content"] == {}
    assert verified.event_id == event_id  # redactable content is outside the reference hash


@pytest.mark.parametrize("hashes", [None, {}, {"sha256": 5}, {"sha256": "!!"}])
def test_missing_or_malformed_hash(hashes: object) -> None:
    _, pdu = make()
    pdu = {**pdu, "hashes": hashes}
    with pytest.raises(HashMismatch):
        events.check_content_hash(pdu)


def test_forged_signature() -> None:
    _, pdu = make()
    forged = events.sign_event(
        {k: v for k, v in pdu.items() if k != "signatures"}, "12", "origin.test", OTHER_KEY
    )
    with pytest.raises(SignatureError, match="bad signature"):
        events.verify_pdu(forged, "12", lookup)


def test_event_claiming_another_origin() -> None:
    """A server may not send events for users of another server."""
    _, pdu = make(sender="@mallory:other.test")
    with pytest.raises(SignatureError, match="not signed by other.test"):
        events.verify_pdu(pdu, "12", lookup)


def test_unknown_key_only() -> None:
    _, pdu = make(server_name="origin.test", key=signing.generate_signing_key("zz"))
    with pytest.raises(SignatureError, match="no signature of origin.test by a known"):
        events.verify_pdu(pdu, "12", lookup)


def test_restricted_join_needs_authorising_server_signature() -> None:
    _, pdu = make(
        event_type="m.room.member",
        state_key="@alice:origin.test",
        content={"membership": "join", "join_authorised_via_users_server": "@bob:other.test"},
    )
    assert events.required_signers(pdu, "12") == {"origin.test", "other.test"}
    with pytest.raises(SignatureError, match="not signed by other.test"):
        events.verify_pdu(pdu, "12", lookup)
    countersigned = events.sign_event(pdu, "12", "other.test", OTHER_KEY)
    assert events.verify_pdu(countersigned, "12", lookup).redacted is False


def test_signature_made_over_redacted_event() -> None:
    _, pdu = make()
    redacted = events.redact(pdu, "12")
    assert events.verify_pdu(redacted, "12", lookup).redacted is True


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": 5}, "type must be a string"),
        ({"sender": "alice"}, "sender is not a user ID"),
        ({"state_key": 1}, "state_key must be a string"),
        ({"content": []}, "content must be an object"),
        ({"depth": "5"}, "depth must be an integer"),
        ({"depth": True}, "depth must be an integer"),
        ({"depth": -1}, "depth must not be negative"),
        ({"origin_server_ts": None}, "origin_server_ts must be an integer"),
        ({"room_id": "room"}, "room_id must be a room ID"),
        ({"room_id": "!old:origin.test"}, "have no server name"),
        ({"prev_events": "$x"}, "prev_events must be a list"),
        ({"prev_events": [f"$e{i}" for i in range(21)]}, "at most 20"),
        ({"auth_events": [f"$e{i}" for i in range(11)]}, "at most 10"),
        ({"auth_events": ["nope"]}, "not an event ID"),
        ({"prev_events": ["$" + "a" * 300]}, "longer than 255"),
        ({"type": "t" * 256}, "type is longer than 255 bytes"),
        ({"state_key": "鍵" * 86}, "state_key is longer than 255 bytes"),
        ({"unsigned": []}, "unsigned must be an object"),
        ({"redacts": 1}, "redacts must be an event ID"),
        ({"hashes": {}}, "hashes.sha256"),
        ({"signatures": {"origin.test": "x"}}, "signatures must map"),
        ({"content": {"body": "x" * 70_000}}, "the limit is 65536"),
    ],
)
def test_format_errors(change: dict[str, Any], message: str) -> None:
    _, pdu = make()
    with pytest.raises(InvalidPDU, match=message):
        events.check_pdu_format({**pdu, **change}, "12")


def test_v12_create_event_shape() -> None:
    event_id, create = make(
        event_type="m.room.create",
        state_key="",
        content={"room_version": "12"},
        room_id=None,
        prev_events=[],
        auth_events=[],
        depth=1,
    )
    assert events.compute_room_id(create) == "!" + event_id[1:]
    with pytest.raises(InvalidPDU, match="has no room_id"):
        events.check_pdu_format({**create, "room_id": "!x"}, "12")
    with pytest.raises(InvalidPDU, match="room_id must be a room ID"):
        events.check_pdu_format(create, "11")
    with pytest.raises(InvalidPDU, match="are not create-event hashes"):
        events.compute_room_id({**create, "content": {"room_version": "11"}})
    with pytest.raises(InvalidPDU, match="m.room.create event only"):
        events.compute_room_id({**create, "type": "m.room.topic"})


def test_malformed_bytes_and_oversize() -> None:
    with pytest.raises(CanonicalJSONError):
        events.verify_pdu(b'{"type": 1.5}', "12", lookup)
    with pytest.raises(CanonicalJSONError, match="duplicate key"):
        events.verify_pdu(b'{"type": "a", "type": "b"}', "12", lookup)
    with pytest.raises(InvalidPDU, match="must be a JSON object"):
        events.verify_pdu(b"[]", "12", lookup)
    _, pdu = make()
    big = json.dumps({**pdu, "extra": "x" * 65_536}).encode()
    with pytest.raises(InvalidPDU, match="the limit is 65536"):
        events.verify_pdu(big, "12", lookup)


def test_size_is_measured_as_synapse_measures_it() -> None:
    """``unsigned`` counts as always present and holding only the keys kept on receipt."""
    _, pdu = make()
    junk = {**pdu, "unsigned": {"pad": "x" * 70_000, "age": 5}}
    assert len(encode_canonical_json(junk)) > events.MAX_PDU_BYTES
    events.check_pdu_format(junk, "12")  # the junk is dropped on receipt: not too large
    base = len(encode_canonical_json(pdu))
    # Exactly at the limit once the empty "unsigned" is counted: accepted; one byte more: not.
    pad = events.MAX_PDU_BYTES - base - len(',"unsigned":{}') - len(',"z":""')
    at_limit = {**pdu, "z": "x" * pad}
    assert len(encode_canonical_json(events.size_basis(at_limit))) == events.MAX_PDU_BYTES
    events.check_pdu_format(at_limit, "12")
    events.verify_pdu(encode_canonical_json(at_limit), "12", lookup)
    over = {**pdu, "z": "x" * (pad + 1)}
    assert len(encode_canonical_json(over)) < events.MAX_PDU_BYTES  # only the basis is over
    with pytest.raises(InvalidPDU, match="the limit is 65536"):
        events.check_pdu_format(over, "12")
    with pytest.raises(InvalidPDU, match="the limit is 65536"):
        events.verify_pdu(encode_canonical_json(over), "12", lookup)


def test_unsupported_room_version() -> None:
    from federation.errors import UnsupportedRoomVersion

    _, pdu = make()
    with pytest.raises(UnsupportedRoomVersion, match="'9'"):
        events.compute_event_id(pdu, "9")
    with pytest.raises(UnsupportedRoomVersion):
        events.verify_pdu(pdu, "org.example.custom", lookup)


@pytest.mark.parametrize("key", ["age_ts", "outlier", "destinations"])
def test_legacy_keys_outside_content_hash_like_synapse(key: str) -> None:
    _, pdu = make()
    assert events.compute_content_hash({**pdu, key: 123}) == events.compute_content_hash(pdu)
    events.check_content_hash({**pdu, key: 123})
