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
from edge_gate.service.second_factor import FactorOutcome
from edge_gate.threads import Heartbeat, ServiceThread

__all__ = ["Heartbeat", "PipelineStats", "PipelineThread"]

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


class PipelineThread(ServiceThread):
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
        on_factor: Callable[[FactorOutcome], None] | None = None,
    ) -> None:
        super().__init__("pipeline", stop=stop, heartbeat=heartbeat)
        self._slot = slot
        self._processor = processor
        self._on_decision = on_decision
        self._on_error = on_error
        self._on_factor = on_factor
        self._min_period_s = 1.0 / max_fps
        self.stats = PipelineStats()
        self._pending_matcher: Matcher | None = None
        self._lock = threading.Lock()

    def replace_matcher(self, matcher: Matcher) -> None:
        """Hand a reloaded gallery to the pipeline thread (applied before its next frame)."""
        with self._lock:
            self._pending_matcher = matcher

    def run(self) -> None:
        next_allowed_s = 0.0
        while not self._stop.is_set():
            self.heartbeat.beat()
            with self._lock:
                matcher, self._pending_matcher = self._pending_matcher, None
            if matcher is not None:
                self._processor.set_matcher(matcher)
            frame = self._slot.get(timeout_s=0.5)
            if frame is None:
                self._idle()  # no camera frame: a card, a PIN or a timeout still gets its answer
                continue
            wait_s = next_allowed_s - time.monotonic()
            if wait_s > 0 and self._stop.wait(wait_s):
                break  # rate cap: a flood of frames cannot starve the box
            next_allowed_s = time.monotonic() + self._min_period_s
            self._process(frame)

    def _idle(self) -> None:
        try:
            outcomes = self._processor.idle(time.monotonic())
        except Exception as e:  # fail secure, keep running
            self.stats.errors += 1
            log.exception("pipeline.error")
            self._on_error(e)
            return
        self._factor_outcomes(outcomes)

    def _factor_outcomes(self, outcomes: tuple[FactorOutcome, ...]) -> None:
        for outcome in outcomes:
            try:
                if self._on_factor is None:
                    raise RuntimeError("a door mode outcome without a handler")
                self._on_factor(outcome)
            except Exception as e:
                self.stats.errors += 1
                log.exception("pipeline.decision_error")
                self._on_error(e)

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
        self._factor_outcomes(result.factor_decisions)
