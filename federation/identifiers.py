"""Identifier grammar (spec appendix "Identifier Grammar").

Server names, user IDs, room IDs, room aliases and event IDs, plus the suggested mapping of
arbitrary strings onto user ID localparts and dot-separated property paths.
"""

from __future__ import annotations

import re
from functools import lru_cache

from federation.errors import FederationError

_IPV4 = r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}"
_IPV6 = r"\[[0-9A-Fa-f:.]{2,45}\]"
_DNS = r"[0-9A-Za-z.\-]{1,255}"
_SERVER_NAME = re.compile(rf"(?:{_IPV4}|{_IPV6}|{_DNS})(?::[0-9]{{1,5}})?")
_LOCALPART = re.compile(r"[a-z0-9._=\-/+]+")

MAX_ID_BYTES = 255

#: What no room alias a client names may contain: whitespace (any Unicode space, newline),
#: C0/C1 control characters (BEL, ESC...) and lone surrogates.
_ALIAS_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class InvalidIdentifier(FederationError, ValueError):
    """A malformed Matrix identifier."""


def is_valid_server_name(name: str) -> bool:
    return bool(_SERVER_NAME.fullmatch(name))


def split_server_name(name: str) -> tuple[str, int | None]:
    """``("host", port or None)``; IPv6 hosts keep their brackets."""
    if not is_valid_server_name(name):
        raise InvalidIdentifier(f"invalid server name: {name!r}")
    if name.startswith("["):
        host, _, rest = name.partition("]")
        host += "]"
        port = rest[1:] if rest.startswith(":") else None
    else:
        host, sep, port_text = name.partition(":")
        port = port_text if sep else None
    if port is not None:
        value = int(port)
        if not 0 < value < 65536:
            raise InvalidIdentifier(f"invalid port in server name: {name!r}")
        return host, value
    return host, None


def domain_of(identifier: str) -> str:
    """The server name after the first ``:`` of a user ID, alias or domain-ful room ID."""
    if not isinstance(identifier, str) or ":" not in identifier:
        raise InvalidIdentifier(f"identifier has no domain: {identifier!r}")
    return identifier.split(":", 1)[1]


def is_valid_user_id(user_id: object, *, historical: bool = True) -> bool:
    """Whether ``user_id`` is a user ID.

    ``historical=True`` (the default, for events received over federation) accepts any
    localpart without ``:`` and NUL, as the spec requires; ``historical=False`` applies the
    strict grammar used for new accounts.
    """
    if not isinstance(user_id, str):
        return False
    return _is_valid_user_id(user_id, historical)


@lru_cache(maxsize=65_536)
def _is_valid_user_id(user_id: str, historical: bool) -> bool:
    if not user_id.startswith("@") or ":" not in user_id:
        return False
    if len(user_id.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
        return False
    localpart, domain = user_id[1:].split(":", 1)
    if not is_valid_server_name(domain):
        return False
    if historical:
        return "\x00" not in localpart
    return bool(_LOCALPART.fullmatch(localpart))


def is_valid_room_alias(alias: object) -> bool:
    """Whether ``alias`` is a room alias a client may create or name: ``#localpart:server``
    of at most 255 bytes (the spec's limit, for the whole alias) whose localpart is not
    empty and has no ``:``, whitespace or control characters."""
    if not isinstance(alias, str) or not alias.startswith("#") or ":" not in alias:
        return False
    if len(alias.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
        return False
    localpart, domain = alias[1:].split(":", 1)
    return (
        bool(localpart)
        and _ALIAS_FORBIDDEN.search(localpart) is None
        and is_valid_server_name(domain)
    )


def is_valid_localpart(localpart: str) -> bool:
    return bool(_LOCALPART.fullmatch(localpart))


def map_to_localpart(text: str, *, escape_case: bool = True) -> str:
    """The spec's suggested mapping of any string onto the user ID localpart alphabet."""
    out: list[str] = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if escape_case and char == "_":
            out.append("__")
        elif "A" <= char <= "Z":
            out.append(("_" if escape_case else "") + char.lower())
        elif char != "=" and _LOCALPART.fullmatch(char):
            out.append(char)
        else:
            out.append(f"={byte:02x}")
    return "".join(out)


def split_dot_path(path: str) -> list[str]:
    """Split a dot-separated property path; ``\\.`` and ``\\\\`` are escapes, others literal."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(path):
        char = path[i]
        if char == "\\" and i + 1 < len(path) and path[i + 1] in ".\\":
            current.append(path[i + 1])
            i += 2
            continue
        if char == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts
