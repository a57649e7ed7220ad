"""What an operator can ask of a running node without stopping it.

``kill -USR1 <pid>`` writes the stack of every asyncio task to the log (at WARNING, so
the default log level shows it): where each request, sending loop and background job is
waiting.  For a node that seems stuck (a destination that no longer receives, a room
whose sends hang) before it is restarted.
"""

from __future__ import annotations

import asyncio
import io
import logging

log = logging.getLogger(__name__)


def dump_tasks() -> None:
    tasks = asyncio.all_tasks()
    out = io.StringIO()
    for task in sorted(tasks, key=lambda t: t.get_name()):
        out.write(f"--- {task.get_name()}\n")
        for frame_line in _awaiting(task.get_coro()):
            out.write(f"  {frame_line}\n")
    log.warning("%d asyncio tasks (SIGUSR1):\n%s", len(tasks), out.getvalue())


def _awaiting(coro: object) -> list[str]:
    """The chain of coroutines ``coro`` is suspended in, outermost first (a task's own
    stack shows only its first frame)."""
    lines: list[str] = []
    while coro is not None and len(lines) < 60:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
        if frame is None:
            lines.append(repr(coro)[:200])
            break
        lines.append(f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
    return lines
