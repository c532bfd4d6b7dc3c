"""``edge-gate run``: run one door's parts, tell systemd the truth, stop cleanly.

Start-up order (READY only at the end): audit trail (so failures can be recorded) → the parts
built by :mod:`edge_gate.service.compose` (models verified and loaded → gallery decrypted and
verified → relay handshake) → relay worker, capture, pipeline threads → ``READY=1``. The main
thread then handles signals (SIGTERM/SIGINT: stop, a second one: stop now; SIGHUP: reload the
gallery) and pings the watchdog only while the pipeline heartbeat is fresh. Shutdown stops the
pipeline first (no new decisions), then the relay worker (a queued unlock is dropped, the relay
relocks by itself, the serial port is closed), capture, and finally the audit trail after a
bounded flush, all within ``service.shutdown_timeout_s``. What each outcome does at the door is
:mod:`edge_gate.service.door_actions`.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from edge_gate.audit.events import EventType
from edge_gate.config import EdgeGateConfig
from edge_gate.errors import EdgeGateError
from edge_gate.service.compose import Composer, DoorParts, build_door, open_audit
from edge_gate.service.metrics import DecisionCounters, MeteredEvents, MetricsServer
from edge_gate.service.metrics_view import daemon_metrics
from edge_gate.service.notify import Notifier, watchdog_interval_s
from edge_gate.service.ports import EventSink, EventValue
from edge_gate.service.snapshots import SnapshotWriter

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1


class Daemon:
    """One door: camera → decisions → relay + audit."""

    def __init__(
        self,
        cfg: EdgeGateConfig,
        *,
        notifier: Notifier | None = None,
        compose: Composer = build_door,
        open_events: Callable[[EdgeGateConfig], EventSink] = open_audit,
        snapshots: SnapshotWriter | None = None,
    ) -> None:
        self.cfg = cfg
        self.notifier = notifier or Notifier.from_env()
        self.stop_event = threading.Event()
        self._compose = compose
        self._open_events = open_events
        self._reload = threading.Event()
        self._signals = 0
        self.audit: EventSink | None = None
        self.parts: DoorParts | None = None
        self._gallery_stamp: object = None
        self._gallery_failed = False  # the last reload failed: the door matches nobody
        self.started_s = time.monotonic()
        self.ready_s: float | None = None
        if snapshots is None and cfg.service.snapshot_dir:
            snapshots = SnapshotWriter(cfg.service.snapshot_dir)
        self.snapshots = snapshots
        self.decisions = DecisionCounters()
        self.metrics: MetricsServer | None = None

    @property
    def people(self) -> int:
        return self.parts.matcher.people if self.parts else 0

    # -- start-up -------------------------------------------------------------------------

    def start(self) -> None:
        """Bring every part up; raise EdgeGateError (door locked, nothing started) on failure."""
        cfg = self.cfg
        self.notifier.status("starting: audit trail")
        audit = MeteredEvents(self._open_events(cfg), self.decisions)
        self.audit = audit
        try:
            parts = self._compose(cfg, audit, self.stop_event, self.notifier, self.snapshots)
        except EdgeGateError as e:
            self._emit(EventType.SERVICE_STOPPING, reason="startup_failed", detail=str(e))
            audit.flush(timeout_s=2.0)
            audit.stop(timeout_s=2.0)
            self.audit = None  # closed: stop() must not use it again
            raise
        self.parts = parts
        self._gallery_stamp = parts.gallery_stamp
        set_health_source = getattr(audit.inner, "set_health_source", None)
        if callable(set_health_source):
            set_health_source(self.health_fields)
        parts.door.start()
        parts.camera.start()
        parts.pipeline.start()
        self._start_metrics()
        self.ready_s = time.monotonic()
        startup_ms = (self.ready_s - self.started_s) * 1000.0
        self._emit(EventType.SERVICE_STARTED, latency_ms=round(startup_ms))
        self.notifier.ready(
            status=f"ready: {self.people} people enrolled, embedder {parts.embedder_id}"
        )
        log.info(
            "service.ready",
            extra={
                "EG_DOOR": cfg.policy.door_id,
                "EG_LATENCY_MS": round(startup_ms),
                "EG_PEOPLE": self.people,
            },
        )

    def _start_metrics(self) -> None:
        """Telemetry only: a port that cannot be bound is logged, the door runs on."""
        port = self.cfg.service.metrics_port
        if port is None:
            return
        try:
            self.metrics = MetricsServer(port, self.metrics_text, stop=self.stop_event)
        except OSError as e:
            log.error("metrics.bind_failed", extra={"EG_PORT": port, "EG_REASON": e.strerror})
            return
        self.metrics.start()

    def health_fields(self) -> dict[str, object]:
        """Camera and door state for the retained health message (nothing personal)."""
        parts = self._require()
        cam = parts.camera.status()
        return {
            "camera": cam.state.value,
            "camera_fps": round(cam.fps, 1),
            "door": "up" if parts.door.alive else "down",
            "people": parts.matcher.people,
        }

    def metrics_text(self) -> str:
        return daemon_metrics(self.cfg, self._require(), self.decisions, self.audit)

    def _require(self) -> DoorParts:
        if self.parts is None:
            raise RuntimeError("daemon not started")
        return self.parts

    def _emit(
        self, event_type: EventType, *, reason: str | None = None, **fields: EventValue
    ) -> None:
        if self.audit is not None:
            self.audit.emit(
                event_type, door=self.cfg.policy.door_id, subject=None, reason=reason, **fields
            )

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
        pipeline = self._require().pipeline
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
                stamp = self._require().gallery.stamp()
                if self._gallery_failed or stamp != self._gallery_stamp:
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
        parts = self._require()
        st = parts.pipeline.stats
        cam = parts.camera.status().state.value
        return (
            f"camera {cam}; {st.frames} frames, {st.errors} errors, "
            f"last {st.last_process_ms:.0f} ms"
        )

    def reload_gallery(self) -> None:
        """SIGHUP or a changed generation file: decrypt and verify the gallery again.

        Fail secure: if that fails, the door matches nobody until a reload succeeds. Keeping
        the old copy would keep letting in whoever was just revoked.
        """
        parts = self._require()
        self.notifier.reloading()  # systemctl shows "reloading" until READY=1 below
        self._gallery_stamp = parts.gallery.stamp()  # what this attempt reads (retry on change)
        status = None
        try:
            matcher = parts.gallery.load()
        except EdgeGateError as e:
            if not self._gallery_failed:  # once per outage; it is retried every poll
                log.error("gallery.reload_failed", extra={"EG_REASON": str(e)})
                self._emit(
                    EventType.SERVICE_DEGRADED, reason="gallery_reload_failed", detail=str(e)
                )
            status = "gallery unusable: nobody is let in"
            self._gallery_failed = True
            matcher = parts.gallery.nobody()
        else:
            log.info("gallery.reloaded", extra={"EG_PEOPLE": matcher.people})
            self._gallery_failed = False
        parts.matcher = matcher
        parts.actions.use_credentials(matcher.credentials, matcher.card_tag_key)
        parts.pipeline.replace_matcher(matcher)
        self.notifier.ready(status=status)

    def stop(self) -> int:
        """Stop every thread within ``service.shutdown_timeout_s``; the door stays locked.

        The threads share the first two thirds of the budget (they all see the one stop Event
        at once, so this is mostly the slowest one's last loop turn); the audit trail's flush
        and close get what is left.
        """
        budget_s = self.cfg.service.shutdown_timeout_s
        begun = time.monotonic()
        threads_until, audit_until = begun + budget_s * 2 / 3, begun + budget_s
        self.notifier.stopping(status="stopping")
        self.stop_event.set()
        self._emit(EventType.SERVICE_STOPPING, reason="signal" if self._signals else "requested")
        ok = True
        if self.parts is not None:  # pipeline first (no new decisions), then door and camera
            for part in (self.parts.pipeline, self.parts.door, self.parts.camera):
                ok = part.stop(timeout_s=max(0.0, threads_until - time.monotonic())) and ok
        if self.metrics is not None:
            ok = self.metrics.stop(timeout_s=max(0.0, threads_until - time.monotonic())) and ok
        if self.audit is not None:
            left_s = audit_until - time.monotonic()
            self.audit.flush(timeout_s=max(0.0, left_s * 0.7))
            self.audit.stop(timeout_s=max(0.2, audit_until - time.monotonic()))
        log.info(
            "service.stopped",
            extra={"EG_CLEAN": ok, "EG_LATENCY_MS": round((time.monotonic() - begun) * 1000)},
        )
        return EXIT_OK if ok else EXIT_FAILURE


def run_daemon(
    cfg: EdgeGateConfig,
    *,
    run_for_s: float | None = None,
    on_ready: Callable[[Daemon], None] | None = None,
    snapshot_dir: Path | None = None,
) -> int:
    """Start, serve until a signal (or ``run_for_s``), stop; return the process exit code."""
    snapshots = SnapshotWriter(snapshot_dir) if snapshot_dir is not None else None
    daemon = Daemon(cfg, snapshots=snapshots)
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
