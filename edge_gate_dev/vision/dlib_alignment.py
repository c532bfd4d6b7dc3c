"""What the chip alignment costs: dlib's own pipeline against this project's MTCNN chip.

dlib cuts its 150x150 chip from its own detector and 5-point shape predictor (eye corners, base of
the nose); the gateway has MTCNN's five points (eye centres, nose tip, mouth corners) and warps
them onto :data:`~edge_gate.vision.embedders.dlib_resnet.DLIB_CHIP_TEMPLATE_150`. Both chips go
through the same descriptor; their cosine says how far apart the two alignments put one face.
Needs ``dlib`` (PyPI dlib-bin, development only) and the shape predictor in the test-data cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_gate.vision.embedders.base import Embedder
from edge_gate.vision.types import Detection

U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class AlignmentPair:
    source: str
    cosine: float  # descriptor of dlib's chip vs descriptor of the MTCNN chip


def _centre_distance(det: Detection, rect: Any) -> float:
    x1, y1, x2, y2 = det.box.x1, det.box.y1, det.box.x2, det.box.y2
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    rc = rect.center()
    return float(np.hypot(cx - rc.x, cy - rc.y) / max(1.0, float(rect.width())))


def compare(
    images: list[tuple[str, U8]],
    detect: Any,
    embedder: Embedder,
    predictor_path: Path,
) -> list[AlignmentPair]:
    """For every face both detectors find (centres within 30 % of the face width)."""
    import dlib  # type: ignore[import-untyped,import-not-found,unused-ignore]

    hog = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(predictor_path))
    out: list[AlignmentPair] = []
    for source, bgr in images:
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        ours = detect(bgr)
        for rect in hog(rgb, 1):
            if not ours:
                break
            best = min(ours, key=lambda d: _centre_distance(d, rect))
            if _centre_distance(best, rect) > 0.3:
                continue
            shape = predictor(rgb, rect)
            dlib_chip_rgb = np.asarray(dlib.get_face_chip(rgb, shape, size=150, padding=0.25))
            dlib_chip = np.ascontiguousarray(dlib_chip_rgb[:, :, ::-1])
            our_chip = embedder.crop(bgr, best)
            a, b = embedder.embed_crops([dlib_chip, our_chip])
            out.append(AlignmentPair(source, float(np.dot(a, b))))
    return out
