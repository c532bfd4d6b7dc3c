"""Face quality measures — pure core, numpy only.

Used by enrolment (strict gates) and the door loop (looser gates): face size, sharpness,
pose from the five landmarks, brightness and contrast of the aligned crop.

Sharpness, brightness and contrast count only crop pixels that came from the frame. A face near
the frame edge warps to a crop with black padding; the step at the padding edge would dominate
the Laplacian variance (a Gaussian sigma=4 blurred face scored above the gate) and the black
would darken the brightness. :func:`frame_mask` finds those pixels from the alignment geometry.

Pose angles are geometric estimates from 2-D landmarks (a weak-perspective head model),
good for "frontal enough?" gates, not for measurement.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt

from edge_gate.vision.align import similarity_to_template
from edge_gate.vision.types import Box, Quality

__layer__ = "core"

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

NOSE_DEPTH_RATIO = 0.9
"""Nose-tip depth in front of the eye plane relative to half the inter-eye distance."""
FRONTAL_NOSE_FRACTION = 0.54
"""Nose height between eye line (0) and mouth line (1) of a level face, as MTCNN places it:
median over the 455 ORL + johns images (0.5425; the ArcFace template's 0.494 would read
every level face as 5-9 degrees nose-down)."""
FACE_REGION_112 = (30, 112, 20, 92)
"""Rows ``[top, bottom)`` and columns ``[left, right)`` of a 112-px aligned crop that hold the
face itself (brows to chin, cheek to cheek; the forehead above is left out); the rest of the
crop is context."""

EDGE_MARGIN_PX = 0.5
"""Frame pixels kept clear of the frame edge, so that no bilinear tap of a counted crop pixel
reaches the black border (OpenCV rounds warp coordinates to 1/32 px)."""


def grey(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """BT.601 luma of a BGR image (or the image itself if already single-channel)."""
    if image.ndim == 2:
        return image.astype(np.float32)
    b, g, r = (image[..., i].astype(np.float32) for i in range(3))
    out: npt.NDArray[np.float32] = 0.114 * b + 0.587 * g + 0.299 * r
    return out


def laplacian_variance(grey_image: npt.NDArray[np.float32], valid: Mask | None = None) -> float:
    """Variance of the 4-neighbour Laplacian over the interior pixels (focus measure).

    With ``valid``, only pixels whose whole 4-neighbourhood is valid count (the mask eroded by
    one pixel), so no edge of an invalid region enters the measure; 0 when none is left.
    """
    g = grey_image.astype(np.float32)
    if g.shape[0] < 3 or g.shape[1] < 3:
        return 0.0
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]
    if valid is None:
        return float(lap.var())
    inner = (
        valid[1:-1, 1:-1] & valid[:-2, 1:-1] & valid[2:, 1:-1] & valid[1:-1, :-2] & valid[1:-1, 2:]
    )
    return float(lap[inner].var()) if inner.any() else 0.0


@functools.lru_cache(maxsize=4)
def _pixel_grid(size_px: int) -> tuple[F64, F64]:
    cols, rows = np.meshgrid(
        np.arange(size_px, dtype=np.float64), np.arange(size_px, dtype=np.float64)
    )
    cols.setflags(write=False)
    rows.setflags(write=False)
    return cols, rows


def frame_mask(
    landmarks: F32, grey_crop: npt.NDArray[np.float32], frame_hw: tuple[int, int]
) -> Mask:
    """Pixels of an aligned crop whose bilinear source lies wholly inside the frame.

    The crop is taken to be ``similarity_to_template(landmarks, size)`` applied to the frame (as
    :meth:`FacePipeline.align` makes it); each crop pixel is mapped back to frame coordinates
    and kept when it lies inside ``frame_hw`` (height, width) with a margin. A non-square crop
    is not an aligned crop and is kept whole.
    """
    h, w = grey_crop.shape[:2]
    everything = np.ones((h, w), dtype=np.bool_)
    if h != w or h == 0:
        return everything
    matrix = similarity_to_template(landmarks, w)
    lin = matrix[:, :2]
    if abs(float(np.linalg.det(lin))) < 1e-12:
        return everything
    inv = np.linalg.inv(lin)
    fh, fw = frame_hw
    # the crop maps onto a parallelogram in the frame: when its corners are inside, all is
    corners = np.array([[0, 0], [w - 1, 0], [0, w - 1], [w - 1, w - 1]], np.float64)
    src = (corners - matrix[:, 2]) @ inv.T
    if (
        (src >= EDGE_MARGIN_PX).all()
        and (src[:, 0] <= fw - 1 - EDGE_MARGIN_PX).all()
        and (src[:, 1] <= fh - 1 - EDGE_MARGIN_PX).all()
    ):
        return everything
    cols, rows = _pixel_grid(w)
    du = cols - matrix[0, 2]
    dv = rows - matrix[1, 2]
    fx = inv[0, 0] * du + inv[0, 1] * dv
    fy = inv[1, 0] * du + inv[1, 1] * dv
    valid: Mask = (fx >= EDGE_MARGIN_PX) & (fy >= EDGE_MARGIN_PX)
    valid &= (fx <= fw - 1 - EDGE_MARGIN_PX) & (fy <= fh - 1 - EDGE_MARGIN_PX)
    return valid


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


def _face_fraction(mask: Mask) -> float:
    """Fraction of the :data:`FACE_REGION_112` part of a crop that comes from the frame."""
    size = mask.shape[0]
    top, bottom, left, right = (round(v * size / 112) for v in FACE_REGION_112)
    region = mask[top:bottom, left:right]
    return float(region.mean()) if region.size else 0.0


def measure(
    box: Box,
    landmarks: F32,
    aligned_bgr: npt.NDArray[np.uint8],
    frame_hw: tuple[int, int],
) -> Quality:
    """All quality measures of one face; ``aligned_bgr`` is its aligned crop (any size).

    Sharpness, brightness and contrast use only the pixels of :func:`frame_mask` (``frame_hw``
    is the source frame's ``(height, width)``); a crop with no such pixel measures 0.
    """
    g = grey(aligned_bgr)
    mask = frame_mask(landmarks, g, frame_hw)
    valid = None if mask.all() else mask  # the usual case: the whole crop is frame pixels
    inside = g if valid is None else g[valid]
    yaw, pitch, roll = pose_from_landmarks(landmarks)
    height, width = frame_hw
    landmarks_inside = bool(
        (landmarks[:, 0] >= 0).all()
        and (landmarks[:, 1] >= 0).all()
        and (landmarks[:, 0] < width).all()
        and (landmarks[:, 1] < height).all()
    )
    return Quality(
        face_px=float(min(box.width_px, box.height_px)),
        inter_eye_px=float(np.linalg.norm(landmarks[1] - landmarks[0])),
        sharpness=laplacian_variance(g, valid),
        yaw_deg=yaw,
        pitch_deg=pitch,
        roll_deg=roll,
        brightness=float(inside.mean()) if inside.size else 0.0,
        contrast=float(inside.std()) if inside.size else 0.0,
        in_frame=_face_fraction(mask) if landmarks_inside else 0.0,
    )
