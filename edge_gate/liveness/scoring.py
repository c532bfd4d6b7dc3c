"""Liveness evidence over a face track's window → score in [0, 1] with reasons (pure core).

Principle: no evidence of life means not live. A face that does not move (a photo held
perfectly steady) or moves only as one rigid plane (a print or screen waved around) shows no
life; a real head shows non-rigid motion (3-D shape, blinks, speech) above the tracking noise.
A screen's pixel grid (moire) vetoes what the motion says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge_gate.liveness.types import FrameEvidence, LivenessResult

__layer__ = "core"


@dataclass(frozen=True, slots=True)
class ScoringParams:
    """Tuning of the evidence accumulation (fractions of the face width unless noted)."""

    min_frames: int = 8
    """Frames in the window before a "not live" verdict (undecided until then)."""
    early_frames: int = 4
    """From this many frames on, a *live* verdict may come before ``min_frames``: evidence
    counts from the track's first frame, and the door need not wait for a fixed window when
    the face already shows life (0 disables). It needs ``early_min_lively`` frames of life,
    ``early_min_measured`` measured frames and ``moire_min_frames`` spectra with no screen
    pattern, so an early verdict holds the same count of lively frames that a full window
    would need (with the default threshold and life fraction: two)."""
    early_min_lively: int = 2
    early_min_measured: int = 3
    min_measured: int = 5
    """Frames with reliable flow needed before motion can count as life."""
    min_face_px: float = 64.0
    """Faces narrower than this are too small to judge: their frames are no evidence."""
    nonrigid_floor: float = 0.003
    """Residual after the best plane homography below this is tracking noise."""
    nonrigid_per_motion: float = 0.5
    """...and it must also exceed this fraction of the face's rigid motion (blur grows with it)
    but stay within ``nonrigid_max_per_motion`` times it: a residual far above the median
    displacement on a face that hardly moves is flow noise (low texture, a false detection);
    a blink on a still face is caught by ``part_change`` instead."""
    nonrigid_max_per_motion: float = 1.5
    part_change: float = 0.08
    """...or, with the plane motion removed, an eye or the mouth changed this much more than the
    cheeks (normalised cross-correlation drop: a blink, speech)."""
    life_fraction: float = 0.3
    """Fraction of measured frames showing life (any of the above) that gives full evidence."""
    moire_peak: float = 30.0
    """Spectral peak over the radial mean above this is a screen's pixel grid."""
    moire_min_frames: int = 4


def _radial_bins(n: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    f = np.fft.fftfreq(n)
    radius = np.hypot(f[:, None], f[None, :])
    return np.minimum((radius * n).astype(np.int64), n), (radius > 0.12) & (radius < 0.5)


def moire_peak(spectra: Sequence[npt.NDArray[np.float32]]) -> float:
    """Largest high-frequency peak of the mean power spectrum relative to its radius's level.

    Averaging over frames keeps a fixed periodic pattern (a screen's pixel grid seen through the
    camera) and averages out the random fluctuations of natural texture. The level at each
    radius is the radial mean: a single peak barely moves it.
    """
    power = np.mean(np.stack(spectra), axis=0).astype(np.float64)
    bins, band = _radial_bins(power.shape[0])
    sums = np.bincount(bins.ravel(), weights=power.ravel())
    counts = np.bincount(bins.ravel())
    level = sums / np.maximum(counts, 1) + 1e-9
    return float((power / level[bins])[band].max())


def score_window(
    evidence: Sequence[FrameEvidence], threshold: float, params: ScoringParams | None = None
) -> LivenessResult:
    """Score the window's evidence; ``live`` is None while there are too few frames.

    Before ``min_frames`` the only possible verdict is an early *live* one (see
    :attr:`ScoringParams.early_frames`); "not live" always waits for the full window.
    """
    p = params or ScoringParams()
    frames = len(evidence)
    early = frames < p.min_frames
    if early and (p.early_frames <= 0 or frames < max(p.early_frames, p.moire_min_frames)):
        return LivenessResult(None, 0.0, ("too-few-frames",), frames)
    measured = [e for e in evidence if e.measured and e.face_px >= p.min_face_px]
    reasons: list[str] = []
    lively = [
        e
        for e in measured
        if e.part_change >= p.part_change
        or max(p.nonrigid_floor, p.nonrigid_per_motion * e.motion)
        <= e.nonrigid
        <= p.nonrigid_max_per_motion * e.motion
    ]
    if len(measured) < (p.early_min_measured if early else p.min_measured):
        small = sum(e.face_px < p.min_face_px for e in evidence) > frames // 2
        reasons.append("face-too-small" if small else "unreliable-motion")
        life = 0.0
    else:
        life = min(1.0, len(lively) / (p.life_fraction * len(measured)))
        if lively:
            reasons.append("nonrigid-motion")
        elif max(e.motion for e in measured) < p.nonrigid_floor:
            reasons.append("no-motion")
        else:
            reasons.append("planar-motion")
    score = life
    spectra = [e.spectrum for e in evidence if e.spectrum is not None]
    if len(spectra) >= p.moire_min_frames and moire_peak(spectra) >= p.moire_peak:
        reasons.append("screen-pattern")
        score *= 0.2
    if early:
        enough = len(lively) >= p.early_min_lively and len(spectra) >= p.moire_min_frames
        if enough and score >= threshold:
            return LivenessResult(True, float(score), (*reasons, "early"), frames)
        return LivenessResult(None, 0.0, ("too-few-frames",), frames)
    live = score >= threshold
    return LivenessResult(live, float(score), tuple(reasons), frames)
