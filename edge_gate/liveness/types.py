"""Value types of liveness (pure core)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__layer__ = "core"


@dataclass(frozen=True, slots=True)
class FrameEvidence:
    """What one frame (against the track's earlier frames) says about liveness.

    Lengths are fractions of the face width so the cues do not depend on the face's size.
    """

    t_s: float
    measured: bool
    """False when too few points could be tracked (first frame, blur, occlusion)."""
    face_px: float = 0.0
    """Face box width in pixels."""
    motion: float = 0.0
    """Median displacement of the face's points over the baseline (face widths)."""
    nonrigid: float = 0.0
    """Upper-quantile residual of those displacements after the best plane homography."""
    spectrum: npt.NDArray[np.float32] | None = field(default=None, repr=False, compare=False)
    """Power spectrum of a grey patch on the face (for screen pixel-grid moire), if measured."""
    part_change: float = 0.0
    """After removing the face's plane motion: cheek similarity minus the least similar of the
    eyes and the mouth (normalised cross-correlation; blinks and speech make it large)."""


@dataclass(frozen=True, slots=True)
class LivenessResult:
    """Verdict for one face track. ``live`` is None while undecided (too little evidence yet)."""

    live: bool | None
    score: float
    reasons: tuple[str, ...]
    frames: int

    def as_json(self) -> dict[str, object]:
        return {
            "live": self.live,
            "score": round(self.score, 4),
            "frames": self.frames,
            "reasons": list(self.reasons),
        }
