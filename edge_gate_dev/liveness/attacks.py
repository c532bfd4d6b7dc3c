"""Synthetic presentation-attack clips from real face photos and videos, plus bona fide clips.

Attacks are SYNTHETIC: a real photo rendered as a print held in front of the camera, or a real
face video rendered as a phone/tablet screen. They test the liveness cues against the physics
they model (a planar medium, a screen's pixel grid) and nothing more; real attacks vary in ways
this generator does not reproduce. Bona fide clips are segments of real face videos, re-framed
to door-camera conditions (640x480, 15 fps, camera noise and compression).

Every clip draws from its own generator seeded by (seed, kind, index), so a clip does not change
when the number of clips asked for changes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge_gate_dev.liveness import render
from edge_gate_dev.liveness.render import U8, Pose
from edge_gate_dev.liveness.sources import FPS, FRAME_H, FRAME_W, Video

KINDS = ("bona_fide", "print", "replay")
PRINT_VARIANTS = ("still", "tremor", "tilt", "waved")
REPLAY_VARIANTS = ("stand", "tremor", "moving")
"""``stand``: the screen rests on a stand, perfectly still (only its content moves)."""
_KIND_CODE = {"bona_fide": 0, "print": 1, "replay": 2}


@dataclass(frozen=True, slots=True)
class Clip:
    """A short clip of BGR 640x480 frames at ``fps``."""

    kind: str
    """``bona_fide``, ``print`` or ``replay``."""
    variant: str
    source: str
    """Which real photo or video it was made from (file stem, no personal data)."""
    frames: tuple[U8, ...]
    fps: float = FPS

    @property
    def is_attack(self) -> bool:
        return self.kind != "bona_fide"

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.variant}"


@dataclass(frozen=True, slots=True)
class Material:
    """Real inputs: face photos, face videos and background scenes."""

    photos: list[tuple[str, U8]]
    videos: list[Video]
    backgrounds: list[U8]

    @classmethod
    def from_cache(cls, cache: Path) -> Material:
        from edge_gate_dev.liveness import sources

        return cls(
            sources.face_photos(cache), sources.face_videos(cache), sources.backgrounds(cache)
        )


def _rng(seed: int, kind: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, _KIND_CODE[kind], index])


def _motion(variant: str, n: int, base: Pose, rng: np.random.Generator) -> list[list[Pose]]:
    """Per frame, the poses during the exposure (several for motion blur when waved)."""
    fps = FPS
    out: list[list[Pose]] = []
    # hand tremor: AR(1) noise, a few mm and a fraction of a degree per frame
    jitter = np.zeros(6)
    amp = np.array([0.0015, 0.0015, 0.002, 0.5, 0.5, 0.3]) * rng.uniform(0.5, 1.5)
    phase = rng.uniform(0, 2 * math.pi, 6)
    period_s = rng.uniform(0.7, 1.5) if variant in {"waved", "moving"} else rng.uniform(2.0, 3.5)
    wave_amp = {
        "waved": np.array([0.06, 0.03, 0.02, 15, 8, 8]) * rng.uniform(0.5, 1.0),
        "moving": np.array([0.03, 0.015, 0.01, 8, 5, 4]) * rng.uniform(0.4, 1.0),
        "tilt": np.array([0.005, 0.005, 0.0, 20, 8, 2]) * rng.uniform(0.6, 1.0),
    }.get(variant, np.zeros(6))
    subframes = 4 if variant in {"waved", "moving"} else 1
    exposure_s = rng.uniform(0.01, 0.04)
    for i in range(n):
        if variant not in {"still", "stand"}:
            jitter = 0.7 * jitter + rng.normal(0, 1, 6) * amp * 0.7
        poses = []
        for k in range(subframes):
            t = i / fps + exposure_s * k / subframes
            wave = wave_amp * np.sin(2 * math.pi * t / period_s + phase)
            d = jitter + wave
            poses.append(
                Pose(
                    base.x_m + d[0],
                    base.y_m + d[1],
                    base.z_m + d[2],
                    base.yaw_deg + d[3],
                    base.pitch_deg + d[4],
                    base.roll_deg + d[5],
                )
            )
        out.append(poses)
    return out


def _render_frames(
    texture: U8,
    plane_w_m: float,
    background: U8,
    motion: list[list[Pose]],
    rng: np.random.Generator,
    supersample: int = 1,
    glare_strength: float = 0.0,
    alpha: U8 | None = None,
    cam: render.CameraModel | None = None,
) -> tuple[U8, ...]:
    cam = cam or render.random_camera(rng)
    optics = cam.blur_sigma_px if supersample > 1 else 0.0
    th, tw = texture.shape[:2]
    glare_r = tw * rng.uniform(0.15, 0.35)
    frames = []
    for poses in motion:
        acc = np.zeros((FRAME_H, FRAME_W, 3), np.float32)
        for pose in poses:
            tex = texture
            if glare_strength > 0:
                # a mirror reflection slides across the medium as it tilts (twice the angle)
                gx = tw * (0.5 + 2 * math.radians(pose.yaw_deg))
                gy = th * (0.35 - 2 * math.radians(pose.pitch_deg))
                g = render.glare((th, tw), (gx, gy), glare_r, glare_strength)
                tex = np.clip(texture.astype(np.float32) + g[..., None], 0, 255).astype(np.uint8)
            h = render.plane_homography(pose, (tw, th), plane_w_m, (FRAME_W, FRAME_H))
            acc += render.composite(background, tex, h, supersample, alpha, optics).astype(
                np.float32
            )
        frame = (acc / len(poses)).astype(np.uint8)
        sensor = cam if optics == 0 else dataclasses.replace(cam, blur_sigma_px=0.0)
        frames.append(render.apply_camera(frame, sensor, rng))
    return tuple(frames)


def _base_pose(rng: np.random.Generator, plane_w_m: float, width_px: float) -> Pose:
    z = render.FOCAL_PX * plane_w_m / width_px
    return Pose(
        x_m=float(rng.uniform(-0.12, 0.12) * z),
        y_m=float(rng.uniform(-0.08, 0.06) * z),
        z_m=float(z),
        yaw_deg=float(rng.uniform(-15, 15)),
        pitch_deg=float(rng.uniform(-12, 12)),
        roll_deg=float(rng.uniform(-6, 6)),
    )


def _print_texture(photo: U8, rng: np.random.Generator, width_px: int) -> tuple[U8, float]:
    """A printed photo on paper: tone compression, desaturation, paper tint, texture, margin."""
    h, w = photo.shape[:2]
    tex_w = width_px
    tex_h = round(h * tex_w / w)
    img = cv2.resize(photo, (tex_w, tex_h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    lo, hi, gamma = rng.uniform(12, 40), rng.uniform(205, 245), rng.uniform(0.8, 1.25)
    img = lo + (hi - lo) * (np.clip(img, 0, 255) / 255.0) ** gamma
    grey = img.mean(axis=2, keepdims=True)
    img = grey + (img - grey) * rng.uniform(0.6, 1.0)
    img *= np.array([rng.uniform(0.92, 1.0), rng.uniform(0.97, 1.0), 1.0])  # warm paper
    img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.5, 1.2)))
    margin_frac = 0.0 if rng.random() < 0.3 else float(rng.uniform(0.03, 0.2))
    m = round(margin_frac * tex_w)
    paper = np.array([232, 236, 238], np.float32) * rng.uniform(0.85, 1.0)
    sheet = np.empty((tex_h + 2 * m, tex_w + 2 * m, 3), np.float32)
    sheet[:] = paper
    sheet[m : m + tex_h, m : m + tex_w] = img
    grain = cv2.GaussianBlur(rng.normal(0, 1, sheet.shape[:2]).astype(np.float32), (0, 0), 1.5)
    sheet += grain[..., None] * rng.uniform(6, 14)
    if rng.random() < 0.5:
        _fingers(sheet, rng)
    return np.clip(sheet, 0, 255).astype(np.uint8), (tex_w + 2 * m) / tex_w


def _fingers(sheet: np.ndarray, rng: np.random.Generator) -> None:
    """One to three skin-toned fingertips over the sheet's lower or side edge."""
    sh, sw = sheet.shape[:2]
    skin = np.array([rng.uniform(80, 150), rng.uniform(110, 170), rng.uniform(160, 225)])
    for _ in range(int(rng.integers(1, 4))):
        if rng.random() < 0.5:
            cx, cy = rng.uniform(0.1, 0.9) * sw, sh * rng.uniform(0.97, 1.02)
        else:
            cx, cy = sw * (0.0 if rng.random() < 0.5 else 1.0), rng.uniform(0.4, 0.95) * sh
        axes = (int(sw * rng.uniform(0.04, 0.07)), int(sh * rng.uniform(0.08, 0.14)))
        colour = tuple(float(v) for v in skin * rng.uniform(0.9, 1.05))
        cv2.ellipse(
            sheet, (int(cx), int(cy)), axes, float(rng.uniform(-30, 30)), 0, 360, colour, -1
        )


