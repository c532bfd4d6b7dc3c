"""Value types of the vision pipeline (pure core: numpy + stdlib only).

Coordinates are image pixels of the frame the caller passed in (x right, y down).
Landmarks are a float32 array of shape (5, 2) in the order ``LANDMARK_NAMES``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__layer__ = "core"

FloatArray = npt.NDArray[np.float32]

LANDMARK_NAMES: tuple[str, ...] = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
"""Order of the five landmarks; "left" is the image-left side (the subject's right)."""


@dataclass(frozen=True, slots=True)
class Box:
    """Axis-aligned box ``[x1, y1, x2, y2]`` in pixels (x2/y2 exclusive-ish, MTCNN style)."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width_px(self) -> float:
        return self.x2 - self.x1

    @property
    def height_px(self) -> float:
        return self.y2 - self.y1

    @property
    def area_px2(self) -> float:
        return max(0.0, self.width_px) * max(0.0, self.height_px)

    def as_list(self) -> list[float]:
        return [self.x1, self.y1, self.x2, self.y2]


@dataclass(frozen=True, slots=True)
class Detection:
    """One face found by the detector: box, confidence in [0, 1] and five landmarks."""

    box: Box
    score: float
    landmarks: FloatArray = field(repr=False)

    def __post_init__(self) -> None:
        if self.landmarks.shape != (5, 2):
            raise ValueError(f"landmarks must have shape (5, 2), got {self.landmarks.shape}")


@dataclass(frozen=True, slots=True)
class Quality:
    """Image-quality measures of one face (see :mod:`edge_gate.vision.quality`)."""

    face_px: float
    """Shorter side of the detection box in pixels."""
    inter_eye_px: float
    """Distance between the two eye landmarks in pixels."""
    sharpness: float
    """Variance of the Laplacian of the grey aligned crop, frame pixels only (higher is sharper)."""
    yaw_deg: float
    """Left/right head turn from landmarks (0 = frontal, + = nose towards image-right)."""
    pitch_deg: float
    """Up/down head tilt estimated from landmarks (0 = neutral, + = nose towards the mouth line)."""
    roll_deg: float
    """In-plane rotation of the eye line (+ = clockwise in the image)."""
    brightness: float
    """Mean grey level of the aligned crop (frame pixels only, no padding), 0..255."""
    contrast: float
    """Standard deviation of the grey level of the aligned crop (frame pixels only)."""
    in_frame: float = 1.0
    """Fraction of the face part of the aligned crop (brows to chin) inside the frame, 0..1; 0
    when a landmark lies outside the frame. Whole photos, even ORL's head-only crops: 0.89 at
    least; 10 % of the face box cut off by the image edge: 0.87-1.0; a quarter: 0.70-0.87."""

    def as_dict(self) -> dict[str, float]:
        return {
            "face_px": round(self.face_px, 1),
            "inter_eye_px": round(self.inter_eye_px, 1),
            "sharpness": round(self.sharpness, 1),
            "yaw_deg": round(self.yaw_deg, 1),
            "pitch_deg": round(self.pitch_deg, 1),
            "roll_deg": round(self.roll_deg, 1),
            "brightness": round(self.brightness, 1),
            "contrast": round(self.contrast, 1),
            "in_frame": round(self.in_frame, 3),
        }


@dataclass(frozen=True, slots=True)
class Face:
    """A detection with its quality and (optionally) its L2-normalised embedding."""

    box: Box
    score: float
    landmarks: FloatArray = field(repr=False)
    quality: Quality
    embedding: FloatArray | None = field(default=None, repr=False)

    @property
    def detection(self) -> Detection:
        return Detection(box=self.box, score=self.score, landmarks=self.landmarks)

    def as_json(self, *, include_embedding: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "box": [round(v, 1) for v in self.box.as_list()],
            "score": round(self.score, 4),
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks],
            "quality": self.quality.as_dict(),
        }
        if include_embedding and self.embedding is not None:
            out["embedding"] = [round(float(v), 6) for v in self.embedding]
        return out
