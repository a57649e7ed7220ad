"""What the scenarios share: the nodes of one pair, users on them, room helpers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from interop.client import Client, JsonDict
from interop.harness import Harness, Node, NodeKind
from interop.wait import wait_until

PAIRS: dict[str, tuple[NodeKind, NodeKind]] = {
    "kairan-kairan": ("kairan", "kairan"),
    "kairan-synapse": ("kairan", "synapse"),
    "synapse-kairan": ("synapse", "kairan"),
    "synapse-synapse": ("synapse", "synapse"),
}
DEFAULT_PAIRS = "synapse-synapse"


def parse_pairs(text: str) -> list[str]:
    """``all`` or a comma-separated list of pair names (A-B); raises ValueError otherwise."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    if names == ["all"]:
        return list(PAIRS)
    unknown = [n for n in names if n not in PAIRS]
    if unknown or not names:
        raise ValueError(
            f"unknown pairs {', '.join(unknown) or '(none)'}; choose from all, {', '.join(PAIRS)}"
        )
    return list(dict.fromkeys(names))


@dataclass
class Cluster:
    """The nodes of one pair: A and B, and a third node C of B's kind."""

    pair: str
    harness: Harness
    a: Node
    b: Node
    c: Node
    failed: bool = False
    """A scenario failed: the data directories (and logs) are kept for a look."""


def server_of(client: Client) -> str:
    return client.user_id.split(":", 1)[1]


@dataclass
class Users:
    """Registers fresh users (unique names) on the cluster's nodes; closes their sessions."""

    cluster: Cluster
    clients: list[Client] = field(default_factory=list)

    async def on(self, node: Node, prefix: str) -> Client:
        client = Client(node.base_url, self.cluster.harness.certs.ca, name=prefix)
        self.clients.append(client)
        await client.register(f"{prefix}-{uuid.uuid4().hex[:10]}")
        return client

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


async def wait_joined(observers: list[Client], room_id: str, members: list[Client]) -> None:
    """Wait until every observer's server lists every member as joined."""
    wanted = {m.user_id for m in members}
    for observer in observers:

        async def check(observer: Client = observer) -> bool:
            return wanted <= await observer.joined_members(room_id)

        await wait_until(check, f"{observer.user_id} to see {sorted(wanted)} joined in {room_id}")


async def shared_room(creator: Client, joiners: list[Client], **create: object) -> str:
    """A room made by ``creator`` (public_chat by default) that ``joiners`` join remotely."""
    body: dict[str, object] = {"preset": "public_chat", "name": "interop"}
    body.update(create)
    room_id = await creator.create_room(**body)
    for joiner in joiners:
        await joiner.join(room_id, via=[server_of(creator)])
    everyone = [creator, *joiners]
    await wait_joined(everyone, room_id, everyone)
    return room_id


def bodies(events: list[JsonDict], prefix: str = "") -> list[str]:
    """The bodies of the m.room.message events (starting with ``prefix``), in order."""
    return [
        str(e["content"].get("body"))
        for e in events
        if e.get("type") == "m.room.message"
        and str(e.get("content", {}).get("body", "")).startswith(prefix)
    ]


async def recent_bodies(client: Client, room_id: str, limit: int = 50) -> list[str]:
    data = await client.messages(room_id, limit=limit)
    return list(reversed(bodies(data.get("chunk", []))))


async def wait_for_message(client: Client, room_id: str, body: str) -> None:
    async def check() -> bool:
        return body in await recent_bodies(client, room_id)

    await wait_until(check, f"{client.user_id} to see message {body!r} in {room_id}")


async def power_levels(client: Client, room_id: str) -> JsonDict:
    content = await client.state_event(room_id, "m.room.power_levels")
    assert content is not None, f"{room_id} has no power levels on {server_of(client)}"
    return content


async def set_user_level(client: Client, room_id: str, user_id: str, level: int) -> str:
    content = await power_levels(client, room_id)
    users = dict(content.get("users", {}))
    users[user_id] = level
    return await client.send_state(room_id, "m.room.power_levels", {**content, "users": users})


async def wait_user_level(observer: Client, room_id: str, user_id: str, level: int) -> None:
    async def check() -> bool:
        content = await observer.state_event(room_id, "m.room.power_levels")
        return content is not None and content.get("users", {}).get(user_id) == level

    await wait_until(check, f"{observer.user_id} to see {user_id} at power level {level}")


def state_map(events: list[JsonDict]) -> dict[tuple[str, str], str]:
    """(type, state_key) -> event ID of a /state response."""
    return {(e["type"], e["state_key"]): e["event_id"] for e in events}
