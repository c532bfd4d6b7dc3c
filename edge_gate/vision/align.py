"""Face alignment geometry — pure core, numpy only.

Two ways to cut a face for an embedder:

* :func:`similarity_to_template`: 5-point similarity transform (Umeyama 1991, no reflection)
  onto the ArcFace 112x112 template (scaled for other sizes) — what MobileFaceNet expects;
* :func:`margin_crop_box`: the FaceNet (davidsandberg) crop — detection box grown by a margin,
  clipped to the frame, later resized to 160x160.

This module only computes the geometry; the warp/resize itself runs in the image adapter.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edge_gate.vision.types import Box

__layer__ = "core"

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

ARCFACE_TEMPLATE_112: F64 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)
"""Landmark positions (left eye, right eye, nose, mouth left, mouth right) in a 112x112 crop."""


def umeyama(src: F64, dst: F64) -> F64:
    """Least-squares similarity (rotation, uniform scale, translation) mapping ``src`` → ``dst``.

    Returns the 2x3 affine matrix. Reflections are excluded (Umeyama's sign correction).
    """
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2:
        raise ValueError("src and dst must both be (N, 2)")
    n = src.shape[0]
    src_mean = src.mean(axis=0)
    dst_mean = dst.mean(axis=0)
    src_c = src - src_mean
    dst_c = dst - dst_mean
    cov = dst_c.T @ src_c / n
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(cov) < 0:
        d[1] = -1.0
    rot = u @ np.diag(d) @ vt
    var_src = float((src_c**2).sum() / n)
    scale = float((s * d).sum() / var_src) if var_src > 0 else 1.0
    out = np.zeros((2, 3), dtype=np.float64)
    out[:, :2] = scale * rot
    out[:, 2] = dst_mean - scale * rot @ src_mean
    return out


def template_for(size_px: int) -> F64:
    """The ArcFace template scaled to a ``size_px`` square crop."""
    return ARCFACE_TEMPLATE_112 * (size_px / 112.0)


def similarity_to_template(landmarks: F32, size_px: int = 112) -> F64:
    """2x3 matrix taking frame coordinates to an aligned ``size_px`` crop."""
    return umeyama(landmarks.astype(np.float64), template_for(size_px))


def apply_affine(matrix: F64, points: npt.NDArray[np.floating]) -> F64:
    """Map (N, 2) points through a 2x3 affine matrix."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def margin_crop_box(
    box: Box, margin_px: float, width: int, height: int
) -> tuple[int, int, int, int]:
    """FaceNet crop: ``box`` grown by ``margin_px / 2`` on each side, clipped to the frame.

    Returns integer ``x1, y1, x2, y2`` (x2/y2 exclusive) with at least one pixel each way.
    """
    half = margin_px / 2.0
    x1 = int(max(np.floor(box.x1 - half), 0))
    y1 = int(max(np.floor(box.y1 - half), 0))
    x2 = int(min(np.ceil(box.x2 + half), width))
    y2 = int(min(np.ceil(box.y2 + half), height))
    x2 = max(x2, min(x1 + 1, width))
    y2 = max(y2, min(y1 + 1, height))
    return x1, y1, x2, y2
