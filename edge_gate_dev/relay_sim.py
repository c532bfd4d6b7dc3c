"""Relay controller simulator: the relay side of the protocol over a real serial channel.

Used by ``edge-gate relay-sim``, by the tests (in a thread, on the master side of a pty) and as
a reference for firmware authors. It persists its highest accepted counter (atomic + fsync)
*before* energising, clamps the pulse to ``max_pulse_ms`` and relocks by itself.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

from edge_gate.door.codec import MAX_COUNTER, from_unframed
from edge_gate.door.framing import StreamDecoder
from edge_gate.door.relay_core import EventKind, RelayCore, RelayInputs, RelayPolicy
from edge_gate.door.transport import Channel, ChannelUnavailable
from edge_gate.errors import RelayError
from edge_gate.fsutil import atomic_write

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, object]], None]
_STATE_MAGIC = "edge-gate-relay-sim-state 1"
_IDLE_TICK_S = 0.1


def read_state(path: Path | None) -> int:
    """Highest accepted counter from the state file (0 when absent)."""
    if path is None:
        return 0
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return 0
    except (OSError, UnicodeDecodeError) as e:
        raise RelayError(f"{path}: cannot read relay state: {e}") from e
    magic, _, number = text.strip().rpartition(" ")
    if magic != _STATE_MAGIC or not number.isdigit() or int(number) > MAX_COUNTER:
        raise RelayError(f"{path}: malformed relay state file")
    return int(number)


def write_state(path: Path, highest_counter: int) -> None:
    atomic_write(path, f"{_STATE_MAGIC} {highest_counter}\n".encode("ascii"))


class RelaySim:
    """Serve one relay on ``channel`` until ``stop`` is set."""

    def __init__(
        self,
        channel: Channel,
        key: bytes,
        *,
        emit: Emit,
        policy: RelayPolicy | None = None,
        state_file: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        nonce_source: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self._channel = channel
        self._key = key
        self._emit = emit
        self._policy = policy or RelayPolicy()
        self._state_file = state_file
        self._clock = clock
        self._core = RelayCore(
            key,
            highest_counter=read_state(state_file),
            policy=self._policy,
            nonce_source=nonce_source,
        )
        self._decoder = StreamDecoder()
        self._relock_at_s: float | None = None
        self._inputs = RelayInputs()
        self._lock = threading.Lock()
        self.unlock_count = 0

    @property
    def highest_counter(self) -> int:
        return self._core.highest_counter

    @property
    def energised(self) -> bool:
        return self._relock_at_s is not None

    def set_inputs(self, *, door_open: bool, tamper: bool) -> None:
        """Simulate the door contact and the tamper switch."""
        with self._lock:
            self._inputs = RelayInputs(door_open, tamper, self.energised)

    def _current_inputs(self) -> RelayInputs:
        with self._lock:
            return RelayInputs(self._inputs.door_open, self._inputs.tamper, self.energised)

    def run(self, stop: threading.Event) -> None:
        """Main loop; leaves the relay de-energised (door locked) when it returns."""
        self._emit({"event": "ready", "max_pulse_ms": self._policy.max_pulse_ms})
        try:
            while not stop.is_set():
                self._relock_if_due()
                wait_s = _IDLE_TICK_S
                if self._relock_at_s is not None:
                    wait_s = max(0.0, min(wait_s, self._relock_at_s - self._clock()))
                try:
                    data = self._channel.read(wait_s)
                except ChannelUnavailable as e:
                    log.warning("relay_sim.channel_unavailable", extra={"EG_ERROR": str(e)})
                    stop.wait(_IDLE_TICK_S)
                    continue
                if data:
                    self.process(data)
        finally:
            if self._relock_at_s is not None:
                self._relock_at_s = None
                self._emit({"event": "locked"})

    def _relock_if_due(self) -> None:
        if self._relock_at_s is not None and self._clock() >= self._relock_at_s:
            self._relock_at_s = None
            self._emit({"event": "locked"})

    def process(self, data: bytes) -> None:
        """Handle received bytes (any number of frames, partial frames or noise)."""
        for unframed in self._decoder.feed(data):
            decoded = from_unframed(unframed, self._key)
            action = self._core.handle(decoded, self._clock(), self._current_inputs())
            reply = action.reply
            if action.grant is not None:
                grant = action.grant
                try:
                    if self._state_file is not None:
                        write_state(self._state_file, grant.counter)
                except OSError as e:
                    log.error("relay_sim.state_write_failed", extra={"EG_ERROR": str(e)})
                    self._emit({"event": "rejected", "reason": "internal"})
                    reply = grant.nack_internal
                else:
                    self._core.commit(grant)
                    self._relock_at_s = self._clock() + grant.pulse_ms / 1000.0
                    self.unlock_count += 1
                    self._emit(
                        {"event": "unlocked", "pulse_ms": grant.pulse_ms, "counter": grant.counter}
                    )
                    reply = grant.ack
            elif action.event is EventKind.REJECTED:
                self._emit({"event": "rejected", "reason": action.reason})
            elif action.event is not None:
                self._emit({"event": action.event.value})
            if reply is not None:
                try:
                    self._channel.write(reply)
                except ChannelUnavailable as e:
                    log.warning("relay_sim.reply_failed", extra={"EG_ERROR": str(e)})
