"""One lifecycle for every long-running thread of the daemon: start, stop, join, heartbeat.

The pipeline thread, the relay worker, the capture thread and the audit publisher all derive
from :class:`ServiceThread`. A subclass implements :meth:`ServiceThread.run` as a loop that ends
when :attr:`ServiceThread.stopping` turns true, and waits only through :meth:`ServiceThread.wait`
(or other waits with a timeout), so every thread ends within one loop turn of a stop request.
Several threads may share one stop :class:`threading.Event` (the daemon's): setting it stops
them all, and :meth:`ServiceThread.join` then collects each within its share of the shutdown
budget. A thread that owns its event (none was given) may be started again after a stop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Heartbeat:
    """Monotonic time of a loop's last turn (thread-safe by float assignment)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last_s = clock()

    def beat(self) -> None:
        self._last_s = self._clock()

    def age_s(self) -> float:
        return self._clock() - self._last_s


class ServiceThread:
    """A named daemon thread running :meth:`run` until its stop event is set."""

    def __init__(
        self,
        name: str,
        *,
        stop: threading.Event | None = None,
        heartbeat: Heartbeat | None = None,
    ) -> None:
        self._thread_name = name
        self._owns_stop = stop is None
        self._stop = stop if stop is not None else threading.Event()
        self.heartbeat = heartbeat or Heartbeat()
        self._thread: threading.Thread | None = None
        self._lifecycle = threading.Lock()

    # -- control (any thread) ----------------------------------------------------------------

    def start(self) -> None:
        """Start the thread; a no-op while it runs."""
        with self._lifecycle:
            if self._thread is not None and self._thread.is_alive():
                return
            if self._owns_stop:
                self._stop.clear()
            self._thread = threading.Thread(target=self._main, name=self._thread_name, daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Ask the thread to stop and wait up to ``timeout_s``; True when it has ended."""
        self._stop.set()
        self._wake_for_stop()
        return self.join(timeout_s)

    def join(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the thread to end; True if it did or never started."""
        thread = self._thread
        if thread is None or thread.ident is None:
            return True
        thread.join(max(0.0, timeout_s))
        return not thread.is_alive()

    @property
    def alive(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def is_alive(self) -> bool:
        return self.alive

    @property
    def native_id(self) -> int | None:
        """The kernel thread id (per-thread CPU accounting); None before :meth:`start`."""
        return None if self._thread is None else self._thread.native_id

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wait(self, timeout_s: float) -> bool:
        """Sleep up to ``timeout_s``; True as soon as a stop was requested."""
        return self._stop.wait(timeout_s)

    # -- for subclasses ----------------------------------------------------------------------

    def run(self) -> None:
        """The thread's loop (override)."""
        raise NotImplementedError

    def _wake_for_stop(self) -> None:
        """Interrupt a wait that is not on the stop event (override when there is one)."""

    def _main(self) -> None:
        try:
            self.run()
        except Exception:  # the top of a thread: never die silently
            log.exception("thread.crashed", extra={"EG_THREAD": self._thread_name})
