"""CaptureThread: keep a camera open and its newest frame in a :class:`LatestFrame` slot.

API for the daemon::

    slot: LatestFrame[Frame] = LatestFrame()
    capture = CaptureThread.from_config(
        cfg.camera, slot,
        on_lost=lambda ev: audit("camera.lost", reason=ev.failure.value, detail=ev.detail),
        on_restored=lambda ev: audit("camera.restored", outage_s=ev.outage_s),
        stop_event=service_stop,            # optional: share the service's one stop Event
    )                                       # raises CaptureOpenError(CREDENTIALS) / ConfigError
    capture.start()
    frame = slot.get(timeout_s=0.5)         # pipeline thread; None on timeout
    capture.status()                        # CaptureStatus: state, frames, reconnects, age, fps
    capture.stop(timeout_s=5.0)             # sets the stop Event and joins; True when it ended

Behaviour: a failed open or a lost stream fires ``on_lost`` once (also when the very first
open fails), then retries with exponential backoff and jitter (slower after auth/TLS failures
so a wrong password does not lock the camera account). The first frame after an outage fires
``on_restored`` with the outage length. A read that returns nothing for ``stall_timeout_s`` is
a stall: the source is closed and reopened. The thread never blocks on the consumer (the slot
drops the older frame), every wait has a timeout and watches the stop Event, and every URL in
logs, callbacks and errors is redacted. Callbacks run on the capture thread: keep them short.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from edge_gate.capture.backoff import BackoffPolicy
from edge_gate.capture.failure import SLOW_RETRY, CaptureFailure, CaptureOpenError
from edge_gate.capture.frame import Frame
from edge_gate.capture.latest import LatestFrame
from edge_gate.capture.sources import Credentials, Source, SourceSpec, make_frame, open_source
from edge_gate.capture.url import redact
from edge_gate.config.camera import CameraConfig
from edge_gate.threads import ServiceThread

log = logging.getLogger(__name__)

Opener = Callable[[Callable[[float], bool]], Source]
E = TypeVar("E")


class CaptureState(enum.Enum):
    CONNECTING = "connecting"
    STREAMING = "streaming"
    LOST = "lost"
    ENDED = "ended"  # a finite file reached its end
    STOPPED = "stopped"


@dataclass(frozen=True)
class LostEvent:
    """The camera went away (or never came): why, redacted detail, when."""

    failure: CaptureFailure
    detail: str
    t_mono_s: float


@dataclass(frozen=True)
class RestoredEvent:
    """Frames flow again after an outage of ``outage_s`` seconds."""

    outage_s: float
    t_mono_s: float


@dataclass(frozen=True)
class CaptureStatus:
    state: CaptureState
    frames: int
    reconnects: int
    dropped: int
    last_failure: CaptureFailure | None
    last_frame_age_s: float | None
    fps: float


class CaptureThread(ServiceThread):
    """One camera, one thread; see the module docstring for the contract."""

    def __init__(
        self,
        opener: Opener,
        slot: LatestFrame[Frame],
        *,
        description: str,
        stall_timeout_s: float = 3.0,
        backoff: BackoffPolicy | None = None,
        on_lost: Callable[[LostEvent], None] | None = None,
        on_restored: Callable[[RestoredEvent], None] | None = None,
        stop_event: threading.Event | None = None,
        secrets: tuple[str, ...] = (),
        rng: random.Random | None = None,
    ) -> None:
        super().__init__("capture", stop=stop_event)
        self._opener = opener
        self._slot = slot
        self.description = redact(description, secrets)
        self._stall_timeout_s = stall_timeout_s
        self._backoff = backoff or BackoffPolicy()
        self._on_lost = on_lost
        self._on_restored = on_restored
        self._secrets = secrets
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self._lock = threading.Lock()
        self._state = CaptureState.CONNECTING
        self._frames = 0
        self._reconnects = 0
        self._last_failure: CaptureFailure | None = None
        self._last_frame_s: float | None = None
        self._lost_since_s: float | None = None
        self._fps = 0.0
        self._frames_since_open = 0

    @classmethod
    def from_config(
        cls,
        cfg: CameraConfig,
        slot: LatestFrame[Frame],
        *,
        credentials: Credentials | None = None,
        on_lost: Callable[[LostEvent], None] | None = None,
        on_restored: Callable[[RestoredEvent], None] | None = None,
        stop_event: threading.Event | None = None,
    ) -> CaptureThread:
        spec = SourceSpec.from_config(cfg, credentials)
        backoff = BackoffPolicy(
            initial_s=min(cfg.reconnect_initial_s, cfg.reconnect_max_s),
            max_s=cfg.reconnect_max_s,
            slow_initial_s=min(2.0, cfg.auth_retry_max_s),
            slow_max_s=cfg.auth_retry_max_s,
        )
        return cls(
            lambda wait: open_source(spec, wait),
            slot,
            description=spec.redacted_url,
            stall_timeout_s=cfg.stall_timeout_s,
            backoff=backoff,
            on_lost=on_lost,
            on_restored=on_restored,
            stop_event=stop_event,
            secrets=spec.secrets(),
        )

    # -- control: start(), stop(timeout_s), is_alive(), native_id from ServiceThread ------
    def status(self) -> CaptureStatus:
        now = time.monotonic()
        with self._lock:
            age = None if self._last_frame_s is None else now - self._last_frame_s
            return CaptureStatus(
                state=self._state,
                frames=self._frames,
                reconnects=self._reconnects,
                dropped=self._slot.stats().dropped,
                last_failure=self._last_failure,
                last_frame_age_s=age,
                fps=self._fps,
            )

    # -- thread body -----------------------------------------------------------------------
    def run(self) -> None:
        attempt = 0
        try:
            while not self._stop.is_set():
                try:
                    source = self._opener(self._stop.wait)
                except CaptureOpenError as e:
                    self._lost(e.failure, str(e))
                    attempt = self._pause(attempt, e.failure)
                    continue
                except Exception as e:  # a backend bug must not kill the camera thread
                    log.exception("camera.open_crashed", extra={"EG_CAMERA": self.description})
                    self._lost(CaptureFailure.OPEN_FAILED, type(e).__name__)
                    attempt = self._pause(attempt, CaptureFailure.OPEN_FAILED)
                    continue
                try:
                    failure = self._pump(source)
                finally:
                    source.close()
                if failure is None:
                    break
                if failure is CaptureFailure.STREAM_ENDED and source.finite:
                    self._set_state(CaptureState.ENDED)
                    log.info("camera.ended", extra={"EG_CAMERA": self.description})
                    return
                if self._frames_since_open > 0:
                    attempt = 0
                self._lost(failure, self.description)
                attempt = self._pause(attempt, failure)
        finally:
            if self._state is not CaptureState.ENDED:
                self._set_state(CaptureState.STOPPED)
            self._slot.close()

    def _pump(self, source: Source) -> CaptureFailure | None:
        """Read until stop (→ ``None``), end of stream or a stall."""
        self._frames_since_open = 0
        opened_s = time.monotonic()
        while not self._stop.is_set():
            image = source.read()
            now = time.monotonic()
            if image is None:
                if self._stop.is_set():
                    return None
                since = self._last_frame_s if self._frames_since_open else opened_s
                # a reset connection fails at once; a frozen one only after the read timeout
                if since is not None and now - since >= 0.5 * self._stall_timeout_s:
                    return CaptureFailure.STALLED
                return CaptureFailure.STREAM_ENDED
            self._frames_since_open += 1
            self._deliver(make_frame(image, self._frames), now)
        return None

    def _deliver(self, frame: Frame, now: float) -> None:
        restored: RestoredEvent | None = None
        with self._lock:
            if self._last_frame_s is not None and self._state is CaptureState.STREAMING:
                dt = now - self._last_frame_s
                if dt > 0:
                    self._fps = 0.9 * self._fps + 0.1 / dt if self._fps else 1.0 / dt
            if self._lost_since_s is not None:
                restored = RestoredEvent(outage_s=now - self._lost_since_s, t_mono_s=now)
                self._lost_since_s = None
            self._state = CaptureState.STREAMING
            self._frames += 1
            self._last_frame_s = now
        if restored is not None:
            # announce before publishing: whoever sees the first frame after an outage has
            # already been told the camera is back (the audit trail orders lost → restored → use)
            log.warning(
                "camera.restored",
                extra={"EG_CAMERA": self.description, "EG_OUTAGE_S": round(restored.outage_s, 3)},
            )
            self._notify(self._on_restored, restored)
        self._slot.put(frame)

    def _lost(self, failure: CaptureFailure, detail: str) -> None:
        now = time.monotonic()
        detail = redact(detail, self._secrets)
        with self._lock:
            first = self._lost_since_s is None
            if first:
                self._lost_since_s = now
            if self._state is CaptureState.STREAMING:
                self._reconnects += 1
            self._state = CaptureState.LOST
            self._last_failure = failure
        if first:
            log.warning(
                "camera.lost",
                extra={
                    "EG_CAMERA": self.description,
                    "EG_REASON": failure.value,
                    "EG_DETAIL": detail,
                },
            )
            self._notify(self._on_lost, LostEvent(failure, detail, now))

    def _pause(self, attempt: int, failure: CaptureFailure) -> int:
        delay_s = self._backoff.delay_s(attempt, self._rng.random(), slow=failure in SLOW_RETRY)
        # log attempts 1, 2, 4, 8, …: an outage of hours must not flood the journal
        level = logging.INFO if attempt & (attempt + 1) == 0 else logging.DEBUG
        log.log(
            level,
            "camera.retry",
            extra={
                "EG_CAMERA": self.description,
                "EG_REASON": failure.value,
                "EG_ATTEMPT": attempt + 1,
                "EG_RETRY_S": round(delay_s, 3),
            },
        )
        self._stop.wait(delay_s)
        return attempt + 1

    def _set_state(self, state: CaptureState) -> None:
        with self._lock:
            self._state = state

    @staticmethod
    def _notify(callback: Callable[[E], None] | None, event: E) -> None:
        if callback is None:
            return
        try:
            callback(event)
        except Exception:  # the daemon's callback must not kill the camera thread
            log.exception("camera.callback_failed")
