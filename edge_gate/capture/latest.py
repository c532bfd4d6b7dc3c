"""LatestFrame: a one-slot mailbox between the capture thread and the pipeline.

``put`` never blocks and never fails: a newer frame replaces an unread one, which is counted
as dropped. ``get`` waits (with a timeout) for a frame newer than the last one it returned, so a
slow consumer always works on the most recent picture and memory holds at most one frame.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class SlotStats:
    """Counters since the slot was made."""

    put: int
    taken: int
    dropped: int


class LatestFrame(Generic[T]):
    """Thread-safe size-1 slot; newest wins; drops counted."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._item: T | None = None
        self._put = 0
        self._taken = 0
        self._dropped = 0
        self._closed = False

    def put(self, item: T) -> None:
        """Store ``item``; an unread previous item is dropped. Never blocks on the consumer."""
        with self._cond:
            if self._item is not None:
                self._dropped += 1
            self._item = item
            self._put += 1
            self._cond.notify_all()

    def get(self, timeout_s: float) -> T | None:
        """The newest unread item, waiting up to ``timeout_s``; ``None`` on timeout or close."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait_for(lambda: self._item is not None or self._closed, timeout_s)
            item, self._item = self._item, None
            if item is not None:
                self._taken += 1
            return item

    def close(self) -> None:
        """Wake every waiting consumer; later ``get`` calls return what is left, then ``None``."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def stats(self) -> SlotStats:
        with self._cond:
            return SlotStats(put=self._put, taken=self._taken, dropped=self._dropped)
