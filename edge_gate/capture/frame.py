"""The unit the capture layer hands to the pipeline, and the downscale rule."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__layer__ = "core"


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded picture.

    ``image`` is BGR ``uint8`` (H x W x 3) already downscaled to the processing size;
    ``t_mono_s`` is ``time.monotonic()`` right after decode (never wall-clock, so NTP steps do
    not reorder frames); ``seq`` increases by one per delivered frame across reconnects.
    """

    image: NDArray[np.uint8]
    t_mono_s: float
    seq: int

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


def fit_within(width: int, height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """Largest size with the same aspect ratio that fits ``max_width`` x ``max_height``.

    Never upscales: a picture already small enough keeps its size.
    """
    if width <= 0 or height <= 0:
        raise ValueError("fit_within: empty picture")
    scale = min(max_width / width, max_height / height, 1.0)
    if scale >= 1.0:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))
