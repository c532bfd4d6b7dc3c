"""Per-frame liveness cues from images (adapter: cv2).

Points are seeded on the face and, ``BASELINE_FRAMES`` frames later, found again with
pyramidal Lucas-Kanade flow (forward-backward checked). A flat print or screen moved rigidly
moves its points by one homography; a real head's points do not fit one (3-D shape, blinks,
speech), so the residual after the best homography — overall, and next to the eyes and mouth
compared with the rest of the face — is evidence of life. Work happens in a region around the
face rescaled so the face is ``WORK_FACE_PX`` wide, which bounds the cost per frame whatever
the camera resolution. A native-resolution patch of the face also gives a power spectrum for
the screen pixel-grid (moire) cue.
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

WORK_FACE_PX = 64.0
ROI_SCALE = 1.6  # region around the face that is cropped and tracked, in face sizes
MAX_POINTS = 40
MIN_POINTS = 10
BASELINE_FRAMES = 6
FB_MAX_PX = 0.6
MAX_MOTION = 0.15  # face widths over the baseline; faster frames are not measured
LOCAL_R = 0.15  # points this close (face widths) to an eye or mouth corner are "local"
SPECTRUM_PX = 64
LK_WIN = (15, 15)
LK_LEVELS = 2
LK_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)
_HANN = np.outer(np.hanning(SPECTRUM_PX), np.hanning(SPECTRUM_PX)).astype(np.float32)


@dataclass(frozen=True, slots=True)
class Keyframe:
    """A past frame of the track: its grey image, the face points seeded on it, its landmarks."""

    grey: U8
    points: F32
    landmarks: F32


@dataclass
class PointTracks:
    """The track's last frames; each new frame is compared with the one ``BASELINE_FRAMES`` ago.

    Comparing with a keyframe directly (not by chaining frame-to-frame flow) keeps tracking
    drift out of the residual, so a rigid sheet measures as rigid.
    """

    keyframes: deque[Keyframe] = field(default_factory=lambda: deque(maxlen=BASELINE_FRAMES))


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


def roi_for(det: Detection, shape: tuple[int, ...]) -> Roi:
    """The region around the face (clipped to the frame) and its scale to work pixels."""
    h, w = shape[:2]
    b = det.box
    size = max(b.width_px, b.height_px, 1.0)
    cx, cy = (b.x1 + b.x2) / 2, (b.y1 + b.y2) / 2
    half = ROI_SCALE * size / 2
    x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
    x1, y1 = min(w, int(cx + half) + 1), min(h, int(cy + half) + 1)
    return Roi(x0, y0, max(x1, x0 + 2), max(y1, y0 + 2), WORK_FACE_PX / max(b.width_px, 1.0))


def to_grey(frame_bgr: U8) -> U8:
    if frame_bgr.ndim == 2:
        return frame_bgr
    return np.asarray(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY), dtype=np.uint8)


def _seed_points(work: U8, roi: Roi, det: Detection) -> F32:
    """Corners inside the face box, shrunk so that no background is sampled (frame pixels)."""
    b = det.box
    w, h = b.width_px, b.height_px
    inner = np.array(
        [[b.x1 + 0.12 * w, b.y1 + 0.08 * h], [b.x2 - 0.12 * w, b.y2 - 0.04 * h]], np.float32
    )
    (x0, y0), (x1, y1) = roi.to_work(inner).astype(int)
    mask = np.zeros(work.shape, np.uint8)
    mask[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = 255
    pts = cv2.goodFeaturesToTrack(work, MAX_POINTS, 0.005, 4, mask=mask, blockSize=5)
    if pts is None:
        return np.empty((0, 2), np.float32)
    return roi.to_frame(pts.reshape(-1, 2).astype(np.float32))


def _track(prev: U8, cur: U8, pts_work: F32) -> F32:
    """Forward-backward checked LK flow; lost points come back as NaN."""
    if len(pts_work) == 0:
        return pts_work.copy()
    p0 = pts_work.reshape(-1, 1, 2)
    p1, st1, _ = cv2.calcOpticalFlowPyrLK(
        prev, cur, p0, np.empty_like(p0), winSize=LK_WIN, maxLevel=LK_LEVELS, criteria=LK_CRITERIA
    )
    p1 = np.asarray(p1, dtype=np.float32)
    p0r, st2, _ = cv2.calcOpticalFlowPyrLK(
        cur, prev, p1, np.empty_like(p1), winSize=LK_WIN, maxLevel=LK_LEVELS, criteria=LK_CRITERIA
    )
    fb = np.linalg.norm((p0 - np.asarray(p0r, np.float32)).reshape(-1, 2), axis=1)
    ok = (np.asarray(st1).ravel() == 1) & (np.asarray(st2).ravel() == 1) & (fb < FB_MAX_PX)
    out = np.array(p1.reshape(-1, 2), dtype=np.float32)
    out[~ok] = np.nan
    return out


def nonrigid_motion(
    src: F32, dst: F32, face_w: float, landmarks: F32
) -> tuple[float, float, float] | None:
    """(motion, residual, local excess) in face widths, or None if too few points.

    ``motion`` is the median displacement; ``residual`` the upper quantile of the residuals
    after the best homography; ``local excess`` how much larger the residual is next to the
    eyes and the mouth (blinks, speech) than on the rest of the face (where a print's residual
    is just as large).
    """
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
    parts = np.asarray(landmarks, np.float64)[[0, 1, 3, 4]]  # eyes and mouth corners
    dist = np.linalg.norm(s[:, None, :] - parts[None, :, :], axis=2).min(axis=1)
    near = dist < LOCAL_R * face_w
    excess = 0.0
    if near.sum() >= 3 and (~near).sum() >= 3:
        excess = float(np.median(residual[near]) - np.median(residual[~near]))
    return motion, float(np.quantile(residual, 0.8)), excess


def face_spectrum(grey: U8, det: Detection) -> F32 | None:
    """Power spectrum of a native-resolution patch centred on the face (None if it does not fit).

    Native resolution matters: a screen's pixel grid shows up as sharp peaks at high spatial
    frequencies that any downscaling would remove.
    """
    if det.box.width_px < SPECTRUM_PX:
        return None
    cx, cy = (float(v) for v in np.asarray(det.landmarks, np.float64).mean(axis=0))
    x0, y0 = round(cx - SPECTRUM_PX / 2), round(cy - SPECTRUM_PX / 2)
    if x0 < 0 or y0 < 0 or y0 + SPECTRUM_PX > grey.shape[0] or x0 + SPECTRUM_PX > grey.shape[1]:
        return None
    patch = grey[y0 : y0 + SPECTRUM_PX, x0 : x0 + SPECTRUM_PX].astype(np.float32)
    patch = (patch - patch.mean()) * _HANN
    return (np.abs(np.fft.fft2(patch)) ** 2).astype(np.float32)


def frame_evidence(
    state: PointTracks, frame_bgr: U8, det: Detection, now_s: float
) -> FrameEvidence:
    """Update ``state`` with this frame and measure the cues against the track's earlier frames."""
    grey = to_grey(frame_bgr)
    roi = roi_for(det, grey.shape)
    work = roi.crop(grey)
    measured = False
    motion = nonrigid = local = 0.0
    if state.keyframes:
        base = state.keyframes[0]
        tracked = roi.to_frame(_track(roi.crop(base.grey), work, roi.to_work(base.points)))
        result = nonrigid_motion(base.points, tracked, max(det.box.width_px, 1.0), base.landmarks)
        # fast motion blurs the face and breaks the flow: such frames are no evidence either way
        if result is not None and result[0] <= MAX_MOTION:
            motion, nonrigid, local = result
            measured = True
    state.keyframes.append(Keyframe(grey, _seed_points(work, roi, det), det.landmarks))
    return FrameEvidence(
        t_s=now_s,
        measured=measured,
        motion=motion,
        nonrigid=nonrigid,
        local_excess=local,
        spectrum=face_spectrum(grey, det),
    )
