"""Typing notifications: in memory only (as in Synapse), with a serial for sync tokens."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from homeserver.sync.ports import TypingListener

MAX_TIMEOUT_MS = 120_000


def _ignore(room_id: str, user_id: str, typing: bool) -> None:
    return None


class TypingService:
    def __init__(
        self,
        on_change: Callable[[str], None] = lambda room_id: None,
        on_local_typing: TypingListener = _ignore,
    ) -> None:
        #: room ID -> {user ID: expiry (loop time)}
        self._typing: dict[str, dict[str, float]] = {}
        #: room ID -> serial of its last change
        self._changed: dict[str, int] = {}
        self.serial = 0
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        #: Given a room ID, wakes its members.
        self.on_change = on_change
        #: Called when a local user starts or stops typing (to tell other servers).
        self.on_local_typing = on_local_typing

    def set_typing(
        self,
        room_id: str,
        user_id: str,
        typing: bool,
        timeout_ms: int = 30_000,
        *,
        local: bool = True,
    ) -> None:
        loop = asyncio.get_running_loop()
        users = self._typing.setdefault(room_id, {})
        timer = self._timers.pop((room_id, user_id), None)
        if timer is not None:
            timer.cancel()
        was_typing = user_id in users
        if typing:
            timeout = min(max(timeout_ms, 0), MAX_TIMEOUT_MS) / 1000
            users[user_id] = loop.time() + timeout
            self._timers[(room_id, user_id)] = loop.call_later(
                timeout, lambda: self.set_typing(room_id, user_id, False, local=False)
            )
            if not was_typing:
                self._bump(room_id)
        elif was_typing:
            del users[user_id]
            self._bump(room_id)
        if local:
            self.on_local_typing(room_id, user_id, typing)

    def _bump(self, room_id: str) -> None:
        self.serial += 1
        self._changed[room_id] = self.serial
        self.on_change(room_id)

    def typing_users(self, room_id: str) -> list[str]:
        return sorted(self._typing.get(room_id, {}))

    def changed_since(self, room_id: str, serial: int) -> bool:
        return self._changed.get(room_id, 0) > serial

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
