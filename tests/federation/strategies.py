"""Hypothesis strategies for Matrix PDUs and small room states (room versions 10, 11, 12).

Two families:

* :func:`pdus` - one well-shaped PDU of any type that matters for auth, redaction and
  hashing, with arbitrary extra content and top-level keys.  Used for content hashes,
  event IDs, redaction and signing.
* :func:`auth_scenarios` - a small room (create event, maybe power levels, join rules,
  memberships, third-party invites) and one candidate event, with the candidate's
  ``auth_events`` already chosen by the spec's selection rules.  Drawn so that both
  accepted and rejected candidates are common.

Event IDs and room IDs of scenarios are computed with ``federation.events``; those
functions are cross-checked on their own in ``test_cross_synapse.py``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from federation.events import compute_event_id, compute_room_id
from federation.signing import sign_json, signing_key_from_seed

ROOM_VERSIONS = ("10", "11", "12")

MIN_INT = -(2**53) + 1
MAX_INT = 2**53 - 1

SERVERS = ("a.example", "b.example", "c.example:8448")
USERS = (
    "@alice:a.example",
    "@bob:b.example",
    "@carol:a.example",
    "@dave:c.example:8448",
    "@erin:b.example",
)

MEMBERSHIPS = ("join", "invite", "leave", "ban", "knock")
JOIN_RULES = ("public", "invite", "knock", "restricted", "knock_restricted", "private")
HISTORY_VISIBILITIES = ("invited", "joined", "shared", "world_readable")

# Power level edge values: the canonical JSON extremes, zero, the usual thresholds and
# their neighbours.
EDGE_LEVELS = (MIN_INT, -1, 0, 1, 49, 50, 51, 99, 100, 101, MAX_INT)

#: Strings that are not (strictly) user IDs, for state keys and user fields.
ODD_USER_IDS = ("notauser", "@nocolon", "@x:", "", "@UPPER:a.example", "@sp ace:a.example")

#: The identity server key behind third-party invites, and a key that is not it.
THIRD_PARTY_KEY = signing_key_from_seed(bytes(range(32)), "0")
OTHER_KEY = signing_key_from_seed(bytes(range(1, 33)), "0")

# --------------------------------------------------------------------------- primitives

# Text of any Unicode except surrogates (canonical JSON is UTF-8), biased towards
# characters that matter for escaping and sorting.
_special_chars = st.sampled_from(
    ["\x00", "\x1f", '"', "\\", "/", "\u007f", "\u2028", "é", "日本", "🎉", "\ufeff", "Ω"]
)
text = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=12),
    st.lists(_special_chars, max_size=4).map("".join),
)
keys = st.one_of(text, st.sampled_from(["body", "msgtype", "m.relates_to", "a", "b", "A", "é"]))
canonical_ints = st.one_of(
    st.integers(min_value=MIN_INT, max_value=MAX_INT), st.sampled_from(EDGE_LEVELS)
)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Arbitrary canonical-JSON values (no floats), nested."""
    scalars = st.one_of(st.none(), st.booleans(), canonical_ints, text)
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(keys, children, max_size=4),
        ),
        max_leaves=max_leaves,
    )


json_objects = st.dictionaries(keys, json_values(), max_size=5)

event_ids = st.text(string.ascii_letters + string.digits + "-_", min_size=43, max_size=43).map(
    lambda s: "$" + s
)
users = st.sampled_from(USERS)
servers = st.sampled_from(SERVERS)
b64_hashes = st.text(string.ascii_letters + string.digits + "+/", min_size=43, max_size=43)


def legacy_room_id(server: str) -> str:
    return f"!room:{server}"


# --------------------------------------------------------------------------- contents


