"""Face quality measures — pure core, numpy only.

Used by enrolment (strict gates) and the door loop (looser gates): face size, sharpness,
pose from the five landmarks, brightness and contrast of the aligned crop.

Pose angles are geometric estimates from 2-D landmarks (a weak-perspective head model),
good for "frontal enough?" gates, not for measurement.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from edge_gate.vision.types import Box, Quality

__layer__ = "core"

F32 = npt.NDArray[np.float32]

NOSE_DEPTH_RATIO = 0.9
"""Nose-tip depth in front of the eye plane relative to half the inter-eye distance."""
FRONTAL_NOSE_FRACTION = 0.54
"""Nose height between eye line (0) and mouth line (1) of a level face, as MTCNN places it:
median over the 455 ORL + johns images (0.5425; the ArcFace template's 0.494 would read
every level face as 5-9 degrees nose-down)."""


def grey(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """BT.601 luma of a BGR image (or the image itself if already single-channel)."""
    if image.ndim == 2:
        return image.astype(np.float32)
    b, g, r = (image[..., i].astype(np.float32) for i in range(3))
    out: npt.NDArray[np.float32] = 0.114 * b + 0.587 * g + 0.299 * r
    return out


def laplacian_variance(grey_image: npt.NDArray[np.float32]) -> float:
    """Variance of the 4-neighbour Laplacian over the interior pixels (focus measure)."""
    g = grey_image.astype(np.float32)
    if g.shape[0] < 3 or g.shape[1] < 3:
        return 0.0
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]
    return float(lap.var())


def pose_from_landmarks(landmarks: F32) -> tuple[float, float, float]:
    """``(yaw_deg, pitch_deg, roll_deg)`` estimated from the five landmarks."""
    pts = landmarks.astype(np.float64)
    left_eye, right_eye, nose = pts[0], pts[1], pts[2]
    mouth = (pts[3] + pts[4]) / 2.0
    eye_vec = right_eye - left_eye
    roll = math.atan2(eye_vec[1], eye_vec[0])
    cos_r, sin_r = math.cos(-roll), math.sin(-roll)
    derot = np.array([[cos_r, -sin_r], [sin_r, cos_r]])
    mid = (left_eye + right_eye) / 2.0
    nose_r = derot @ (nose - mid)
    mouth_r = derot @ (mouth - mid)
    half_eye = max(float(np.linalg.norm(eye_vec)) / 2.0, 1e-6)
    yaw = math.atan2(nose_r[0] / half_eye, NOSE_DEPTH_RATIO)
    span = mouth_r[1] if abs(mouth_r[1]) > 1e-6 else 1e-6
    frac = nose_r[1] / span - FRONTAL_NOSE_FRACTION
    pitch = math.asin(max(-1.0, min(1.0, 2.0 * frac)))
    return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)


def measure(box: Box, landmarks: F32, aligned_bgr: npt.NDArray[np.uint8]) -> Quality:
    """All quality measures of one face; ``aligned_bgr`` is its aligned crop (any size)."""
    g = grey(aligned_bgr)
    yaw, pitch, roll = pose_from_landmarks(landmarks)
    return Quality(
        face_px=float(min(box.width_px, box.height_px)),
        inter_eye_px=float(np.linalg.norm(landmarks[1] - landmarks[0])),
        sharpness=laplacian_variance(g),
        yaw_deg=yaw,
        pitch_deg=pitch,
        roll_deg=roll,
        brightness=float(g.mean()),
        contrast=float(g.std()),
    )
