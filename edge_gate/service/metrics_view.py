"""What one scrape of a running daemon reports (see :mod:`edge_gate.service.metrics`)."""

from __future__ import annotations

from typing import Any

from edge_gate.capture.thread import CaptureState
from edge_gate.config import EdgeGateConfig
from edge_gate.errors import EdgeGateError
from edge_gate.fleet.applied import load_applied
from edge_gate.gallery.generation import read_generation
from edge_gate.gallery.store import default_generation_path
from edge_gate.service.compose import DoorParts
from edge_gate.service.metrics import DecisionCounters, Exposition, MeteredEvents, add_decisions


def daemon_metrics(
    cfg: EdgeGateConfig, parts: DoorParts, decisions: DecisionCounters, audit: Any
) -> str:
    out = Exposition()
    st = parts.pipeline.stats
    out.add("frames_total", "counter", "frames the decision path processed", st.frames)
    out.add("pipeline_errors_total", "counter", "exceptions on the decision path", st.errors)
    out.add("frame_process_ms", "gauge", "decision path time of the last frame", st.last_process_ms)
    cam = parts.camera.status()
    out.add("camera_fps", "gauge", "frames per second the camera delivers", cam.fps)
    for state in CaptureState:
        out.add(
            "camera_state",
            "gauge",
            "1 for the camera's current state",
            1.0 if cam.state is state else 0.0,
            {"state": state.value},
        )
    out.add("camera_dropped_total", "counter", "frames replaced before processing", cam.dropped)
    out.add("relay_up", "gauge", "1 while the relay worker runs", 1.0 if parts.door.alive else 0.0)
    add_decisions(out, decisions)
    trail = audit.inner if isinstance(audit, MeteredEvents) else audit
    stats = getattr(trail, "stats", None)
    if callable(stats):
        snap = stats()
        out.add("outbox_depth", "gauge", "signed events waiting for the broker", snap.queued)
        out.add(
            "broker_connected",
            "gauge",
            "1 while the audit publisher is connected",
            1.0 if snap.publisher.online else 0.0,
        )
    out.add("gallery_people", "gauge", "people the door matches against", parts.matcher.people)
    gen_path = cfg.gallery.generation_file or default_generation_path(cfg.gallery.db_file)
    try:
        mark = read_generation(gen_path)
    except EdgeGateError:
        mark = None
    if mark is not None:
        out.add("gallery_generation", "gauge", "gallery generation on disk", mark.generation)
    if cfg.fleet.groups and cfg.fleet.applied_file.exists():
        try:
            applied = load_applied(cfg.fleet.applied_file)
        except (EdgeGateError, OSError):
            applied = None
        for group in cfg.fleet.groups:
            version = applied.group(group).version if applied else 0
            out.add(
                "fleet_applied_version",
                "gauge",
                "fleet bundle version applied per door group",
                version,
                {"group": group},
            )
    return out.text()
