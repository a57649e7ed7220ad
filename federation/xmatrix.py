"""Request authentication between servers: the ``X-Matrix`` Authorization scheme.

Pure code.  The origin signs ``{method, uri, origin, destination, content}`` with its
server key (spec: Server-Server API, "Request Authentication"); the header carries the
signature.  Parsing follows RFC 9110 auth-params: case-insensitive names, optional quotes,
backslash escapes, white space around commas, unknown parameters ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from federation.errors import SignatureError
from federation.signing import SigningKey, sign_json, verify_json

SCHEME = "X-Matrix"


class AuthHeaderError(SignatureError):
    """A malformed or missing X-Matrix Authorization header."""


@dataclass(frozen=True)
class XMatrixAuth:
    origin: str
    destination: str | None
    key_id: str
    signature: str


def request_json(
    method: str, uri: str, origin: str, destination: str, content: Any | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "method": method,
        "uri": uri,
        "origin": origin,
        "destination": destination,
    }
    if content is not None:
        body["content"] = content
    return body


def authorization_header(
    origin: str,
    key: SigningKey,
    destination: str,
    method: str,
    uri: str,
    content: Any | None = None,
) -> str:
    """The Authorization header value for a request from ``origin`` to ``destination``.

    ``uri`` is the path with its query string (``/_matrix/...?...``), ``content`` the parsed
    JSON body or None.
    """
    signed = sign_json(request_json(method, uri, origin, destination, content), origin, key)
    signature = signed["signatures"][origin][key.key_id]
    return f'{SCHEME} origin="{origin}",destination="{destination}",key="{key.key_id}",sig="{signature}"'


def _split_params(text: str) -> dict[str, str]:
    params: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t,":
            i += 1
        if i >= n:
            break
        eq = text.find("=", i)
        if eq < 0:
            raise AuthHeaderError("X-Matrix parameter without '='")
        name = text[i:eq].strip().lower()
        i = eq + 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == '"':
            i += 1
            value: list[str] = []
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                value.append(text[i])
                i += 1
            if i >= n:
                raise AuthHeaderError("unterminated quoted value in X-Matrix header")
            i += 1
            params.setdefault(name, "".join(value))
        else:
            end = text.find(",", i)
            end = n if end < 0 else end
            params.setdefault(name, text[i:end].strip())
            i = end
    return params


def parse_authorization(header: str | None) -> XMatrixAuth:
    """Parse an ``X-Matrix`` Authorization header; AuthHeaderError if it is not one."""
    if not header:
        raise AuthHeaderError("missing Authorization header")
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != SCHEME.lower():
        raise AuthHeaderError("Authorization is not X-Matrix")
    params = _split_params(rest)
    try:
        return XMatrixAuth(
            origin=params["origin"],
            destination=params.get("destination"),
            key_id=params["key"],
            signature=params["sig"],
        )
    except KeyError as e:
        raise AuthHeaderError(f"X-Matrix header lacks {e.args[0]!r}") from None


def verify_request(
    auth: XMatrixAuth,
    *,
    method: str,
    uri: str,
    content: Any | None,
    my_server_name: str,
    public_key: str,
) -> None:
    """Check a request's signature; raise SignatureError (or AuthHeaderError) if it fails."""
    if auth.destination is not None and auth.destination != my_server_name:
        raise AuthHeaderError(f"request is for {auth.destination}, not this server")
    body = request_json(method, uri, auth.origin, auth.destination or my_server_name, content)
    body["signatures"] = {auth.origin: {auth.key_id: auth.signature}}
    verify_json(body, auth.origin, auth.key_id, public_key)
