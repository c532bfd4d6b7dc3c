"""Enrollment as a service (composition): photos or camera frames → templates → the gallery.

``edge-gate enroll`` only parses options and prints; this module decides. Photos go through
:func:`~edge_gate.gallery.images.examine_for_enrollment`; camera or clip frames through
:func:`collect_from_source`, which keeps the best frames that pass the same enrollment gates and
differ in head pose. Both end in :func:`plan` (consistency, template cap, warnings, duplicate
check) and :meth:`GalleryStore.enroll`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_gate.capture.sources import Source
from edge_gate.config import EdgeGateConfig
from edge_gate.gallery.gates import GateLimits, select_enrollment_face
from edge_gate.gallery.images import Duplicate, ImageVerdict, find_duplicate, reject_inconsistent
from edge_gate.gallery.loaded import LoadedGallery
from edge_gate.vision.pipeline import FacePipeline
from edge_gate.vision.types import Face

FloatArray = npt.NDArray[np.float32]
RECOMMENDED_IMAGES = (3, 5)  # accepted photos or frames per person
MIN_LOOK_S = 3.0
"""A camera enrollment looks at least this long before it stops early with a full set, so the
kept frames are the best of a few seconds, not the first ones."""
MIN_POSE_DELTA_DEG = 4.0
"""Two kept camera frames differ by at least this much in yaw or pitch (otherwise they are
near-copies of one another and add nothing a single template does not)."""


@dataclass(frozen=True)
class Plan:
    """What enrollment will store, and what to tell the admin."""

    verdicts: list[ImageVerdict]
    keep: list[ImageVerdict]
    warnings: list[str]
    duplicate: Duplicate | None

    @property
    def rejected(self) -> int:
        return sum(1 for v in self.verdicts if not v.accepted)

    def embeddings(self) -> FloatArray:
        return np.stack(
            [v.face.embedding for v in self.keep if v.face and v.face.embedding is not None]
        )

    def report(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "images": [v.as_json() for v in self.verdicts],
            "accepted": len(self.keep),
            "rejected": self.rejected,
            "warnings": self.warnings,
        }


def plan(verdicts: list[ImageVerdict], cfg: EdgeGateConfig, gallery: LoadedGallery | None) -> Plan:
    """Drop inconsistent photos, cap the templates, warn on too few, look for a look-alike."""
    verdicts = reject_inconsistent(verdicts, cfg.gallery.threshold)
    accepted = [v for v in verdicts if v.accepted and v.face is not None]
    keep = accepted[: cfg.gallery.enroll_max_templates]
    warnings: list[str] = []
    if len(accepted) > len(keep):
        warnings.append(
            f"{len(accepted)} images accepted; keeping the first {len(keep)} "
            "(gallery.enroll_max_templates)"
        )
    if 0 < len(keep) < RECOMMENDED_IMAGES[0]:
        warnings.append(
            f"only {len(keep)} usable image(s): {RECOMMENDED_IMAGES[0]}-{RECOMMENDED_IMAGES[1]} "
            "photos (slightly different angles and light) recognise far more reliably"
        )
    result = Plan(verdicts, keep, warnings, None)
    if keep and gallery is not None:
        dup = find_duplicate(gallery, result.embeddings(), cfg.gallery.threshold)
        result = Plan(verdicts, keep, warnings, dup)
    return result


@dataclass
class Progress:
    """Live counts of a camera enrollment (for the progress line)."""

    elapsed_s: float = 0.0
    frames: int = 0
    faces: int = 0
    passed: int = 0
    kept: int = 0
    last_reason: str | None = None


@dataclass
class _Kept:
    verdict: ImageVerdict
    face: Face
    score: float = field(init=False)

    def __post_init__(self) -> None:
        self.score = self.face.quality.sharpness * self.face.score


def _pose_distance_deg(a: Face, b: Face) -> float:
    return math.hypot(
        a.quality.yaw_deg - b.quality.yaw_deg, a.quality.pitch_deg - b.quality.pitch_deg
    )


def _offer(kept: list[_Kept], new: _Kept, max_keep: int) -> None:
    """Keep the sharpest frame per pose: ``new`` replaces the kept frames of a near-same pose
    when it is sharper than all of them, else it is added (capped) or dropped. Kept frames stay
    pairwise ≥ :data:`MIN_POSE_DELTA_DEG` apart."""
    near = [k for k in kept if _pose_distance_deg(k.face, new.face) < MIN_POSE_DELTA_DEG]
    if near:
        if all(new.score > k.score for k in near):
            kept[:] = [k for k in kept if all(k is not n for n in near)] + [new]
        return
    if len(kept) < max_keep:
        kept.append(new)
        return
    worst = min(range(len(kept)), key=lambda i: kept[i].score)
    if new.score > kept[worst].score:
        kept[worst] = new


def collect_from_source(
    pipe: FacePipeline,
    source: Source,
    limits: GateLimits,
    *,
    label: str,
    seconds: float,
    max_keep: int,
    on_progress: Callable[[Progress], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[ImageVerdict]:
    """Read frames for up to ``seconds`` and return the best (≤ ``max_keep``) gate-passing
    frames of distinct head poses, each as an accepted :class:`ImageVerdict`.

    Stops early once ``max_keep`` distinct poses are kept and :data:`MIN_LOOK_S` passed, or when
    a clip ends. An empty list
    means nobody usable was seen in time (the caller reports a timeout).
    """
    t0 = clock()
    progress = Progress()
    kept: list[_Kept] = []
    while True:
        progress.elapsed_s = clock() - t0
        full = len(kept) >= max_keep and progress.elapsed_s >= MIN_LOOK_S
        if progress.elapsed_s >= seconds or full:
            break
        image = source.read()
        if image is None:
            if source.finite:
                break  # end of a clip
            continue
        progress.frames += 1
        faces = pipe.analyze(image, embed=True)
        progress.faces += len(faces)
        gate = select_enrollment_face(faces, limits)
        progress.last_reason = gate.code
        if gate.ok and gate.face is not None and gate.face.embedding is not None:
            progress.passed += 1
            at = f"{label}@{progress.elapsed_s:.1f}s#{progress.frames}"
            verdict = ImageVerdict(Path(at), None, None, gate.face)
            _offer(kept, _Kept(verdict, gate.face), max_keep)
            progress.kept = len(kept)
        if on_progress is not None:
            on_progress(progress)
    progress.elapsed_s = clock() - t0
    if on_progress is not None:
        on_progress(progress)
    kept.sort(key=lambda k: k.score, reverse=True)
    return [k.verdict for k in kept]
