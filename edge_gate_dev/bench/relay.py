"""Relay round-trip benchmark over a real pseudo-terminal, for ``edge-gate bench``.

``bench_relay()`` starts the relay simulator on the master side of a fresh pty (persisting its
counter to a temp state file, like the real thing), opens the slave side with pyserial at
``baudrate`` and runs ``n`` full unlocks. A pty moves bytes instantly whatever the baud rate,
so the result also gives the wire time the UNLOCK and ACK frames would take on a real line
at that rate, and the sum of both as the estimate for real hardware.
"""

from __future__ import annotations

import os
import secrets
import statistics
import tempfile
import threading
import tty
from pathlib import Path

from edge_gate.door.client import RelayClient
from edge_gate.door.codec import MsgType, body_length
from edge_gate.door.counter import CounterStore
from edge_gate.door.framing import CRC_BYTES
from edge_gate.door.relay_core import RelayPolicy
from edge_gate.door.transport import FdChannel, SerialChannel
from edge_gate_dev.relay_sim import RelaySim

BITS_PER_BYTE_8N1 = 10


def wire_bytes(msg_type: MsgType) -> int:
    """Bytes on the wire for one message: body + CRC + COBS overhead byte + two delimiters."""
    return body_length(msg_type) + CRC_BYTES + 1 + 2


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[idx]


def measure_unlocks(client: RelayClient, n: int, pulse_ms: int, baudrate: int) -> dict[str, float]:
    """Run ``n`` unlocks through ``client`` and summarise the latencies (also for real relays)."""
    ack_ms: list[float] = []
    full_ms: list[float] = []
    failures = 0
    for _ in range(n):
        outcome = client.unlock(pulse_ms)
        if outcome.ok and outcome.ack_latency_ms is not None:
            ack_ms.append(outcome.ack_latency_ms)
            full_ms.append(outcome.latency_ms)
        else:
            failures += 1
    if not ack_ms:
        return {"n": float(n), "failures": float(failures)}
    wire_ms = (
        (wire_bytes(MsgType.UNLOCK) + wire_bytes(MsgType.ACK)) * BITS_PER_BYTE_8N1 * 1000 / baudrate
    )
    p95 = _percentile(ack_ms, 0.95)
    return {
        "n": float(n),
        "failures": float(failures),
        "baudrate": float(baudrate),
        "challenge_to_ack_ms_p50": statistics.median(ack_ms),
        "challenge_to_ack_ms_p95": p95,
        "challenge_to_ack_ms_max": max(ack_ms),
        "hello_to_ack_ms_p50": statistics.median(full_ms),
        "hello_to_ack_ms_p95": _percentile(full_ms, 0.95),
        "wire_ms_at_baud": wire_ms,
        "estimated_serial_ms_p95": p95 + wire_ms,
    }


def bench_relay(n: int = 200, baudrate: int = 115200, pulse_ms: int = 100) -> dict[str, float]:
    """Measure challenge → verified ACK (ms) over a pty with the simulator; see module doc."""
    key = secrets.token_bytes(32)
    master, slave = os.openpty()
    tty.setraw(slave)
    stop = threading.Event()
    with tempfile.TemporaryDirectory(prefix="edge-gate-bench-") as tmp:
        sim = RelaySim(
            FdChannel(master),
            key,
            emit=lambda _event: None,
            policy=RelayPolicy(max_pulse_ms=pulse_ms),
            state_file=Path(tmp) / "relay-sim.state",
        )
        thread = threading.Thread(target=sim.run, args=(stop,), name="relay-sim", daemon=True)
        thread.start()
        channel = SerialChannel(os.ttyname(slave), baudrate)
        try:
            client = RelayClient(channel, key, CounterStore(Path(tmp) / "counter"), timeout_s=1.0)
            return measure_unlocks(client, n, pulse_ms, baudrate)
        finally:
            stop.set()
            thread.join(5.0)
            channel.close()
            os.close(slave)
            os.close(master)
