"""SIGUSR1's task dump shows where each task waits, down to the innermost coroutine."""

from __future__ import annotations

import asyncio
import logging

import pytest

from homeserver.node.diagnostics import dump_tasks


async def innermost(release: asyncio.Event) -> None:
    await release.wait()


async def outer(release: asyncio.Event) -> None:
    await innermost(release)


async def test_dump_names_every_task_and_the_innermost_wait(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()
    task = asyncio.create_task(outer(release), name="federation-send-b.example")
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING):
        dump_tasks()
    release.set()
    await task
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "--- federation-send-b.example" in text
    dumped = text.split("--- federation-send-b.example", 1)[1]
    assert "in outer" in dumped and "in innermost" in dumped
