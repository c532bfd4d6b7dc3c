"""Quality gates for enrollment and identification (pure core: numpy + stdlib).

A gallery template should come from one clearly dominant, frontal, sharp, well-lit face of a
usable size. Each failed check is reported with a stable code and a sentence for the admin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge_gate.vision.types import Face

__layer__ = "core"

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class GateLimits:
    """Bounds a face must satisfy (see ``[gallery] enroll_*`` in the config)."""

    min_face_px: float
    min_sharpness: float
    max_yaw_deg: float
    max_pitch_deg: float
    max_roll_deg: float
    min_brightness: float
    max_brightness: float
    min_detection_score: float
    max_other_face_ratio: float
    min_in_frame: float = 0.6


IDENTIFY_LIMITS = GateLimits(
    min_face_px=40,
    min_sharpness=15,
    max_yaw_deg=45,
    max_pitch_deg=45,
    max_roll_deg=45,
    min_brightness=20,
    max_brightness=240,
    min_detection_score=0.8,
    max_other_face_ratio=1.0,
    min_in_frame=0.6,
)
"""Looser bounds for ``identify``: below these a match score means little."""

DOOR_LIMITS = GateLimits(
    min_face_px=60,
    min_sharpness=20,
    max_yaw_deg=35,
    max_pitch_deg=30,
    max_roll_deg=30,
    min_brightness=40,
    max_brightness=220,
    min_detection_score=0.0,  # the detector's own thresholds already applied
    max_other_face_ratio=1.0,  # several people may stand at a door; each face is its own track
    min_in_frame=0.6,  # a face half out of the picture: wait until the person steps in
)
"""Lenient bounds for the door: a face walking up; the K-of-N policy absorbs a bad frame."""


@dataclass(frozen=True, slots=True)
class GateResult:
    """``code`` is ``None`` when the face passed; otherwise a stable code and a sentence."""

    face: Face | None
    code: str | None
    message: str | None

    @property
    def ok(self) -> bool:
        return self.code is None


def check_face(face: Face, limits: GateLimits) -> GateResult:
    """Check one face against ``limits`` (first failing check wins)."""
    q = face.quality
    checks = (
        (
            face.score < limits.min_detection_score,
            "low_confidence",
            f"face detector confidence {face.score:.2f} is below {limits.min_detection_score:.2f}",
        ),
        (
            q.face_px < limits.min_face_px,
            "too_small",
            f"face is {q.face_px:.0f} px, needs at least {limits.min_face_px:.0f} px "
            "(move closer or use a larger photo)",
        ),
        (
            q.in_frame < limits.min_in_frame,
            "cut_off",
            f"face is cut off by the image edge ({q.in_frame:.0%} of the face is in the "
            f"picture, needs {limits.min_in_frame:.0%})",
        ),
        (
            q.sharpness < limits.min_sharpness,
            "blurry",
            f"face is blurry (sharpness {q.sharpness:.0f} < {limits.min_sharpness:.0f})",
        ),
        (
            abs(q.yaw_deg) > limits.max_yaw_deg,
            "pose",
            f"head turned sideways ({q.yaw_deg:+.0f}°, at most ±{limits.max_yaw_deg:.0f}°)",
        ),
        (
            abs(q.pitch_deg) > limits.max_pitch_deg,
            "pose",
            f"head tilted up/down ({q.pitch_deg:+.0f}°, at most ±{limits.max_pitch_deg:.0f}°)",
        ),
        (
            abs(q.roll_deg) > limits.max_roll_deg,
            "pose",
            f"head tilted sideways ({q.roll_deg:+.0f}°, at most ±{limits.max_roll_deg:.0f}°)",
        ),
        (
            q.brightness < limits.min_brightness,
            "too_dark",
            f"face too dark (brightness {q.brightness:.0f} < {limits.min_brightness:.0f})",
        ),
        (
            q.brightness > limits.max_brightness,
            "too_bright",
            f"face overexposed (brightness {q.brightness:.0f} > {limits.max_brightness:.0f})",
        ),
    )
    for failed, code, message in checks:
        if failed:
            return GateResult(face, code, message)
    return GateResult(face, None, None)


def select_enrollment_face(faces: Sequence[Face], limits: GateLimits) -> GateResult:
    """The one dominant face of an enrollment image, or why the image is refused.

    ``faces`` must be sorted largest first (as :meth:`FacePipeline.analyze` returns them).
    """
    if not faces:
        return GateResult(None, "no_face", "no face found")
    main = faces[0]
    if len(faces) > 1:
        ratio = faces[1].box.area_px2 / max(main.box.area_px2, 1e-6)
        if ratio >= limits.max_other_face_ratio:
            return GateResult(
                None,
                "several_faces",
                f"{len(faces)} faces of similar size; use a photo with only the person to enroll",
            )
    result = check_face(main, limits)
    if result.ok and main.embedding is None:
        return GateResult(main, "no_embedding", "face could not be embedded")
    return result


CONSISTENCY_SLACK = 0.15
"""An enrollment photo must reach ``threshold - CONSISTENCY_SLACK`` similarity with at least
one other photo of the batch (for mobilefacenet: 0.50, which 99 % of genuine ORL/johns pairs
exceed and only 0.1 % of impostor pairs reach)."""


def inconsistent_images(embeddings: FloatArray, min_similarity: float) -> list[tuple[int, float]]:
    """Indices (and best similarity) of photos that resemble none of the other photos.

    Guards against a photo of someone else slipping into a person's templates, which would
    let that other person in. Needs at least two photos; with exactly two that disagree both
    are returned, since there is no telling which one is wrong.
    """
    n = int(embeddings.shape[0])
    if n < 2:
        return []
    sims = embeddings @ embeddings.T
    np.fill_diagonal(sims, -np.inf)
    best = sims.max(axis=1)
    return [(i, float(best[i])) for i in range(n) if best[i] < min_similarity]
