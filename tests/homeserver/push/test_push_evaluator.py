"""The push rule evaluator (pure) against the spec's default rules and every condition.

The default rule set is the one rules.py serves (spec v1.17+: the legacy body-matching
rules are gone, so ``contains_display_name`` and an ``@room`` rule are tested as user
rules).  Examples in the docstrings are the spec's own where it gives some.
"""

from __future__ import annotations

from typing import Any

from homeserver.push.conditions import flatten
from homeserver.push.evaluator import EventFacts, Outcome, RuleSet, compile_rules
from homeserver.push.rules import evaluation_order

ME = "@alice:kairan.example.jp"
OTHER = "@bob:kairan.example.jp"
ROOM = "!room:kairan.example.jp"
DEFAULT = compile_rules(evaluation_order(None))
SOUND = {"set_tweak": "sound", "value": "default"}
HIGHLIGHT = {"set_tweak": "highlight"}


def event(
    event_type: str = "m.room.message", state_key: str | None = None, **content: Any
) -> dict[str, Any]:
    found: dict[str, Any] = {
        "type": event_type,
        "sender": OTHER,
        "room_id": ROOM,
        "event_id": "$e",
        "content": content,
    }
    if state_key is not None:
        found["state_key"] = state_key
    return found


def text(body: str, **extra: Any) -> dict[str, Any]:
    return event(msgtype="m.text", body=body, **extra)


def run(
    ev: dict[str, Any],
    *,
    rules: RuleSet = DEFAULT,
    members: int = 5,
    level: int | float | None = 0,
    power: dict[str, Any] | None = None,
    name: str | None = None,
    user: str = ME,
) -> Outcome | None:
    facts = EventFacts.of(ev, member_count=members, sender_level=level, power_levels=power)
    return facts.run(rules, user, name)


def user_rules(**kinds: list[dict[str, Any]]) -> RuleSet:
    data: dict[str, Any] = {
        "user": {k: [] for k in ("override", "content", "room", "sender", "underride")},
        "defaults": {},
    }
    for kind, rules in kinds.items():
        if kind == "defaults":
            data["defaults"] = rules
        else:
            data["user"][kind] = [{"default": False, "enabled": True, **r} for r in rules]
    return compile_rules(evaluation_order(data))


def notifies(outcome: Outcome | None) -> bool:
    return outcome is not None and outcome.notify


def matches(condition: dict[str, Any], ev: dict[str, Any], **kwargs: Any) -> bool:
    rules = user_rules(
        override=[{"rule_id": "t", "conditions": [condition], "actions": ["notify", HIGHLIGHT]}]
    )
    outcome = run(ev, rules=rules, **kwargs)
    return outcome is not None and outcome.highlight


# ---------------------------------------------------------------- the default rules


def test_message_in_a_group_room_notifies_without_sound_or_highlight() -> None:
    outcome = run(text("hello"), members=3)
    assert outcome is not None and outcome.actions == ("notify",)
    assert outcome.notify and not outcome.highlight and outcome.tweaks == {}


def test_one_to_one_rooms_ring_for_messages_and_encrypted_events() -> None:
    assert run(text("hi"), members=2).actions == ("notify", SOUND)  # type: ignore[union-attr]
    encrypted = event("m.room.encrypted", algorithm="m.megolm.v1.aes-sha2", ciphertext="x")
    assert run(encrypted, members=2).actions == ("notify", SOUND)  # type: ignore[union-attr]
    # .m.rule.encrypted in group rooms: notify, no sound.
    assert run(encrypted, members=3).actions == ("notify",)  # type: ignore[union-attr]


