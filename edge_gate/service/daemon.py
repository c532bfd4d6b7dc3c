"""``edge-gate run``: compose the parts, run the threads, tell systemd the truth, stop cleanly.

Start-up order (READY only at the end): audit trail (so failures can be recorded) → models
verified and loaded → gallery decrypted and verified → relay handshake → capture, relay worker,
pipeline threads → ``READY=1``. The main thread then handles signals (SIGTERM/SIGINT: stop,
a second one: stop now; SIGHUP: reload the gallery) and pings the watchdog only while the
pipeline heartbeat is fresh. Shutdown stops the pipeline first (no new decisions), then the
relay worker (a queued unlock is dropped, the relay relocks by itself), capture, and finally
the audit trail after a bounded flush.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TypeVar, assert_never

from edge_gate.audit.connection import check_settings as check_mqtt_settings
from edge_gate.audit.events import EventType
from edge_gate.audit.trail import AuditTrail
from edge_gate.capture.frame import Frame
from edge_gate.capture.latest import LatestFrame
from edge_gate.capture.thread import CaptureThread, LostEvent, RestoredEvent
from edge_gate.config import EdgeGateConfig
from edge_gate.decision.policy import (
    DecisionPolicy,
    Deny,
    DenyReason,
    Grant,
    Outcome,
    PolicyParams,
    relay_reason,
)
from edge_gate.door.client import RelayClient, UnlockOutcome
from edge_gate.door.counter import CounterStore
from edge_gate.door.keys import load_relay_key
from edge_gate.door.transport import SerialChannel
from edge_gate.door.worker import RelayWorker, UnlockCommand
from edge_gate.errors import EdgeGateError, RelayError
from edge_gate.gallery.gates import DOOR_LIMITS
from edge_gate.liveness.estimator import LivenessEstimator
from edge_gate.service.components import (
    GalleryMatcher,
    GalleryStamp,
    gallery_stamp,
    load_gallery,
    nobody,
)
from edge_gate.service.frame_processor import FrameProcessor, FrameResult
from edge_gate.service.notify import Notifier, watchdog_interval_s
from edge_gate.service.pipeline_thread import Heartbeat, PipelineThread
from edge_gate.service.snapshots import SnapshotWriter
from edge_gate.tracking.tracker import Tracker
from edge_gate.vision.pipeline import FacePipeline

log = logging.getLogger(__name__)

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILURE = 1


@dataclass
class _Pending:
    decision: Grant
    queued_s: float


class Daemon:
    """One door: camera → decisions → relay + audit."""

    def __init__(self, cfg: EdgeGateConfig, *, notifier: Notifier | None = None) -> None:
        self.cfg = cfg
        self.notifier = notifier or Notifier.from_env()
        self.stop_event = threading.Event()
        self._reload = threading.Event()
        self._signals = 0
        self._pending: dict[str, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._decision_seq = 0
        self.audit: AuditTrail | None = None
        self.capture: CaptureThread | None = None
        self.relay: RelayWorker | None = None
        self.pipeline: PipelineThread | None = None
        self.matcher: GalleryMatcher | None = None
        self._gallery_stamp: GalleryStamp = ()
        self._gallery_failed = False  # the last reload failed: the door matches nobody
        self.embedder_id = ""
        self.embedding_size = 0
        self.started_s = time.monotonic()
        self.ready_s: float | None = None
        self.snapshots = (
            SnapshotWriter(cfg.service.snapshot_dir) if cfg.service.snapshot_dir else None
        )

    # -- start-up -------------------------------------------------------------------------

    def start(self) -> None:
        """Bring every part up; raise EdgeGateError (door locked, nothing started) on failure."""
        cfg = self.cfg
        door = cfg.policy.door_id
        self.notifier.status("starting: audit trail")
        self.audit = AuditTrail.from_config(cfg.mqtt)
        self.audit.start()
        try:
            self._start_parts()
        except EdgeGateError as e:
            self.audit.emit(
                EventType.SERVICE_STOPPING, door=door, reason="startup_failed", detail=str(e)
            )
            self.audit.flush(timeout_s=2.0)
            self.audit.stop(timeout_s=2.0)
            self.audit = None  # closed: stop() must not use it again
            raise
        self.ready_s = time.monotonic()
        startup_ms = (self.ready_s - self.started_s) * 1000.0
        self.audit.emit(EventType.SERVICE_STARTED, door=door, latency_ms=round(startup_ms))
        people = self.matcher.people if self.matcher else 0
        self.notifier.ready(status=f"ready: {people} people enrolled, embedder {self.embedder_id}")
        log.info(
            "service.ready",
            extra={"EG_DOOR": door, "EG_LATENCY_MS": round(startup_ms), "EG_PEOPLE": people},
        )

    def _start_parts(self) -> None:
        cfg = self.cfg
        self.notifier.status("starting: checking audit trail settings")
        check_mqtt_settings(cfg.mqtt)
        self.notifier.status("starting: verifying and loading models")
        pipe = FacePipeline.from_config(cfg.vision)
        self.embedder_id, self.embedding_size = pipe.embedder_id, pipe.embedding_size
        self.notifier.status("starting: decrypting gallery")
        self._gallery_stamp = gallery_stamp(cfg)
        self.matcher = load_gallery(cfg, self.embedder_id, self.embedding_size)
        self.notifier.status("starting: relay handshake")
        key = load_relay_key(cfg.relay.key_file)
        counter = CounterStore(cfg.relay.counter_file)
        counter.check_writable()  # every unlock must be recorded first: find out now
        client = RelayClient(
            SerialChannel(cfg.relay.port, cfg.relay.baudrate),
            key,
            counter,
            timeout_s=cfg.relay.timeout_s,
        )
        hello = client.handshake()
        if not hello.ok:
            raise RelayError(f"relay handshake on {cfg.relay.port} failed: {hello.reason}")
        self.relay = RelayWorker(client, on_result=self._on_relay_result, stop=self.stop_event)
        slot: LatestFrame[Frame] = LatestFrame()
        self.capture = CaptureThread.from_config(
            cfg.camera,
            slot,
            on_lost=self._on_camera_lost,
            on_restored=self._on_camera_restored,
            stop_event=self.stop_event,
        )
        p = cfg.policy
        policy = DecisionPolicy(
            PolicyParams(
                threshold=cfg.gallery.threshold,
                margin=cfg.gallery.margin,
                k_frames=p.k_frames,
                n_frames=p.n_frames,
                window_s=p.window_s,
                cooldown_s=p.cooldown_s,
                require_live=cfg.liveness.enabled,
                liveness_timeout_s=p.liveness_timeout_s,
            )
        )
        liveness = LivenessEstimator.from_config(cfg.liveness) if cfg.liveness.enabled else None
        processor = FrameProcessor(
            pipe, Tracker(), liveness, self.matcher, policy, DOOR_LIMITS, p.max_faces
        )
        self.pipeline = PipelineThread(
            slot,
            processor,
            on_decision=self._on_decision,
            on_error=self._on_pipeline_error,
            stop=self.stop_event,
            max_fps=p.max_fps,
            heartbeat=Heartbeat(),
        )
        self.relay.start()
        self.capture.start()
        self.pipeline.start()

    @staticmethod
    def _require(part: T | None) -> T:
        if part is None:
            raise RuntimeError("daemon not started")
        return part

    # -- decisions ------------------------------------------------------------------------

    def _emit(
        self,
        event_type: EventType,
        *,
        subject: str | None = None,
        reason: str | None = None,
        **fields: float | int | str | None,
    ) -> None:
        if self.audit is not None:
            self.audit.emit(
                event_type, door=self.cfg.policy.door_id, subject=subject, reason=reason, **fields
            )

    def _on_decision(self, d: Outcome, frame: Frame, result: FrameResult) -> None:
        try:
            self._act_on(d)
        finally:
            if self.snapshots is not None:
                self._snapshot(frame, result, d)

    def _snapshot(self, frame: Frame, result: FrameResult, d: Outcome) -> None:
        """Best effort, after the decision was acted on: a full disk costs the picture only."""
        try:
            self._require(self.snapshots).write(frame, result, d)
        except Exception as e:  # nothing about a picture may touch the door
            log.warning("snapshot.write_failed", extra={"EG_REASON": type(e).__name__})

    def _act_on(self, d: Outcome) -> None:
        match d:
            case Deny():
                self._denied(d)
            case Grant():
                self._granted(d)
            case _:
                assert_never(d)

    def _denied(self, d: Deny) -> None:
        event = (
            EventType.LIVENESS_FAILED
            if d.reason is DenyReason.NOT_LIVE
            else EventType.ACCESS_DENIED
        )
        self._emit(
            event,
            reason=d.reason.value,
            score=d.score,
            liveness=d.liveness_score,
            frames=d.frames,
            latency_ms=round(d.latency_s * 1000),
        )
        log.info(
            "access.denied", extra={"EG_REASON": d.reason.value, "EG_SCORE": round(d.score, 3)}
        )

    def _granted(self, d: Grant) -> None:
        relay = self._require(self.relay)
        self._decision_seq += 1
        tag = f"d{self._decision_seq}"
        with self._pending_lock:
            self._pending[tag] = _Pending(d, time.monotonic())
        cmd = UnlockCommand(
            self.cfg.relay.pulse_ms, time.monotonic() + self.cfg.policy.unlock_expiry_s, tag
        )
        if not relay.submit(cmd):
            with self._pending_lock:
                self._pending.pop(tag, None)
            self._emit(
                EventType.ACCESS_DENIED,
                subject=d.user_id,
                reason=DenyReason.RELAY_BUSY.value,
                score=d.score,
            )

    def _on_relay_result(self, cmd: UnlockCommand, outcome: UnlockOutcome) -> None:
        with self._pending_lock:
            pending = self._pending.pop(cmd.tag, None)
        if pending is None:
            return
        d = pending.decision
        latency_ms = round((time.monotonic() - d.first_seen_s) * 1000)
        if outcome.ok:
            if outcome.reason != "unlocked":  # opened, confirmed another way (ACK was lost)
                self._emit(EventType.RELAY_ERROR, reason=outcome.reason)
            self._emit(
                EventType.ACCESS_GRANTED,
                subject=d.user_id,
                reason="match",
                score=d.score,
                margin=d.margin,
                liveness=d.liveness_score,
                frames=d.frames,
                latency_ms=latency_ms,
            )
            log.info(
                "access.granted",
                extra={"EG_USER": d.user_id, "EG_LATENCY_MS": latency_ms, "EG_SCORE": d.score},
            )
            return
        reason = relay_reason(outcome.reason)  # e.g. relay_unconfirmed: the door may have opened
        self._emit(
            EventType.RELAY_ERROR, reason=outcome.reason, latency_ms=round(outcome.latency_ms)
        )
        self._emit(EventType.ACCESS_DENIED, subject=d.user_id, reason=reason.value, score=d.score)
        log.warning("access.denied", extra={"EG_REASON": reason.value, "EG_RELAY": outcome.reason})

    def _on_pipeline_error(self, e: Exception) -> None:
        self._emit(EventType.ACCESS_DENIED, reason=DenyReason.ERROR.value, detail=type(e).__name__)

    def _on_camera_lost(self, ev: LostEvent) -> None:
        self._emit(EventType.CAMERA_LOST, reason=ev.failure.value, detail=ev.detail)
        self.notifier.status(f"camera lost: {ev.failure.value}")

    def _on_camera_restored(self, ev: RestoredEvent) -> None:
        self._emit(EventType.CAMERA_RESTORED, latency_ms=round(ev.outage_s * 1000))
        self.notifier.status("camera streaming")

    # -- main loop ------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_hup)

    def _on_stop_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            log.warning("service.forced_stop")
            raise SystemExit(EXIT_FAILURE)  # second signal: stop now; the relay relocks itself
        self.stop_event.set()

    def _on_hup(self, signum: int, _frame: FrameType | None) -> None:
        self._reload.set()

    def run_until_stopped(self, run_for_s: float | None = None) -> int:
        """Main-thread loop: watchdog, status, reloads; returns the exit code."""
        pipeline = self._require(self.pipeline)
        interval = watchdog_interval_s() or 1.0
        tick_s = min(0.5, interval / 2)
        deadline = time.monotonic() + run_for_s if run_for_s else None
        next_status_s = 0.0
        next_gallery_check_s = time.monotonic() + self.cfg.service.gallery_poll_s
        stalled = False
        while not self.stop_event.wait(tick_s):
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if now >= next_gallery_check_s:
                next_gallery_check_s = now + self.cfg.service.gallery_poll_s
                # the admin CLI changed the gallery (e.g. a revoke), or the last reload failed
                # and the cause (a key file, a permission) may have been mended meanwhile
                if self._gallery_failed or gallery_stamp(self.cfg) != self._gallery_stamp:
                    self._reload.set()
            if self._reload.is_set():
                self._reload.clear()
                self.reload_gallery()
            fresh = pipeline.alive and (
                pipeline.heartbeat.age_s() < self.cfg.service.heartbeat_timeout_s
            )
            if fresh:
                self.notifier.watchdog()  # only a turning pipeline loop keeps the service alive
            if fresh == stalled:  # state changed
                stalled = not fresh
                if stalled:
                    log.error("service.pipeline_stalled")
                    self.notifier.status("pipeline stalled: watchdog pings withheld")
                    self._emit(EventType.SERVICE_DEGRADED, reason="pipeline_stalled")
                else:
                    log.warning("service.pipeline_recovered")
                next_status_s = now
            if fresh and now >= next_status_s:
                self.notifier.status(self.status_line())
                next_status_s = now + 5.0
        return self.stop()

    def status_line(self) -> str:
        st = self._require(self.pipeline).stats
        cam = self.capture.status().state.value if self.capture else "?"
        return (
            f"camera {cam}; {st.frames} frames, {st.errors} errors, "
            f"last {st.last_process_ms:.0f} ms"
        )

    def reload_gallery(self) -> None:
        """SIGHUP or a changed generation file: decrypt and verify the gallery again.

        Fail secure: if that fails, the door matches nobody until a reload succeeds. Keeping
        the old copy would keep letting in whoever was just revoked.
        """
        pipeline = self._require(self.pipeline)
        self.notifier.reloading()  # systemctl shows "reloading" until READY=1 below
        self._gallery_stamp = gallery_stamp(self.cfg)  # what this attempt reads (retry on change)
        status = None
        try:
            matcher = load_gallery(self.cfg, self.embedder_id, self.embedding_size)
        except EdgeGateError as e:
            if not self._gallery_failed:  # once per outage; it is retried every poll
                log.error("gallery.reload_failed", extra={"EG_REASON": str(e)})
                self._emit(
                    EventType.SERVICE_DEGRADED, reason="gallery_reload_failed", detail=str(e)
                )
            status = "gallery unusable: nobody is let in"
            self._gallery_failed = True
            matcher = nobody(self.cfg, self.embedding_size)
        else:
            log.info("gallery.reloaded", extra={"EG_PEOPLE": matcher.people})
            self._gallery_failed = False
        self.matcher = matcher
        pipeline.replace_matcher(matcher)
        self.notifier.ready(status=status)

    def stop(self) -> int:
        """Stop every thread within the deadline; the door stays locked."""
        deadline_s = self.cfg.service.shutdown_timeout_s
        self.notifier.stopping(status="stopping")
        self.stop_event.set()
        self._emit(EventType.SERVICE_STOPPING, reason="signal" if self._signals else "requested")
        ok = True
        for part in (self.pipeline, self.relay):
            if part is not None:
                ok = part.join(timeout_s=deadline_s / 3) and ok
        if self.capture is not None:
            ok = self.capture.stop(timeout_s=deadline_s / 3) and ok
        if self.audit is not None:
            self.audit.flush(timeout_s=deadline_s / 3)
            self.audit.stop(timeout_s=1.0)
        log.info("service.stopped", extra={"EG_CLEAN": ok})
        return EXIT_OK if ok else EXIT_FAILURE


def run_daemon(
    cfg: EdgeGateConfig,
    *,
    run_for_s: float | None = None,
    on_ready: Callable[[Daemon], None] | None = None,
    snapshot_dir: Path | None = None,
) -> int:
    """Start, serve until a signal (or ``run_for_s``), stop; return the process exit code."""
    daemon = Daemon(cfg)
    if snapshot_dir is not None:
        daemon.snapshots = SnapshotWriter(snapshot_dir)
    daemon.install_signal_handlers()
    try:
        daemon.start()
    except EdgeGateError as e:
        log.error("service.start_failed", extra={"EG_REASON": str(e)})
        daemon.notifier.stopping(status=f"start failed: {e}")
        daemon.stop()
        raise
    if on_ready is not None:
        on_ready(daemon)
    return daemon.run_until_stopped(run_for_s)
