"""The consortium document: its schema, read strictly, and the edits that make a draft.

Pure (no I/O).  A document is JSON signed the Matrix way (spec/consortium.md)::

    {"id": "kanto-lgwan", "name": "関東LGWAN連携", "name_reading": "かんとう...",
     "version": 2, "valid_until_ts": 1790000000000,
     "admins": {"ed25519:a1": "<public key>", ...}, "threshold": 2,
     "members": {"matrix.city.example.jp": {
         "verify_keys": {"ed25519:k1": "<public key>"},
         "organisation": {"code": "131016", "name": "千代田区", "reading": "ちよだく"}}},
     "previous": {"version": 1, "admins": {...}, "threshold": 2},
     "signatures": {"kanto-lgwan": {"ed25519:a1": "<signature>", ...}}}

``previous`` (absent from version 1) names the admins of the version this one replaces:
they are the ones whose signatures make it valid (rules.py).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from federation.errors import FederationError
from federation.identifiers import is_valid_server_name
from federation.signing import decode_verify_key, split_key_id

_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_KEY_VERSION = re.compile(r"[A-Za-z0-9_]{1,64}")
_TOP = {
    "id", "name", "name_reading", "version", "valid_until_ts", "admins", "threshold",
    "members", "previous", "signatures", "unsigned",
}  # fmt: skip
MAX_INT = 2**53 - 1
MAX_MEMBERS = 10_000


class DocumentError(ValueError):
    """The document is malformed (the message is one line)."""


@dataclass(frozen=True)
class Organisation:
    #: JIS X 0402 local government code (6 digits, the last a check digit).
    code: str
    name: str
    reading: str


@dataclass(frozen=True)
class Member:
    server_name: str
    #: ``ed25519:<version>`` -> unpadded base64 public key: the only keys that verify it.
    verify_keys: Mapping[str, str]
    organisation: Organisation | None


@dataclass(frozen=True)
class Admins:
    #: ``ed25519:<version>`` -> unpadded base64 public key.
    keys: Mapping[str, str]
    threshold: int


@dataclass(frozen=True)
class Document:
    id: str
    name: str
    name_reading: str
    version: int
    valid_until_ts: int
    admins: Admins
    members: Mapping[str, Member]
    #: The admins of the version this one replaces (None on version 1).
    previous: Admins | None
    previous_version: int | None
    #: The JSON as read (signatures included).
    json: Mapping[str, Any]

    @property
    def authority(self) -> Admins:
        """Whose signatures make this version valid: the previous version's admins, or,
        for version 1, its own."""
        return self.previous if self.previous is not None else self.admins

    @property
    def authority_version(self) -> int:
        return self.previous_version if self.previous_version is not None else self.version


def check_digit_ok(code: str) -> bool:
    """A JIS X 0402 code's check digit: weights 6..2 on the first five digits."""
    if not re.fullmatch(r"[0-9]{6}", code):
        return False
    total = sum(int(d) * w for d, w in zip(code[:5], (6, 5, 4, 3, 2), strict=True))
    return (11 - total % 11) % 10 == int(code[5])


def parse(obj: Any) -> Document:
    """Read a document strictly; :class:`DocumentError` names the first problem."""
    if not isinstance(obj, dict):
        raise DocumentError("a consortium document is a JSON object")
    unknown = sorted(set(obj) - _TOP)
    if unknown:
        raise DocumentError(f"unknown fields: {', '.join(unknown)}")
    doc_id = _str(obj, "id")
    if not _ID.fullmatch(doc_id):
        raise DocumentError(f"id {doc_id!r} must be 1-64 of a-z, 0-9, '.', '_', '-'")
    version = _int(obj, "version", minimum=1)
    previous = obj.get("previous")
    if version == 1 and previous is not None:
        raise DocumentError("version 1 has no previous version")
    if version > 1 and previous is None:
        raise DocumentError(f"version {version} must name its previous version's admins")
    prev_admins, prev_version = None, None
    if previous is not None:
        if not isinstance(previous, dict) or set(previous) != {"version", "admins", "threshold"}:
            raise DocumentError("previous must have exactly version, admins and threshold")
        prev_version = _int(previous, "version", minimum=1)
        if prev_version >= version:
            raise DocumentError(f"previous version {prev_version} is not older than {version}")
        prev_admins = _admins(previous, "previous.")
    signatures = obj.get("signatures", {})
    if not isinstance(signatures, dict) or not all(
        isinstance(s, dict) and all(isinstance(v, str) for v in s.values())
        for s in signatures.values()
    ):
        raise DocumentError("signatures must map names to {key ID: signature}")
    return Document(
        id=doc_id,
        name=_str(obj, "name"),
        name_reading=_str(obj, "name_reading", required=False),
        version=version,
        valid_until_ts=_int(obj, "valid_until_ts", minimum=0),
        admins=_admins(obj, ""),
        members=_members(obj.get("members")),
        previous=prev_admins,
        previous_version=prev_version,
        json=obj,
    )


