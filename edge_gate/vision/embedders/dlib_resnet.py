"""dlib's face descriptor ResNet (dlib_face_recognition_resnet_model_v1, 128-D, CC0) on TFLite.

Input: dlib's 150x150 face chip. dlib cuts it with its own 5-point shape predictor (eye corners and
the base of the nose) and ``get_face_chip(padding=0.25)``; the gateway has MTCNN's five points
(eye centres, nose tip, mouth corners) instead, so the chip is a similarity warp of those onto
:data:`DLIB_CHIP_TEMPLATE_150`: the mean MTCNN landmarks of dlib's own chips (the 55 ``johns``
chips of dlib's examples, measured with this project's MTCNN; ``tests/test_dlib_resnet.py`` checks
the constant against the cache). Scaling is RGB minus the per-channel means stored in the .dat,
divided by 256, as dlib's ``input_rgb_image_sized``. What the alignment difference costs is
measured against dlib's own pipeline in the README (Recognition).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from edge_gate.vision import align, imgops
from edge_gate.vision.embedders.base import F32, U8
from edge_gate.vision.types import Detection

CHIP_PX = 150
DLIB_CHIP_TEMPLATE_150 = np.array(
    [[45.82, 43.97], [101.15, 44.98], [73.44, 76.70], [48.03, 100.88], [98.30, 101.43]],
    dtype=np.float64,
)
"""MTCNN's (left eye, right eye, nose, left mouth, right mouth) in dlib's 150x150 chip."""
MEAN_RGB = np.array([122.782, 117.001, 104.298], dtype=np.float32)
"""``avg_red``, ``avg_green``, ``avg_blue`` of the model file's input layer."""
_MAX_DOWNSCALE = 0.5
"""Below this warp scale the frame is area-resized first (dlib blurs before it samples a chip
from a much larger face; a bilinear warp alone would alias)."""


class DlibResNetFamily:
    family = "dlib-resnet"
    arcface_aligned = False

    def crop(self, image_bgr: U8, detection: Detection, size_px: int, margin_px: int) -> U8:
        template = DLIB_CHIP_TEMPLATE_150 * (size_px / CHIP_PX)
        matrix = align.umeyama(detection.landmarks.astype(np.float64), template)
        scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
        if scale < _MAX_DOWNSCALE:
            factor = scale / _MAX_DOWNSCALE
            h, w = image_bgr.shape[:2]
            small = cv2.resize(
                image_bgr,
                (max(1, round(w * factor)), max(1, round(h * factor))),
                interpolation=cv2.INTER_AREA,
            )
            fx, fy = small.shape[1] / w, small.shape[0] / h
            matrix = matrix.copy()
            matrix[:, 0] /= fx
            matrix[:, 1] /= fy
            image_bgr = np.asarray(small, dtype=np.uint8)
        return imgops.warp_affine(image_bgr, matrix, size_px)

    def normalise(self, crops_bgr: Sequence[U8]) -> F32:
        batch = np.stack([imgops.bgr_to_rgb(c) for c in crops_bgr]).astype(np.float32)
        out: F32 = np.ascontiguousarray((batch - MEAN_RGB) / 256.0, dtype=np.float32)
        return out


FAMILY = DlibResNetFamily()
