"""Rooms bound to a consortium: the binding event and the server ACL it calls for (pure).

A room is bound by the state event ``jp.kairan.consortium`` (state key ``""``, content
``{"id": ID}``); empty content unbinds it.  The ACL of a bound room allows the hosts of
the consortium's members and of the node itself and denies nothing else explicitly
(what ``allow`` does not list is denied).  ACL entries match a server's host, never its
port, so ``127.0.0.2:8448`` is allowed as ``127.0.0.2``; IP-literal hosts are allowed
(``allow_ip_literals``) only when a member's host is one.  The ACL records which version
of which consortium it was made from (``jp.kairan.consortium``: ``{"id", "version"}``),
so that a node that has not learnt a newer version yet does not put an older list back.
spec/consortium.md has the details.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any

from homeserver.municipal.consortium.document import Document

#: The binding's event type (state key ``""``), and the key of the ACL's record of it.
BINDING = "jp.kairan.consortium"
ACL = "m.room.server_acl"
_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
#: Fields of the binding's content (``body``: the optional text fallback).
_FIELDS = {"id", "body"}


def binding_problem(content: Mapping[str, Any]) -> str | None:
    """Why ``content`` is not a binding (a local user's event is refused for it): None
    for ``{}`` (unbound) and for ``{"id": ID[, "body": text]}``."""
    if not content:
        return None
    unknown = sorted(set(content) - _FIELDS)
    if unknown:
        return f"unknown fields in {BINDING}: {', '.join(unknown)}"
    consortium_id = content.get("id")
    if not isinstance(consortium_id, str) or not _ID.fullmatch(consortium_id):
        return f"{BINDING} needs an id: 1-64 of a-z 0-9 . _ - (or empty content to unbind)"
    if "body" in content and not isinstance(content["body"], str):
        return f"{BINDING} body must be a string"
    return None


def bound_id(content: Mapping[str, Any] | None) -> str | None:
    """The consortium a binding's content names; None when unbound or malformed (a
    received malformed binding binds nothing)."""
    if not content or binding_problem(content) is not None:
        return None
    consortium_id = content.get("id")
    return consortium_id if isinstance(consortium_id, str) else None


def host_of(server_name: str) -> str:
    """The host part of a server name (what ACL entries match): no port."""
    if server_name.startswith("["):
        return server_name.split("]", 1)[0] + "]"
    return server_name.rsplit(":", 1)[0]


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def acl_for(servers: Iterable[str], doc: Document) -> dict[str, Any]:
    """The server ACL content allowing exactly the hosts of ``servers``."""
    hosts = sorted({host_of(s) for s in servers})
    return {
        "allow": hosts,
        "deny": [],
        "allow_ip_literals": any(is_ip_literal(h) for h in hosts),
        BINDING: {"id": doc.id, "version": doc.version},
    }


def wanted_acl(doc: Document, own_server: str) -> dict[str, Any]:
    """The ACL of a room bound to ``doc``: its members and this node (never denied)."""
    return acl_for([*doc.members, own_server], doc)


def same_effect(current: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    """Whether the current ACL already does what ``wanted`` does (the record of the
    version is not compared: a version that changes no member changes no ACL)."""
    if not current:
        return False

    def effect(acl: Mapping[str, Any]) -> tuple[Any, ...]:
        allow, deny = acl.get("allow"), acl.get("deny")
        return (
            sorted(a for a in allow if isinstance(a, str)) if isinstance(allow, list) else [],
            sorted(d for d in deny if isinstance(d, str)) if isinstance(deny, list) else [],
            acl.get("allow_ip_literals", True) is not False,
        )

    return effect(current) == effect(wanted)


def recorded_newer(current: Mapping[str, Any] | None, doc: Document) -> bool:
    """Whether the current ACL says it was made from a newer version of ``doc``'s
    consortium than ``doc`` (this node has not learnt it yet: leave the ACL alone)."""
    record = (current or {}).get(BINDING)
    if not isinstance(record, Mapping) or record.get("id") != doc.id:
        return False
    version = record.get("version")
    return isinstance(version, int) and not isinstance(version, bool) and version > doc.version