def _str(obj: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = obj.get(name, None if required else "")
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > 255:
        raise DocumentError(f"{name} must be a non-empty string of at most 255 characters")
    return value


def _int(obj: Mapping[str, Any], name: str, *, minimum: int) -> int:
    value = obj.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= MAX_INT:
        raise DocumentError(f"{name} must be an integer from {minimum}")
    return value


def _keys(raw: Any, what: str) -> dict[str, str]:
    if not isinstance(raw, dict) or not raw:
        raise DocumentError(f"{what} must map at least one 'ed25519:VERSION' to a key")
    for key_id, public in raw.items():
        check_key(key_id, public, what)
    return dict(raw)


def check_key(key_id: Any, public: Any, what: str = "key") -> None:
    try:
        algorithm, version = split_key_id(key_id)
    except FederationError as e:
        raise DocumentError(f"{what}: {e}") from None
    if algorithm != "ed25519" or not _KEY_VERSION.fullmatch(version):
        raise DocumentError(f"{what}: {key_id!r} is not an 'ed25519:VERSION' key ID")
    if not isinstance(public, str):
        raise DocumentError(f"{what}: the key of {key_id} is not a string")
    try:
        decode_verify_key(public)
    except FederationError as e:
        raise DocumentError(f"{what}: the key of {key_id} does not verify: {e}") from None


def _admins(obj: Mapping[str, Any], where: str) -> Admins:
    keys = _keys(obj.get("admins"), f"{where}admins")
    if len(set(keys.values())) != len(keys):
        raise DocumentError(f"{where}admins: one key is listed twice")
    threshold = _int(obj, "threshold", minimum=1)
    if threshold > len(keys):
        raise DocumentError(f"{where}threshold {threshold} is more than the {len(keys)} admins")
    return Admins(keys, threshold)


def _members(raw: Any) -> dict[str, Member]:
    if not isinstance(raw, dict) or len(raw) > MAX_MEMBERS:
        raise DocumentError("members must map server names to members")
    members = {}
    for server, entry in raw.items():
        if not is_valid_server_name(server):
            raise DocumentError(f"member {server!r} is not a server name")
        if not isinstance(entry, dict) or not set(entry) <= {"verify_keys", "organisation"}:
            raise DocumentError(f"member {server}: only verify_keys and organisation")
        org = entry.get("organisation")
        organisation = None
        if org is not None:
            if not isinstance(org, dict) or not set(org) <= {"code", "name", "reading"}:
                raise DocumentError(f"member {server}: organisation has code, name, reading")
            code = org.get("code", "")
            if not isinstance(code, str) or (code and not check_digit_ok(code)):
                raise DocumentError(f"member {server}: {code!r} is not a JIS X 0402 code")
            organisation = Organisation(
                code,
                _str(org, "name", required=False),
                _str(org, "reading", required=False),
            )
        keys = _keys(entry.get("verify_keys"), f"member {server}: verify_keys")
        members[server] = Member(server, keys, organisation)
    return members


# ---------------------------------------------------------------------------- drafts


def new_draft(
    doc_id: str,
    name: str,
    name_reading: str,
    admins: Mapping[str, str],
    threshold: int,
    valid_until_ts: int,
) -> dict[str, Any]:
    """Version 1, unsigned."""
    obj: dict[str, Any] = {
        "id": doc_id, "name": name, "name_reading": name_reading, "version": 1,
        "valid_until_ts": valid_until_ts, "admins": dict(admins), "threshold": threshold,
        "members": {},
    }  # fmt: skip
    parse(obj)
    return obj


def start_edit(obj: Mapping[str, Any], signed: bool) -> dict[str, Any]:
    """The draft an edit works on.  A signed version is the base of the next one
    (version + 1, its admins as ``previous``); a draft is edited in place.  Signatures
    go either way: they were over the content before the edit."""
    doc = parse(obj)
    draft = copy.deepcopy(dict(obj))
    draft.pop("signatures", None)
    draft.pop("unsigned", None)
    if signed:
        draft["version"] = doc.version + 1
        draft["previous"] = {
            "version": doc.version,
            "admins": dict(doc.admins.keys),
            "threshold": doc.admins.threshold,
        }
    return draft


def with_member(
    draft: dict[str, Any],
    server: str,
    verify_keys: Mapping[str, str],
    organisation: Mapping[str, str] | None,
) -> dict[str, Any]:
    """``server`` added, or its keys replaced (and organisation fields updated)."""
    members = dict(draft.get("members", {}))
    entry = copy.deepcopy(members.get(server, {}))
    entry["verify_keys"] = dict(verify_keys)
    if organisation:
        entry["organisation"] = {**entry.get("organisation", {}), **organisation}
    members[server] = entry
    changed = {**draft, "members": members}
    parse(changed)
    return changed


def without_member(draft: dict[str, Any], server: str) -> dict[str, Any]:
    members = dict(draft.get("members", {}))
    if server not in members:
        raise DocumentError(f"{server} is not a member")
    del members[server]
    return {**draft, "members": members}
