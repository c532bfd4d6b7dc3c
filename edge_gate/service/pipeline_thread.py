"""The pipeline thread: newest frame → decision path → relay / audit, at a capped rate.

It owns every TFLite interpreter (through the :class:`FrameProcessor`). A heartbeat is stamped on
every loop turn, frame or not, so the main thread pings systemd's watchdog only while this loop
is alive. Any exception on the decision path means no unlock and an audit event; the loop then
goes on with the next frame.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from edge_gate.capture.frame import Frame
from edge_gate.capture.latest import LatestFrame
from edge_gate.decision.policy import Outcome
from edge_gate.service.frame_processor import FrameProcessor, FrameResult, Matcher

log = logging.getLogger(__name__)


@dataclass
class PipelineStats:
    frames: int = 0
    faces: int = 0
    errors: int = 0
    last_process_ms: float = 0.0
    process_ms: list[float] = field(default_factory=list)  # bounded ring of recent timings

    def record(self, ms: float) -> None:
        self.last_process_ms = ms
        self.process_ms.append(ms)
        if len(self.process_ms) > 512:
            del self.process_ms[:256]


class Heartbeat:
    """Monotonic time of the pipeline loop's last turn (thread-safe by float assignment)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last_s = clock()

    def beat(self) -> None:
        self._last_s = self._clock()

    def age_s(self) -> float:
        return self._clock() - self._last_s


class PipelineThread:
    """Runs ``processor`` on the newest frame until ``stop`` is set."""

    def __init__(
        self,
        slot: LatestFrame[Frame],
        processor: FrameProcessor,
        *,
        on_decision: Callable[[Outcome, Frame, FrameResult], None],
        on_error: Callable[[Exception], None],
        stop: threading.Event,
        max_fps: float,
        heartbeat: Heartbeat,
    ) -> None:
        self._slot = slot
        self._processor = processor
        self._on_decision = on_decision
        self._on_error = on_error
        self._stop = stop
        self._min_period_s = 1.0 / max_fps
        self.heartbeat = heartbeat
        self.stats = PipelineStats()
        self._pending_matcher: Matcher | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="pipeline", daemon=True)
        self._stall_for_test_s = 0.0

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout_s: float) -> bool:
        """Wait for the thread to end (after ``stop`` is set); True if it did or never started."""
        if self._thread.ident is not None:
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def replace_matcher(self, matcher: Matcher) -> None:
        """Hand a reloaded gallery to the pipeline thread (applied before its next frame)."""
        with self._lock:
            self._pending_matcher = matcher

    def _run(self) -> None:
        next_allowed_s = 0.0
        while not self._stop.is_set():
            self.heartbeat.beat()
            with self._lock:
                matcher, self._pending_matcher = self._pending_matcher, None
            if matcher is not None:
                self._processor.set_matcher(matcher)
            frame = self._slot.get(timeout_s=0.5)
            if frame is None:
                continue
            wait_s = next_allowed_s - time.monotonic()
            if wait_s > 0 and self._stop.wait(wait_s):
                break  # rate cap: a flood of frames cannot starve the box
            next_allowed_s = time.monotonic() + self._min_period_s
            self._process(frame)

    def _process(self, frame: Frame) -> None:
        start = time.perf_counter()
        try:
            result = self._processor.process(frame.image, frame.t_mono_s)
        except Exception as e:  # the top of this thread's loop: fail secure, keep running
            self.stats.errors += 1
            log.exception("pipeline.error")
            self._on_error(e)
            return
        self.stats.frames += 1
        self.stats.faces += result.faces
        self.stats.record((time.perf_counter() - start) * 1000.0)
        for decision in result.decisions:
            try:
                self._on_decision(decision, frame, result)
            except Exception as e:
                self.stats.errors += 1
                log.exception("pipeline.decision_error")
                self._on_error(e)
