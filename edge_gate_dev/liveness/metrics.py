"""ISO/IEC 30107-3 presentation attack detection metrics (pure core).

* APCER (per PAI species): share of attack presentations of that species accepted as bona fide.
* BPCER: share of bona fide presentations rejected as attacks.
A presentation is accepted when its score reaches the threshold. Presentations with no score
(no face found, never a verdict) are never accepted: they count as rejected (fail secure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__layer__ = "core"


@dataclass(frozen=True, slots=True)
class Presentation:
    """One evaluated clip: its species (``bona_fide`` or an attack type) and its score."""

    species: str
    score: float | None

    @property
    def is_attack(self) -> bool:
        return self.species != "bona_fide"


def accepted(score: float | None, threshold: float) -> bool:
    return score is not None and score >= threshold


def bpcer(items: Sequence[Presentation], threshold: float) -> float:
    bona = [p for p in items if not p.is_attack]
    if not bona:
        return float("nan")
    return sum(not accepted(p.score, threshold) for p in bona) / len(bona)


def apcer_by_species(items: Sequence[Presentation], threshold: float) -> dict[str, float]:
    out: dict[str, float] = {}
    for species in sorted({p.species for p in items if p.is_attack}):
        group = [p for p in items if p.species == species]
        out[species] = sum(accepted(p.score, threshold) for p in group) / len(group)
    return out


def counts(items: Sequence[Presentation]) -> Mapping[str, int]:
    out: dict[str, int] = {}
    for p in items:
        out[p.species] = out.get(p.species, 0) + 1
    return out


def det_curve(items: Sequence[Presentation]) -> tuple[list[float], list[float], list[float]]:
    """(thresholds, APCER of the worst species, BPCER) at every distinct score."""
    scores = sorted({p.score for p in items if p.score is not None} | {0.0, 1.0 + 1e-9})
    thresholds, apcers, bpcers = [], [], []
    for t in scores:
        per = apcer_by_species(items, t)
        thresholds.append(t)
        apcers.append(max(per.values()) if per else float("nan"))
        bpcers.append(bpcer(items, t))
    return thresholds, apcers, bpcers


def threshold_for_bpcer(items: Sequence[Presentation], max_bpcer: float) -> float:
    """The highest threshold whose BPCER stays within ``max_bpcer`` (most attacks rejected)."""
    thresholds, _, bpcers = det_curve(items)
    ok = [t for t, b in zip(thresholds, bpcers, strict=True) if b <= max_bpcer]
    return float(max(ok)) if ok else float(np.min(thresholds))
