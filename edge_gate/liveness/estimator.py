"""Per-track liveness for the daemon (adapter: keeps frames, runs the cv2 cues).

    est = LivenessEstimator.from_config(cfg.liveness)
    est.update(track.track_id, frame_bgr, track.detection, now_s)   # every processed frame
    result = est.verdict(track.track_id)        # live: True / False / None (undecided)

State is bounded: a window of evidence per track, a few keyframes per track, and tracks not
updated for ``idle_s`` are dropped on the next update.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edge_gate.config.liveness import LivenessConfig
from edge_gate.liveness import cues
from edge_gate.liveness.scoring import ScoringParams, score_window
from edge_gate.liveness.types import FrameEvidence, LivenessResult
from edge_gate.vision.types import Detection

log = logging.getLogger(__name__)

MAX_TRACKS = 32


@dataclass
class _TrackState:
    points: cues.PointTracks = field(default_factory=cues.PointTracks)
    evidence: deque[FrameEvidence] = field(default_factory=deque)
    last_s: float = 0.0


class LivenessEstimator:
    """Accumulates liveness evidence per face track. Not thread-safe: one per pipeline thread."""

    def __init__(
        self,
        threshold: float = 0.5,
        window_frames: int = 12,
        window_s: float = 1.0,
        params: ScoringParams | None = None,
        idle_s: float = 2.0,
    ) -> None:
        self.threshold = threshold
        self.window_frames = window_frames
        self.window_s = window_s
        self.params = params or ScoringParams(
            min_frames=min(ScoringParams().min_frames, window_frames)
        )
        self.idle_s = idle_s
        self._tracks: dict[int, _TrackState] = {}

    @classmethod
    def from_config(cls, config: LivenessConfig) -> LivenessEstimator:
        params = ScoringParams(
            min_frames=min(config.min_frames, config.window_frames),
            early_frames=config.early_frames,
            nonrigid_floor=config.nonrigid_floor,
        )
        return cls(config.threshold, config.window_frames, config.window_s, params)

    def update(
        self, track_id: int, frame_bgr: npt.NDArray[np.uint8], detection: Detection, now_s: float
    ) -> None:
        """Add this frame's evidence for ``track_id`` (the face ``detection`` in ``frame_bgr``)."""
        self._drop_idle(now_s)
        state = self._tracks.get(track_id)
        if state is None:
            if len(self._tracks) >= MAX_TRACKS:
                oldest = min(self._tracks, key=lambda t: self._tracks[t].last_s)
                del self._tracks[oldest]
            state = self._tracks[track_id] = _TrackState()
        ev = cues.frame_evidence(state.points, frame_bgr, detection, now_s)
        state.evidence.append(ev)
        state.last_s = now_s
        while state.evidence and (
            len(state.evidence) > self.window_frames
            or now_s - state.evidence[0].t_s > self.window_s
        ):
            state.evidence.popleft()

    def verdict(self, track_id: int) -> LivenessResult:
        """The track's current verdict; unknown tracks are undecided with no frames."""
        state = self._tracks.get(track_id)
        if state is None:
            return LivenessResult(None, 0.0, ("unknown-track",), 0)
        return score_window(list(state.evidence), self.threshold, self.params)

    def forget(self, track_id: int) -> None:
        """Drop a track's state (call when the tracker expires it)."""
        self._tracks.pop(track_id, None)

    def _drop_idle(self, now_s: float) -> None:
        for tid in [t for t, s in self._tracks.items() if now_s - s.last_s > self.idle_s]:
            del self._tracks[tid]
