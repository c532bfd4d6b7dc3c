"""Prometheus text metrics of a running daemon, scraped over real HTTP on localhost."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from edge_gate.audit.events import EventType
from edge_gate.capture.frame import Frame
from edge_gate.capture.latest import LatestFrame
from edge_gate.config import EdgeGateConfig
from edge_gate.service.daemon import Daemon
from edge_gate.service.metrics import CONTENT_TYPE
from edge_gate.service.notify import Notifier
from edge_gate_dev.pki import free_port
from tests.test_service_daemon import _composer_with, _Events, _StuckProcessor

SAMPLE = re.compile(r"^(edge_gate_[a-z_]+)(\{[^}]*\})? (\S+)$")


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert resp.headers["Content-Type"] == CONTENT_TYPE
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not exposition format: {line!r}"
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


@pytest.mark.timeout(60)
def test_a_running_daemon_reports_its_state_and_decisions(tmp_path: Path) -> None:
    """Decisions counted by reason (from the events the door emits), latency quantiles,
    camera/relay state, gallery size; the endpoint closes with the daemon."""
    port = free_port()
    cfg = EdgeGateConfig.model_validate(
        {
            "service": {"metrics_port": port},
            "gallery": {"db_file": str(tmp_path / "gallery.db")},
        }
    )
    slot: LatestFrame[Frame] = LatestFrame()
    events = _Events()
    daemon = Daemon(
        cfg,
        notifier=Notifier(None),
        compose=_composer_with(_StuckProcessor(), slot),
        open_events=lambda cfg: events,
    )
    daemon.start()
    try:
        actions = daemon._require().actions
        actions.emit(EventType.ACCESS_DENIED, reason="unknown", latency_ms=100)
        actions.emit(EventType.ACCESS_DENIED, reason="unknown", latency_ms=300)
        actions.emit(EventType.LIVENESS_FAILED, reason="not_live", latency_ms=500)
        actions.emit(
            EventType.ACCESS_GRANTED, subject="u_aaaaaaaaaaaa", reason="match", latency_ms=200
        )
        actions.emit(EventType.CAMERA_LOST, reason="unreachable")  # not a decision
        m = _scrape(port)
        assert m['edge_gate_decisions_total{outcome="denied",reason="unknown"}'] == 2
        assert m['edge_gate_decisions_total{outcome="denied",reason="not_live"}'] == 1
        assert m['edge_gate_decisions_total{outcome="granted",reason="match"}'] == 1
        assert m['edge_gate_decision_latency_ms{quantile="0.5"}'] == 250
        assert m["edge_gate_decision_latency_ms_count"] == 4
        assert m["edge_gate_relay_up"] == 1
        states = {k: v for k, v in m.items() if k.startswith("edge_gate_camera_state")}
        assert sum(states.values()) == 1
        assert m["edge_gate_gallery_people"] == 0
        assert "edge_gate_frames_total" in m
        assert "u_aaaaaaaaaaaa" not in str(m)
        kinds = [t for t, _, _ in events.events]  # the audit trail still got every event
        assert kinds.count("access.denied") == 2
        assert kinds.count("liveness.failed") == kinds.count("access.granted") == 1
    finally:
        daemon.stop()
    with pytest.raises(urllib.error.URLError):
        _scrape(port)