def create_contents(version: str) -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        content: dict[str, Any] = {}
        if draw(st.integers(0, 9)) > 0:
            content["room_version"] = draw(st.sampled_from([version, version, "9", "999"]))
        if draw(st.booleans()):
            content["creator"] = draw(users)
        if draw(st.integers(0, 2)) == 0:
            content["additional_creators"] = draw(
                st.one_of(
                    st.lists(users, max_size=3, unique=True),
                    st.just([]),
                    st.just("@alice:a.example"),
                    st.lists(st.one_of(users, text, st.integers()), max_size=2),
                )
            )
        if draw(st.integers(0, 3)) == 0:
            content["m.federate"] = draw(st.one_of(st.booleans(), st.just("false"), st.none()))
        if draw(st.integers(0, 4)) == 0:
            content["predecessor"] = {"room_id": "!old:a.example", "event_id": draw(event_ids)}
        if draw(st.integers(0, 4)) == 0:
            content["type"] = draw(st.sampled_from(["m.space", "org.example.custom"]))
        content.update(draw(st.dictionaries(keys, json_values(4), max_size=2)))
        return content

    return build()


def third_party_invite_objects() -> st.SearchStrategy[dict[str, Any]]:
    signed = st.fixed_dictionaries(
        {"mxid": users, "token": st.sampled_from(["tok1", "tok2"]), "signatures": st.just({})},
        optional={"extra": json_values(3)},
    )
    return st.fixed_dictionaries(
        {"display_name": text, "signed": signed}, optional={"other": json_values(3)}
    )


def member_contents(membership: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[Any]:
    membership = membership if membership is not None else st.sampled_from(MEMBERSHIPS)
    return st.fixed_dictionaries(
        {"membership": membership},
        optional={
            "displayname": text,
            "avatar_url": st.just("mxc://a.example/abc"),
            "join_authorised_via_users_server": users,
            "third_party_invite": st.one_of(
                third_party_invite_objects(),
                third_party_invite_objects(),
                json_values(3),
                st.fixed_dictionaries({"signed": json_values(3)}),
            ),
            "reason": text,
            "is_direct": st.booleans(),
            "x": json_values(4),
        },
    )


levels = st.one_of(st.sampled_from(EDGE_LEVELS), st.integers(-5, 120))


def power_levels_contents(
    user_pool: tuple[str, ...] = USERS, allow_strings: bool = True
) -> st.SearchStrategy[dict[str, Any]]:
    # Malformed levels: numeric and other strings, booleans (an int subclass in Python), null.
    level = (
        st.one_of(levels, st.sampled_from(["50", "x", " 7", True, False, None]))
        if allow_strings
        else levels
    )
    event_types = st.sampled_from(
        [
            "m.room.message",
            "m.room.power_levels",
            "m.room.name",
            "m.room.member",
            "m.room.redaction",
            "m.room.join_rules",
            "org.example.state",
        ]
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "users": st.dictionaries(
                st.one_of(
                    st.sampled_from(user_pool),
                    st.sampled_from(user_pool),
                    st.sampled_from(
                        ["notauser", "@nocolon", "@x:", "@UPPER:a.example", "@x:bad host"]
                    ),
                )
                if allow_strings
                else st.sampled_from(user_pool),
                level,
                max_size=4,
            ),
            "users_default": level,
            "events": st.dictionaries(event_types, level, max_size=4),
            "events_default": level,
            "state_default": level,
            "ban": level,
            "kick": level,
            "redact": level,
            "invite": level,
            "notifications": st.dictionaries(st.sampled_from(["room", "other"]), level, max_size=2),
            "historical": level,
        },
    )


def allow_lists() -> st.SearchStrategy[Any]:
    entry = st.one_of(
        st.fixed_dictionaries(
            {"type": st.just("m.room_membership"), "room_id": st.just("!s:a.example")}
        ),
        st.fixed_dictionaries({"type": text}),
        json_values(3),
    )
    return st.lists(entry, max_size=3)


def join_rules_contents() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"join_rule": st.one_of(st.sampled_from(JOIN_RULES), text, json_values(2))},
        optional={"allow": allow_lists(), "x": json_values(3)},
    )


def history_visibility_contents() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"history_visibility": st.one_of(st.sampled_from(HISTORY_VISIBILITIES), text)},
        optional={"x": json_values(3)},
    )


def third_party_invite_contents() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"display_name": text},
        optional={
            "key_validity_url": st.just("https://id.example/_matrix/identity/v2/pubkey/isvalid"),
            "public_key": b64_hashes,
            "public_keys": st.lists(st.fixed_dictionaries({"public_key": b64_hashes}), max_size=2),
        },
    )


