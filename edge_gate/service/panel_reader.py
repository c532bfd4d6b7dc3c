"""``[osdp_pd]``: edge-gate as a reader of a building's access-control panel (composition).

On a face grant :class:`~edge_gate.service.door_actions.DoorActions` hands the granted person's
card to :meth:`PanelReader.report` and the PD sends it to the panel as one card read, under
Secure Channel only; the panel decides and opens its own door. Denials send nothing.

The panel's commands come in on libosdp's thread (its lock held, so the answer is decided there
and nothing slow happens): ``osdp_OUT`` on output 0 pulses the ``[relay]`` door when
``apply_output`` is set (ACK once the pulse is queued; a permanent "on" is refused: a signed
relay pulse cannot hold a door open), anything else for an output is NAKed; LED and buzzer
commands are acknowledged (edge-gate has no local indicator) and recorded. Each becomes an
``osdp.panel_command`` audit event, emitted from this part's own thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge_gate.audit.events import EventType
from edge_gate.door.client import UnlockOutcome
from edge_gate.door.worker import RelayWorker, UnlockCommand
from edge_gate.osdp.cards import CardCredential
from edge_gate.osdp.messages import (
    OUT_PERMANENT_OFF,
    OUT_TEMPORARY_OFF,
    OUT_TEMPORARY_ON,
    BuzzerCommand,
    LedCommand,
    LinkState,
    OtherCommand,
    OutputCommand,
    PanelCommand,
)
from edge_gate.osdp.peripheral import OsdpPeripheral
from edge_gate.service.ports import EventValue
from edge_gate.threads import ServiceThread

log = logging.getLogger(__name__)

STRIKE_OUTPUT = 0
MIN_PULSE_MS, MAX_PULSE_MS = 100, 10_000  # what [relay] pulse_ms allows


@dataclass(frozen=True)
class _Event:
    event_type: EventType
    reason: str
    fields: dict[str, EventValue]


class PanelReader(ServiceThread):
    """The door part for ``[osdp_pd]``: the PD (and the relay when it applies osdp_OUT)."""

    def __init__(
        self,
        emit: Callable[..., None],
        *,
        reader_no: int,
        unlock_expiry_s: float,
        stop: threading.Event,
        poll_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__("osdp-panel-reader", stop=stop)
        self._emit = emit
        self._reader_no = reader_no
        self._expiry_s = unlock_expiry_s
        self._poll_s = poll_s
        self._clock = clock
        self._pd: OsdpPeripheral | None = None
        self._relay: RelayWorker | None = None
        self._pending: queue.SimpleQueue[_Event] = queue.SimpleQueue()
        self._pulses = 0
        self._was_secure = False

    def attach(self, pd: OsdpPeripheral, relay: RelayWorker | None) -> None:
        """The PD (built with :meth:`on_command` / :meth:`on_link`) and the relay, if any."""
        self._pd, self._relay = pd, relay

    # -- Part -----------------------------------------------------------------------------------

    def start(self) -> None:
        if self._pd is None:
            raise RuntimeError("no PD attached")  # a programming error
        if self._relay is not None:
            self._relay.start()
        self._pd.start()
        super().start()

    def stop(self, timeout_s: float = 5.0) -> bool:
        deadline = self._clock() + timeout_s
        ok = super().stop(timeout_s)
        for part in (self._pd, self._relay):
            if part is not None:
                ok = part.stop(max(0.0, deadline - self._clock())) and ok
        return ok

    @property
    def alive(self) -> bool:
        parts = [p for p in (self._pd, self._relay) if p is not None]
        return super().alive and all(p.alive for p in parts)

    @property
    def link(self) -> LinkState | None:
        """The PD's link to the panel (None before :meth:`attach`)."""
        return None if self._pd is None else self._pd.link

    def submit(self, cmd: UnlockCommand) -> bool:
        """A face grant never opens a door here: the panel decides (see :meth:`report`)."""
        return False

    # -- to the panel (the pipeline thread) -----------------------------------------------------

    def report(self, card: CardCredential) -> bool:
        """Send one card read; False (nothing sent) without a Secure Channel to the panel."""
        pd = self._pd
        return pd is not None and pd.report_card(card, self._reader_no)

    # -- from the panel (libosdp's thread, its lock held: decide, queue, return) ----------------

    def on_command(self, cmd: PanelCommand) -> bool:
        match cmd:
            case OutputCommand():
                ok, reason = self._output(cmd)
                self._queue(reason, detail=f"output {cmd.output_no}, {cmd.timer_ms} ms")
                return ok
            case LedCommand():
                self._queue("led", detail=f"led {cmd.led_number} colour {cmd.on_color}")
                return True
            case BuzzerCommand():
                self._queue("buzzer", detail=f"buzzer {cmd.rep_count} times")
                return True
            case OtherCommand():
                return True

    def _output(self, cmd: OutputCommand) -> tuple[bool, str]:
        if self._relay is None or cmd.output_no != STRIKE_OUTPUT:
            return False, "output_not_wired"
        if cmd.control_code in (OUT_PERMANENT_OFF, OUT_TEMPORARY_OFF):
            return True, "output_off"  # the strike is only ever energised for a pulse
        if cmd.control_code != OUT_TEMPORARY_ON or cmd.timer_ms <= 0:
            return False, "output_hold_refused"
        self._pulses += 1
        pulse_ms = min(MAX_PULSE_MS, max(MIN_PULSE_MS, cmd.timer_ms))
        unlock = UnlockCommand(pulse_ms, self._clock() + self._expiry_s, f"panel{self._pulses}")
        if not self._relay.submit(unlock):
            return False, "output_busy"
        return True, "output_pulse"

    def on_link(self, state: LinkState) -> None:
        if state.secure and not self._was_secure:
            log.warning("osdp.panel_secure", extra={"EG_OSDP_ADDRESS": state.address})
        elif self._was_secure and not state.secure:
            log.error("osdp.panel_lost", extra={"EG_OSDP_ADDRESS": state.address})
            self._pending.put(
                _Event(
                    EventType.SERVICE_DEGRADED,
                    "panel_link_lost",
                    {"detail": f"osdp address {state.address}"},
                )
            )
        self._was_secure = state.secure

    def on_relay_result(self, cmd: UnlockCommand, outcome: UnlockOutcome) -> None:
        """The relay's answer to a pulse the panel asked for (the relay worker's thread)."""
        if outcome.ok:
            self._queue("output_applied", latency_ms=round(outcome.latency_ms))
        else:
            self._pending.put(
                _Event(
                    EventType.RELAY_ERROR,
                    outcome.reason,
                    {"latency_ms": round(outcome.latency_ms)},
                )
            )

    def _queue(self, reason: str, **fields: EventValue) -> None:
        self._pending.put(_Event(EventType.OSDP_PANEL_COMMAND, reason, fields))

    # -- the thread: audit events off libosdp's lock ---------------------------------------------

    def run(self) -> None:
        while not self.stopping:
            self.heartbeat.beat()
            self._drain()
            self.wait(self._poll_s)
        self._drain()

    def _drain(self) -> None:
        while True:
            try:
                ev = self._pending.get_nowait()
            except queue.Empty:
                return
            self._emit(ev.event_type, reason=ev.reason, **ev.fields)