def test_notices_reactions_acls_edits_and_member_events_do_not_notify() -> None:
    notice = event(msgtype="m.notice", body="bot says hi")
    reaction = event(
        "m.reaction",
        **{"m.relates_to": {"rel_type": "m.annotation", "event_id": "$x", "key": "👍"}},
    )
    acl = event("m.room.server_acl", state_key="", allow=["*"])
    edit = text(
        "* fixed",
        **{
            "m.new_content": {"body": "fixed"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": "$x"},
        },
    )
    join = event("m.room.member", state_key=OTHER, membership="join")
    for ev, rule in [
        (notice, "suppress_notices"),
        (reaction, "reaction"),
        (acl, "server_acl"),
        (edit, "suppress_edits"),
        (join, "member_event"),
    ]:
        outcome = run(ev)
        assert outcome is not None and outcome.actions == () and not outcome.notify, rule


def test_invite_for_me_notifies_with_sound_but_not_invites_of_others() -> None:
    mine = event("m.room.member", state_key=ME, membership="invite")
    assert run(mine).actions == ("notify", SOUND)  # type: ignore[union-attr]
    theirs = event("m.room.member", state_key="@carol:kairan.example.jp", membership="invite")
    assert not notifies(run(theirs))


def test_user_mention_highlights_even_in_an_edit_and_only_for_the_mentioned() -> None:
    mention = text("Alice, see this", **{"m.mentions": {"user_ids": [ME]}})
    outcome = run(mention)
    assert (
        outcome is not None
        and outcome.highlight
        and outcome.tweaks == {"sound": "default", "highlight": True}
    )
    # is_user_mention comes before suppress_edits in the override rules.
    edit = text(
        "* see",
        **{
            "m.mentions": {"user_ids": [ME]},
            "m.relates_to": {"rel_type": "m.replace", "event_id": "$x"},
        },
    )
    assert run(edit).highlight  # type: ignore[union-attr]
    # Someone else's mention is an ordinary message for me.
    assert not run(text("Bob!", **{"m.mentions": {"user_ids": [OTHER]}})).highlight  # type: ignore[union-attr]
    # The body naming me is not a mention (the legacy rules are gone).
    assert not run(text(f"{ME} alice")).highlight  # type: ignore[union-attr]


def test_room_mention_needs_the_notification_power_level() -> None:
    everyone = text("全員へ", **{"m.mentions": {"room": True}})
    assert run(everyone, level=50).highlight  # type: ignore[union-attr]
    assert not run(everyone, level=49).highlight  # type: ignore[union-attr]
    assert run(everyone, level=0, power={"notifications": {"room": 0}}).highlight  # type: ignore[union-attr]
    assert not run(everyone, level=99, power={"notifications": {"room": 100}}).highlight  # type: ignore[union-attr]
    # Room 12 creators have infinite power; an unknown level never qualifies.
    assert run(everyone, level=float("inf")).highlight  # type: ignore[union-attr]
    assert not run(everyone, level=None).highlight  # type: ignore[union-attr]
    # room must be exactly true.
    assert not run(text("x", **{"m.mentions": {"room": "true"}}), level=100).highlight  # type: ignore[union-attr]


def test_tombstone_highlights_only_as_state() -> None:
    tombstone = event("m.room.tombstone", state_key="", body="moved", replacement_room="!new:x")
    assert run(tombstone).actions == ("notify", HIGHLIGHT)  # type: ignore[union-attr]
    assert run(event("m.room.tombstone", body="moved")) is None


def test_call_invites_ring() -> None:
    invite = event(
        "m.call.invite", call_id="c", version=1, lifetime=60000, offer={"type": "offer", "sdp": ""}
    )
    assert run(invite).actions == ("notify", {"set_tweak": "sound", "value": "ring"})  # type: ignore[union-attr]


def test_other_events_match_no_rule() -> None:
    assert run(event("m.room.topic", state_key="", topic="t")) is None
    assert run(event("org.example.custom", x=1)) is None


def test_master_rule_silences_everything_and_other_defaults_can_be_switched() -> None:
    muted = user_rules(defaults={".m.rule.master": {"enabled": True}})
    for ev in (text("hi"), text("x", **{"m.mentions": {"user_ids": [ME]}})):
        outcome = run(ev, rules=muted)
        assert outcome is not None and not outcome.notify
    no_messages = user_rules(defaults={".m.rule.message": {"enabled": False}})
    assert run(text("hi"), rules=no_messages) is None
    assert run(text("hi"), rules=no_messages, members=2).notify  # type: ignore[union-attr]
    quiet = user_rules(defaults={".m.rule.message": {"actions": []}})
    assert not notifies(run(text("hi"), rules=quiet))


# ---------------------------------------------------------------- user rules by kind


def test_room_and_sender_rules_and_their_priority() -> None:
    muted_room = user_rules(room=[{"rule_id": ROOM, "actions": ["dont_notify"]}])
    outcome = run(text("hi"), rules=muted_room)
    assert outcome is not None and outcome.actions == () and not outcome.notify
    assert notifies(run({**text("hi"), "room_id": "!other:x"}, rules=muted_room))
    # Override rules (the mention) come before room rules.
    assert run(text("x", **{"m.mentions": {"user_ids": [ME]}}), rules=muted_room).highlight  # type: ignore[union-attr]
    boss = user_rules(
        sender=[
            {"rule_id": OTHER, "actions": ["notify", {"set_tweak": "sound", "value": "boss.wav"}]}
        ]
    )
    assert run(text("hi"), rules=boss).tweaks == {"sound": "boss.wav"}  # type: ignore[union-attr]
    # Content rules come before room rules; underride user rules before default underrides.
    both = user_rules(
        content=[{"rule_id": "c", "pattern": "会議", "actions": ["notify", HIGHLIGHT]}],
        room=[{"rule_id": ROOM, "actions": []}],
        underride=[
            {
                "rule_id": "u",
                "conditions": [],
                "actions": ["notify", {"set_tweak": "sound", "value": "u"}],
            }
        ],
    )
    assert run(text("明日の会議は10時から"), rules=both).highlight  # type: ignore[union-attr]
    assert not notifies(run(text("nothing"), rules=both))
    only_underride = user_rules(
        underride=[
            {
                "rule_id": "u",
                "conditions": [],
                "actions": ["notify", {"set_tweak": "sound", "value": "u"}],
            }
        ]
    )
    assert run(text("hi"), rules=only_underride).tweaks == {"sound": "u"}  # type: ignore[union-attr]


def test_disabled_user_rules_never_match() -> None:
    rules = user_rules(
        override=[{"rule_id": "all", "enabled": False, "conditions": [], "actions": []}]
    )
    assert notifies(run(text("hi"), rules=rules))


def test_content_rules_match_words_case_insensitively() -> None:
    cake = user_rules(
        content=[{"rule_id": "cake", "pattern": "cake", "actions": ["notify", HIGHLIGHT]}]
    )
    for body, expected in [
        ("I like CAKE!", True),
        ("cake", True),
        ("cake-shop", True),
        ("cakes", False),
        ("pancake", False),
        ("cake_shop", False),
    ]:
        assert run(text(body), rules=cake).highlight is expected, body  # type: ignore[union-attr]
    # Characters outside [A-Za-z0-9_] are word boundaries: Japanese words match in a sentence.
    meeting = user_rules(
        content=[{"rule_id": "m", "pattern": "会議", "actions": ["notify", HIGHLIGHT]}]
    )
    assert run(text("本日の会議は中止"), rules=meeting).highlight  # type: ignore[union-attr]
    # A content rule without a pattern never matches.
    broken = user_rules(content=[{"rule_id": "b", "actions": ["notify", HIGHLIGHT]}])
    assert not run(text("anything"), rules=broken).highlight  # type: ignore[union-attr]


def test_legacy_room_notification_rule_as_a_user_rule() -> None:
    roomnotif = user_rules(
        override=[
            {
                "rule_id": "roomnotif",
                "conditions": [
                    {"kind": "event_match", "key": "content.body", "pattern": "@room"},
                    {"kind": "sender_notification_permission", "key": "room"},
                ],
                "actions": ["notify", HIGHLIGHT],
            }
        ]
    )
    assert run(text("@room meeting now"), rules=roomnotif, level=50).highlight  # type: ignore[union-attr]
    assert run(text("everyone:@room"), rules=roomnotif, level=50).highlight  # type: ignore[union-attr]
    assert not run(text("@roomy"), rules=roomnotif, level=50).highlight  # type: ignore[union-attr]
    assert not run(text("@room"), rules=roomnotif, level=10).highlight  # type: ignore[union-attr]


# ---------------------------------------------------------------- conditions


def test_event_match_examples_of_the_spec() -> None:
    topic = {"kind": "event_match", "key": "content.topic", "pattern": "lunc?*"}
    for value, expected in [
        ("Lunch plans", True),
        ("LUNCH", True),
        (" lunch", False),
        ("lunc", False),
        (None, False),
        (5, False),
    ]:
        assert matches(topic, event("m.room.topic", state_key="", topic=value)) is expected, value
    body = {"kind": "event_match", "key": "content.body", "pattern": "ex*ple"}
    for value, expected in [
        ("An example event.", True),
        ("exple", True),
        ("An exciting triple-whammy", True),
        ("examples", False),
    ]:
        assert matches(body, text(value)) is expected, value
    # An absent key never matches, even '*'.
    assert not matches({"kind": "event_match", "key": "content.absent", "pattern": "*"}, text("x"))
    assert matches({"kind": "event_match", "key": "type", "pattern": "m.room.*"}, text("x"))
    assert matches(
        {"kind": "event_match", "key": "state_key", "pattern": ""},
        event("m.room.name", state_key="", name="n"),
    )


def test_dotted_paths_with_escaped_dots_and_backslashes() -> None:
    create = event("m.room.create", state_key="", creator=OTHER, **{"m.federate": True})
    assert matches(
        {"kind": "event_property_is", "key": "content.m\\.federate", "value": True}, create
    )
    # Without the escape the path means content -> m -> federate.
    assert not matches(
        {"kind": "event_property_is", "key": "content.m.federate", "value": True}, create
    )
    nested = event("x", m={"federate": True})
    assert matches(
        {"kind": "event_property_is", "key": "content.m.federate", "value": True}, nested
    )
    slash = event("x", **{"m\\foo": "bar"})
    assert matches({"kind": "event_match", "key": "content.m\\\\foo", "pattern": "bar"}, slash)
    assert flatten({"content": {"a.b": {"c\\d": 1}, "list": [1, "x", {"no": 1}, 2.5, None]}}) == {
        "content.a\\.b.c\\\\d": 1,
        "content.list": [1, "x", None],
    }


def test_event_property_is_compares_types_exactly() -> None:
    create = event("m.room.create", state_key="", **{"m.federate": True})
    for value in ("true", 1):
        assert not matches(
            {"kind": "event_property_is", "key": "content.m\\.federate", "value": value}, create
        )
    one = event("x", n=1)
    assert matches({"kind": "event_property_is", "key": "content.n", "value": 1}, one)
    assert not matches({"kind": "event_property_is", "key": "content.n", "value": True}, one)
    assert matches(
        {"kind": "event_property_is", "key": "content.z", "value": None}, event("x", z=None)
    )
    assert not matches({"kind": "event_property_is", "key": "content.absent", "value": None}, one)
    # Compound values and floats are not comparable: such conditions never match.
    assert not matches({"kind": "event_property_is", "key": "content.n", "value": [1]}, one)
    assert not matches(
        {"kind": "event_property_is", "key": "content.f", "value": 1.5}, event("x", f=1.5)
    )
    assert not matches(
        {"kind": "event_property_is", "key": "content.l", "value": 1}, event("x", l=[1])
    )


def test_event_property_contains() -> None:
    aliases = event(
        "m.room.canonical_alias",
        state_key="",
        alias="#somewhere:localhost",
        alt_aliases=["#somewhere:example.org", "#myroom:example.com"],
    )
    cond = {"kind": "event_property_contains", "key": "content.alt_aliases"}
    assert matches({**cond, "value": "#myroom:example.com"}, aliases)
    assert not matches({**cond, "value": ":example.com"}, aliases)
    assert not matches(
        {
            "kind": "event_property_contains",
            "key": "content.alias",
            "value": "#somewhere:localhost",
        },
        aliases,
    )
    assert matches(
        {"kind": "event_property_contains", "key": "content.l", "value": True},
        event("x", l=[1, True]),
    )
    assert not matches(
        {"kind": "event_property_contains", "key": "content.l", "value": 1}, event("x", l=[True])
    )


def test_room_member_count_operators() -> None:
    cases = {"2": [2], "==2": [2], "<3": [1, 2], ">3": [4, 5], "<=3": [1, 2, 3], ">=3": [3, 4, 5]}
    for spec, hits in cases.items():
        for members in range(1, 6):
            cond = {"kind": "room_member_count", "is": spec}
            assert matches(cond, text("x"), members=members) is (members in hits), (spec, members)
    for bad in ("=2", "=>2", "two", "2 ", "", "-1", 2, None):
        assert not matches({"kind": "room_member_count", "is": bad}, text("x"), members=2), bad
    assert not matches({"kind": "room_member_count"}, text("x"), members=2)


def test_contains_display_name() -> None:
    cond = {"kind": "contains_display_name"}
    assert matches(cond, text("hello alice!"), name="Alice")
    assert not matches(cond, text("hello alices"), name="Alice")
    assert matches(cond, text("山田さん、会議です"), name="山田")
    assert not matches(cond, text("hello"), name="")
    assert not matches(cond, text("hello"), name=None)
    assert not matches(cond, event("x", body=["alice"]), name="alice")
    rules = user_rules(override=[{"rule_id": "dn", "conditions": [cond], "actions": ["notify"]}])
    assert rules.needs_display_name and not DEFAULT.needs_display_name


def test_unknown_and_malformed_conditions_never_match() -> None:
    for cond in [
        {"kind": "org.example.future"},
        {"kind": "event_match", "key": "type"},
        {"kind": "event_match", "pattern": "m.room.message"},
        {"kind": "event_match", "key": 5, "pattern": "x"},
        {"kind": "event_property_is", "key": "type"},
        {"kind": "sender_notification_permission"},
        "not an object",
        {},
    ]:
        assert not matches(cond, text("x"), level=100), cond
    # A rule with conditions that are not a list is disabled too.
    rules = user_rules(
        override=[{"rule_id": "r", "conditions": "all", "actions": ["notify", HIGHLIGHT]}]
    )
    assert not run(text("x"), rules=rules).highlight  # type: ignore[union-attr]


def test_placeholder_conditions_are_per_user() -> None:
    # One compiled rule set serves every user with the default rules.
    facts = EventFacts.of(
        text("x", **{"m.mentions": {"user_ids": [OTHER]}}), member_count=5, sender_level=0
    )
    assert facts.run(DEFAULT, OTHER).highlight  # type: ignore[union-attr]
    assert not facts.run(DEFAULT, ME).highlight  # type: ignore[union-attr]


# ---------------------------------------------------------------- actions


def test_historical_actions_are_dropped_and_tweaks_default_to_true() -> None:
    rules = user_rules(
        override=[
            {
                "rule_id": "r",
                "conditions": [],
                "actions": [
                    "coalesce",
                    "notify",
                    "dont_notify",
                    {"set_tweak": "highlight", "value": False},
                    {"set_tweak": "x"},
                ],
            }
        ]
    )
    outcome = run(text("x"), rules=rules)
    assert outcome is not None and outcome.actions == (
        "notify",
        {"set_tweak": "highlight", "value": False},
        {"set_tweak": "x"},
    )
    assert (
        outcome.notify
        and not outcome.highlight
        and outcome.tweaks == {"highlight": False, "x": True}
    )
    silent = user_rules(override=[{"rule_id": "r", "conditions": [], "actions": ["dont_notify"]}])
    assert run(text("x"), rules=silent).actions == ()  # type: ignore[union-attr]


def first_match(facts: EventFacts, rules: RuleSet, user: str, name: str | None) -> Outcome | None:
    """The definition, without shortcuts: the first enabled rule whose conditions all hold."""
    for rule in rules.rules:
        conditions = (*rule.shared, *rule.personal)
        if rule.enabled and all(c.test(facts, user, name) for c in conditions):
            return rule.outcome
    return None


def test_many_users_at_once_get_what_each_gets_alone() -> None:
    """``run_many`` (all users of one rule set, a rule at a time, as push actions use it)
    answers exactly what the rules' definition gives user by user, over events that exercise
    each per-user condition: mentions, display names (literal and glob), user names in the
    body."""
    users = [f"@u{i}:kairan.example.jp" for i in range(12)] + [ME, OTHER, "@村*:x.jp"]
    names = {users[0]: "山田", users[1]: "Sato", users[2]: "sa*o", users[3]: "Ito", ME: "alice"}
    name_rules = user_rules(
        override=[
            {
                "rule_id": "name",
                "default": False,
                "enabled": True,
                "conditions": [{"kind": "contains_display_name"}],
                "actions": ["notify", HIGHLIGHT],
            }
        ],
        content=[
            {
                "rule_id": "mine",
                "default": False,
                "enabled": True,
                "pattern": "u3",
                "actions": ["notify", SOUND],
            }
        ],
    )
    events = [
        text("hello everyone"),
        text("SATO-san, 山田さん and ito: 会議です"),
        text("ping", **{"m.mentions": {"user_ids": [users[4], ME, "@nobody:x"]}}),
        text("sato and saito and u3 and @u5:kairan.example.jp"),
        text("村* wildcard"),
        event("m.room.message", msgtype="m.notice", body="Sato"),
        event("m.room.member", state_key=ME, membership="invite"),
        event("m.reaction"),
    ]
    distinct = set()
    for rules in (DEFAULT, name_rules):
        for ev in events:
            for members in (2, 5):
                facts = EventFacts.of(ev, member_count=members, sender_level=0)
                alone = {u: first_match(facts, rules, u, names.get(u)) for u in users}
                together = EventFacts.of(ev, member_count=members, sender_level=0).run_many(
                    rules, list(users), names
                )
                assert together == {u: o for u, o in alone.items() if o is not None}, ev
                distinct.add(len({repr(o) for o in alone.values()}))
    # The events do tell users apart (else the comparison would prove little).
    assert max(distinct) >= 2
