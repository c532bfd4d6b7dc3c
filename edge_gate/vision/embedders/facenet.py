"""FaceNet (davidsandberg 20180408-102900): MTCNN box + margin, 160x160, RGB (x-127.5)/128."""

from __future__ import annotations

from collections.abc import Sequence

from edge_gate.vision import align, imgops
from edge_gate.vision.embedders.base import F32, U8, rgb_centred
from edge_gate.vision.types import Detection


class FaceNetFamily:
    family = "facenet"
    arcface_aligned = False

    def crop(self, image_bgr: U8, detection: Detection, size_px: int, margin_px: int) -> U8:
        h, w = image_bgr.shape[:2]
        box = align.margin_crop_box(detection.box, margin_px, w, h)
        return imgops.crop_resize(image_bgr, box, size_px)

    def normalise(self, crops_bgr: Sequence[U8]) -> F32:
        return rgb_centred(crops_bgr)


FAMILY = FaceNetFamily()
