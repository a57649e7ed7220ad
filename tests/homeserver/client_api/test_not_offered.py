"""What Kairan does not offer, answered as the spec says; the deprecated /events/{eventId}."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.homeserver.conftest import Node
from tests.homeserver.openapi import ClientServerSpec, ValidatingClient

V3 = "/_matrix/client/v3"


@pytest.fixture
async def c(node: Node, openapi: ClientServerSpec | None) -> AsyncIterator[ValidatingClient]:
    client = ValidatingClient(node.base_url, openapi)
    try:
        yield client
    finally:
        assert client.mismatches == []
        await client.close()


async def test_event_by_id_only_for_who_may_see_it(c: ValidatingClient) -> None:
    alice = await c.register("alice")
    eve = await c.register("eve")
    room = (await c.ok("POST", V3 + "/createRoom", {}, token=alice.token))["room_id"]
    sent = await c.ok("PUT", f"{V3}/rooms/{room}/send/m.room.message/1",
                      {"msgtype": "m.text", "body": "secret"}, token=alice.token)  # fmt: skip
    event = await c.ok("GET", f"{V3}/events/{sent['event_id']}", token=alice.token)
    assert event["content"]["body"] == "secret" and event["room_id"] == room
    for token in (eve.token,):
        r = await c.request("GET", f"{V3}/events/{sent['event_id']}", token=token)
        assert r.status == 404 and r.body["errcode"] == "M_NOT_FOUND"
        assert "secret" not in str(r.body)
    r = await c.request("GET", f"{V3}/events/$nope", token=alice.token)
    assert r.status == 404 and r.body["errcode"] == "M_NOT_FOUND"
    r = await c.request("GET", f"{V3}/events/{sent['event_id']}")
    assert r.status == 401


async def test_what_is_not_offered(c: ValidatingClient) -> None:
    alice = await c.register("alice")
    r = await c.request("GET", "/_matrix/client/v1/auth_metadata")
    assert r.status == 404 and r.body["errcode"] == "M_UNRECOGNIZED"  # no OAuth 2.0 API
    r = await c.request("POST", "/_matrix/client/v1/appservice/bridge/ping", {},
                        token=alice.token)  # fmt: skip
    assert r.status == 403 and r.body["errcode"] == "M_FORBIDDEN"
    room = (await c.ok("POST", V3 + "/createRoom", {}, token=alice.token))["room_id"]
    r = await c.request("PUT", f"{V3}/directory/list/appservice/net/{room}",
                        {"visibility": "public"}, token=alice.token)  # fmt: skip
    assert r.status == 403 and r.body["errcode"] == "M_FORBIDDEN"
    r = await c.request("GET", "/.well-known/matrix/policy_server")
    assert r.status == 404 and r.body["errcode"] == "M_NOT_FOUND"
