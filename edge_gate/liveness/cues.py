"""Per-frame liveness cues from images (adapter: cv2).

Points are tracked on the face with pyramidal Lucas-Kanade flow (forward-backward checked). A
flat print or screen moved rigidly moves its points by one homography; a real head's points
do not fit one (3-D shape, blinks, speech), so the residual after the best homography is
evidence of life. Long straight edges around the face are evidence of a sheet or a screen.
Work happens in a region around the face rescaled so the face is ``WORK_FACE_PX`` wide, which
bounds the cost per frame whatever the camera resolution.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from edge_gate.liveness.types import FrameEvidence
from edge_gate.vision.types import Detection

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]

WORK_FACE_PX = 80.0
ROI_SCALE = 2.0  # region around the face whose points are tracked, in face sizes
BORDER_FACE_PX = 40.0
BORDER_ROI_SCALE = 5.0  # region around the face searched for paper or screen borders
MAX_POINTS = 48
MIN_POINTS = 10
BASELINE_FRAMES = 6
FB_MAX_PX = 0.6
MAX_MOTION = 0.15  # face widths over the baseline; faster frames are not measured
LK_PARAMS = {
    "winSize": (15, 15),
    "maxLevel": 2,
    "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03),
}


@dataclass
class PointTracks:
    """Face points followed across frames (full-frame coordinates, NaN once lost)."""

    history: deque[F32] = field(default_factory=lambda: deque(maxlen=BASELINE_FRAMES + 1))
    prev_grey: U8 | None = None

    def valid_count(self) -> int:
        if not self.history:
            return 0
        return int(np.isfinite(self.history[-1][:, 0]).sum())


@dataclass(frozen=True, slots=True)
class Roi:
    """Crop rectangle in frame pixels and the scale from frame to work pixels."""

    x0: int
    y0: int
    x1: int
    y1: int
    scale: float

    def crop(self, grey: U8) -> U8:
        patch = grey[self.y0 : self.y1, self.x0 : self.x1]
        w = max(8, round((self.x1 - self.x0) * self.scale))
        h = max(8, round((self.y1 - self.y0) * self.scale))
        return np.asarray(cv2.resize(patch, (w, h), interpolation=cv2.INTER_AREA), dtype=np.uint8)

    def to_work(self, pts: F32) -> F32:
        return ((pts - np.array([self.x0, self.y0], np.float32)) * self.scale).astype(np.float32)

    def to_frame(self, pts: F32) -> F32:
        return (pts / self.scale + np.array([self.x0, self.y0], np.float32)).astype(np.float32)


def roi_for(
    det: Detection, shape: tuple[int, ...], scale: float = ROI_SCALE, face_px: float = WORK_FACE_PX
) -> Roi:
    h, w = shape[:2]
    b = det.box
    size = max(b.width_px, b.height_px, 1.0)
    cx, cy = (b.x1 + b.x2) / 2, (b.y1 + b.y2) / 2
    half = scale * size / 2
    x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
    x1, y1 = min(w, int(cx + half) + 1), min(h, int(cy + half) + 1)
    return Roi(x0, y0, max(x1, x0 + 2), max(y1, y0 + 2), face_px / max(b.width_px, 1.0))


def to_grey(frame_bgr: U8) -> U8:
    if frame_bgr.ndim == 2:
        return frame_bgr
    return np.asarray(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY), dtype=np.uint8)


def _seed_points(work: U8, roi: Roi, det: Detection) -> F32:
    """Corners inside the face box (shrunk a little so the background is not sampled)."""
    b = det.box
    mask = np.zeros(work.shape, np.uint8)
    inner = np.array(
        [[b.x1 + 0.12 * b.width_px, b.y1 + 0.08 * b.height_px], [b.x2 - 0.12 * b.width_px, b.y2 - 0.04 * b.height_px]],
        np.float32,
    )
    (ix0, iy0), (ix1, iy1) = roi.to_work(inner).astype(int)
    mask[max(0, iy0) : max(0, iy1), max(0, ix0) : max(0, ix1)] = 255
    pts = cv2.goodFeaturesToTrack(work, MAX_POINTS, 0.005, 4, mask=mask, blockSize=5)
    if pts is None:
        return np.empty((0, 2), np.float32)
    return roi.to_frame(pts.reshape(-1, 2).astype(np.float32))


def _track(prev: U8, cur: U8, pts_work: F32) -> F32:
    """Forward-backward checked LK flow; lost points come back as NaN."""
    p0 = pts_work.reshape(-1, 1, 2)
    p1, st1, _ = cv2.calcOpticalFlowPyrLK(prev, cur, p0, None, **LK_PARAMS)
    p0r, st2, _ = cv2.calcOpticalFlowPyrLK(cur, prev, p1, None, **LK_PARAMS)
    fb = np.linalg.norm((p0 - p0r).reshape(-1, 2), axis=1)
    ok = (st1.ravel() == 1) & (st2.ravel() == 1) & (fb < FB_MAX_PX)
    out = p1.reshape(-1, 2).astype(np.float32)
    out[~ok] = np.nan
    return out


def _nonrigid(src: F32, dst: F32, face_w: float) -> tuple[float, float] | None:
    """(motion, residual) in face widths between two point sets, or None if too few points."""
    ok = np.isfinite(src[:, 0]) & np.isfinite(dst[:, 0])
    if ok.sum() < MIN_POINTS:
        return None
    s, d = src[ok].astype(np.float64), dst[ok].astype(np.float64)
    motion = float(np.median(np.linalg.norm(d - s, axis=1))) / face_w
    h, _ = cv2.findHomography(s, d, cv2.RANSAC, 0.01 * face_w)
    if h is None:
        return None
    proj = cv2.perspectiveTransform(s.reshape(-1, 1, 2), h).reshape(-1, 2)
    residual = np.linalg.norm(proj - d, axis=1) / face_w
    return motion, float(np.quantile(residual, 0.8))


def border_sides(grey: U8, det: Detection) -> int:
    """Sides of the face with a long straight edge beyond the face box, roughly parallel to it."""
    roi = roi_for(det, grey.shape, BORDER_ROI_SCALE, BORDER_FACE_PX)
    work = roi.crop(grey)
    edges = cv2.Canny(work, 40, 120)
    face_w = BORDER_FACE_PX
    lines = cv2.HoughLinesP(edges, 1, np.pi / 90, 15, minLineLength=0.7 * face_w, maxLineGap=2)
    if lines is None:
        return 0
    b = det.box
    (fx0, fy0), (fx1, fy1) = roi.to_work(np.array([[b.x1, b.y1], [b.x2, b.y2]], np.float32))
    cx, cy = (fx0 + fx1) / 2, (fy0 + fy1) / 2
    sides: set[str] = set()
    for x1, y1, x2, y2 in lines.reshape(-1, 4).astype(np.float64):
        angle = abs(np.degrees(np.arctan2(y2 - y1, x2 - x1))) % 180
        mx, my = (x1 + x2) / 2, (y1 + y2) / 2
        if angle < 25 or angle > 155:  # horizontal: top or bottom edge, spanning the face column
            if min(x1, x2) < cx < max(x1, x2):
                if my < fy0 - 0.05 * face_w:
                    sides.add("top")
                elif my > fy1 + 0.05 * face_w:
                    sides.add("bottom")
        elif 65 < angle < 115 and min(y1, y2) < cy < max(y1, y2):
            if mx < fx0 - 0.05 * face_w:
                sides.add("left")
            elif mx > fx1 + 0.05 * face_w:
                sides.add("right")
    return len(sides)


def frame_evidence(state: PointTracks, frame_bgr: U8, det: Detection, now_s: float) -> FrameEvidence:
    """Update ``state`` with this frame and measure the cues against the track's earlier frames."""
    grey = to_grey(frame_bgr)
    roi = roi_for(det, grey.shape)
    work = roi.crop(grey)
    sides = border_sides(grey, det)
    measured = False
    motion = nonrigid = 0.0
    if state.prev_grey is not None and state.history:
        prev_work = roi.crop(state.prev_grey)
        last = state.history[-1]
        cur = np.full_like(last, np.nan)
        alive = np.isfinite(last[:, 0])
        if alive.any():
            tracked = _track(prev_work, work, roi.to_work(last[alive]))
            cur[alive] = np.where(np.isfinite(tracked), roi.to_frame(np.nan_to_num(tracked)), np.nan)
        state.history.append(cur)
        result = _nonrigid(state.history[0], cur, max(det.box.width_px, 1.0))
        # fast motion blurs the face and breaks the flow: such frames are no evidence either way
        if result is not None and result[0] <= MAX_MOTION:
            motion, nonrigid = result
            measured = True
    if state.valid_count() < max(MIN_POINTS, MAX_POINTS // 3):
        state.history.clear()
        state.history.append(_seed_points(work, roi, det))
    state.prev_grey = grey
    return FrameEvidence(now_s, measured, motion, nonrigid, sides)
