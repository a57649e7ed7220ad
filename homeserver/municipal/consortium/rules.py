"""When a consortium document is valid, and when it replaces the one held.  Pure.

A version is valid when at least K admins of its *authority* signed it (the previous
version's admins and threshold, which the document carries in ``previous``; version 1:
its own), it has not expired, and it is newer than the version held.  A node holding
version M accepts version N > M only when the authority N names is the admin set of M
(N = M + 1, or the admins did not change in between): otherwise it must first apply the
versions between (gossip fetches them).  Every refusal is a :class:`Refused` with a
one-line reason, and the caller changes nothing.  spec/consortium.md has the details.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from federation.errors import FederationError
from federation.signing import SigningKey, sign_json, verify_json
from homeserver.municipal.consortium.document import Admins, Document, DocumentError, parse


class Refused(ValueError):
    """The document may not be applied (the message is one line)."""


def valid_signers(doc: Document) -> tuple[set[str], list[str]]:
    """The authority's admins whose signature verifies, and those whose does not."""
    signatures = doc.json.get("signatures", {}).get(doc.id, {})
    good, bad = set(), []
    for key_id in signatures:
        public = doc.authority.keys.get(key_id)
        if public is None:
            continue  # not an admin of the authority: ignored, as Matrix ignores extra keys
        try:
            verify_json(dict(doc.json), doc.id, key_id, public)
            good.add(key_id)
        except FederationError:
            bad.append(key_id)
    return good, sorted(bad)


def is_signed(doc: Document) -> bool:
    """Whether enough of its authority signed it (expiry and the held version aside)."""
    good, bad = valid_signers(doc)
    return not bad and len(good) >= doc.authority.threshold


def check_signatures(doc: Document) -> None:
    good, bad = valid_signers(doc)
    if bad:
        raise Refused(f"bad signature by admin {bad[0]} of version {doc.authority_version}")
    needed = doc.authority.threshold
    if len(good) < needed:
        raise Refused(
            f"signed by {len(good)} of the {needed} admins of version "
            f"{doc.authority_version} needed"
        )


def _same(a: Admins, b: Admins) -> bool:
    return dict(a.keys) == dict(b.keys) and a.threshold == b.threshold


def check(obj: Any, *, now_ms: int, held: Document | None = None) -> Document:
    """The document, if it may replace ``held`` (None: nothing held for its id) now."""
    try:
        doc = parse(obj)
    except DocumentError as e:
        raise Refused(f"malformed document: {e}") from None
    if held is not None:
        if doc.id != held.id:
            raise Refused(f"document {doc.id!r} is not consortium {held.id!r}")
        if doc.version <= held.version:
            what = "the version held" if doc.version == held.version else "a rollback"
            raise Refused(
                f"version {doc.version} is not newer than version {held.version} held ({what})"
            )
    if doc.valid_until_ts <= now_ms:
        raise Refused(f"expired at {format_ts(doc.valid_until_ts)}")
    check_signatures(doc)
    if held is not None:
        assert doc.previous is not None  # a version > held.version >= 1 has one
        if not _same(doc.previous, held.admins):
            if doc.previous_version == held.version:
                raise Refused(
                    f"version {doc.version} names admins for version {held.version} that are "
                    "not those of the version held"
                )
            raise Refused(
                f"version {doc.version} follows version {doc.previous_version}, whose admins "
                f"differ from those of version {held.version} held: apply the versions between"
            )
    return doc


def sign(obj: Mapping[str, Any], key: SigningKey) -> dict[str, Any]:
    """The document with ``key``'s signature added; the key must be an admin of its
    authority (the previous version's admins; version 1: its own)."""
    try:
        doc = parse(obj)
    except DocumentError as e:
        raise Refused(f"malformed document: {e}") from None
    if doc.authority.keys.get(key.key_id) != key.public_key_base64:
        raise Refused(
            f"{key.key_id} {key.public_key_base64} is not an admin of version "
            f"{doc.authority_version}"
        )
    return sign_json(dict(obj), doc.id, key)


def format_ts(ts_ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(ts_ms / 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def members_of(documents: Mapping[str, Document], now_ms: int) -> frozenset[str]:
    """The union of the members of the documents still valid at ``now_ms``."""
    return frozenset(
        server
        for doc in documents.values()
        if doc.valid_until_ts > now_ms
        for server in doc.members
    )


def pinned_keys(documents: Mapping[str, Document], now_ms: int) -> dict[str, dict[str, str]]:
    """server -> its pinned keys, over every document still valid (several consortia
    naming one server: every key any of them pins)."""
    pins: dict[str, dict[str, str]] = {}
    for doc in documents.values():
        if doc.valid_until_ts > now_ms:
            for server, member in doc.members.items():
                pins.setdefault(server, {}).update(member.verify_keys)
    return pins


def check_stored(obj: Any) -> Document:
    """A document read back from the node's own table (checked when it was stored)."""
    try:
        return parse(obj)
    except DocumentError as e:
        raise Refused(f"malformed stored document: {e}") from None
