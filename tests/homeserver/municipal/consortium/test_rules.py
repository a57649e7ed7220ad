"""The consortium document's rules, pure: who must sign, rollback, expiry, tampering."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation.signing import encode_base64
from homeserver.municipal.consortium import document, rules
from tests.homeserver.municipal.consortium.docs import (
    ADMINS,
    DAY_MS,
    NOW,
    first_version,
    key,
    next_version,
    sign_all,
)

A, B, C = "city-a.example.jp", "city-b.example.jp", "city-c.example.jp"
SERVERS = {A: key("server-a"), B: key("server-b")}


def refused(obj: Any, held: document.Document | None = None, now: int = NOW) -> str:
    with pytest.raises(rules.Refused) as e:
        rules.check(obj, now_ms=now, held=held)
    message = str(e.value)
    assert "\n" not in message
    return message


def test_a_first_version_signed_by_k_of_its_admins_is_valid() -> None:
    doc = rules.check(first_version(SERVERS), now_ms=NOW)
    assert (doc.id, doc.version, set(doc.members)) == ("kanto", 1, {A, B})
    assert doc.members[A].organisation == document.Organisation("131016", "千代田区", "ちよだく")
    assert rules.members_of({"kanto": doc}, NOW) == {A, B}
    assert rules.pinned_keys({"kanto": doc}, NOW)[A] == {
        SERVERS[A].key_id: SERVERS[A].public_key_base64
    }


def test_short_signed_and_unsigned_documents_are_refused() -> None:
    assert "signed by 1 of the 2 admins of version 1" in refused(
        first_version(SERVERS, signers=ADMINS[:1])
    )
    assert "signed by 0 of the 2" in refused(first_version(SERVERS, signers=[]))
    # A signature by a key that is no admin counts for nothing.
    outsider = key("outsider")
    obj = first_version(SERVERS, signers=ADMINS[:1])
    obj["signatures"]["kanto"][outsider.key_id] = encode_base64(outsider.sign(b"x"))
    assert "signed by 1 of the 2" in refused(obj)


def test_a_forged_signature_is_refused() -> None:
    """Signed under an admin's key ID by another key: refused, however many others sign."""
    forger = key("forger")
    obj = first_version(SERVERS, signers=ADMINS)
    forged = sign_all(
        {k: v for k, v in obj.items() if k != "signatures"},
        [ADMINS[0], ADMINS[1]],
    )
    signature = forger.sign(document.parse(obj).json["id"].encode())
    forged["signatures"]["kanto"][ADMINS[2].key_id] = encode_base64(signature)
    assert refused(forged) == "bad signature by admin ed25519:admin3 of version 1"


def test_expired_documents_are_refused() -> None:
    obj = first_version(SERVERS, valid_until_ts=NOW - 1)
    assert refused(obj).startswith("expired at 2026-10-31T23:59:59Z")
    # Still valid a millisecond before its end, not at it.
    later = first_version(SERVERS, valid_until_ts=NOW + DAY_MS)
    rules.check(later, now_ms=NOW + DAY_MS - 1)
    refused(later, now=NOW + DAY_MS)
    # An expired document's members no longer count.
    doc = rules.check_stored(later)
    assert rules.members_of({"kanto": doc}, NOW + DAY_MS) == frozenset()


def test_a_new_version_needs_k_admins_of_the_previous_one() -> None:
    v1 = first_version(SERVERS)
    held = rules.check(v1, now_ms=NOW)
    v2 = next_version(v1, add={C: key("server-c")}, remove=(B,))
    doc = rules.check(v2, now_ms=NOW, held=held)
    assert (doc.version, set(doc.members)) == (2, {A, C})
    # New admins in version 2 do not sign it: the admins of version 1 do.
    newcomers = [key("new1"), key("new2")]
    v2_new_admins = next_version(v1, admins=newcomers, signers=newcomers)
    assert "signed by 0 of the 2 admins of version 1" in refused(v2_new_admins, held)
    v2_handover = next_version(v1, admins=newcomers, signers=ADMINS[1:])
    handed = rules.check(v2_handover, now_ms=NOW, held=held)
    # ...and version 3 is then theirs to sign.
    v3 = next_version(v2_handover, signers=newcomers)
    assert rules.check(v3, now_ms=NOW, held=handed).version == 3
    assert "signed by 0 of the 2 admins of version 2" in refused(
        next_version(v2_handover, signers=ADMINS[:2]), handed
    )


def test_rollbacks_and_replays_are_refused() -> None:
    v1 = first_version(SERVERS)
    v2 = next_version(v1, remove=(B,))
    held2 = rules.check(v2, now_ms=NOW, held=rules.check(v1, now_ms=NOW))
    assert refused(v1, held2) == "version 1 is not newer than version 2 held (a rollback)"
    assert refused(v2, held2) == "version 2 is not newer than version 2 held (the version held)"
    other = first_version(SERVERS, doc_id="tohoku")
    assert "is not consortium 'kanto'" in refused(other, held2)


