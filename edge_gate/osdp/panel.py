"""edge-gate as an OSDP control panel: poll PDs over Secure Channel, hand on their card and
keypad events as typed values, pulse a PD output and report it only after the PD's answer.

Secure by default: libosdp runs with ``EnforceSecure`` (no plain-text session, no fallback to
the well-known SCBK-D), and the panel delivers card/keypad events and sends ``osdp_OUT`` only
while the PD's Secure Channel is up. ``install_mode`` (commissioning only) lets libosdp open a
session with SCBK-D to a PD in install mode and hand it this panel's SCBK (osdp_KEYSET).

Threads: libosdp's refresh thread calls our completion callback with its lock held, so that
callback only records the answer; the panel's own thread (:meth:`run`) drains events and
watches link states, and callers of :meth:`pulse_output` wait on an event with a timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import osdp

from edge_gate.osdp.convert import reader_event
from edge_gate.osdp.messages import (
    OUT_TEMPORARY_ON,
    LinkState,
    PulseOutcome,
    PulseResult,
    ReaderEvent,
    timer_count,
)
from edge_gate.threads import ServiceThread

log = logging.getLogger(__name__)

EventCallback = Callable[[ReaderEvent], None]


@dataclass(frozen=True)
class PdSpec:
    """One PD the panel polls: its address on the bus, the channel, its SCBK."""

    address: int
    channel: osdp.Channel
    scbk: bytes = field(repr=False)


@dataclass
class _Pending:
    address: int
    done: threading.Event = field(default_factory=threading.Event)
    status: int | None = None


_COMPLETION = {
    osdp.CompletionStatus.Ok: PulseResult.ACKED,
    osdp.CompletionStatus.Failed: PulseResult.NAKED,
    osdp.CompletionStatus.Flushed: PulseResult.ABORTED,
    osdp.CompletionStatus.Aborted: PulseResult.ABORTED,
}


class OsdpPanel(ServiceThread):
    """The control panel; :meth:`start` brings libosdp up, :meth:`stop` tears it down."""

    def __init__(
        self,
        pds: Sequence[PdSpec],
        *,
        on_event: EventCallback,
        install_mode: bool = False,
        stop: threading.Event | None = None,
        poll_s: float = 0.02,
        connect_grace_s: float = 3.0,
        reconnect_s: float = 2.0,
        log_level: int = osdp.LogLevel.Emergency,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__("osdp-cp", stop=stop)
        if not pds:
            raise ValueError("an OSDP panel needs at least one PD")
        self._pds = list(pds)
        self._on_event = on_event
        self._install_mode = install_mode
        self._poll_s = poll_s
        self._connect_grace_s = connect_grace_s
        self._log_level = log_level
        self._clock = clock
        self._cp: osdp.ControlPanel | None = None
        self._states: dict[int, LinkState] = {}
        self._reported: dict[int, LinkState] = {}
        self._pulse_lock = threading.Lock()
        self._pending: _Pending | None = None
        self._started_s = 0.0
        self._reconnect_s = reconnect_s
        self._offline_since: dict[int, float] = {}
        self._last_kick: dict[int, float] = {}
        self.reconnect_attempts = 0

    @property
    def addresses(self) -> list[int]:
        return [p.address for p in self._pds]

    def start(self) -> None:
        if self._cp is None:
            flags = (
                [osdp.LibFlag.InstallMode] if self._install_mode else [osdp.LibFlag.EnforceSecure]
            )
            info = [osdp.PDInfo(p.address, p.channel, scbk=p.scbk, flags=flags) for p in self._pds]
            self._cp = osdp.ControlPanel(
                info,
                log_level=self._log_level,
                command_completion_handler=self._completed,
            )
            self._cp.start()
            self._started_s = self._clock()
        super().start()

    # -- state ------------------------------------------------------------------------------

    def link(self, address: int) -> LinkState:
        """The latest observed state of the link to ``address`` (offline before the first)."""
        return self._states.get(address, LinkState(address, online=False, secure=False))

    def _observe(self, cp: osdp.ControlPanel) -> None:
        online, secure = cp.status(), cp.sc_status()
        for i, p in enumerate(self._pds):
            state = LinkState(p.address, bool(online >> i & 1), bool(secure >> i & 1))
            self._states[p.address] = state
            self._maybe_reconnect(cp, state)
            before = self._reported.get(p.address)
            if before == state:
                continue
            in_grace = self._clock() - self._started_s < self._connect_grace_s
            if before is None and not (state.online and state.secure) and in_grace:
                continue  # still connecting: not an outage yet
            self._reported[p.address] = state
            self._deliver(state)

    def _maybe_reconnect(self, cp: osdp.ControlPanel, state: LinkState) -> None:
        """libosdp waits up to 300 s before it polls an offline PD again; a door cannot. While
        the PD is offline, restart its state machine every ``reconnect_s`` (a new poll, then a
        new Secure Channel handshake: nothing of the old session is reused)."""
        now = self._clock()
        if state.online:
            self._offline_since.pop(state.address, None)
            return
        since = self._offline_since.setdefault(state.address, now)
        last = self._last_kick.get(state.address, since)
        if now - last < self._reconnect_s:
            return
        self._last_kick[state.address] = now
        self.reconnect_attempts += 1
        cp.disable_pd(state.address)
        cp.enable_pd(state.address)

    # -- the panel thread -------------------------------------------------------------------

    def run(self) -> None:
        cp = self._cp
        if cp is None:
            return
        try:
            while not self.stopping:
                self.heartbeat.beat()
                self._observe(cp)
                for p in self._pds:
                    self._drain(cp, p.address)
                self.wait(self._poll_s)
        finally:
            self._teardown(cp)

    def _drain(self, cp: osdp.ControlPanel, address: int) -> None:
        while (event := cp.get_event(address, timeout=-1)) is not None:
            typed = reader_event(address, event)
            if typed is None:
                continue
            if not self.link(address).secure:  # never act on a card outside Secure Channel
                log.warning("osdp.insecure_event_dropped", extra={"EG_OSDP_ADDRESS": address})
                continue
            self._deliver(typed)

    def _deliver(self, event: ReaderEvent) -> None:
        try:
            self._on_event(event)
        except Exception:
            log.exception("osdp.callback_error")

    def _teardown(self, cp: osdp.ControlPanel) -> None:
        try:
            cp.teardown()
        except Exception:
            log.exception("osdp.teardown_failed")
        for p in self._pds:
            close = getattr(p.channel, "close", None)
            if callable(close):
                close()
        self._states.clear()

    # -- the door strike --------------------------------------------------------------------

    def pulse_output(
        self, address: int, pulse_ms: int, *, output_no: int = 0, timeout_s: float = 2.0
    ) -> PulseOutcome:
        """Energise ``output_no`` of PD ``address`` for ``pulse_ms`` (osdp_OUT, temporary on).

        Returns after the PD's ACK (``acked``) or NAK, or after ``timeout_s``; refuses at once
        (``offline``) when the PD is not online with a Secure Channel. One pulse at a time.
        """
        t0 = self._clock()
        cp = self._cp
        with self._pulse_lock:
            if cp is None or self.stopping or not cp.is_sc_active(address):
                return PulseOutcome(PulseResult.OFFLINE, 0, 0.0)  # asked live, not cached
            count = timer_count(pulse_ms)
            command: dict[str, Any] = {
                "command": osdp.Command.Output,
                "output_no": output_no,
                "control_code": OUT_TEMPORARY_ON,
                "timer_count": count,
            }
            pending = _Pending(address)
            self._pending = pending
            try:
                if not cp.submit_command(address, command):
                    return PulseOutcome(PulseResult.NOT_SENT, 0, self._ms_since(t0))
                if not pending.done.wait(timeout_s):
                    cp.flush_commands(address)
                    return PulseOutcome(PulseResult.TIMEOUT, 0, self._ms_since(t0))
            finally:
                self._pending = None
            status = pending.status
            result = (
                PulseResult.ABORTED
                if status is None
                else _COMPLETION.get(status, PulseResult.ABORTED)
            )
            applied = count * 100 if result is PulseResult.ACKED else 0
            return PulseOutcome(result, applied, self._ms_since(t0))

    def _ms_since(self, t0: float) -> float:
        return (self._clock() - t0) * 1000

    def _completed(self, address: int, command: dict[str, Any], status: int) -> None:
        """libosdp's refresh thread, its lock held: record and wake the waiter, nothing else."""
        pending = self._pending
        if pending is None or pending.address != address:
            return
        if command.get("command") != osdp.Command.Output:
            return
        pending.status = status
        pending.done.set()

    # -- installer checks -------------------------------------------------------------------

    def describe(self, address: int) -> dict[str, int]:
        """The PD's id (vendor, model, serial, firmware) for ``edge-gate osdp test``."""
        cp = self._cp
        if cp is None:
            return {}
        pd_id = cp.get_pd_id(address)
        out = {
            "vendor_code": pd_id.vendor_code,
            "model": pd_id.model,
            "version": pd_id.version,
            "serial_number": pd_id.serial_number,
            "firmware_version": pd_id.firmware_version,
        }
        for name, cap in (
            ("output_control", osdp.Capability.OutputControl),
            ("card_data_format", osdp.Capability.CardDataFormat),
            ("led_control", osdp.Capability.LEDControl),
        ):
            level, items = cp.check_capability(address, cap)
            out[f"cap_{name}"] = level
            out[f"cap_{name}_items"] = items
        return out
