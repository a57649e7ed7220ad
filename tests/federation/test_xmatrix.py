"""X-Matrix request signing and parsing."""

from __future__ import annotations

import pytest

from federation import signing, xmatrix
from federation.errors import SignatureError

KEY = signing.generate_signing_key("k1")


def test_round_trip() -> None:
    header = xmatrix.authorization_header(
        "a.test", KEY, "b.test", "PUT", "/_matrix/federation/v1/send/1?x=1", {"pdus": []}
    )
    auth = xmatrix.parse_authorization(header)
    assert auth == xmatrix.XMatrixAuth("a.test", "b.test", "ed25519:k1", auth.signature)
    xmatrix.verify_request(
        auth, method="PUT", uri="/_matrix/federation/v1/send/1?x=1", content={"pdus": []},
        my_server_name="b.test", public_key=KEY.public_key_base64,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"method": "POST"}, "bad signature"),
        ({"uri": "/_matrix/federation/v1/send/2"}, "bad signature"),
        ({"content": {"pdus": [1]}}, "bad signature"),
        ({"my_server_name": "c.test"}, "not this server"),
    ],
)
def test_tampering(change: dict[str, object], error: str) -> None:
    header = xmatrix.authorization_header(
        "a.test", KEY, "b.test", "PUT", "/_matrix/federation/v1/send/1", {"pdus": []}
    )
    args: dict[str, object] = {
        "method": "PUT", "uri": "/_matrix/federation/v1/send/1", "content": {"pdus": []},
        "my_server_name": "b.test", "public_key": KEY.public_key_base64,
    }  # fmt: skip
    args.update(change)
    with pytest.raises(SignatureError, match=error):
        xmatrix.verify_request(xmatrix.parse_authorization(header), **args)  # type: ignore[arg-type]


def test_lenient_parsing() -> None:
    header = 'X-Matrix  ORIGIN=a.test:8448 , Key="ed25519:k1",\tsig="ab\\"c", destination="b.test", extra=1'
    auth = xmatrix.parse_authorization(header)
    assert auth == xmatrix.XMatrixAuth("a.test:8448", "b.test", "ed25519:k1", 'ab"c')
    assert xmatrix.parse_authorization("X-Matrix origin=o,key=k,sig=s").destination is None


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer abc",
        "X-Matrix origin=a",
        'X-Matrix origin="a,key=k,sig=s',
        "X-Matrix noequals",
    ],
)
def test_malformed(header: str | None) -> None:
    with pytest.raises(xmatrix.AuthHeaderError):
        xmatrix.parse_authorization(header)


def test_request_without_destination_accepted() -> None:
    signed = signing.sign_json(
        {"method": "GET", "uri": "/x", "origin": "a.test", "destination": "b.test"}, "a.test", KEY
    )
    auth = xmatrix.XMatrixAuth(
        "a.test", None, "ed25519:k1", signed["signatures"]["a.test"]["ed25519:k1"]
    )
    xmatrix.verify_request(auth, method="GET", uri="/x", content=None, my_server_name="b.test",
                           public_key=KEY.public_key_base64)  # fmt: skip