def test_a_version_whose_previous_admins_are_not_those_held_is_refused() -> None:
    """A document that claims other admins for the version held (its own 'previous')."""
    v1 = first_version(SERVERS)
    held = rules.check(v1, now_ms=NOW)
    rogue = [key("rogue1"), key("rogue2")]
    draft = document.start_edit(v1, signed=True)
    draft["previous"]["admins"] = {k.key_id: k.public_key_base64 for k in rogue}
    draft["previous"]["threshold"] = 2
    forged = sign_all(draft, rogue)
    # Offline it is self-consistent (verify cannot know better)...
    rules.check(forged, now_ms=NOW)
    # ...a node holding version 1 knows its admins.
    assert "not those of the version held" in refused(forged, held)


def test_skipped_versions_need_the_same_admins() -> None:
    v1 = first_version(SERVERS)
    held = rules.check(v1, now_ms=NOW)
    v2 = next_version(v1, add={C: key("server-c")})
    v3 = next_version(v2, remove=(A,))
    assert rules.check(v3, now_ms=NOW, held=held).version == 3
    newcomers = [key("new1"), key("new2")]
    v2b = next_version(v1, admins=newcomers)
    v3b = next_version(v2b, signers=newcomers)
    assert "apply the versions between" in refused(v3b, held)


def test_sign_refuses_keys_that_are_not_admins() -> None:
    draft = document.start_edit(first_version(SERVERS), signed=True)
    with pytest.raises(rules.Refused, match="is not an admin of version 1"):
        rules.sign(draft, key("outsider"))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d["members"][A]["verify_keys"].update({"ed25519:s": "AAAA"}), "does not verify"),
        (lambda d: d["members"][A]["verify_keys"].update({"rsa:s": "AAAA"}), "not an 'ed25519"),
        (lambda d: d["members"][A]["organisation"].update({"code": "131017"}), "JIS X 0402"),
        (lambda d: d["members"].update({"bad name!": d["members"][A]}), "not a server name"),
        (lambda d: d.update({"threshold": 4}), "more than the 3 admins"),
        (lambda d: d.update({"threshold": 0}), "threshold must be"),
        (lambda d: d.update({"version": True}), "version must be"),
        (lambda d: d.update({"extra": 1}), "unknown fields: extra"),
        (
            lambda d: d.update({"previous": {"version": 1, "admins": {}, "threshold": 1}}),
            "version 1",
        ),
        (lambda d: d["admins"].update({"ed25519:x": d["admins"]["ed25519:admin1"]}), "twice"),
    ],
)
def test_malformed_documents_are_refused(change: Any, reason: str) -> None:
    obj = first_version(SERVERS)
    change(obj)
    message = refused(obj)
    assert message.startswith("malformed document: ") and reason in message


def test_jis_x_0402_check_digits() -> None:
    for code in ("131016", "011002", "271004", "472018", "130001"):
        assert document.check_digit_ok(code), code
    for code in ("131017", "01100", "1310160", "13101a"):
        assert not document.check_digit_ok(code), code


# ---------------------------------------------------------------------- tampering


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a document's signed content (not its signatures)."""
    found = [path] if path else []
    if isinstance(value, dict):
        for k, v in value.items():
            if not path and k == "signatures":
                continue
            found += _paths(v, (*path, k))
    return found


SIGNED = first_version(SERVERS, signers=ADMINS)
PATHS = _paths(SIGNED)


def _tampered(obj: dict[str, Any], path: tuple[Any, ...], new: Any) -> dict[str, Any]:
    changed = copy.deepcopy(obj)
    target = changed
    for k in path[:-1]:
        target = target[k]
    if target[path[-1]] == new:
        new = [new]  # a change, whatever was drawn
    target[path[-1]] = new
    return changed


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(PATHS) - 1), new=json_values)
def test_changing_any_signed_field_breaks_validity(index: int, new: Any) -> None:
    rules.check(SIGNED, now_ms=NOW)
    with pytest.raises(rules.Refused):
        rules.check(_tampered(SIGNED, PATHS[index], new), now_ms=NOW)


@settings(max_examples=100, deadline=None)
@given(name=st.text(min_size=1, max_size=5), data=st.text(max_size=5))
def test_adding_a_field_breaks_validity(name: str, data: str) -> None:
    for path in [(), *(p for p in PATHS if isinstance(_at(SIGNED, p), dict))]:
        changed = copy.deepcopy(SIGNED)
        target = _at(changed, path)
        if name in target:
            continue
        target[name] = data
        with pytest.raises(rules.Refused):
            rules.check(changed, now_ms=NOW)


def _at(obj: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        obj = obj[k]
    return obj
