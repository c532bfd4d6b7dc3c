"""Clip files (adapter: cv2 video I/O) and the labels file of a generated set."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from edge_gate.errors import ImageError
from edge_gate.fsutil import atomic_write
from edge_gate_dev.liveness.attacks import Clip
from edge_gate_dev.liveness.render import U8

LABELS = "labels.jsonl"
MAX_CLIP_BYTES = 500_000_000
MAX_FRAME_PIXELS = 4096 * 4096


def write_clip(path: Path, clip: Clip) -> None:
    """Write frames as an MJPEG AVI (every frame a JPEG: no inter-frame codec smearing)."""
    h, w = clip.frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), clip.fps, (w, h))
    if not writer.isOpened():
        raise ImageError(f"{path.name}: cannot open video writer")
    try:
        for frame in clip.frames:
            writer.write(frame)
    finally:
        writer.release()


def read_clip(path: Path, fps: float, max_frames: int) -> tuple[list[U8], float]:
    """Frames resampled to ``fps`` (nearest timestamp), at most ``max_frames``; and the rate used.

    Refuses oversized files and frames before decoding more than one frame.
    """
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ImageError(f"{path}: cannot read: {e.strerror}") from e
    if size > MAX_CLIP_BYTES:
        raise ImageError(f"{path}: larger than {MAX_CLIP_BYTES} bytes")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise ImageError(f"{path}: not a readable video")
        w = cap.get(cv2.CAP_PROP_FRAME_WIDTH)
        h = cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
        if w * h > MAX_FRAME_PIXELS:
            raise ImageError(f"{path}: frames larger than {MAX_FRAME_PIXELS} pixels")
        src_fps = float(cap.get(cv2.CAP_PROP_FPS)) or fps
        step = src_fps / fps if src_fps > fps else 1.0
        out_fps = fps if src_fps > fps else src_fps
        frames: list[U8] = []
        index = 0
        next_index = 0.0
        while len(frames) < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            if index + 1e-6 >= next_index:
                frames.append(np.asarray(frame, dtype=np.uint8))
                next_index += step
            index += 1
    finally:
        cap.release()
    if not frames:
        raise ImageError(f"{path}: no frames")
    return frames, out_fps


def write_set(out_dir: Path, clips: Iterator[Clip]) -> int:
    """Write clips as ``NNNN-kind-variant.avi`` plus ``labels.jsonl``; return how many."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, clip in enumerate(clips):
        name = f"{i:04d}-{clip.kind}-{clip.variant}.avi"
        write_clip(out_dir / name, clip)
        lines.append(
            json.dumps(
                {
                    "file": name,
                    "kind": clip.kind,
                    "variant": clip.variant,
                    "source": clip.source,
                    "fps": clip.fps,
                }
            )
        )
    atomic_write(out_dir / LABELS, ("\n".join(lines) + "\n").encode(), mode=0o644)
    return len(lines)


def read_set(in_dir: Path, max_frames: int) -> Iterator[Clip]:
    """Clips listed in ``labels.jsonl`` (file names are confined to ``in_dir``)."""
    text = (in_dir / LABELS).read_text(encoding="utf-8")
    for line in text.splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        name = Path(str(entry["file"])).name  # no traversal out of the set directory
        fps = float(entry.get("fps", 15.0))
        frames, used_fps = read_clip(in_dir / name, fps, max_frames)
        yield Clip(
            str(entry["kind"]), str(entry["variant"]), str(entry["source"]), tuple(frames), used_fps
        )
