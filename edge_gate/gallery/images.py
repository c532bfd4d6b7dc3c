"""Images → gallery decisions (composition): enrollment verdicts and identification results.

Used by ``edge-gate enroll`` and ``edge-gate identify``; the daemon uses the matcher directly.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_gate.config import EdgeGateConfig
from edge_gate.config.gallery import GalleryConfig
from edge_gate.errors import ImageError
from edge_gate.gallery.gates import (
    CONSISTENCY_SLACK,
    IDENTIFY_LIMITS,
    GateLimits,
    check_face,
    inconsistent_images,
    select_enrollment_face,
)
from edge_gate.gallery.loaded import LoadedGallery
from edge_gate.gallery.matching import MatchDecision, match
from edge_gate.vision.image_io import ImageLimits, load_image
from edge_gate.vision.pipeline import FacePipeline
from edge_gate.vision.types import Face

FloatArray = npt.NDArray[np.float32]
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".pnm", ".bmp", ".webp"})


def limits_from_config(cfg: GalleryConfig) -> GateLimits:
    return GateLimits(
        min_face_px=cfg.enroll_min_face_px,
        min_sharpness=cfg.enroll_min_sharpness,
        max_yaw_deg=cfg.enroll_max_yaw_deg,
        max_pitch_deg=cfg.enroll_max_pitch_deg,
        max_roll_deg=cfg.enroll_max_roll_deg,
        min_brightness=cfg.enroll_min_brightness,
        max_brightness=cfg.enroll_max_brightness,
        min_detection_score=cfg.enroll_min_detection_score,
        max_other_face_ratio=cfg.enroll_max_other_face_ratio,
        min_in_frame=cfg.enroll_min_in_frame,
    )


def image_limits(cfg: EdgeGateConfig) -> ImageLimits:
    return ImageLimits(max_bytes=cfg.vision.max_image_bytes, max_pixels=cfg.vision.max_image_pixels)


def is_image_name(name: str) -> bool:
    """An image file name (by suffix) that is not a dotfile."""
    return Path(name).suffix.lower() in IMAGE_SUFFIXES and not name.startswith(".")


def expand_inputs(paths: Sequence[Path]) -> list[Path]:
    """Files as given; directories become their image files (sorted, not recursive, no dotfiles)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(c for c in p.iterdir() if is_image_name(c.name)))
        else:
            out.append(p)
    return out


def image_files_below(root: Path) -> list[Path]:
    """Image files under ``root``, searched recursively (following directory symlinks once),
    sorted, no dotfiles or dot-directories."""
    out: list[Path] = []
    seen: set[str] = set()
    for here, dirs, names in os.walk(root, followlinks=True):
        real = os.path.realpath(here)
        if real in seen:  # a symlink loop or a second link to the same folder
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        out.extend(Path(here) / n for n in names if is_image_name(n))
    return sorted(out)


@dataclass(frozen=True)
class ImageVerdict:
    """What enrollment made of one image."""

    path: Path
    code: str | None
    message: str | None
    face: Face | None

    @property
    def accepted(self) -> bool:
        return self.code is None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": str(self.path), "accepted": self.accepted}
        if self.code is not None:
            out["code"], out["reason"] = self.code, self.message
        if self.face is not None:
            out["quality"] = self.face.quality.as_dict()
        return out


def examine_for_enrollment(
    pipe: FacePipeline, path: Path, limits: GateLimits, img_limits: ImageLimits
) -> ImageVerdict:
    """Load, detect, embed and gate one enrollment image."""
    try:
        image = load_image(path, img_limits)
    except ImageError as e:
        return ImageVerdict(path, "unreadable", f"cannot read image: {e}", None)
    result = select_enrollment_face(pipe.analyze(image, embed=True), limits)
    return ImageVerdict(path, result.code, result.message, result.face)


@dataclass(frozen=True, slots=True)
class Duplicate:
    user_id: str
    name: str
    score: float


def find_duplicate(
    gallery: LoadedGallery, embeddings: FloatArray, threshold: float
) -> Duplicate | None:
    """The enrolled person the new face already matches best (score ≥ threshold), if any."""
    if not gallery.people:
        return None
    best: Duplicate | None = None
    for vec in embeddings:
        r = match(gallery.matrix, vec, threshold, 0.0)
        better = best is None or r.score > best.score
        if r.best_user_id is not None and r.score >= threshold and better:
            rec = gallery.get(r.best_user_id)
            best = Duplicate(r.best_user_id, rec.name if rec else "?", r.score)
    return best


def identify_faces(
    faces: Sequence[Face],
    gallery: LoadedGallery,
    threshold: float,
    margin: float,
    *,
    limits: GateLimits = IDENTIFY_LIMITS,
) -> list[dict[str, Any]]:
    """One JSON-ready dict per face: box, user_id, name, score, margin, decision, reason.

    ``reason`` is null for a match, ``ambiguous`` (score ≥ threshold, margin failed) or
    ``below_threshold`` for unknown, and the gate code (plus a ``detail`` sentence) for
    rejected_quality."""
    out: list[dict[str, Any]] = []
    for face in faces:
        entry: dict[str, Any] = {
            "box": [round(v, 1) for v in face.box.as_list()],
            "user_id": None,
            "name": None,
            "score": None,
            "margin": None,
        }
        gate = check_face(face, limits)
        if not gate.ok or face.embedding is None:
            entry.update(
                decision="rejected_quality",
                reason=gate.code or "no_embedding",
                detail=gate.message or "no embedding",
            )
            out.append(entry)
            continue
        if not gallery.people:
            entry.update(decision=MatchDecision.UNKNOWN.value, reason="below_threshold")
            out.append(entry)
            continue
        r = match(gallery.matrix, face.embedding, threshold, margin)
        entry.update(score=round(r.score, 4), margin=round(r.margin, 4), decision=r.decision.value)
        if r.decision is MatchDecision.MATCH:
            entry["reason"] = None
        else:  # the unrounded score decides, as in match()
            entry["reason"] = "ambiguous" if r.score >= threshold else "below_threshold"
        if r.user_id is not None:
            rec = gallery.get(r.user_id)
            entry.update(user_id=r.user_id, name=rec.name if rec else None)
        out.append(entry)
    return out


def reject_inconsistent(verdicts: list[ImageVerdict], threshold: float) -> list[ImageVerdict]:
    """Mark accepted photos that look like nobody else in the batch as rejected."""
    accepted: list[int] = []
    embeddings: list[FloatArray] = []
    for i, v in enumerate(verdicts):
        if v.accepted and v.face is not None and v.face.embedding is not None:
            accepted.append(i)
            embeddings.append(v.face.embedding)
    if len(accepted) < 2:
        return verdicts
    vecs = np.stack(embeddings)
    out = list(verdicts)
    for j, best in inconsistent_images(vecs, threshold - CONSISTENCY_SLACK):
        v = verdicts[accepted[j]]
        out[accepted[j]] = ImageVerdict(
            v.path,
            "inconsistent",
            f"does not look like the same person as the other photos (best similarity "
            f"{best:.2f} < {threshold - CONSISTENCY_SLACK:.2f})",
            v.face,
        )
    return out
