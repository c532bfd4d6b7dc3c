"""Threshold calibration from impostor and genuine scores (pure core: numpy + stdlib).

Scores are *open-set* scores, the way the door sees them:

* impostor: a face of someone not enrolled, scored against the whole gallery (best identity).
  Two sources: real non-enrolled faces, and every gallery template scored against all the
  *other* identities (as if its owner had never enrolled).
* genuine: a gallery template scored against its owner's other templates (leave one out),
  together with the best other identity so the margin rule can be applied.

The threshold for a target false-accept rate (FAR, per presentation) is the smallest value
that at most ``target_far`` of the impostor scores reach. It is only recommended when there are
enough impostor scores to estimate that FAR at all: at least ``ceil(3 / target_far)`` (the
"rule of three": with n scores and no false accept, the 95 % upper bound on the FAR is 3 / n).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge_gate.gallery.matching import TemplateMatrix, l2_normalise

__layer__ = "core"

FloatArray = npt.NDArray[np.float32]
_CHUNK_ROWS = 512


@dataclass(frozen=True, slots=True)
class LeaveOneOut:
    """Per gallery template: own-identity score (NaN if the person has one template) and the
    best and second-best score over the other identities."""

    own: FloatArray
    other_best: FloatArray
    other_second: FloatArray


def leave_one_out(gallery: TemplateMatrix, max_rows: int = 20_000) -> LeaveOneOut:
    """Score gallery templates against the gallery, excluding the template itself.

    At most ``max_rows`` templates (evenly spaced) are used as probes, so very large
    galleries stay affordable (the work is rows x templates x dim).
    """
    n = gallery.n_templates
    rows = np.arange(n) if n <= max_rows else np.linspace(0, n - 1, max_rows).astype(np.int64)
    own = np.full(len(rows), np.nan, dtype=np.float32)
    best = np.full(len(rows), -1.0, dtype=np.float32)
    second = np.full(len(rows), -1.0, dtype=np.float32)
    starts = np.searchsorted(gallery.owner, np.arange(gallery.n_people))
    for lo in range(0, len(rows), _CHUNK_ROWS):
        idx = rows[lo : lo + _CHUNK_ROWS]
        sims = gallery.weigh(gallery.matrix[idx]) @ gallery.matrix.T
        sims[np.arange(len(idx)), idx] = -np.inf  # not against itself
        per_id = np.maximum.reduceat(sims, starts, axis=1)
        owners = gallery.owner[idx]
        own_scores = per_id[np.arange(len(idx)), owners]
        own[lo : lo + len(idx)] = np.where(np.isfinite(own_scores), own_scores, np.nan)
        per_id[np.arange(len(idx)), owners] = -np.inf
        if per_id.shape[1] >= 2:
            top2 = -np.partition(-per_id, 1, axis=1)[:, :2]
            best[lo : lo + len(idx)] = top2[:, 0]
            second[lo : lo + len(idx)] = np.where(np.isfinite(top2[:, 1]), top2[:, 1], -1.0)
    return LeaveOneOut(own=own, other_best=best, other_second=second)


def external_scores(gallery: TemplateMatrix, probes: FloatArray) -> FloatArray:
    """Best identity score of each probe (non-enrolled faces) against the whole gallery."""
    if len(probes) == 0 or gallery.n_people == 0:
        return np.zeros(0, dtype=np.float32)
    sims = gallery.weigh(l2_normalise(probes)) @ gallery.matrix.T
    starts = np.searchsorted(gallery.owner, np.arange(gallery.n_people))
    out: FloatArray = np.maximum.reduceat(sims, starts, axis=1).max(axis=1).astype(np.float32)
    return out


def threshold_for_far(impostor: FloatArray, target_far: float) -> float:
    """Smallest threshold that at most ``target_far`` of the impostor scores reach (≥)."""
    if len(impostor) == 0:
        raise ValueError("no impostor scores")
    if not 0 <= target_far < 1:
        raise ValueError("target FAR must be in [0, 1)")
    # float32 throughout: scores are float32, and numpy compares them with a Python float in
    # float32, so the next float32 above the score is the threshold that really excludes it
    desc = np.sort(np.asarray(impostor, dtype=np.float32))[::-1]
    allowed = math.floor(target_far * len(desc))
    return float(np.nextafter(desc[allowed], np.float32(np.inf)))


RULE_OF_THREE = 3.0


def required_impostors(target_far: float) -> int:
    """Impostor scores needed before a threshold for ``target_far`` means anything:
    ``ceil(3 / target_far)`` (rule of three)."""
    if not 0 < target_far < 1:
        raise ValueError("target FAR must be in (0, 1)")
    # round first so 3 / 1e-3 = 3000.0000000000005 does not become 3001
    return math.ceil(round(RULE_OF_THREE / target_far, 6))


@dataclass(frozen=True, slots=True)
class Calibration:
    """Result of :func:`calibrate` (rates are fractions in [0, 1])."""

    threshold: float
    margin: float
    target_far: float
    measured_far: float
    genuine_accept_rate: float
    n_impostor: int
    n_genuine: int
    max_impostor: float
    n_required: int

    @property
    def sufficient(self) -> bool:
        """Enough impostor scores to estimate ``target_far`` (rule of three)?"""
        return self.n_impostor >= self.n_required

    @property
    def far_resolution(self) -> float:
        """The smallest FAR these impostor numbers can show (one in n)."""
        return 1.0 / self.n_impostor

    def as_json(self) -> dict[str, float | int | bool | None]:
        """Without enough impostor scores there is no recommended threshold: ``threshold`` and
        the figures measured at it (``measured_far``, ``genuine_accept_rate``) are null."""
        ok = self.sufficient
        return {
            "sufficient": ok,
            "threshold": round(self.threshold, 4) if ok else None,
            "margin": self.margin,
            "target_far": self.target_far,
            "measured_far": self.measured_far if ok else None,
            "far_resolution": self.far_resolution,
            "genuine_accept_rate": round(self.genuine_accept_rate, 4) if ok else None,
            "n_impostor": self.n_impostor,
            "n_impostor_required": self.n_required,
            "n_genuine": self.n_genuine,
            "max_impostor": round(self.max_impostor, 4),
        }


def calibrate(
    gallery: TemplateMatrix, non_enrolled: FloatArray, target_far: float, margin: float
) -> Calibration:
    """Threshold for ``target_far`` from the gallery's own cross-identity scores plus
    ``non_enrolled`` probe embeddings; genuine accept rate from leave-one-out scores.

    The result always carries the threshold, but check :attr:`Calibration.sufficient` before
    using it: with fewer than :func:`required_impostors` scores it cannot honour the FAR."""
    n_required = required_impostors(target_far)
    loo = leave_one_out(gallery)
    impostor = np.concatenate(
        [loo.other_best[loo.other_best > -1.0], external_scores(gallery, non_enrolled)]
    )
    threshold = threshold_for_far(impostor, target_far)
    has_own = ~np.isnan(loo.own)
    own = loo.own[has_own]
    accepted = (own >= threshold) & (own - np.maximum(loo.other_best[has_own], -1.0) >= margin)
    return Calibration(
        threshold=threshold,
        margin=margin,
        target_far=target_far,
        measured_far=float(np.mean(impostor >= threshold)),
        genuine_accept_rate=float(np.mean(accepted)) if len(own) else float("nan"),
        n_impostor=len(impostor),
        n_genuine=len(own),
        max_impostor=float(impostor.max()),
        n_required=n_required,
    )
