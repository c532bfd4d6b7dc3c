"""CaptureThread logic with scripted fake sources (unit level; the real server is elsewhere)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from edge_gate.capture.backoff import BackoffPolicy
from edge_gate.capture.failure import CaptureFailure, CaptureOpenError
from edge_gate.capture.frame import Frame
from edge_gate.capture.latest import LatestFrame
from edge_gate.capture.sources import Image, Source
from edge_gate.capture.thread import CaptureState, CaptureThread, LostEvent, RestoredEvent

pytestmark = pytest.mark.timeout(20)


class FakeSource:
    """Yields ``n_frames`` pictures, then hangs ``hang_s`` (a stall) and returns None."""

    finite = False
    native_size = (4, 4)
    description = "fake"

    def __init__(self, n_frames: int, hang_s: float = 0.0) -> None:
        self._left = n_frames
        self._hang_s = hang_s
        self.closed = False

    def read(self) -> Image | None:
        if self._left > 0:
            self._left -= 1
            time.sleep(0.01)
            return np.zeros((4, 4, 3), np.uint8)
        time.sleep(self._hang_s)
        return None

    def close(self) -> None:
        self.closed = True


def _opener(script: list[Source | CaptureFailure]) -> Callable[[Callable[[float], bool]], Source]:
    def open_next(_wait: Callable[[float], bool]) -> Source:
        item = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(item, CaptureFailure):
            raise CaptureOpenError(item, "scripted")
        return item

    return open_next


def _wait_for(pred: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not pred() and time.monotonic() < deadline:
        time.sleep(0.01)
    return pred()


def test_stall_reconnects_and_reports_lost_then_restored() -> None:
    """Frames, then a read that hangs past stall_timeout_s → lost(STALLED) once, reopen,
    frames again → restored once; seq keeps counting across the reconnect."""
    first, second = FakeSource(5, hang_s=0.4), FakeSource(1000)
    lost: list[LostEvent] = []
    restored: list[RestoredEvent] = []
    slot: LatestFrame[Frame] = LatestFrame()
    t = CaptureThread(
        _opener([first, second]),
        slot,
        description="fake",
        stall_timeout_s=0.3,
        backoff=BackoffPolicy(initial_s=0.05, max_s=0.05, jitter=0.0),
        on_lost=lost.append,
        on_restored=restored.append,
    )
    t.start()
    try:
        assert _wait_for(lambda: len(restored) == 1)
        assert [e.failure for e in lost] == [CaptureFailure.STALLED]
        assert first.closed
        assert t.status().state is CaptureState.STREAMING
        assert t.status().reconnects == 1
        frame = slot.get(2.0)
        assert frame is not None
        assert frame.seq >= 5
    finally:
        assert t.stop(2.0)


def test_restored_is_announced_before_the_first_frame_after_an_outage() -> None:
    """A consumer that sees the first post-outage frame must already have the restored event
    (the daemon audits lost → restored → decisions in that order)."""
    first, second = FakeSource(3, hang_s=0.4), FakeSource(1000)
    slot: LatestFrame[Frame] = LatestFrame()
    seq_at_restore: list[int] = []
    lost_seen = threading.Event()

    def on_restored(_ev: RestoredEvent) -> None:
        newest = slot.get(0.0)  # what a consumer could take at this instant
        seq_at_restore.append(-1 if newest is None else newest.seq)

    t = CaptureThread(
        _opener([first, second]),
        slot,
        description="fake",
        stall_timeout_s=0.3,
        backoff=BackoffPolicy(initial_s=0.05, max_s=0.05, jitter=0.0),
        on_lost=lambda _ev: lost_seen.set(),
        on_restored=on_restored,
    )
    t.start()
    try:
        assert lost_seen.wait(5.0)
        assert _wait_for(lambda: len(seq_at_restore) == 1)
        # only pre-outage frames (seq 0..2) or nothing at all were visible when restored fired
        assert seq_at_restore[0] < 3
        after = slot.get(2.0)
        assert after is not None
        assert after.seq >= 3
    finally:
        assert t.stop(2.0)


def test_open_failures_back_off_and_a_crashing_callback_is_contained() -> None:
    """Failed opens retry with backoff; on_lost raising does not kill the thread; the first
    success fires restored."""
    script: list[Source | CaptureFailure] = [
        CaptureFailure.UNREACHABLE,
        CaptureFailure.UNREACHABLE,
        CaptureFailure.TIMEOUT,
        FakeSource(1000),
    ]
    calls: list[float] = []

    def boom(_ev: LostEvent) -> None:
        calls.append(time.monotonic())
        raise RuntimeError("daemon bug")

    restored = threading.Event()
    slot: LatestFrame[Frame] = LatestFrame()
    t = CaptureThread(
        _opener(script),
        slot,
        description="fake",
        backoff=BackoffPolicy(initial_s=0.02, max_s=0.08, jitter=0.5),
        on_lost=boom,
        on_restored=lambda _ev: restored.set(),
        rng=random.Random(1),
    )
    t.start()
    try:
        assert restored.wait(5.0)
        assert len(calls) == 1
        assert slot.get(2.0) is not None
    finally:
        assert t.stop(2.0)
    assert t.status().state is CaptureState.STOPPED


def test_stop_interrupts_a_long_backoff() -> None:
    """stop() during a 30 s auth backoff returns at once (every wait watches the stop Event)."""
    t = CaptureThread(
        _opener([CaptureFailure.AUTH_FAILED]),
        LatestFrame(),
        description="fake",
        backoff=BackoffPolicy(slow_initial_s=30.0, slow_max_s=30.0),
    )
    t.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    assert t.stop(5.0)
    assert time.monotonic() - t0 < 1.0
