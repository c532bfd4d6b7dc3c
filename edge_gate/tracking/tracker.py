"""Greedy IoU / landmark tracker: stable ids for the same face across frames (pure core).

Each frame's detections are matched to live tracks by a combined affinity: box IoU, or, when a
face moved fast enough that its boxes no longer overlap much, the distance between landmark
centroids relative to the face size. Matching is greedy on the best affinity first (a door sees
one to a few faces, so the optimal assignment buys nothing). A track that is not seen for
``max_gap_s`` seconds expires; a new face gets a fresh, never reused id.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from edge_gate.vision.types import Box, Detection

__layer__ = "core"


@dataclass(frozen=True, slots=True)
class TrackerParams:
    """Tuning of the tracker."""

    min_iou: float = 0.3
    """Boxes overlapping at least this much are the same face."""
    max_center_shift: float = 0.6
    """Otherwise: landmark centroids closer than this fraction of the face width match."""
    max_gap_s: float = 0.7
    """A track not seen for longer than this expires."""
    max_tracks: int = 16
    """Bound on simultaneous tracks (flood protection); lowest-score new faces are dropped."""


@dataclass(frozen=True, slots=True)
class Track:
    """One face followed over time."""

    track_id: int
    detection: Detection
    first_seen_s: float
    last_seen_s: float
    hits: int
    """Frames in which this face was detected."""

    @property
    def age_s(self) -> float:
        return self.last_seen_s - self.first_seen_s


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 for disjoint or empty boxes)."""
    ix = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    iy = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = ix * iy
    union = a.area_px2 + b.area_px2 - inter
    return inter / union if union > 0 else 0.0


def center_shift(a: Detection, b: Detection) -> float:
    """Distance between landmark centroids divided by the mean face width."""
    ca = np.asarray(a.landmarks, dtype=np.float64).mean(axis=0)
    cb = np.asarray(b.landmarks, dtype=np.float64).mean(axis=0)
    width = 0.5 * (a.box.width_px + b.box.width_px)
    if width <= 0:
        return float("inf")
    return float(np.hypot(*(ca - cb)) / width)


class Tracker:
    """Assigns stable track ids to detections; feed it every processed frame in time order."""

    def __init__(self, params: TrackerParams | None = None) -> None:
        self._params = params or TrackerParams()
        self._tracks: dict[int, Track] = {}
        self._next_id = 1

    @property
    def tracks(self) -> list[Track]:
        """Live tracks (including ones not seen in the latest frame but within the gap)."""
        return list(self._tracks.values())

    def _affinity(self, track: Track, det: Detection) -> float:
        """Higher is better; negative means no match. IoU in [0,1], centroid matches below it."""
        p = self._params
        overlap = iou(track.detection.box, det.box)
        if overlap >= p.min_iou:
            return 1.0 + overlap
        shift = center_shift(track.detection, det)
        if shift <= p.max_center_shift:
            return 1.0 - shift / p.max_center_shift
        return -1.0

    def update(self, detections: list[Detection], now_s: float) -> list[Track]:
        """Match this frame's detections; return their tracks in the order of ``detections``.

        A detection dropped by the ``max_tracks`` bound has no track and is left out.
        """
        p = self._params
        self._tracks = {
            tid: t for tid, t in self._tracks.items() if now_s - t.last_seen_s <= p.max_gap_s
        }
        pairs = [
            (self._affinity(t, d), tid, di)
            for tid, t in self._tracks.items()
            for di, d in enumerate(detections)
        ]
        pairs.sort(key=lambda x: (-x[0], x[1], x[2]))
        assigned: dict[int, int] = {}
        used_tracks: set[int] = set()
        for aff, tid, di in pairs:
            if aff < 0 or tid in used_tracks or di in assigned:
                continue
            assigned[di] = tid
            used_tracks.add(tid)
        out: list[Track | None] = [None] * len(detections)
        for di, tid in assigned.items():
            old = self._tracks[tid]
            new = replace(old, detection=detections[di], last_seen_s=now_s, hits=old.hits + 1)
            self._tracks[tid] = new
            out[di] = new
        fresh = sorted(
            (di for di in range(len(detections)) if di not in assigned),
            key=lambda di: -detections[di].score,
        )
        for di in fresh:
            if len(self._tracks) >= p.max_tracks:
                continue
            track = Track(self._next_id, detections[di], now_s, now_s, 1)
            self._next_id += 1
            self._tracks[track.track_id] = track
            out[di] = track
        return [t for t in out if t is not None]

    def expired_since(self, now_s: float) -> list[int]:
        """Ids of tracks that would expire at ``now_s`` (lets the caller drop per-track state)."""
        return [
            tid for tid, t in self._tracks.items() if now_s - t.last_seen_s > self._params.max_gap_s
        ]
