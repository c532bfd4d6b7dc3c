"""The one thread lifecycle: start, stop within the budget, restart, heartbeat, crash logged."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from edge_gate.audit.publisher import Publisher
from edge_gate.capture.thread import CaptureThread
from edge_gate.door.worker import RelayWorker
from edge_gate.service.pipeline_thread import PipelineThread
from edge_gate.threads import ServiceThread


class _Ticker(ServiceThread):
    def __init__(self, stop: threading.Event | None = None) -> None:
        super().__init__("ticker", stop=stop)
        self.turns = 0

    def run(self) -> None:
        while not self.wait(0.01):
            self.turns += 1
            self.heartbeat.beat()


def test_start_stop_and_restart_with_its_own_event() -> None:
    t = _Ticker()
    assert t.join(0.1)  # never started: nothing to wait for
    t.start()
    time.sleep(0.1)
    assert t.alive
    assert t.turns > 0
    assert t.heartbeat.age_s() < 0.5
    started = time.monotonic()
    assert t.stop(1.0)
    assert time.monotonic() - started < 0.5
    assert not t.alive
    t.start()  # owns its event: may run again
    assert t.alive
    assert t.stop(1.0)


def test_one_shared_event_stops_every_thread() -> None:
    stop = threading.Event()
    threads = [_Ticker(stop) for _ in range(4)]
    for t in threads:
        t.start()
    stop.set()
    assert all(t.join(1.0) for t in threads)


def test_a_crashing_thread_is_logged_not_silent(caplog: pytest.LogCaptureFixture) -> None:
    class _Crash(ServiceThread):
        def run(self) -> None:
            raise ValueError("boom")

    t = _Crash("crasher")
    with caplog.at_level(logging.ERROR):
        t.start()
        assert t.join(1.0)
    assert any(r.message == "thread.crashed" for r in caplog.records)


@pytest.mark.parametrize("cls", [PipelineThread, RelayWorker, CaptureThread, Publisher])
def test_every_long_running_part_shares_the_base(cls: type) -> None:
    assert issubclass(cls, ServiceThread)
    own = {"start", "join", "alive", "is_alive", "native_id"} & set(vars(cls))
    assert own == set()  # none re-implements the lifecycle
