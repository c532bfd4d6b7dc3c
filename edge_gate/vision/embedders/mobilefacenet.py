"""MobileFaceNet: 5-point similarity warp onto the ArcFace 112x112 template, RGB (x-127.5)/128."""

from __future__ import annotations

from collections.abc import Sequence

from edge_gate.vision import align, imgops
from edge_gate.vision.embedders.base import F32, U8, rgb_centred
from edge_gate.vision.types import Detection


class MobileFaceNetFamily:
    family = "mobilefacenet"
    arcface_aligned = True

    def crop(self, image_bgr: U8, detection: Detection, size_px: int, margin_px: int) -> U8:
        matrix = align.similarity_to_template(detection.landmarks, size_px)
        return imgops.warp_affine(image_bgr, matrix, size_px)

    def normalise(self, crops_bgr: Sequence[U8]) -> F32:
        return rgb_centred(crops_bgr)


FAMILY = MobileFaceNetFamily()