def message_contents() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.fixed_dictionaries(
            {"msgtype": st.just("m.text"), "body": text}, optional={"extra": json_values()}
        ),
        json_objects,
    )


# --------------------------------------------------------------------------- PDUs

#: (type, is_state, content strategy factory)
_KINDS = (
    "create",
    "member",
    "power_levels",
    "join_rules",
    "history_visibility",
    "redaction",
    "message",
    "third_party_invite",
    "unknown_state",
    "unknown",
    "aliases",
)


@st.composite
def pdus(
    draw: st.DrawFn, room_version: str | None = None, kind: str | None = None
) -> dict[str, Any]:
    """One PDU of room ``room_version`` (drawn if None).  Hashes and signatures are dummies."""
    version = room_version or draw(st.sampled_from(ROOM_VERSIONS))
    kind = kind or draw(st.sampled_from(_KINDS))
    sender = draw(users)
    server = sender.split(":", 1)[1]
    state_key: str | None = None
    content: dict[str, Any]
    extra: dict[str, Any] = {}
    if kind == "create":
        event_type, state_key = "m.room.create", ""
        content = draw(create_contents(version))
    elif kind == "member":
        event_type = "m.room.member"
        state_key = draw(users)
        content = draw(member_contents())
        if version == "10" and draw(st.booleans()):
            extra["membership"] = content["membership"]
    elif kind == "power_levels":
        event_type, state_key = "m.room.power_levels", ""
        content = draw(power_levels_contents())
    elif kind == "join_rules":
        event_type, state_key = "m.room.join_rules", ""
        content = draw(join_rules_contents())
    elif kind == "history_visibility":
        event_type, state_key = "m.room.history_visibility", ""
        content = draw(history_visibility_contents())
    elif kind == "redaction":
        event_type = "m.room.redaction"
        target = draw(event_ids)
        content = draw(st.dictionaries(keys, json_values(3), max_size=2))
        where = draw(st.sampled_from(["content", "top", "both"]))
        if where in ("content", "both"):
            content["redacts"] = target
        if where in ("top", "both"):
            extra["redacts"] = target
        if draw(st.integers(0, 5)) == 0:
            state_key = ""
    elif kind == "message":
        event_type = "m.room.message"
        content = draw(message_contents())
    elif kind == "third_party_invite":
        event_type = "m.room.third_party_invite"
        state_key = draw(st.sampled_from(["tok1", "tok2"]))
        content = draw(third_party_invite_contents())
    elif kind == "aliases":
        event_type, state_key = "m.room.aliases", server
        content = {"aliases": [f"#a:{server}"]}
    else:
        event_type = draw(
            st.one_of(
                st.sampled_from(
                    ["org.example.custom", "m.room.name", "m.room.topic", "m.room.server_acl"]
                ),
                st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=20),
            )
        )
        content = draw(json_objects)
        if kind == "unknown_state":
            state_key = draw(st.one_of(st.just(""), users, text))
    pdu: dict[str, Any] = {
        "type": event_type,
        "sender": sender,
        "content": content,
        "depth": draw(st.integers(1, MAX_INT)),
        "origin_server_ts": draw(st.integers(0, MAX_INT)),
        "prev_events": [] if kind == "create" else draw(st.lists(event_ids, max_size=3)),
        "auth_events": [] if kind == "create" else draw(st.lists(event_ids, max_size=4)),
        "hashes": {"sha256": draw(b64_hashes)},
    }
    if draw(st.integers(0, 7)) == 0:
        # hashes of other algorithms beside sha256 (none is defined yet; they must survive)
        pdu["hashes"]["sha512"] = draw(b64_hashes)
    if not (version == "12" and kind == "create"):
        pdu["room_id"] = "!" + draw(event_ids)[1:] if version == "12" else legacy_room_id(server)
    if state_key is not None:
        pdu["state_key"] = state_key
    if draw(st.booleans()):
        pdu["signatures"] = {server: {"ed25519:k1": draw(b64_hashes)}}
    if draw(st.integers(0, 3)) == 0:
        pdu["unsigned"] = draw(
            st.fixed_dictionaries({}, optional={"age": st.integers(0, 10**6), "x": json_values(3)})
        )
    # Top-level keys some redaction algorithms keep (room 10) and others drop (11+).
    if draw(st.booleans()):
        pdu["origin"] = server
    if draw(st.integers(0, 4)) == 0:
        pdu["prev_state"] = []
    if draw(st.integers(0, 4)) == 0:
        pdu.setdefault("membership", draw(st.sampled_from(MEMBERSHIPS)))
    if draw(st.integers(0, 5)) == 0:
        pdu.setdefault("redacts", draw(event_ids))
    pdu.update(extra)
    # Extra top-level keys that no algorithm knows (never the ones we set above).
    for k, v in draw(
        st.dictionaries(
            st.sampled_from(["org.example.top", "zzz", "é", "age_ts", "outlier", "destinations"]),
            json_values(3),
            max_size=2,
        )
    ).items():
        pdu.setdefault(k, v)
    return pdu


