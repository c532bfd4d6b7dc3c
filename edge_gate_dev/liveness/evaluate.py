"""Run liveness over clips the way the daemon does and report ISO/IEC 30107-3 figures (adapter).

Per clip: every frame goes through the detector, the tracker and the estimator; the clip's
score is the highest score any face track reached while it had a verdict (the daemon would
open at the first live verdict, so that is what an attack has to beat).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge_gate.config.liveness import LivenessConfig
from edge_gate.liveness.estimator import LivenessEstimator
from edge_gate.liveness.types import LivenessResult
from edge_gate.tracking import Tracker
from edge_gate.vision.types import Detection
from edge_gate_dev.liveness.attacks import Clip
from edge_gate_dev.liveness.metrics import Presentation, apcer_by_species, bpcer, counts, det_curve

U8 = npt.NDArray[np.uint8]
Detector = Callable[[U8], list[Detection]]


@dataclass(frozen=True, slots=True)
class ClipOutcome:
    """The best track's final verdict, the clip's score, and how long after its face first
    appeared the first verdict (live or not) came."""

    result: LivenessResult
    score: float | None
    first_verdict_s: float | None


def run_frames(
    frames: Iterable[U8], fps: float, detect: Detector, config: LivenessConfig
) -> ClipOutcome:
    """Liveness over a sequence of frames (timestamps ``i / fps``)."""
    tracker = Tracker()
    est = LivenessEstimator.from_config(config)
    best: float | None = None
    first: float | None = None
    final: dict[int, LivenessResult] = {}
    for i, frame in enumerate(frames):
        now_s = i / fps
        for track in tracker.update(detect(frame), now_s):
            est.update(track.track_id, frame, track.detection, now_s)
            result = est.verdict(track.track_id)
            final[track.track_id] = result
            if result.live is not None:
                if first is None:
                    first = now_s - track.first_seen_s
                best = result.score if best is None else max(best, result.score)
    if not final:
        return ClipOutcome(LivenessResult(None, 0.0, ("no-face",), 0), None, None)
    decided = [r for r in final.values() if r.live is not None]
    pool = decided or list(final.values())
    top = max(pool, key=lambda r: (r.score, r.frames))
    if best is not None and best >= config.threshold and not top.live:
        # a live verdict earlier in the clip is what counts (the door would have opened)
        top = LivenessResult(True, best, (*top.reasons, "live-earlier"), top.frames)
    return ClipOutcome(top, best, first)


@dataclass(frozen=True, slots=True)
class Report:
    """Evaluation figures at the configured threshold."""

    threshold: float
    apcer: dict[str, float]
    apcer_by_variant: dict[str, float]
    bpcer: float
    counts: dict[str, int]
    counts_by_variant: dict[str, int]
    undecided: dict[str, int]
    """Clips with a face but no verdict by their end (counted as rejected)."""
    no_face: dict[str, int]
    """Clips in which the detector found no face (failure to acquire; left out of the rates)."""
    first_verdict_s_max: float | None
    presentations: list[Presentation]

    def as_json(self) -> dict[str, object]:
        return {
            "threshold": self.threshold,
            "apcer": {k: round(v, 4) for k, v in self.apcer.items()},
            "apcer_by_variant": {k: round(v, 4) for k, v in self.apcer_by_variant.items()},
            "bpcer": round(self.bpcer, 4),
            "counts": self.counts,
            "counts_by_variant": self.counts_by_variant,
            "undecided": self.undecided,
            "no_face": self.no_face,
            "first_verdict_s_max": self.first_verdict_s_max,
        }


def evaluate(clips: Iterable[Clip], detect: Detector, config: LivenessConfig) -> Report:
    """Score every clip and compute APCER per attack type, per variant, and BPCER."""
    items: list[Presentation] = []
    variants: list[Presentation] = []
    undecided: dict[str, int] = {}
    no_face: dict[str, int] = {}
    firsts: list[float] = []
    for clip in clips:
        out = run_frames(clip.frames, clip.fps, detect, config)
        if out.result.reasons == ("no-face",):
            no_face[clip.kind] = no_face.get(clip.kind, 0) + 1
            continue
        items.append(Presentation(clip.kind, out.score))
        variants.append(Presentation(clip.name if clip.is_attack else "bona_fide", out.score))
        if out.score is None:
            undecided[clip.kind] = undecided.get(clip.kind, 0) + 1
        if out.first_verdict_s is not None:
            firsts.append(out.first_verdict_s)
    t = config.threshold
    return Report(
        threshold=t,
        apcer=apcer_by_species(items, t),
        apcer_by_variant=apcer_by_species(variants, t),
        bpcer=bpcer(items, t),
        counts=dict(counts(items)),
        counts_by_variant=dict(counts(variants)),
        undecided=undecided,
        no_face=no_face,
        first_verdict_s_max=max(firsts) if firsts else None,
        presentations=items,
    )


def plot_det(items: Sequence[Presentation], path: Path, title: str = "liveness DET") -> None:
    """Draw the DET curve (APCER of each attack type against BPCER) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    for species in sorted({p.species for p in items if p.is_attack}):
        subset = [p for p in items if p.species in (species, "bona_fide")]
        _, apcers, bpcers = det_curve(subset)
        ax.step(bpcers, apcers, where="post", label=species)
    ax.set_xlabel("BPCER")
    ax.set_ylabel("APCER")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
