"""cv2 pixel operations the pure core delegates (adapter): resize, warp, colour conversion."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
F64 = npt.NDArray[np.float64]


def resize_area(image: U8, size_wh: tuple[int, int]) -> U8:
    """Resize to ``(width, height)``, anti-aliased when shrinking.

    OpenCV's INTER_AREA is ~10 ms per 640x480 frame at non-integer ratios (the MTCNN pyramid),
    but fast at integer ratios. So: integer-ratio area reduction first (exact box filter), then
    bilinear for the remaining factor below 2 — ~15x faster, detections unchanged on ORL/johns.
    """
    w, h = size_wh
    src_h, src_w = image.shape[:2]
    if w > src_w or h > src_h:
        return np.asarray(cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR), dtype=np.uint8)
    k = int(min(src_w / w, src_h / h))
    if k >= 2:
        cw, ch = (src_w // k) * k, (src_h // k) * k
        reduced = cv2.resize(image[:ch, :cw], (cw // k, ch // k), interpolation=cv2.INTER_AREA)
        image = np.asarray(reduced, dtype=np.uint8)
    if image.shape[1] == w and image.shape[0] == h:
        return np.asarray(image, dtype=np.uint8)
    return np.asarray(cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR), dtype=np.uint8)


def warp_affine(image: U8, matrix: F64, size_px: int) -> U8:
    """Warp with a 2x3 matrix into a ``size_px`` square (bilinear, black border)."""
    out = cv2.warpAffine(
        image,
        matrix,
        (size_px, size_px),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return np.asarray(out, dtype=np.uint8)


def crop_resize(image: U8, box_xyxy: tuple[int, int, int, int], size_px: int) -> U8:
    """Crop integer ``x1, y1, x2, y2`` (exclusive end) and resize to a ``size_px`` square."""
    x1, y1, x2, y2 = box_xyxy
    return resize_area(np.ascontiguousarray(image[y1:y2, x1:x2]), (size_px, size_px))


def bgr_to_rgb(image: U8) -> U8:
    return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def grey_to_bgr(image: U8) -> U8:
    return np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