def print_attack(mat: Material, index: int, seed: int, n_frames: int) -> Clip:
    """A real photo printed on paper and held up: still, trembling, tilted or waved."""
    rng = _rng(seed, "print", index)
    variant = PRINT_VARIANTS[index % len(PRINT_VARIANTS)]
    name, photo = mat.photos[int(rng.integers(len(mat.photos)))]
    scene = name.startswith("dlib/")
    photo_px = rng.uniform(420, 620) if scene else rng.uniform(120, 260)
    texture, sheet_over_photo = _print_texture(photo, rng, int(min(2.2 * photo_px, 1100)))
    plane_w_m = 0.15 * sheet_over_photo
    base = _base_pose(rng, plane_w_m, photo_px * sheet_over_photo)
    background = render.blurred_background(
        mat.backgrounds[int(rng.integers(len(mat.backgrounds)))], rng
    )
    glare_strength = float(rng.uniform(25, 70)) if rng.random() < 0.4 else 0.0
    motion = _motion(variant, n_frames, base, rng)
    frames = _render_frames(texture, plane_w_m, background, motion, rng, 1, glare_strength)
    return Clip("print", variant, name, frames)


def _screen_texture(
    frame: U8, screen_w_px: int, display: dict[str, float], bezel_frac: float, psf_tex_px: float
) -> U8:
    """One video frame as a screen shows it: resampled to the panel, tone, RGB stripe sub-pixels.

    ``psf_tex_px`` is the camera's optical blur expressed in texture pixels: applying it here
    band-limits the sub-pixel grid the way the lens does before the sensor samples it, so what
    survives aliases into moire with a physically plausible contrast (and a 1x warp suffices).
    """
    h, w = frame.shape[:2]
    sh = max(8, round(h * screen_w_px / w))
    img = cv2.resize(frame, (screen_w_px, sh), interpolation=cv2.INTER_AREA).astype(np.float32)
    img = display["black"] + (255 - display["black"]) * (img / 255.0) ** display["gamma"]
    img *= np.array([display["blue"], 1.0, display["red"]], np.float32)
    # each panel pixel becomes 3x3 sub-pixels: R, G, B stripes and a dark row (black matrix)
    big = np.repeat(np.repeat(img, 3, axis=0), 3, axis=1)
    mask = np.zeros((3, 3, 3), np.float32)
    for col, channel in enumerate((2, 1, 0)):  # BGR order: R stripe left, then G, then B
        mask[:, col, channel] = 3.0
    mask[2] *= display["matrix"]
    big *= np.tile(mask, (sh, screen_w_px, 1))
    if psf_tex_px > 0.3:
        big = np.asarray(cv2.GaussianBlur(big, (0, 0), psf_tex_px), dtype=np.float32)
    tex = np.asarray(np.clip(big, 0, 255), dtype=np.uint8)
    if bezel_frac > 0:
        b = max(2, round(bezel_frac * tex.shape[1]))
        bordered = cv2.copyMakeBorder(
            tex, b, b, b, b, cv2.BORDER_CONSTANT, value=(display["bezel"],) * 3
        )
        tex = np.asarray(bordered, dtype=np.uint8)
    return tex


