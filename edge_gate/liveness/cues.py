"""Per-frame liveness cues from images (adapter: cv2).

Points are seeded on the face and, up to ``BASELINE_FRAMES`` frames later, found again with
pyramidal Lucas-Kanade flow (forward-backward checked). A flat print or screen moved rigidly
moves its points by one homography; a real head's points do not fit one (3-D shape,
expressions), so the residual after the best homography is evidence of life. With that plane
motion removed (the keyframe warped onto the current frame), a blink or speech still changes
the eyes or the mouth more than the cheeks; a print changes nowhere beyond noise. Work happens
in a region around the face rescaled so the face is ``WORK_FACE_PX`` wide, which bounds the
cost per frame whatever the camera resolution. A native-resolution patch of the face also
gives a power spectrum for the screen pixel-grid (moire) cue.
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
SPECTRUM_PX = 64
PATCH_MIN_STD = 2.0  # grey levels; flatter patches carry no information
PATCH_SHIFT_PX = 2  # work pixels each patch may shift to re-register
HIGHPASS_SIGMA_PX = 4.0  # work pixels (face 64 px wide)
LK_WIN = (15, 15)
LK_LEVELS = 2
LK_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)
_HANN = np.outer(np.hanning(SPECTRUM_PX), np.hanning(SPECTRUM_PX)).astype(np.float32)


@dataclass(frozen=True, slots=True)
class Keyframe:
    """A past frame of the track: its grey image and the face points seeded on it."""

    grey: U8
    points: F32


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


def highpass(work: U8) -> U8:
    """Detail only: subtract a blur, so smooth light changes (glare sliding over a glossy print,
    a shadow) neither drag the tracked points nor count as a change of the eyes or mouth."""
    smooth = cv2.GaussianBlur(work, (0, 0), HIGHPASS_SIGMA_PX)
    detail = work.astype(np.int16) - np.asarray(smooth, np.int16) + 128
    return np.asarray(np.clip(detail, 0, 255), dtype=np.uint8)


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


@dataclass(frozen=True, slots=True)
class Motion:
    """How the face's points moved from the keyframe to now (lengths in face widths)."""

    motion: float
    residual: float
    homography: npt.NDArray[np.float64]
    """Best plane homography, keyframe to current frame pixels."""


def nonrigid_motion(src: F32, dst: F32, face_w: float) -> Motion | None:
    """The face's motion between two point sets, or None if too few points.

    ``motion`` is the median displacement; ``residual`` the upper quantile of the residuals
    after the best plane homography (a rigid print's stay at tracking noise).
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
    return Motion(motion, float(np.quantile(residual, 0.8)), np.asarray(h, np.float64))


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


def _best_ncc(template: npt.NDArray[np.float32], search: npt.NDArray[np.float32]) -> float | None:
    """Best normalised cross-correlation of ``template`` over small shifts within ``search``.

    Searching a few pixels absorbs what an imperfect homography leaves misaligned, so only
    a change that no small shift explains (an eyelid, lips) lowers the similarity.
    """
    if float(template.std()) < PATCH_MIN_STD:
        return None  # flat patch: no information
    scores = cv2.matchTemplate(search, template, cv2.TM_CCOEFF_NORMED)
    return float(np.max(scores))


def part_change(
    base_work: U8, work: U8, roi: Roi, homography: npt.NDArray[np.float64], det: Detection
) -> float:
    """How much more the eyes or the mouth changed than the cheeks, after aligning the keyframe.

    The keyframe is warped onto the current frame with the face's plane homography, which
    removes rigid motion; a blink or speech then still changes the eye or mouth patch, a print
    does not change anywhere (beyond noise, which the cheek patches measure).
    """
    scale = np.array(
        [[roi.scale, 0, -roi.scale * roi.x0], [0, roi.scale, -roi.scale * roi.y0], [0, 0, 1]]
    )
    h_work = scale @ homography @ np.linalg.inv(scale)
    size = (work.shape[1], work.shape[0])
    warped = np.asarray(
        cv2.warpPerspective(base_work, h_work, size, flags=cv2.INTER_LINEAR), np.float32
    )
    cur = work.astype(np.float32)
    lm = roi.to_work(np.asarray(det.landmarks, np.float32))
    fw = WORK_FACE_PX
    mouth = (lm[3] + lm[4]) / 2
    cheek_l = (lm[0] + lm[3]) / 2 - np.array([0.08 * fw, 0.0], np.float32)
    cheek_r = (lm[1] + lm[4]) / 2 + np.array([0.08 * fw, 0.0], np.float32)
    patches = {
        "eye_l": (lm[0], 0.32, 0.2),
        "eye_r": (lm[1], 0.32, 0.2),
        "mouth": (mouth, 0.5, 0.28),
        "cheek_l": (cheek_l, 0.2, 0.2),
        "cheek_r": (cheek_r, 0.2, 0.2),
    }
    ncc: dict[str, float] = {}
    h, w = cur.shape
    for name, (c, pw, ph) in patches.items():
        x0, x1 = int(c[0] - pw * fw / 2), int(c[0] + pw * fw / 2)
        y0, y1 = int(c[1] - ph * fw / 2), int(c[1] + ph * fw / 2)
        m = PATCH_SHIFT_PX
        if x0 < m or y0 < m or x1 + m > w or y1 + m > h or x1 - x0 < 4 or y1 - y0 < 4:
            continue
        value = _best_ncc(warped[y0:y1, x0:x1], cur[y0 - m : y1 + m, x0 - m : x1 + m])
        if value is not None:
            ncc[name] = value
    parts = [ncc[k] for k in ("eye_l", "eye_r", "mouth") if k in ncc]
    controls = [ncc[k] for k in ("cheek_l", "cheek_r") if k in ncc]
    if not parts:
        return 0.0
    reference = max(controls) if controls else 1.0
    return max(0.0, reference - min(parts))


def frame_evidence(
    state: PointTracks, frame_bgr: U8, det: Detection, now_s: float
) -> FrameEvidence:
    """Update ``state`` with this frame and measure the cues against the track's earlier frames."""
    grey = to_grey(frame_bgr)
    roi = roi_for(det, grey.shape)
    work = highpass(roi.crop(grey))
    measured = False
    motion = nonrigid = change = 0.0
    if state.keyframes:
        base = state.keyframes[0]
        base_work = highpass(roi.crop(base.grey))
        tracked = roi.to_frame(_track(base_work, work, roi.to_work(base.points)))
        result = nonrigid_motion(base.points, tracked, max(det.box.width_px, 1.0))
        # fast motion blurs the face and breaks the flow: such frames are no evidence either way
        if result is not None and result.motion <= MAX_MOTION:
            motion, nonrigid = result.motion, result.residual
            change = part_change(base_work, work, roi, result.homography, det)
            measured = True
    state.keyframes.append(Keyframe(grey, _seed_points(work, roi, det)))
    return FrameEvidence(
        t_s=now_s,
        measured=measured,
        face_px=det.box.width_px,
        motion=motion,
        nonrigid=nonrigid,
        part_change=change,
        spectrum=face_spectrum(grey, det),
    )
