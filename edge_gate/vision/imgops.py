"""cv2 pixel operations the pure core delegates (adapter): resize, warp, colour conversion."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
F64 = npt.NDArray[np.float64]


def resize_area(image: U8, size_wh: tuple[int, int]) -> U8:
    """Resize to ``(width, height)``; area interpolation when shrinking, linear when growing."""
    w, h = size_wh
    shrink = w <= image.shape[1] and h <= image.shape[0]
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(image, (w, h), interpolation=interp), dtype=np.uint8)


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
