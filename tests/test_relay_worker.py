"""The relay worker thread against a real pty relay: results by callback, stale commands dropped."""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path

import pytest

from edge_gate.door.client import UnlockOutcome
from edge_gate.door.worker import RelayWorker, UnlockCommand
from tests.test_relay_support import make_client, pty_relay, silent_pty

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


class Results:
    def __init__(self) -> None:
        self.items: list[tuple[UnlockCommand, UnlockOutcome]] = []
        self.cond = threading.Condition()

    def __call__(self, cmd: UnlockCommand, outcome: UnlockOutcome) -> None:
        with self.cond:
            self.items.append((cmd, outcome))
            self.cond.notify_all()

    def wait(self, n: int, timeout_s: float = 5.0) -> list[tuple[UnlockCommand, UnlockOutcome]]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.items) >= n, timeout_s)
            return list(self.items)


def test_worker_unlocks_and_reports(tmp_path: Path) -> None:
    """A submitted command is executed once; the callback gets ok=True and the tag back."""
    key = secrets.token_bytes(32)
    with pty_relay(key) as relay:
        results = Results()
        stop = threading.Event()
        worker = RelayWorker(
            make_client(relay.port, key, tmp_path / "counter"),
            on_result=results,
            stop=stop,
            health_interval_s=0.2,
        )
        worker.start()
        assert worker.submit(UnlockCommand(120, time.monotonic() + 2.0, tag="d1"))
        ((cmd, outcome),) = results.wait(1)
        assert cmd.tag == "d1"
        assert outcome.ok
        assert outcome.pulse_ms == 120
        time.sleep(0.5)  # let a health tick run
        assert worker.last_status is not None
        assert worker.last_status.ok
        stop.set()
        assert worker.join(2.0)
        assert len(relay.events.of("unlocked")) == 1


def test_worker_drops_stale_and_refuses_when_full(tmp_path: Path) -> None:
    """Queue of one: while a command is stuck on a silent relay, one more waits and a third is
    refused; the waiting one expires and is reported stale, never sent."""
    with silent_pty() as port:
        client = make_client(port, secrets.token_bytes(32), tmp_path / "counter", timeout_s=0.6)
        results = Results()
        stop = threading.Event()
        worker = RelayWorker(client, on_result=results, stop=stop, health_interval_s=60)
        worker.start()
        assert worker.submit(UnlockCommand(100, time.monotonic() + 5.0, tag="first"))
        deadline = time.monotonic() + 2.0
        while worker._queue.qsize() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker.submit(UnlockCommand(100, time.monotonic() + 0.2, tag="second"))
        assert not worker.submit(UnlockCommand(100, time.monotonic() + 5.0, tag="third"))
        items = results.wait(2)
        assert [(c.tag, o.reason) for c, o in items] == [("first", "timeout"), ("second", "stale")]
        assert worker.stale_dropped == 1
        assert client._counter.value == 0  # the stale command never reserved a counter
        stop.set()
        assert worker.join(2.0)
        assert not worker.submit(UnlockCommand(100, time.monotonic() + 5.0, tag="late"))


def test_worker_reports_unavailable_port(tmp_path: Path) -> None:
    """No device: the unlock is reported relay_unavailable quickly; the worker keeps running."""
    client = make_client(str(tmp_path / "absent"), secrets.token_bytes(32), tmp_path / "c")
    results = Results()
    stop = threading.Event()
    worker = RelayWorker(client, on_result=results, stop=stop, health_interval_s=0.1)
    worker.start()
    worker.submit(UnlockCommand(100, time.monotonic() + 2.0))
    ((_, outcome),) = results.wait(1)
    assert outcome.reason == "relay_unavailable"
    assert worker.alive
    stop.set()
    assert worker.join(2.0)


def test_stopping_the_worker_releases_the_serial_port(tmp_path: Path) -> None:
    """The port is opened exclusively; after stop() the worker has closed it, so a restarted
    daemon (or `edge-gate relay status`) can open it at once. Before the stop it cannot."""
    import serial

    key = secrets.token_bytes(32)
    with pty_relay(key) as relay:
        worker = RelayWorker(
            make_client(relay.port, key, tmp_path / "counter"),
            on_result=Results(),
            stop=threading.Event(),
            health_interval_s=0.1,
        )
        worker.start()
        deadline = time.monotonic() + 2.0
        while not worker.last_status and time.monotonic() < deadline:
            time.sleep(0.02)  # the first health poll opened the port
        assert worker.last_status is not None
        with pytest.raises(serial.SerialException):
            serial.Serial(relay.port, 115200, exclusive=True).close()
        started = time.monotonic()
        assert worker.stop(2.0)
        assert time.monotonic() - started < 1.0
        serial.Serial(relay.port, 115200, exclusive=True).close()  # free again
