"""The partners feature's pure rules: when an expiry date has passed, which rooms and
state a partner may make."""

from __future__ import annotations

import datetime as dt

import pytest

from homeserver.municipal.partners import rules

TOKYO = rules.timezone("Asia/Tokyo")


def ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000)


def test_an_account_works_through_its_last_day_in_tokyo() -> None:
    last = dt.date(2027, 3, 31)
    assert not rules.expired(last, ms("2027-03-31T23:59:59.999+09:00"), TOKYO)
    # Midnight in Tokyo is 15:00 UTC the day before.
    assert rules.expired(last, ms("2027-04-01T00:00:00+09:00"), TOKYO)
    assert rules.expired(last, ms("2027-03-31T15:00:00+00:00"), TOKYO)
    assert not rules.expired(last, ms("2027-03-31T14:59:59+00:00"), TOKYO)
    # Another zone moves the instant.
    utc = rules.timezone("UTC")
    assert not rules.expired(last, ms("2027-03-31T15:00:00+00:00"), utc)
    assert rules.today(ms("2027-03-31T15:00:00+00:00"), TOKYO) == dt.date(2027, 4, 1)


@pytest.mark.parametrize(
    "text", ["2027-3-31", "31/03/2027", "2027-02-30", "", "2027-03-31T00:00", 20270331, None]
)
def test_bad_dates_are_refused(text: object) -> None:
    with pytest.raises(ValueError):
        rules.parse_date(text)


def test_dates_and_zones() -> None:
    assert rules.parse_date("2027-03-31") == dt.date(2027, 3, 31)
    with pytest.raises(ValueError):
        rules.timezone("Asia/Nowhere")
    with pytest.raises(ValueError):
        rules.timezone(9)


def test_a_partner_creates_direct_chats_only() -> None:
    dm = {"is_direct": True, "preset": "trusted_private_chat", "invite": ["@a:b"]}
    assert rules.refused_room(dm) is None
    assert rules.refused_room({}) is not None
    assert rules.refused_room({**dm, "is_direct": "yes"}) is not None
    assert rules.refused_room({**dm, "preset": "public_chat"}) is not None
    assert rules.refused_room({**dm, "visibility": "public"}) is not None
    assert rules.refused_room({**dm, "room_alias_name": "x"}) is not None
    opened = {"type": "m.room.join_rules", "content": {"join_rule": "knock"}}
    assert rules.refused_room({**dm, "initial_state": [opened]}) is not None
    # Malformed initial state is the core's to refuse, not a crash here.
    assert rules.refused_room({**dm, "initial_state": ["x", {"type": 1}]}) is None


def test_a_partner_may_not_open_a_room() -> None:
    for join_rule in ("public", "knock", "restricted", "knock_restricted", None):
        assert rules.refused_state("m.room.join_rules", {"join_rule": join_rule}) is not None
    assert rules.refused_state("m.room.join_rules", {"join_rule": "invite"}) is None
    readable = {"history_visibility": "world_readable"}
    assert rules.refused_state("m.room.history_visibility", readable) is not None
    shared = {"history_visibility": "shared"}
    assert rules.refused_state("m.room.history_visibility", shared) is None
    assert rules.refused_state("m.room.topic", {"topic": "x"}) is None
    assert rules.refused_state("m.room.join_rules", "not an object") is None
