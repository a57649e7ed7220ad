"""``kairan bench client``: measure any homeserver through the Client-Server API only.

It registers its own users (``m.login.dummy``, or a registration token), then prints:
registration and room creation p50, sequential send latency p50/p99, the throughput of
concurrent senders in one room, send-to-/sync delivery latency p50/p99 (another user
long-polls), initial sync time, and the server's RSS when given its PID (Linux /proc).

Requests answered 429 are retried after ``retry_after_ms`` and counted; latencies are those
of the attempt that succeeded, throughput is wall-clock (waits included).
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

DUMMY = "m.login.dummy"
TOKEN_STAGE = "m.login.registration_token"
SMALL_SYNC_FILTER = json.dumps({"room": {"timeline": {"limit": 1}}, "presence": {"types": []}})


class BenchError(Exception):
    """The benchmark cannot go on; the message says why in one line."""


@dataclass(frozen=True)
class BenchOptions:
    url: str
    #: Extra members of the benchmark room (they make every event fan out further).
    users: int = 10
    #: Messages sent one after the other, for the sequential latency.
    messages: int = 500
    #: Concurrent senders and the messages each sends, for the throughput.
    senders: int = 20
    per_sender: int = 100
    #: Rooms created, for the room-creation latency.
    rooms: int = 20
    #: Messages timed from send to arrival in another user's /sync.
    deliveries: int = 100
    registration_token: str | None = None
    pid: int | None = None
    #: A CA certificate file to trust for https:// (a private CA, a self-signed node).
    ca_file: Path | None = None


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0-100) of a non-empty sample."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def read_rss(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB, from /proc/PID/status."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError as e:
        raise BenchError(f"cannot read /proc/{pid}/status: {e.strerror}") from e
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    if "VmRSS" not in values:
        raise BenchError(f"/proc/{pid}/status has no VmRSS (a kernel thread?)")
    return values["VmRSS"], values.get("VmHWM", values["VmRSS"])


class Api:
    """Just enough of the Client-Server API, retrying 429s."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.throttled = 0

    async def raw(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any, float]:
        """(status, JSON body, seconds taken by the last attempt)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        while True:
            start = time.perf_counter()
            try:
                async with self.session.request(
                    method, self.base_url + path, json=body, params=params, headers=headers
                ) as response:
                    raw = await response.read()
                    elapsed = time.perf_counter() - start
                    status = response.status
            except aiohttp.ClientError as e:
                raise BenchError(f"{method} {self.base_url}{path}: {e}") from e
            except TimeoutError as e:
                raise BenchError(f"{method} {self.base_url}{path}: timed out") from e
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = None
            if status == 429:
                self.throttled += 1
                retry_ms = parsed.get("retry_after_ms", 1000) if isinstance(parsed, dict) else 1000
                await asyncio.sleep(min(max(float(retry_ms), 10.0), 60_000.0) / 1000)
                continue
            return status, parsed, elapsed

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[dict[str, Any], float]:
        status, parsed, elapsed = await self.raw(method, path, body, token=token, params=params)
        if status != 200 or not isinstance(parsed, dict):
            detail = (
                f"{parsed.get('errcode')}: {parsed.get('error')}"
                if isinstance(parsed, dict)
                else "no JSON body"
            )
            raise BenchError(f"{method} {path} answered {status} ({detail})")
        return parsed, elapsed


@dataclass
class Account:
    user_id: str
    token: str


class Bench:
    def __init__(self, options: BenchOptions, api: Api, out: Callable[[str], None]) -> None:
        self.options = options
        self.api = api
        self.out = out
        self.prefix = "bench" + secrets.token_hex(3)
        self.password = secrets.token_urlsafe(12)
        self._txn = 0

    def txn(self) -> str:
        self._txn += 1
        return f"{self.prefix}-{self._txn}"

    # ------------------------------------------------------------- setup

    async def register(self, localpart: str) -> tuple[Account, float]:
        body: dict[str, Any] = {
            "username": localpart,
            "password": self.password,
            "initial_device_display_name": "kairan bench",
        }
        start = time.perf_counter()
        status, answer, _ = await self.api.raw("POST", "/_matrix/client/v3/register", body)
        if status == 401 and isinstance(answer, dict) and "flows" in answer:
            stages = self._choose_flow(answer["flows"])
            session = answer.get("session")
            for stage in stages:
                auth: dict[str, Any] = {"type": stage, "session": session}
                if stage == TOKEN_STAGE:
                    auth["token"] = self.options.registration_token
                body["auth"] = auth
                status, answer, _ = await self.api.raw("POST", "/_matrix/client/v3/register", body)
                if status != 401:
                    break
        if status != 200 or not isinstance(answer, dict) or "access_token" not in answer:
            detail = answer.get("error") if isinstance(answer, dict) else None
            raise BenchError(f"cannot register {localpart}: {status} {detail or ''}".rstrip())
        return Account(answer["user_id"], answer["access_token"]), time.perf_counter() - start

    def _choose_flow(self, flows: Any) -> list[str]:
        usable = {DUMMY} | ({TOKEN_STAGE} if self.options.registration_token else set())
        for flow in flows if isinstance(flows, list) else []:
            stages = flow.get("stages") if isinstance(flow, dict) else None
            if isinstance(stages, list) and stages and set(stages) <= usable:
                return [str(s) for s in stages]
        offered = [f.get("stages") for f in flows if isinstance(f, dict)] if flows else []
        hint = "" if self.options.registration_token else "; try --registration-token"
        raise BenchError(f"no registration flow this benchmark can complete: {offered}{hint}")

    async def create_room(self, account: Account, **body: Any) -> tuple[str, float]:
        answer, elapsed = await self.api.call(
            "POST", "/_matrix/client/v3/createRoom", body, token=account.token
        )
        return str(answer["room_id"]), elapsed

    async def join(self, account: Account, room_id: str) -> None:
        await self.api.call(
            "POST", f"/_matrix/client/v3/join/{quote(room_id)}", {}, token=account.token
        )

    async def send(self, account: Account, room_id: str, text: str) -> float:
        _, elapsed = await self.api.call(
            "PUT",
            f"/_matrix/client/v3/rooms/{quote(room_id)}/send/m.room.message/{self.txn()}",
            {"msgtype": "m.text", "body": text},
            token=account.token,
        )
        return elapsed

    async def sync(
        self, account: Account, since: str | None, timeout_ms: int, small: bool = True
    ) -> tuple[dict[str, Any], float]:
        params = {"timeout": str(timeout_ms)}
        if since:
            params["since"] = since
        if small:
            params["filter"] = SMALL_SYNC_FILTER
        return await self.api.call(
            "GET", "/_matrix/client/v3/sync", token=account.token, params=params
        )

    # ------------------------------------------------------------- the run

    async def run(self) -> None:
        o = self.options
        out = self.out
        start_rss = read_rss(o.pid) if o.pid is not None else None
        await self.api.call("GET", "/_matrix/client/versions")
        out(f"server: {self.api.base_url}")

        names = (
            ["sender", "syncer"]
            + [f"member{i}" for i in range(o.users)]
            + [f"conc{i}" for i in range(o.senders)]
        )
        accounts: dict[str, Account] = {}
        register_times = []
        for name in names:
            account, elapsed = await self.register(f"{self.prefix}_{name}")
            accounts[name] = account
            register_times.append(elapsed)
        out(f"registration p50: {ms(percentile(register_times, 50))} ({len(names)} users)")

        sender, syncer = accounts["sender"], accounts["syncer"]
        create_times = []
        for i in range(o.rooms):
            _, elapsed = await self.create_room(sender, name=f"bench room {i}")
            create_times.append(elapsed)
        if create_times:
            out(f"room create p50: {ms(percentile(create_times, 50))} ({o.rooms} rooms)")

        room_id, _ = await self.create_room(sender, name="bench", preset="public_chat")
        for name, account in accounts.items():
            if name != "sender":
                await self.join(account, room_id)

        if o.messages:
            latencies = [await self.send(sender, room_id, f"seq {i}") for i in range(o.messages)]
            out(
                f"send latency (sequential, {o.messages} messages): "
                f"p50 {ms(percentile(latencies, 50))}, p99 {ms(percentile(latencies, 99))}"
            )

        if o.senders and o.per_sender:
            await self._throughput([accounts[f"conc{i}"] for i in range(o.senders)], room_id)

        if o.deliveries:
            await self._delivery(sender, syncer, room_id)

        initial = []
        size = 0
        for _ in range(3):
            body, elapsed = await self.sync(sender, None, 0, small=False)
            initial.append(elapsed)
            size = len(json.dumps(body))
        # The first is the honest figure: a server may cache identical /sync answers.
        out(
            f"initial sync: first {ms(initial[0])}, p50 of 3 {ms(percentile(initial, 50))} "
            f"({o.rooms + 1} rooms, {size // 1024} KiB)"
        )

        if o.pid is not None:
            rss, peak = read_rss(o.pid)
            before = f", {start_rss[0] / 1024:.1f} MiB before" if start_rss else ""
            out(f"server RSS: {rss / 1024:.1f} MiB (peak {peak / 1024:.1f} MiB{before})")
        else:
            out("server RSS: not measured (give --pid)")
        if self.api.throttled:
            out(f"note: the server rate-limited {self.api.throttled} requests (429, retried)")

    async def _throughput(self, senders: list[Account], room_id: str) -> None:
        o = self.options
        latencies: list[float] = []

        async def one(index: int, account: Account) -> None:
            for i in range(o.per_sender):
                latencies.append(await self.send(account, room_id, f"conc {index}/{i}"))

        start = time.perf_counter()
        await asyncio.gather(*(one(i, a) for i, a in enumerate(senders)))
        elapsed = time.perf_counter() - start
        total = len(senders) * o.per_sender
        self.out(
            f"throughput ({len(senders)} senders x {o.per_sender} messages): "
            f"{total / elapsed:.1f} messages/s over {elapsed:.2f} s; "
            f"send p50 {ms(percentile(latencies, 50))}, p99 {ms(percentile(latencies, 99))}"
        )

    async def _delivery(self, sender: Account, syncer: Account, room_id: str) -> None:
        """Time from starting a send to the event arriving in the syncer's long-poll."""
        since = (await self.sync(syncer, None, 0))[0]["next_batch"]
        latencies = []
        for i in range(self.options.deliveries):
            marker = f"delivery {self.prefix} {i}"
            poll = asyncio.create_task(self._wait_for(syncer, since, room_id, marker))
            await asyncio.sleep(0.02)  # let the long-poll reach the server
            start = time.perf_counter()
            await self.send(sender, room_id, marker)
            since, arrived = await poll
            latencies.append(arrived - start)
        self.out(
            f"delivery latency (send to /sync, {len(latencies)} messages): "
            f"p50 {ms(percentile(latencies, 50))}, p99 {ms(percentile(latencies, 99))}"
        )

    async def _wait_for(
        self, account: Account, since: str, room_id: str, marker: str
    ) -> tuple[str, float]:
        """Long-poll until ``marker`` arrives: the next since token and the arrival time."""
        while True:
            body, _ = await self.sync(account, since, 30_000)
            arrived = time.perf_counter()
            since = body["next_batch"]
            room = body.get("rooms", {}).get("join", {}).get(room_id, {})
            for event in room.get("timeline", {}).get("events", []):
                if event.get("content", {}).get("body") == marker:
                    return since, arrived


async def run(options: BenchOptions, out: Callable[[str], None] = print) -> None:
    """Run the benchmark against ``options.url`` and print its figures with ``out``."""
    timeout = aiohttp.ClientTimeout(total=120)
    tls: ssl.SSLContext | bool = True
    if options.ca_file is not None:
        try:
            tls = ssl.create_default_context(cafile=str(options.ca_file))
        except (OSError, ssl.SSLError) as e:
            raise BenchError(f"cannot load CA file {options.ca_file}: {e}") from e
    connector = aiohttp.TCPConnector(limit=max(100, options.senders * 2), ssl=tls)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await Bench(options, Api(options.url, session), out).run()
