"""Rendering helpers for synthetic presentation attacks (adapter: cv2).

A held-up print or screen is a plane in front of a pinhole camera; its image is a homography of
its texture. The camera model adds what every door camera adds: optical blur, sensor noise,
gain and lossy compression.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
F64 = npt.NDArray[np.float64]

FOCAL_PX = 600.0  # ~56 degrees horizontal field of view at 640 px, a typical door camera


@dataclass(frozen=True, slots=True)
class Pose:
    """Plane pose: centre (metres, camera frame; z forward) and yaw/pitch/roll in degrees."""

    x_m: float
    y_m: float
    z_m: float
    yaw_deg: float
    pitch_deg: float
    roll_deg: float


def rotation(yaw_deg: float, pitch_deg: float, roll_deg: float) -> F64:
    """Rotation matrix R = Rz(roll) @ Rx(pitch) @ Ry(yaw)."""
    y, p, r = (math.radians(v) for v in (yaw_deg, pitch_deg, roll_deg))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return np.asarray(rz @ rx @ ry, dtype=np.float64)


def plane_homography(
    pose: Pose, texture_wh: tuple[int, int], plane_w_m: float, frame_wh: tuple[int, int]
) -> F64:
    """Homography from texture pixels to frame pixels for a plane ``plane_w_m`` metres wide."""
    tw, th = texture_wh
    m_per_px = plane_w_m / tw
    # texture px -> plane metres centred on the plane's middle (z = 0 on the plane)
    to_plane = np.array(
        [[m_per_px, 0, -tw * m_per_px / 2], [0, m_per_px, -th * m_per_px / 2], [0, 0, 1]]
    )
    rot = rotation(pose.yaw_deg, pose.pitch_deg, pose.roll_deg)
    rt = np.column_stack([rot[:, 0], rot[:, 1], [pose.x_m, pose.y_m, pose.z_m]])
    fw, fh = frame_wh
    k = np.array([[FOCAL_PX, 0, fw / 2], [0, FOCAL_PX, fh / 2], [0, 0, 1]])
    h = k @ rt @ to_plane
    return np.asarray(h / h[2, 2], dtype=np.float64)


def composite(
    background: U8,
    texture: U8,
    homography: F64,
    supersample: int = 1,
    alpha: U8 | None = None,
    optics_sigma_px: float = 0.0,
) -> U8:
    """Warp ``texture`` onto ``background``; ``supersample`` > 1 renders finer, then box-filters.

    The lens blurs (``optics_sigma_px``, in frame pixels) before the sensor integrates over each
    pixel (the box filter), so a fine periodic texture such as a screen's pixel grid is damped
    and aliases into moire the way it does on a real camera.
    """
    fh, fw = background.shape[:2]
    s = float(supersample)
    scale = np.diag([s, s, 1.0]) @ homography
    size = (fw * supersample, fh * supersample)
    warped = cv2.warpPerspective(texture, scale, size, flags=cv2.INTER_LINEAR)
    src_alpha = alpha if alpha is not None else np.full(texture.shape[:2], 255, np.uint8)
    mask = cv2.warpPerspective(src_alpha, scale, size, flags=cv2.INTER_LINEAR)
    if optics_sigma_px > 0:
        warped = cv2.GaussianBlur(warped, (0, 0), optics_sigma_px * supersample)
    if supersample > 1:
        warped = cv2.resize(warped, (fw, fh), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask, (fw, fh), interpolation=cv2.INTER_AREA)
    a = mask.astype(np.float32)[..., None] / 255.0
    out = background.astype(np.float32) * (1 - a) + warped.astype(np.float32) * a
    return np.asarray(np.clip(out, 0, 255), dtype=np.uint8)


@dataclass(frozen=True, slots=True)
class CameraModel:
    """What the door camera does to every frame."""

    blur_sigma_px: float
    noise_sigma: float
    gain: float
    jpeg_quality: int


def random_camera(rng: np.random.Generator) -> CameraModel:
    """Plausible door camera conditions."""
    return CameraModel(
        blur_sigma_px=float(rng.uniform(0.4, 1.1)),
        noise_sigma=float(rng.uniform(1.0, 3.5)),
        gain=float(rng.uniform(0.8, 1.2)),
        jpeg_quality=int(rng.integers(70, 95)),
    )


def apply_camera(frame: U8, cam: CameraModel, rng: np.random.Generator) -> U8:
    """Blur, gain, per-frame sensor noise and JPEG compression."""
    blurred = cv2.GaussianBlur(frame, (0, 0), cam.blur_sigma_px) if cam.blur_sigma_px > 0 else frame
    img = blurred.astype(np.float32) * cam.gain
    img += rng.normal(0.0, cam.noise_sigma, img.shape).astype(np.float32)
    out = np.asarray(np.clip(img, 0, 255), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, cam.jpeg_quality])
    if not ok:
        return out
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return np.asarray(decoded, dtype=np.uint8)


def blurred_background(image: U8, rng: np.random.Generator) -> U8:
    """A scene behind the attacker: random flip, brightness and depth-of-field blur."""
    flipped = image[:, ::-1] if rng.random() < 0.5 else image
    img = cv2.GaussianBlur(np.ascontiguousarray(flipped), (0, 0), float(rng.uniform(1.5, 6.0)))
    scaled = np.asarray(img, dtype=np.float32) * rng.uniform(0.6, 1.1)
    return np.asarray(np.clip(scaled, 0, 255), dtype=np.uint8)


def glare(
    shape: tuple[int, int], center_xy: tuple[float, float], radius_px: float, strength: float
) -> npt.NDArray[np.float32]:
    """A soft specular highlight: additive, Gaussian falloff."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d2 = (xx - center_xy[0]) ** 2 + (yy - center_xy[1]) ** 2
    return np.asarray(strength * np.exp(-d2 / (2 * radius_px**2)), dtype=np.float32)
