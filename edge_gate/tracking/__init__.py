"""Face tracking: the same face across frames (pure core)."""

from __future__ import annotations

from edge_gate.tracking.tracker import Track, Tracker, TrackerParams

__layer__ = "core"

__all__ = ["Track", "Tracker", "TrackerParams"]
