"""Helpers for the relay tests (no tests here): relay simulator on a real pty, channel wrappers."""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import subprocess
import threading
import time
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from edge_gate.door.client import RelayClient
from edge_gate.door.counter import CounterStore
from edge_gate.door.relay_core import RelayPolicy
from edge_gate.door.transport import Channel, FdChannel, SerialChannel
from edge_gate_dev.relay_sim import RelaySim


@dataclass
class EventLog:
    """Thread-safe list of relay events with waiting."""

    events: list[dict[str, object]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, event: dict[str, object]) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def kinds(self) -> list[object]:
        with self.cond:
            return [e["event"] for e in self.events]

    def of(self, kind: str) -> list[dict[str, object]]:
        with self.cond:
            return [e for e in self.events if e["event"] == kind]

    def wait_for(self, pred: Callable[[list[dict[str, object]]], bool], timeout_s: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: pred(self.events), timeout_s)


@dataclass
class PtyRelay:
    """A relay simulator thread on the master side of a pty; ``port`` is the slave path."""

    port: str
    key: bytes
    sim: RelaySim
    events: EventLog


@contextlib.contextmanager
def pty_relay(
    key: bytes,
    *,
    policy: RelayPolicy | None = None,
    state_file: Path | None = None,
    nonce_source: Callable[[int], bytes] = secrets.token_bytes,
    wrap: Callable[[Channel], Channel] | None = None,
) -> Iterator[PtyRelay]:
    master, slave = os.openpty()
    tty.setraw(slave)
    events = EventLog()
    channel: Channel = FdChannel(master)
    if wrap is not None:
        channel = wrap(channel)
    sim = RelaySim(
        channel, key, emit=events, policy=policy, state_file=state_file, nonce_source=nonce_source
    )
    stop = threading.Event()
    thread = threading.Thread(target=sim.run, args=(stop,), name="relay-sim-test", daemon=True)
    thread.start()
    try:
        yield PtyRelay(os.ttyname(slave), key, sim, events)
    finally:
        stop.set()
        thread.join(5.0)
        assert not thread.is_alive()
        os.close(slave)
        os.close(master)


@contextlib.contextmanager
def silent_pty() -> Iterator[str]:
    """A pty whose other end is open but never answers."""
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        yield os.ttyname(slave)
    finally:
        os.close(slave)
        os.close(master)


def make_client(
    port: str,
    key: bytes,
    counter_file: Path,
    *,
    timeout_s: float = 0.5,
    wrap: Callable[[Channel], Channel] | None = None,
) -> RelayClient:
    channel: Channel = SerialChannel(port, 115200)
    if wrap is not None:
        channel = wrap(channel)
    return RelayClient(channel, key, CounterStore(counter_file), timeout_s=timeout_s)


class RecordingChannel:
    """Passes everything through and keeps a copy of every write (to replay it later)."""

    def __init__(self, inner: Channel) -> None:
        self.inner = inner
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.inner.write(data)

    def read(self, timeout_s: float) -> bytes:
        return self.inner.read(timeout_s)

    def discard_input(self) -> None:
        self.inner.discard_input()

    def close(self) -> None:
        self.inner.close()


class NoisyChannel(RecordingChannel):
    """Surrounds every written frame with random line noise (zeros included)."""

    def __init__(self, inner: Channel, seed: int) -> None:
        super().__init__(inner)
        self._rng = random.Random(seed)

    def _noise(self) -> bytes:
        n = self._rng.randrange(0, 40)
        return bytes(self._rng.choice((0, self._rng.randrange(256))) for _ in range(n))

    def write(self, data: bytes) -> None:
        self.inner.write(self._noise() + data + self._noise())


class Socat:
    """``socat pty,raw,echo=0,link=A pty,raw,echo=0,link=B``: a pty pair that can be unplugged."""

    def __init__(self, a: Path, b: Path) -> None:
        self.a, self.b = a, b
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        socat = shutil.which("socat")
        assert socat is not None, "socat is required (apt package socat)"
        self.proc = subprocess.Popen(
            [socat, f"pty,raw,echo=0,link={self.a}", f"pty,raw,echo=0,link={self.b}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5.0
        while not (self.a.exists() and self.b.exists()):
            assert time.monotonic() < deadline, "socat did not create its ptys"
            time.sleep(0.01)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5.0)
            self.proc = None
        deadline = time.monotonic() + 5.0
        while self.a.exists() or self.b.exists():
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
