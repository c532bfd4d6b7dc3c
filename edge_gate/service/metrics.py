"""Prometheus text metrics on localhost: ``service.metrics_port`` (off by default).

What a scrape shows (text exposition format 0.0.4)::

    edge_gate_frames_total, edge_gate_pipeline_errors_total, edge_gate_camera_fps,
    edge_gate_frame_process_ms (last), edge_gate_decision_latency_ms{quantile=…} (+ _sum/_count),
    edge_gate_decisions_total{outcome="granted|denied", reason=…}, edge_gate_outbox_depth,
    edge_gate_camera_state{state=…}, edge_gate_relay_up, edge_gate_broker_connected,
    edge_gate_gallery_people, edge_gate_gallery_generation, edge_gate_fleet_applied_version{group=…}

Decisions are counted where they are recorded: :class:`MeteredEvents` sits in front of the audit
trail and counts each ``access.*``/``liveness.failed`` event by reason (no user id, no score),
so the metrics and the audit trail cannot disagree. The server binds 127.0.0.1 only (a node
exporter or a local Prometheus agent scrapes it) and answers ``GET /metrics``; it runs in a
:class:`~edge_gate.threads.ServiceThread` and stops within one 0.5 s turn.
"""

from __future__ import annotations

import collections
import http.server
import logging
import re
import statistics
import threading
from collections.abc import Callable
from typing import Any

from edge_gate.audit.events import EventType
from edge_gate.service.ports import EventSink
from edge_gate.threads import ServiceThread

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_WINDOW = 1024
_LABEL_SAFE = re.compile(r"[^A-Za-z0-9_.:\-]")
_DECISIONS = {
    EventType.ACCESS_GRANTED: "granted",
    EventType.ACCESS_DENIED: "denied",
    EventType.LIVENESS_FAILED: "denied",
}
_OUTCOME_BY_VALUE = {t.value: outcome for t, outcome in _DECISIONS.items()}


class DecisionCounters:
    """Counts of decisions by outcome and reason, and recent decision latencies (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._latency_ms: collections.deque[float] = collections.deque(maxlen=LATENCY_WINDOW)
        self.latency_sum_ms = 0.0
        self.latency_count = 0

    def observe(self, event_type: str, reason: str | None, latency_ms: object) -> None:
        outcome = _OUTCOME_BY_VALUE.get(event_type)
        if outcome is None:
            return
        with self._lock:
            self.counts[(outcome, reason or "none")] += 1
            if isinstance(latency_ms, int | float):
                self._latency_ms.append(float(latency_ms))
                self.latency_sum_ms += float(latency_ms)
                self.latency_count += 1

    def snapshot(self) -> tuple[dict[tuple[str, str], int], list[float], float, int]:
        with self._lock:
            return (
                dict(self.counts),
                list(self._latency_ms),
                self.latency_sum_ms,
                self.latency_count,
            )


class MeteredEvents:
    """An :class:`EventSink` that counts decisions and passes everything on unchanged."""

    def __init__(self, inner: EventSink, counters: DecisionCounters) -> None:
        self.inner = inner
        self.counters = counters

    def emit(
        self,
        event_type: EventType,
        *,
        door: str | None,
        subject: str | None = None,
        reason: str | None = None,
        **fields: Any,
    ) -> int | None:
        self.counters.observe(str(event_type), reason, fields.get("latency_ms"))
        return self.inner.emit(event_type, door=door, subject=subject, reason=reason, **fields)

    def flush(self, timeout_s: float) -> bool:
        return self.inner.flush(timeout_s)

    def stop(self, timeout_s: float = 5.0) -> bool:
        return self.inner.stop(timeout_s)


def _label(value: str) -> str:
    return _LABEL_SAFE.sub("_", value)[:64]


class Exposition:
    """Builds the text of one scrape."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._declared: set[str] = set()

    def add(
        self,
        name: str,
        kind: str,
        help_text: str,
        value: float,
        labels: dict[str, str] | None = None,
    ) -> None:
        full = f"edge_gate_{name}"
        if full not in self._declared:
            self._declared.add(full)
            self._lines += [f"# HELP {full} {help_text}", f"# TYPE {full} {kind}"]
        text = ""
        if labels:
            text = "{" + ",".join(f'{k}="{_label(v)}"' for k, v in sorted(labels.items())) + "}"
        self._lines.append(f"{full}{text} {float(value):.6g}")

    def raw(self, line: str) -> None:
        self._lines.append(line)

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"


def add_decisions(out: Exposition, counters: DecisionCounters) -> None:
    counts, window, total_ms, n = counters.snapshot()
    for (outcome, reason), count in sorted(counts.items()):
        out.add(
            "decisions_total",
            "counter",
            "door decisions by outcome and reason",
            count,
            {"outcome": outcome, "reason": reason},
        )
    if window:
        ordered = sorted(window)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        for name, value in (("0.5", statistics.median(ordered)), ("0.95", p95)):
            out.add(
                "decision_latency_ms",
                "summary",
                "first frame of a face to its decision (recent window)",
                value,
                {"quantile": name},
            )
        out.raw(f"edge_gate_decision_latency_ms_sum {total_ms:.6g}")
        out.raw(f"edge_gate_decision_latency_ms_count {n}")


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/metrics":
            self.send_error(404)
            return
        try:
            body = self.server.collect().encode("utf-8")
        except Exception:  # a scrape must never take the daemon down
            log.exception("metrics.collect_failed")
            self.send_error(500)
            return
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(http.server.HTTPServer):
    collect: Callable[[], str]


class MetricsServer(ServiceThread):
    """``GET http://127.0.0.1:<port>/metrics`` answered by ``collect()``."""

    def __init__(
        self, port: int, collect: Callable[[], str], *, stop: threading.Event | None = None
    ) -> None:
        super().__init__("metrics", stop=stop)
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.collect = collect
        self._server.timeout = 0.5

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def run(self) -> None:
        try:
            while not self.stopping:
                self._server.handle_request()
                self.heartbeat.beat()
        finally:
            self._server.server_close()