def replay_attack(mat: Material, index: int, seed: int, n_frames: int) -> Clip:
    """A real face video replayed on a phone or tablet screen held up to the camera."""
    rng = _rng(seed, "replay", index)
    variant = REPLAY_VARIANTS[index % len(REPLAY_VARIANTS)]
    video = mat.videos[int(rng.integers(len(mat.videos)))]
    start = int(rng.integers(0, max(1, len(video.frames) - n_frames)))
    src = [video.frames[min(start + i, len(video.frames) - 1)] for i in range(n_frames)]
    vh, vw = src[0].shape[:2]
    # the attacker zooms the video on the face; faces in these videos are ~30 % of the width
    crop_w = int(vw * rng.uniform(0.5, 0.9))
    crop_h = min(vh, int(crop_w * (0.75 if rng.random() < 0.5 else 1.33)))
    cx = int(vw / 2 + rng.uniform(-0.05, 0.05) * vw)
    cy = int(vh * rng.uniform(0.4, 0.5))
    x0 = int(np.clip(cx - crop_w // 2, 0, vw - crop_w))
    y0 = int(np.clip(cy - crop_h // 2, 0, vh - crop_h))
    face_cam_px = rng.uniform(80, 170)
    screen_cam_px = min(560.0, face_cam_px * crop_w / (0.3 * vw))
    # camera px per panel px: ~0.5 for a phone close up, ~2 for a low-resolution tablet
    pitch_cam_px = rng.uniform(0.5, 2.0)
    screen_w_px = int(np.clip(screen_cam_px / pitch_cam_px, 120, 900))
    cam = render.random_camera(rng)
    psf_tex_px = cam.blur_sigma_px * 3 * screen_w_px / screen_cam_px
    display = {
        "gamma": float(rng.uniform(0.8, 1.3)),
        "black": float(rng.uniform(5, 25)),
        "blue": float(rng.uniform(1.0, 1.12)),
        "red": float(rng.uniform(0.88, 1.0)),
        "matrix": float(rng.uniform(0.3, 0.7)),
        "bezel": float(rng.uniform(5, 45)),
    }
    bezel_frac = float(rng.uniform(0.03, 0.1)) if rng.random() < 0.75 else 0.0
    textures = [
        _screen_texture(
            f[y0 : y0 + crop_h, x0 : x0 + crop_w], screen_w_px, display, bezel_frac, psf_tex_px
        )
        for f in src
    ]
    tw = textures[0].shape[1]
    plane_w_m = 0.07 * tw / (3 * screen_w_px)  # panel 7 cm wide plus bezel
    base = _base_pose(rng, plane_w_m, screen_cam_px * tw / (3 * screen_w_px))
    background = render.blurred_background(
        mat.backgrounds[int(rng.integers(len(mat.backgrounds)))], rng
    )
    glare_strength = float(rng.uniform(20, 60)) if rng.random() < 0.5 else 0.0
    motion = _motion(variant, n_frames, base, rng)
    frames: list[U8] = []
    for tex, poses in zip(textures, motion, strict=True):
        frames.extend(
            _render_frames(tex, plane_w_m, background, [poses], rng, 1, glare_strength, cam=cam)
        )
    return Clip("replay", variant, video.name, tuple(frames))


def bona_fide(mat: Material, index: int, seed: int, n_frames: int) -> Clip:
    """A segment of a real face video re-framed as a 640x480 door camera would see it."""
    rng = _rng(seed, "bona_fide", index)
    video = (
        mat.videos[index % len(mat.videos)]
        if index < len(mat.videos)
        else mat.videos[int(rng.choice(len(mat.videos), p=_video_weights(mat.videos)))]
    )
    start = int(rng.integers(0, max(1, len(video.frames) - n_frames)))
    vh, vw = video.frames[0].shape[:2]
    zoom = rng.uniform(0.8, 1.0)
    crop_h = int(vh * zoom)
    crop_w = min(vw, int(crop_h * 4 / 3))
    # faces are near the middle of these videos; keep the crop around them
    x0 = int(np.clip(vw / 2 - crop_w / 2 + rng.uniform(-0.06, 0.06) * vw, 0, vw - crop_w))
    y0 = int(rng.integers(0, vh - crop_h + 1))
    flip = rng.random() < 0.5
    cam = render.random_camera(rng)
    cam = render.CameraModel(cam.blur_sigma_px * 0.5, cam.noise_sigma, cam.gain, cam.jpeg_quality)
    frames = []
    for i in range(n_frames):
        src = video.frames[min(start + i, len(video.frames) - 1)][
            y0 : y0 + crop_h, x0 : x0 + crop_w
        ]
        f = np.asarray(
            cv2.resize(src, (FRAME_W, FRAME_H), interpolation=cv2.INTER_LINEAR), np.uint8
        )
        if flip:
            f = np.ascontiguousarray(f[:, ::-1])
        frames.append(render.apply_camera(f, cam, rng))
    return Clip("bona_fide", "video", video.name, tuple(frames))


def _video_weights(videos: list[Video]) -> npt.NDArray[np.float64]:
    lengths = np.array([len(v.frames) for v in videos], np.float64)
    return np.asarray(lengths / lengths.sum(), dtype=np.float64)


def generate(
    mat: Material, seed: int, counts: dict[str, int], n_frames: int = 20
) -> Iterator[Clip]:
    """Yield ``counts[kind]`` clips of each kind (``bona_fide``, ``print``, ``replay``)."""
    makers = {"bona_fide": bona_fide, "print": print_attack, "replay": replay_attack}
    for kind in KINDS:
        for i in range(counts.get(kind, 0)):
            yield makers[kind](mat, i, seed, n_frames)
