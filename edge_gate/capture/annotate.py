"""Draw detected faces, landmarks and quality figures on a frame (camera snapshot, demo).

The drawing works on a copy; the caller's frame is never modified.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from edge_gate.vision.types import Face

Image = NDArray[np.uint8]

# BGR colours for left eye, right eye, nose, mouth left, mouth right
_LANDMARK_BGR = ((255, 128, 0), (0, 128, 255), (0, 255, 255), (255, 0, 255), (128, 0, 255))
_GOOD_BGR = (0, 200, 0)
_WEAK_BGR = (0, 140, 255)
_TEXT_BGR = (255, 255, 255)


def face_label(face: Face) -> list[str]:
    """The lines printed next to a face box."""
    q = face.quality
    return [
        f"score {face.score:.2f}  {q.face_px:.0f}px",
        f"eyes {q.inter_eye_px:.0f}px  sharp {q.sharpness:.0f}",
        f"yaw {q.yaw_deg:+.0f} pitch {q.pitch_deg:+.0f} roll {q.roll_deg:+.0f}",
        f"bright {q.brightness:.0f} contrast {q.contrast:.0f}",
    ]


def _put_lines(canvas: Image, lines: list[str], x: int, y: int, scale: float) -> None:
    line_h = max(10, int(22 * scale))
    for i, text in enumerate(lines):
        org = (x, y + i * line_h)
        cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (0, 0, 0), 3)
        cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, _TEXT_BGR, 1)


def _label_origin(
    p1: tuple[int, int], p2: tuple[int, int], size: tuple[int, int], n_lines: int, scale: float
) -> tuple[int, int]:
    """Where the label goes: below the box, else above, else right of it, else bottom left."""
    w, h = size
    line_h = max(10, int(22 * scale))
    block_h = n_lines * line_h
    if p2[1] + block_h + 4 < h:
        return max(2, p1[0]), p2[1] + line_h
    if p1[1] - block_h - 4 > 0:
        return max(2, p1[0]), p1[1] - block_h + line_h // 2
    if p2[0] + int(230 * scale) < w:
        return p2[0] + 6, max(line_h, p1[1] + line_h)
    return 2, h - block_h + line_h // 2


def annotate(
    image_bgr: Image,
    faces: Sequence[Face],
    *,
    min_face_px: float = 40.0,
    banner: str | None = None,
) -> Image:
    """A copy of ``image_bgr`` with each face's box, five landmarks and quality figures.

    Boxes are green when the face is at least ``min_face_px`` (the detector's configured
    minimum, a proxy for "usable"), orange otherwise. ``banner`` is written at the top left.
    """
    canvas = np.ascontiguousarray(image_bgr.copy())
    h, w = canvas.shape[:2]
    scale = max(0.6, min(w, h) / 480.0)
    thickness = max(1, round(2 * scale))
    for face in faces:
        b = face.box
        colour = _GOOD_BGR if face.quality.face_px >= min_face_px else _WEAK_BGR
        p1 = (round(b.x1), round(b.y1))
        p2 = (round(b.x2), round(b.y2))
        cv2.rectangle(canvas, p1, p2, colour, thickness)
        for (x, y), c in zip(face.landmarks, _LANDMARK_BGR, strict=True):
            cv2.circle(canvas, (round(float(x)), round(float(y))), thickness + 1, c, -1)
        lines = face_label(face)
        _put_lines(canvas, lines, *_label_origin(p1, p2, (w, h), len(lines), scale), scale)
    header = [banner] if banner else []
    header.append(f"{len(faces)} face(s)" if faces else "no face found")
    _put_lines(canvas, header, 6, int(20 * scale), scale)
    return canvas
