"""The outbound client refuses private and loopback addresses unless allowed."""

from __future__ import annotations

import pytest

from federation.client import FederationClient, ForbiddenDestination, federation_path, is_private
from federation.signing import generate_signing_key


@pytest.mark.parametrize(
    ("address", "private"),
    [
        ("127.0.0.1", True), ("10.1.2.3", True), ("172.16.0.1", True), ("192.168.1.1", True),
        ("169.254.0.1", True), ("::1", True), ("fe80::1", True), ("fc00::1", True),
        ("::ffff:127.0.0.1", True), ("0.0.0.0", True), ("8.8.8.8", False), ("2001:4860::8888", False),
    ],
)  # fmt: skip
def test_is_private(address: str, private: bool) -> None:
    assert is_private(address) is private


async def test_refuses_loopback_unless_allowed() -> None:
    guarded = FederationClient("a.test", generate_signing_key("1"), allow_private_addresses=False)
    try:
        with pytest.raises(ForbiddenDestination, match="allow_private_addresses"):
            await guarded.request("127.0.0.1:1", "GET", federation_path("v1", "version"))
        with pytest.raises(ForbiddenDestination):
            await guarded.request("10.0.0.1:8448", "GET", federation_path("v1", "version"))
    finally:
        await guarded.close()


def test_federation_path_quotes_ids() -> None:
    assert (
        federation_path("v1", "make_join", "!room:s.test", "@u/x:s.test")
        == "/_matrix/federation/v1/make_join/%21room%3As.test/%40u%2Fx%3As.test"
    )
