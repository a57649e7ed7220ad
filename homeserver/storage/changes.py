"""What changed after a stream position, known in memory: lets /sync skip queries.

An incremental /sync asks "what changed in (since, upto]" for each kind of data.  Most of
the time the answer is "nothing" for most kinds, and asking the database costs a query
each.  The storage functions that write a row at a stream position also *mark* the
entity they wrote (a room, a user, a device) in a :class:`ChangeTracker`, and /sync asks
the tracker first: a query runs only when the tracker says the entity may have changed.

Correctness rests on one ordering: a row is marked while its stream position is still
in flight (before the write transaction commits), and ``Database.stream.current`` passes
a position only after its transaction has committed.  So any reader whose ``upto``
includes a position sees its mark.  A mark may precede a rollback; that only costs a
query that finds nothing.

The tracker knows nothing of what happened before the node started: for a ``since``
older than the position at start-up it answers "may have changed".  Synapse's
``StreamChangeCache`` is the same idea.
"""

from __future__ import annotations

import contextvars
from collections.abc import Hashable, Iterable

#: A mark kept until its transaction commits: (tracker, key, position).
PendingMark = tuple["ChangeTracker", Hashable, int]


class ChangeTracker:
    """The last stream position at which each entity changed, since ``earliest``."""

    def __init__(self, earliest: int) -> None:
        self.earliest = earliest
        self._last: dict[Hashable, int] = {}
        self._newest = earliest

    def mark(self, key: Hashable, position: int) -> None:
        if position > self._last.get(key, self.earliest):
            self._last[key] = position
        if position > self._newest:
            self._newest = position

    def changed_since(self, key: Hashable, since: int) -> bool:
        """Whether ``key`` may have changed after ``since`` (True when unknown)."""
        return since < self.earliest or self._last.get(key, self.earliest) > since

    def last(self, key: Hashable) -> int | None:
        """The last position ``key`` was marked at since ``earliest`` (None: not since)."""
        return self._last.get(key)

    def any_changed_since(self, keys: Iterable[Hashable], since: int) -> bool:
        if since < self.earliest:
            return True
        return any(self._last.get(k, self.earliest) > since for k in keys)

    def anything_since(self, since: int) -> bool:
        """Whether any entity at all may have changed after ``since``."""
        return since < self.earliest or self._newest > since


class Changes:
    """One tracker per kind of data that /sync reads by stream range."""

    def __init__(self, earliest: int) -> None:
        #: room_id: events stored in the room's timeline (state events included).
        self.room_events = ChangeTracker(earliest)
        #: room_id: the room's current state changed (a row in the state delta stream).
        self.room_state = ChangeTracker(earliest)
        #: user_id: a membership row of the user was written.
        self.memberships = ChangeTracker(earliest)
        #: room_id: a receipt in the room.
        self.receipts = ChangeTracker(earliest)
        #: (room_id, user_id): a receipt of the user in the room.
        self.user_receipts = ChangeTracker(earliest)
        #: user_id: global or per-room account data of the user.
        self.account_data = ChangeTracker(earliest)
        #: (user_id, device_id): a to-device message for the device.
        self.to_device = ChangeTracker(earliest)
        #: user_id: the user's device list changed.
        self.device_lists = ChangeTracker(earliest)
        #: user_id: the user's presence changed.
        self.presence = ChangeTracker(earliest)
        # Marked only once the transaction committed (see mark_on_commit), so that a
        # last mark is the position of a row that is there:
        #: room_id: an accepted event (not an outlier, rejected or soft-failed) stored.
        self.accepted_events = ChangeTracker(earliest)
        #: (room_id, event type): the same, by type.
        self.accepted_types = ChangeTracker(earliest)


_recording: contextvars.ContextVar[Changes | None] = contextvars.ContextVar(
    "kairan_recording_changes", default=None
)


def recording() -> Changes:
    """The trackers of the ``Database.write()`` block this code runs in.

    Storage functions that write at a stream position call this; outside a write block
    there is no transaction to mark for, which is a programming error."""
    changes = _recording.get()
    if changes is None:
        raise RuntimeError("stream rows must be written inside Database.write()")
    return changes


def start_recording(changes: Changes) -> contextvars.Token[Changes | None]:
    return _recording.set(changes)


def stop_recording(token: contextvars.Token[Changes | None]) -> None:
    _recording.reset(token)


_pending: contextvars.ContextVar[list[PendingMark] | None] = contextvars.ContextVar(
    "kairan_marks_on_commit", default=None
)


def mark_on_commit(tracker: ChangeTracker, key: Hashable, position: int) -> None:
    """Mark ``key`` at ``position`` once the ``Database.write()`` block this code runs in
    has committed (still before its stream positions are released); never if it rolls
    back."""
    pending = _pending.get()
    if pending is None:
        raise RuntimeError("stream rows must be written inside Database.write()")
    pending.append((tracker, key, position))


def start_pending() -> tuple[contextvars.Token[list[PendingMark] | None], list[PendingMark]]:
    marks: list[PendingMark] = []
    return _pending.set(marks), marks


def stop_pending(
    token: contextvars.Token[list[PendingMark] | None], marks: list[PendingMark], committed: bool
) -> None:
    _pending.reset(token)
    if committed:
        for tracker, key, position in marks:
            tracker.mark(key, position)
