"""The MTCNN cascade (Zhang et al. 2016) over three net callables — pure core, numpy only.

Follows davidsandberg/facenet ``align/detect_face.py`` and facenet-pytorch: the maths does not
care which runtime runs the nets. Callers pass

* ``pnet(batch) -> (prob, reg)``: ``batch`` (1, H, W, 3) float32 normalised RGB;
  ``prob`` (H', W') face probability, ``reg`` (H', W', 4) box offsets (dx1, dy1, dx2, dy2);
* ``rnet(batch) -> (prob, reg)``: ``batch`` (N, 24, 24, 3); ``prob`` (N,), ``reg`` (N, 4);
* ``onet(batch) -> (prob, reg, points)``: ``batch`` (N, 48, 48, 3); ``points`` (N, 10) as
  x1..x5, y1..y5 relative to the box;
* ``resize(image, (width, height)) -> image`` (area interpolation; cv2 lives in the adapter).

All nets see plain NHWC images in the orientation of the frame. Nets exported in the transposed
Caffe-era layout are wrapped by the runtime adapter, which does the transposes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge_gate.vision.types import Box, Detection

__layer__ = "core"

F32 = npt.NDArray[np.float32]
PNetFn = Callable[[F32], tuple[F32, F32]]
RNetFn = Callable[[F32], tuple[F32, F32]]
ONetFn = Callable[[F32], tuple[F32, F32, F32]]
ResizeFn = Callable[[npt.NDArray[np.uint8], tuple[int, int]], npt.NDArray[np.uint8]]

PNET_STRIDE = 2
PNET_CELL_PX = 12


@dataclass(frozen=True, slots=True)
class CascadeParams:
    """Tuning of the cascade; defaults are the paper's."""

    min_face_px: int = 40
    factor: float = 0.709
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    max_pnet_candidates: int = 2000
    """Cap on boxes passed to R-Net (highest P-Net scores kept) so a busy frame stays bounded."""
    max_onet_candidates: int = 200


def normalise(image_rgb: npt.NDArray[np.uint8]) -> F32:
    """uint8 RGB → float32 in about [-1, 1] as the MTCNN weights expect."""
    return ((image_rgb.astype(np.float32) - 127.5) * 0.0078125).astype(np.float32)


def pyramid_scales(height: int, width: int, min_face_px: int, factor: float) -> list[float]:
    """Scales at which a 12 px P-Net cell covers faces from ``min_face_px`` up to the frame."""
    if min_face_px < PNET_CELL_PX:
        raise ValueError(f"min_face_px must be >= {PNET_CELL_PX}")
    m = PNET_CELL_PX / min_face_px
    min_side = min(height, width) * m
    scales: list[float] = []
    count = 0
    while min_side >= PNET_CELL_PX:
        scales.append(m * factor**count)
        min_side *= factor
        count += 1
    return scales


def nms(boxes: F32, threshold: float, method: str = "union") -> npt.NDArray[np.intp]:
    """Greedy non-maximum suppression over rows x1, y1, x2, y2, score; returns kept rows."""
    if boxes.shape[0] == 0:
        return np.empty(0, dtype=np.intp)
    x1, y1, x2, y2, s = (boxes[:, i] for i in range(5))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(s, kind="stable")
    keep: list[int] = []
    while order.size > 0:
        i = int(order[-1])
        keep.append(i)
        rest = order[:-1]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        if method == "min":
            overlap = inter / np.minimum(area[i], area[rest])
        else:
            overlap = inter / (area[i] + area[rest] - inter)
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.intp)


def pnet_boxes(prob: F32, reg: F32, scale: float, threshold: float) -> F32:
    """Candidate boxes of one pyramid level: rows x1, y1, x2, y2, score, dx1, dy1, dx2, dy2."""
    rows, cols = np.nonzero(prob >= threshold)
    if rows.size == 0:
        return np.empty((0, 9), dtype=np.float32)
    score = prob[rows, cols]
    offsets = reg[rows, cols, :]
    xy = np.stack([cols, rows], axis=1).astype(np.float32)
    q1 = np.fix((PNET_STRIDE * xy + 1) / scale)
    q2 = np.fix((PNET_STRIDE * xy + PNET_CELL_PX) / scale)
    return np.hstack([q1, q2, score[:, None], offsets]).astype(np.float32)