# --------------------------------------------------------------------------- auth scenarios


@dataclass
class AuthScenario:
    """A room state and a candidate event for the authorization rules."""

    room_version: str
    create: dict[str, Any]
    #: Every state event of the room, create included, by (type, state_key).
    state: dict[tuple[str, str], dict[str, Any]] = field(repr=False)
    #: The candidate event, auth_events filled in (event IDs of the selected state).
    pdu: dict[str, Any]
    #: The part of ``state`` the candidate's auth_events name (the spec's selection).
    auth_state: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict, repr=False)
    #: The events ``pdu["auth_events"]`` names, in order (duplicates possible).
    auth_events: list[dict[str, Any]] = field(default_factory=list)

    def auth_event_pdus(self) -> list[dict[str, Any]]:
        """Every event the candidate may refer to: listed ones plus the create event."""
        return [*self.auth_events, self.create]

    def describe(self) -> str:
        lines = [f"room version {self.room_version}", f"candidate: {self.pdu}"]
        for ev in self.auth_event_pdus():
            lines.append(
                f"  auth event {compute_event_id(ev, self.room_version)}: {ev['type']} "
                f"[{ev.get('state_key')!r}] sender={ev['sender']} content={ev['content']}"
                + (
                    f" room_id={ev.get('room_id')}"
                    if ev.get("room_id") != self.pdu.get("room_id")
                    else ""
                )
            )
        return "\n".join(lines)


def spec_auth_types(pdu: dict[str, Any], room_version: str) -> set[tuple[str, str]]:
    """The spec's auth events selection (written independently of both engines)."""
    if pdu["type"] == "m.room.create":
        return set()
    keys_: set[tuple[str, str]] = {
        ("m.room.create", ""),
        ("m.room.power_levels", ""),
        ("m.room.member", pdu["sender"]),
    }
    if pdu["type"] == "m.room.member":
        content = pdu["content"]
        membership = content.get("membership")
        keys_.add(("m.room.member", pdu["state_key"]))
        if membership in ("join", "invite", "knock"):
            keys_.add(("m.room.join_rules", ""))
        invite = content.get("third_party_invite")
        if membership == "invite" and isinstance(invite, dict):
            signed = invite.get("signed")
            if isinstance(signed, dict) and isinstance(signed.get("token"), str):
                keys_.add(("m.room.third_party_invite", signed["token"]))
        authoriser = content.get("join_authorised_via_users_server")
        if membership == "join" and isinstance(authoriser, str):
            keys_.add(("m.room.member", authoriser))
    if room_version == "12":
        keys_.discard(("m.room.create", ""))
    return keys_


_CANDIDATE_KINDS = (
    "member",
    "member",
    "member",
    "member",
    "power_levels",
    "power_levels",
    "join_rules",
    "message",
    "redaction",
    "history_visibility",
    "third_party_invite",
    "state",
    "user_state",
    "create",
)


