"""The relay worker thread: one unlock at a time, stale commands dropped, results by callback.

API for the daemon::

    from edge_gate.door.client import RelayClient
    from edge_gate.door.counter import CounterStore
    from edge_gate.door.keys import load_relay_key
    from edge_gate.door.transport import SerialChannel
    from edge_gate.door.worker import RelayWorker, UnlockCommand

    client = RelayClient(
        SerialChannel(cfg.relay.port, cfg.relay.baudrate),
        load_relay_key(cfg.relay.key_file),          # SecretFileError if missing/too open
        CounterStore(cfg.relay.counter_file),        # RelayError if the file is corrupt
        timeout_s=cfg.relay.timeout_s,
    )
    worker = RelayWorker(client, on_result=handle, stop=stop_event)
    worker.start()
    accepted = worker.submit(UnlockCommand(cfg.relay.pulse_ms, time.monotonic() + 1.0, tag=...))
    # accepted is False when an unlock is already queued (queue of size 1): report "relay_busy".
    ...
    stop_event.set(); worker.join(timeout_s=2.0)

``handle(cmd, outcome)`` runs on the worker thread (keep it short: enqueue the audit event).
``outcome`` is an :class:`~edge_gate.door.client.UnlockOutcome`; ``outcome.ok`` is true only after
a verified ACK. A command whose ``deadline_s`` (monotonic) has passed when the worker takes it is
never sent: it is reported with reason ``stale``. Every wait has a timeout; between commands the
worker polls the relay status every ``health_interval_s`` (this also reopens an unplugged port);
``worker.last_status`` holds the latest :class:`~edge_gate.door.client.StatusOutcome`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge_gate.door.client import RelayClient, StatusOutcome, UnlockOutcome
from edge_gate.threads import ServiceThread

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnlockCommand:
    pulse_ms: int
    deadline_s: float  # monotonic clock; after this the command is stale
    tag: str = ""  # caller's correlation id (decision id), echoed back to the callback


ResultCallback = Callable[[UnlockCommand, UnlockOutcome], None]


class RelayWorker(ServiceThread):
    """Owns the :class:`RelayClient` on its own thread."""

    def __init__(
        self,
        client: RelayClient,
        *,
        on_result: ResultCallback,
        stop: threading.Event,
        health_interval_s: float = 5.0,
        poll_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__("relay-worker", stop=stop)
        self._client = client
        self._on_result = on_result
        self._health_interval_s = health_interval_s
        self._poll_s = poll_s
        self._clock = clock
        self._queue: queue.Queue[UnlockCommand] = queue.Queue(maxsize=1)
        self._next_health_s = 0.0
        self.last_status: StatusOutcome | None = None
        self.stale_dropped = 0

    def submit(self, cmd: UnlockCommand) -> bool:
        """Queue ``cmd``; False (not queued) when another unlock is waiting or we are stopping."""
        if self._stop.is_set():
            return False
        try:
            self._queue.put_nowait(cmd)
        except queue.Full:
            log.warning("relay.busy", extra={"EG_TAG": cmd.tag})
            return False
        return True

    def run(self) -> None:
        while not self._stop.is_set():
            self.heartbeat.beat()
            try:
                cmd = self._queue.get(timeout=self._poll_s)
            except queue.Empty:
                self._health_tick()
                continue
            try:
                self._execute(cmd)
            except Exception:
                log.exception("relay.worker_error")
                self._deliver(cmd, UnlockOutcome(False, "internal_error", 0.0))
        self._drain()
        try:  # the serial port is released on stop (a restarted daemon can open it at once)
            self._client.channel.close()
        except Exception:
            log.exception("relay.close_failed")

    def _execute(self, cmd: UnlockCommand) -> None:
        if self._clock() > cmd.deadline_s:
            self.stale_dropped += 1
            log.warning("relay.stale_dropped", extra={"EG_TAG": cmd.tag})
            self._deliver(cmd, UnlockOutcome(False, "stale", 0.0))
            return
        outcome = self._client.unlock(cmd.pulse_ms, deadline_s=cmd.deadline_s)
        if outcome.ok:
            log.info(
                "relay.unlocked",
                extra={"EG_TAG": cmd.tag, "EG_LATENCY_MS": round(outcome.latency_ms, 2)},
            )
        self._deliver(cmd, outcome)

    def _drain(self) -> None:
        """On stop, report anything still queued as not executed (the door stays locked)."""
        while True:
            try:
                cmd = self._queue.get_nowait()
            except queue.Empty:
                return
            self._deliver(cmd, UnlockOutcome(False, "stopping", 0.0))

    def _deliver(self, cmd: UnlockCommand, outcome: UnlockOutcome) -> None:
        try:
            self._on_result(cmd, outcome)
        except Exception:
            log.exception("relay.callback_error")

    def _health_tick(self) -> None:
        now = self._clock()
        if now < self._next_health_s:
            return
        self._next_health_s = now + self._health_interval_s
        status = self._client.status()
        if self.last_status is None or status.ok != self.last_status.ok:
            log.info("relay.link", extra={"EG_STATUS": status.reason})
        self.last_status = status