def bbreg(boxes: F32, reg: F32) -> F32:
    """Apply regression offsets (relative to box size) to rows x1, y1, x2, y2, ...; a copy."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out[:, 0] = boxes[:, 0] + reg[:, 0] * w
    out[:, 1] = boxes[:, 1] + reg[:, 1] * h
    out[:, 2] = boxes[:, 2] + reg[:, 2] * w
    out[:, 3] = boxes[:, 3] + reg[:, 3] * h
    return out


def rerec(boxes: F32) -> F32:
    """Make boxes square around their centre (side = longer side); returns a copy."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def crop_padded(image: npt.NDArray[np.uint8], box: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
    """Crop the inclusive integer box ``x1, y1, x2, y2``; parts outside the image are zero."""
    x1, y1, x2, y2 = (int(v) for v in box[:4])
    w, h = x2 - x1 + 1, y2 - y1 + 1
    out = np.zeros((max(h, 1), max(w, 1), image.shape[2]), dtype=image.dtype)
    img_h, img_w = image.shape[:2]
    sx1, sy1 = max(x1, 0), max(y1, 0)
    sx2, sy2 = min(x2 + 1, img_w), min(y2 + 1, img_h)
    if sx2 > sx1 and sy2 > sy1:
        out[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = image[sy1:sy2, sx1:sx2]
    return out


def _crops(
    image: npt.NDArray[np.uint8], boxes: F32, size_px: int, resize: ResizeFn
) -> tuple[F32, F32]:
    """Integer, in-frame-overlapping crops of ``boxes`` resized to ``size_px``; drops empty ones."""
    ints = np.fix(boxes[:, :4]).astype(np.int64)
    img_h, img_w = image.shape[:2]
    ok = (ints[:, 2] >= 0) & (ints[:, 3] >= 0) & (ints[:, 0] < img_w) & (ints[:, 1] < img_h)
    ok &= (ints[:, 2] > ints[:, 0]) & (ints[:, 3] > ints[:, 1])
    ints = ints[ok]
    kept = boxes[ok].copy()
    kept[:, :4] = ints
    batch = np.empty((ints.shape[0], size_px, size_px, 3), dtype=np.float32)
    for k, box in enumerate(ints):
        batch[k] = normalise(resize(crop_padded(image, box), (size_px, size_px)))
    return batch, kept


def _stage_pnet(
    image: npt.NDArray[np.uint8], pnet: PNetFn, resize: ResizeFn, params: CascadeParams
) -> F32:
    height, width = image.shape[:2]
    levels: list[F32] = []
    for scale in pyramid_scales(height, width, params.min_face_px, params.factor):
        hs, ws = math.ceil(height * scale), math.ceil(width * scale)
        level = normalise(resize(image, (ws, hs)))[None]
        prob, reg = pnet(level)
        cand = pnet_boxes(prob, reg, scale, params.thresholds[0])
        if cand.shape[0]:
            levels.append(cand[nms(cand, 0.5, "union")])
    if not levels:
        return np.empty((0, 5), dtype=np.float32)
    boxes = np.vstack(levels)
    boxes = boxes[nms(boxes, 0.7, "union")]
    if boxes.shape[0] > params.max_pnet_candidates:
        boxes = boxes[np.argsort(-boxes[:, 4], kind="stable")[: params.max_pnet_candidates]]
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    refined = np.stack(
        [
            boxes[:, 0] + boxes[:, 5] * w,
            boxes[:, 1] + boxes[:, 6] * h,
            boxes[:, 2] + boxes[:, 7] * w,
            boxes[:, 3] + boxes[:, 8] * h,
            boxes[:, 4],
        ],
        axis=1,
    ).astype(np.float32)
    return rerec(refined)


def _stage_rnet(
    image: npt.NDArray[np.uint8], boxes: F32, rnet: RNetFn, resize: ResizeFn, t: float
) -> F32:
    batch, boxes = _crops(image, boxes, 24, resize)
    if boxes.shape[0] == 0:
        return boxes
    prob, reg = rnet(batch)
    keep = prob > t
    boxes = boxes[keep].copy()
    boxes[:, 4] = prob[keep]
    reg = reg[keep]
    pick = nms(boxes, 0.7, "union")
    return rerec(bbreg(boxes[pick], reg[pick]))


def _stage_onet(
    image: npt.NDArray[np.uint8], boxes: F32, onet: ONetFn, resize: ResizeFn, t: float
) -> tuple[F32, F32]:
    batch, boxes = _crops(image, boxes, 48, resize)
    if boxes.shape[0] == 0:
        return boxes, np.empty((0, 5, 2), dtype=np.float32)
    prob, reg, points = onet(batch)
    keep = prob > t
    boxes = boxes[keep].copy()
    boxes[:, 4] = prob[keep]
    reg, points = reg[keep], points[keep]
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    xs = w[:, None] * points[:, 0:5] + boxes[:, 0:1] - 1
    ys = h[:, None] * points[:, 5:10] + boxes[:, 1:2] - 1
    marks = np.stack([xs, ys], axis=2).astype(np.float32)
    boxes = bbreg(boxes, reg)
    pick = nms(boxes, 0.7, "min")
    return boxes[pick], marks[pick]


def detect_faces(
    image_rgb: npt.NDArray[np.uint8],
    pnet: PNetFn,
    rnet: RNetFn,
    onet: ONetFn,
    resize: ResizeFn,
    params: CascadeParams | None = None,
) -> list[Detection]:
    """Run P-Net → R-Net → O-Net on an RGB uint8 frame; detections sorted largest box first."""
    params = params or CascadeParams()
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image_rgb.shape}")
    if min(image_rgb.shape[:2]) < PNET_CELL_PX:
        return []
    boxes = _stage_pnet(image_rgb, pnet, resize, params)
    if boxes.shape[0] == 0:
        return []
    boxes = _stage_rnet(image_rgb, boxes, rnet, resize, params.thresholds[1])
    if boxes.shape[0] == 0:
        return []
    if boxes.shape[0] > params.max_onet_candidates:
        boxes = boxes[np.argsort(-boxes[:, 4], kind="stable")[: params.max_onet_candidates]]
    boxes, marks = _stage_onet(image_rgb, boxes, onet, resize, params.thresholds[2])
    dets = [
        Detection(
            box=Box(float(b[0]), float(b[1]), float(b[2]), float(b[3])),
            score=float(b[4]),
            landmarks=np.ascontiguousarray(m, dtype=np.float32),
        )
        for b, m in zip(boxes, marks, strict=True)
    ]
    dets.sort(key=lambda d: d.box.area_px2, reverse=True)
    return dets