@st.composite
def auth_scenarios(draw: st.DrawFn, room_version: str | None = None) -> AuthScenario:
    """A small room and a candidate event; accepted and rejected outcomes both common."""
    version = room_version or draw(st.sampled_from(ROOM_VERSIONS))
    creator = draw(st.sampled_from(USERS[:4]))
    creator_server = creator.split(":", 1)[1]
    ts = 1_700_000_000_000
    depth = 1

    create_content: dict[str, Any] = {"room_version": version}
    if version == "10" or draw(st.integers(0, 5)) == 0:
        create_content["creator"] = creator
    if version == "12" and draw(st.integers(0, 2)) == 0:
        create_content["additional_creators"] = draw(
            st.lists(st.sampled_from(USERS), min_size=1, max_size=2, unique=True)
        )
    if draw(st.integers(0, 9)) == 0:
        create_content["m.federate"] = False
    create: dict[str, Any] = {
        "type": "m.room.create",
        "state_key": "",
        "sender": creator,
        "content": create_content,
        "depth": depth,
        "origin_server_ts": ts,
        "prev_events": [],
        "auth_events": [],
        "hashes": {"sha256": "x" * 43},
    }
    if version == "12":
        room_id = compute_room_id(create)
    else:
        room_id = legacy_room_id(creator_server)
        create["room_id"] = room_id
    create_id = compute_event_id(create, version)

    state: dict[tuple[str, str], dict[str, Any]] = {("m.room.create", ""): create}
    last_id = create_id

    def add(event_type: str, state_key: str, sender: str, content: dict[str, Any]) -> None:
        nonlocal depth, last_id
        depth += 1
        ev: dict[str, Any] = {
            "type": event_type,
            "state_key": state_key,
            "sender": sender,
            "content": content,
            "room_id": room_id,
            "depth": depth,
            "origin_server_ts": ts + depth,
            "prev_events": [last_id],
            # the auth chain is irrelevant here: only the candidate's auth_events are checked
            "auth_events": [] if version == "12" else [create_id],
            "hashes": {"sha256": "x" * 43},
        }
        state[(event_type, state_key)] = ev
        last_id = compute_event_id(ev, version)

    # The creator usually joined.
    if draw(st.integers(0, 5)) > 0:
        add("m.room.member", creator, creator, {"membership": "join"})
    # Power levels, usually present; levels biased to the interesting thresholds.
    if draw(st.integers(0, 4)) > 0:
        pl = draw(power_levels_contents(allow_strings=False))
        if version == "12":
            creators = {creator, *create_content.get("additional_creators", [])}
            if draw(st.integers(0, 3)) > 0 and isinstance(pl.get("users"), dict):
                pl["users"] = {u: v for u, v in pl["users"].items() if u not in creators}
        elif draw(st.booleans()):
            pl.setdefault("users", {})[creator] = 100
        add("m.room.power_levels", "", creator, pl)
    if draw(st.integers(0, 3)) > 0:
        add("m.room.join_rules", "", creator, draw(join_rules_contents()))
    if draw(st.booleans()):
        add("m.room.history_visibility", "", creator, draw(history_visibility_contents()))
    for user in USERS:
        if user == creator:
            continue
        user_membership = draw(st.sampled_from((*MEMBERSHIPS, None, None)))
        if user_membership is not None:
            member_content = {"membership": user_membership}
            if user_membership == "join" and draw(st.integers(0, 3)) == 0:
                member_content["join_authorised_via_users_server"] = creator
            add("m.room.member", user, draw(st.sampled_from([user, creator])), member_content)
    if draw(st.integers(0, 3)) == 0:
        tpi = draw(third_party_invite_contents())
        if draw(st.integers(0, 3)) > 0:
            where = draw(st.sampled_from(["public_key", "public_keys"]))
            if where == "public_key":
                tpi["public_key"] = THIRD_PARTY_KEY.public_key_base64
            else:
                tpi["public_keys"] = [{"public_key": THIRD_PARTY_KEY.public_key_base64}]
        add("m.room.third_party_invite", "tok1", draw(users), tpi)

    # The candidate.
    sender = draw(st.one_of(users, st.just(creator)))
    kind = draw(st.sampled_from(_CANDIDATE_KINDS))
    state_key: str | None
    content: dict[str, Any]
    extra: dict[str, Any] = {}
    prev_events = [last_id]
    if kind == "member":
        target = draw(
            st.one_of(st.just(sender), users, st.just(sender), st.sampled_from(ODD_USER_IDS))
        )
        membership: Any = draw(
            st.one_of(
                st.sampled_from(MEMBERSHIPS),
                st.sampled_from(MEMBERSHIPS),
                st.sampled_from(["foo", "JOIN", None, 1, ["join"]]),
            )
        )
        content = {"membership": membership}
        if membership == "join" and draw(st.integers(0, 2)) == 0:
            content["join_authorised_via_users_server"] = draw(
                st.one_of(users, users, st.sampled_from([*ODD_USER_IDS, None, 5]))
            )
        if membership == "invite" and draw(st.integers(0, 2)) == 0:
            signed: dict[str, Any] = {
                "mxid": draw(st.sampled_from([target, target, sender])),
                "token": draw(st.sampled_from(["tok1", "tok1", "tok2"])),
            }
            signing_key = draw(st.sampled_from([THIRD_PARTY_KEY, THIRD_PARTY_KEY, OTHER_KEY]))
            signed = sign_json(signed, "id.example", signing_key)
            if draw(st.integers(0, 5)) == 0:
                signed["mxid"] = "@mallory:a.example"  # tampered after signing
            content["third_party_invite"] = {"display_name": "x", "signed": signed}
        if draw(st.integers(0, 4)) == 0:
            # a creator joining straight after the create event
            prev_events = [create_id]
        state_key = target
        event_type = "m.room.member"
    elif kind == "power_levels":
        event_type, state_key = "m.room.power_levels", ""
        current = state.get(("m.room.power_levels", ""))
        if current is not None and draw(st.booleans()):
            # a small change of the current levels
            content = {k: v for k, v in current["content"].items()}
            field_ = draw(
                st.sampled_from(["users", "ban", "events", "users_default", "notifications"])
            )
            if field_ in ("users", "events", "notifications"):
                sub: dict[str, Any] = dict(content.get(field_, {}))
                name = draw(
                    users if field_ == "users" else st.sampled_from(["m.room.message", "room"])
                )
                if draw(st.booleans()) and name in sub:
                    del sub[name]
                else:
                    sub[name] = draw(levels)
                content[field_] = sub
            else:
                content[field_] = draw(levels)
        else:
            content = draw(power_levels_contents())
            if draw(st.integers(0, 9)) == 0:
                content[draw(st.sampled_from(["users", "events", "notifications"]))] = draw(
                    st.sampled_from([[], "x", 5, None])
                )
    elif kind == "join_rules":
        event_type, state_key = "m.room.join_rules", ""
        content = draw(join_rules_contents())
    elif kind == "history_visibility":
        event_type, state_key = "m.room.history_visibility", ""
        content = draw(history_visibility_contents())
    elif kind == "message":
        event_type, state_key = "m.room.message", None
        content = draw(message_contents())
    elif kind == "redaction":
        event_type, state_key = "m.room.redaction", None
        target_id = draw(st.one_of(event_ids, st.just(last_id)))
        content = {}
        if version == "10":
            extra["redacts"] = target_id
        else:
            content["redacts"] = target_id
    elif kind == "third_party_invite":
        event_type = "m.room.third_party_invite"
        state_key = draw(st.sampled_from(["tok1", "tok2"]))
        content = draw(third_party_invite_contents())
    elif kind == "user_state":
        event_type = "org.example.state"
        state_key = draw(st.one_of(users, users.map(lambda u: u + "_suffix")))
        content = draw(json_objects)
    elif kind == "create":
        event_type, state_key = "m.room.create", ""
        content = draw(create_contents(version))
        prev_events = draw(st.sampled_from([[], [], [last_id]]))
    else:
        event_type = draw(st.sampled_from(["m.room.name", "m.room.topic", "org.example.state"]))
        state_key = draw(st.sampled_from(["", "x"]))
        content = draw(json_objects)

    pdu: dict[str, Any] = {
        "type": event_type,
        "sender": sender,
        "content": content,
        "depth": depth + 1,
        "origin_server_ts": ts + depth + 1,
        "prev_events": prev_events,
        "auth_events": [],
        "hashes": {"sha256": "x" * 43},
    }
    if kind == "create":
        if version != "12":
            pdu["room_id"] = draw(
                st.sampled_from([room_id, legacy_room_id(sender.split(":", 1)[1])])
            )
    else:
        pdu["room_id"] = room_id
    if state_key is not None:
        pdu["state_key"] = state_key
    pdu.update(extra)
    # Signatures are present but not valid: auth checks only which servers signed.
    signers = {sender.split(":", 1)[1]}
    authoriser = content.get("join_authorised_via_users_server")
    if isinstance(authoriser, str) and ":" in authoriser and draw(st.integers(0, 3)) > 0:
        signers.add(authoriser.split(":", 1)[1])
    pdu["signatures"] = {s: {"ed25519:k": "c2ln"} for s in sorted(signers)}

    selected = spec_auth_types(pdu, version)
    listed = [ev for k, ev in state.items() if k in selected]
    # (three booleans: Hypothesis favours False, so this stays rare)
    if kind != "create" and all(draw(st.booleans()) for _ in range(3)):
        # Break the rules about the auth_events list itself.
        mutation = draw(st.sampled_from(["drop", "extra", "duplicate", "create12", "other_room"]))
        if mutation == "drop" and listed:
            listed.remove(draw(st.sampled_from(listed)))
        elif mutation == "extra":
            unselected = [ev for k, ev in state.items() if k not in selected]
            if unselected:
                listed.append(draw(st.sampled_from(unselected)))
        elif mutation == "duplicate" and listed:
            twin = dict(draw(st.sampled_from(listed)))
            twin["origin_server_ts"] += 1
            listed.append(twin)
        elif mutation == "create12" and version == "12":
            listed.append(create)
        elif mutation == "other_room" and listed:
            i = draw(st.integers(0, len(listed) - 1))
            stranger = dict(listed[i])
            if stranger["type"] != "m.room.create" or version != "12":
                stranger["room_id"] = "!elsewhere:b.example"
                listed[i] = stranger
    auth_state = {(ev["type"], ev["state_key"]): ev for ev in listed}
    if version == "12" and kind != "create":
        # the create event is implied by the room ID but still part of the auth state
        auth_state[("m.room.create", "")] = create
    pdu["auth_events"] = [compute_event_id(ev, version) for ev in listed]
    return AuthScenario(version, create, state, pdu, auth_state, listed)


