"""``[liveness]``: presentation attack detection over a face track."""

from __future__ import annotations

from pydantic import Field

from edge_gate.config.base import Section


class LivenessConfig(Section):
    enabled: bool = Field(True, description="require liveness before any unlock")
    window_frames: int = Field(
        12, ge=2, le=300, description="frames of evidence per verdict (sliding window)"
    )
    window_s: float = Field(1.0, gt=0, le=30, description="verdict time window in seconds")
    min_frames: int = Field(
        8,
        ge=2,
        le=300,
        description="frames in the window before a 'not live' verdict; undecided until then",
    )
    early_frames: int = Field(
        4,
        ge=0,
        le=300,
        description="from this many frames of a track on, a 'live' verdict may come early, "
        "when at least two frames already show life and no screen pattern (0: wait for "
        "min_frames)",
    )
    threshold: float = Field(
        0.5, ge=0, le=1, description="score at or above which a track counts as live"
    )
    nonrigid_floor: float = Field(
        0.003,
        gt=0,
        le=0.1,
        description="non-rigid face motion (fraction of the face width) below this is "
        "tracking noise, not evidence of life",
    )
