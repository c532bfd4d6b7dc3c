"""The door strike on a PD output, as the daemon's door actuator (``[osdp_cp] enabled``).

Same contract as the relay worker (:class:`~edge_gate.door.worker.RelayWorker`): one unlock
queued at most, a command past its deadline is dropped (``stale``), and the result goes to
``on_result`` as an :class:`~edge_gate.door.client.UnlockOutcome` whose ``ok`` is true only
after the PD acknowledged the ``osdp_OUT`` under Secure Channel.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from edge_gate.door.client import UnlockOutcome
from edge_gate.door.worker import ResultCallback, UnlockCommand
from edge_gate.osdp.messages import PulseOutcome, PulseResult
from edge_gate.osdp.panel import OsdpPanel
from edge_gate.threads import ServiceThread

log = logging.getLogger(__name__)

# PulseResult → the UnlockOutcome reasons DoorActions already maps to DenyReason
_REASONS = {
    PulseResult.ACKED: "unlocked",
    PulseResult.NAKED: "nack:osdp",
    PulseResult.OFFLINE: "relay_unavailable",
    PulseResult.NOT_SENT: "relay_unavailable",
    PulseResult.TIMEOUT: "unconfirmed",  # sent, no answer: the door may have opened
    PulseResult.ABORTED: "unconfirmed",
}


def unlock_outcome(out: PulseOutcome) -> UnlockOutcome:
    return UnlockOutcome(out.ok, _REASONS[out.result], out.latency_ms, pulse_ms=out.pulse_ms)


class OsdpDoor(ServiceThread):
    def __init__(
        self,
        panel: OsdpPanel,
        address: int,
        *,
        output_no: int,
        pulse_ms: int,
        reply_timeout_s: float,
        on_result: ResultCallback,
        stop: threading.Event,
        poll_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__("osdp-door", stop=stop)
        self._panel = panel
        self._address = address
        self._output_no = output_no
        self._pulse_ms = pulse_ms
        self._reply_timeout_s = reply_timeout_s
        self._on_result = on_result
        self._poll_s = poll_s
        self._clock = clock
        self._queue: queue.Queue[UnlockCommand] = queue.Queue(maxsize=1)

    def start(self) -> None:
        self._panel.start()
        super().start()

    def submit(self, cmd: UnlockCommand) -> bool:
        if self.stopping:
            return False
        try:
            self._queue.put_nowait(cmd)
        except queue.Full:
            return False
        return True

    def run(self) -> None:
        try:
            while not self.stopping:
                self.heartbeat.beat()
                try:
                    cmd = self._queue.get(timeout=self._poll_s)
                except queue.Empty:
                    continue
                self._execute(cmd)
            while True:  # on stop: anything queued is reported, never executed
                try:
                    cmd = self._queue.get_nowait()
                except queue.Empty:
                    break
                self._deliver(cmd, UnlockOutcome(False, "stopping", 0.0))
        finally:
            self._panel.stop()

    def _execute(self, cmd: UnlockCommand) -> None:
        if self._clock() > cmd.deadline_s:
            self._deliver(cmd, UnlockOutcome(False, "stale", 0.0))
            return
        out = self._panel.pulse_output(
            self._address,
            self._pulse_ms,
            output_no=self._output_no,
            timeout_s=self._reply_timeout_s,
        )
        self._deliver(cmd, unlock_outcome(out))

    def _deliver(self, cmd: UnlockCommand, outcome: UnlockOutcome) -> None:
        try:
            self._on_result(cmd, outcome)
        except Exception:
            log.exception("osdp.callback_error")