# --------------------------------------------------------------------------- signing keys

seeds = st.binary(min_size=32, max_size=32)
key_versions = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=8)


# --------------------------------------------------------------------------- state resolution


@dataclass
class StateResScenario:
    """A small room DAG that forks into branches; the branches' states are to be resolved."""

    room_version: str
    #: event ID -> PDU, every event of the room
    events: dict[str, dict[str, Any]]
    #: one state map per branch: (type, state_key) -> event ID
    state_sets: list[dict[tuple[str, str], str]]
    #: branch events already rejected (e.g. by their auth chain): never admitted to state
    rejected: set[str] = field(default_factory=set)


_STATE_ACTIONS = (
    "member",
    "member",
    "member",
    "power_levels",
    "power_levels",
    "join_rules",
    "topic",
)


@st.composite
def state_res_scenarios(draw: st.DrawFn, room_version: str | None = None) -> StateResScenario:
    """A room whose events fork into 2-3 branches of random (often unauthorised) changes.

    Each branch event lists the auth events the spec's selection picks from its branch's
    state at that point, whether or not it would pass the rules, so the resolution's
    iterative auth checks have work to do.  Timestamps collide on purpose (ties are broken
    by event ID), and a branch may start from another branch's middle.
    """
    version = room_version or draw(st.sampled_from(ROOM_VERSIONS))
    creator = USERS[0]
    create_content: dict[str, Any] = {"room_version": version}
    if version == "10":
        create_content["creator"] = creator
    if version == "12" and draw(st.booleans()):
        create_content["additional_creators"] = [USERS[1]]
    create: dict[str, Any] = {
        "type": "m.room.create",
        "state_key": "",
        "sender": creator,
        "content": create_content,
        "depth": 1,
        "origin_server_ts": 0,
        "prev_events": [],
        "auth_events": [],
        "hashes": {"sha256": "x" * 43},
    }
    if version == "12":
        room_id = compute_room_id(create)
    else:
        room_id = legacy_room_id("a.example")
        create["room_id"] = room_id
    create_id = compute_event_id(create, version)
    events: dict[str, dict[str, Any]] = {create_id: create}

    def emit(
        state: dict[tuple[str, str], str],
        last: str,
        event_type: str,
        state_key: str,
        sender: str,
        content: dict[str, Any],
        ts: int,
    ) -> str:
        pdu: dict[str, Any] = {
            "type": event_type,
            "state_key": state_key,
            "sender": sender,
            "content": content,
            "room_id": room_id,
            "depth": events[last]["depth"] + 1,
            "origin_server_ts": ts,
            "prev_events": [last],
            "auth_events": [],
            "hashes": {"sha256": "x" * 43},
        }
        selected = spec_auth_types(pdu, version)
        pdu["auth_events"] = sorted(state[k] for k in selected if k in state)
        event_id = compute_event_id(pdu, version)
        events[event_id] = pdu
        state[(event_type, state_key)] = event_id
        return event_id

    base: dict[tuple[str, str], str] = {("m.room.create", ""): create_id}
    last = emit(base, create_id, "m.room.member", creator, creator, {"membership": "join"}, 1)
    pl_users = {} if version == "12" else {creator: 100}
    pl_users[USERS[2]] = draw(st.sampled_from([0, 50, 100]))
    last = emit(
        base, last, "m.room.power_levels", "", creator,
        {"users": pl_users, "state_default": 50, "ban": 50, "kick": 50, "invite": 0},
        2,
    )  # fmt: skip
    last = emit(base, last, "m.room.join_rules", "", creator, {"join_rule": "public"}, 3)
    for i, user in enumerate(USERS[1:4], start=4):
        last = emit(base, last, "m.room.member", user, user, {"membership": "join"}, i)

    timestamps = st.sampled_from([10, 10, 11, 12, 20])
    branches: list[tuple[dict[tuple[str, str], str], str]] = []
    points: list[tuple[dict[tuple[str, str], str], str]] = [(dict(base), last)]
    for _ in range(draw(st.integers(2, 3))):
        start_state, start_last = draw(st.sampled_from(points))
        state, cur = dict(start_state), start_last
        for _ in range(draw(st.integers(1, 5))):
            action = draw(st.sampled_from(_STATE_ACTIONS))
            sender = draw(st.sampled_from(USERS[:4]))
            ts = draw(timestamps)
            if action == "member":
                target = draw(st.sampled_from([sender, *USERS]))
                membership = draw(st.sampled_from(MEMBERSHIPS))
                cur = emit(
                    state, cur, "m.room.member", target, sender, {"membership": membership}, ts
                )
            elif action == "power_levels":
                new_users = {
                    u: draw(st.sampled_from([0, 50, 75, 100]))
                    for u in draw(st.lists(st.sampled_from(USERS), max_size=3, unique=True))
                    if not (
                        version == "12"
                        and u in (creator, *create_content.get("additional_creators", []))
                    )
                }
                content = {
                    "users": new_users,
                    "state_default": 50,
                    "ban": draw(st.sampled_from([0, 50, 100])),
                }
                cur = emit(state, cur, "m.room.power_levels", "", sender, content, ts)
            elif action == "join_rules":
                rule_ = draw(st.sampled_from(["public", "invite", "knock"]))
                cur = emit(state, cur, "m.room.join_rules", "", sender, {"join_rule": rule_}, ts)
            else:
                cur = emit(state, cur, "m.room.topic", "", sender, {"topic": draw(text)}, ts)
            points.append((dict(state), cur))
        branches.append((state, cur))
    forked = sorted(set(events) - set(base.values()))
    rejected: set[str] = set()
    if forked and not any(draw(st.booleans()) for _ in range(2)):
        rejected = set(draw(st.lists(st.sampled_from(forked), max_size=2)))
    return StateResScenario(version, events, [s for s, _ in branches], rejected)
