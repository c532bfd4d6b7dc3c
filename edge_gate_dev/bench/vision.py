"""Vision benchmark (composition): per-stage latency on frames of a real face video.

Frames of ``pyfeat/WolfgangLanger_Pexels.mp4`` (640x360) are letterboxed to 640x480 — the
geometry of a typical door camera, without stretching the face — and run through detect → align →
embed for the largest face. Reported per stage: median and p95 milliseconds, plus the sum.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge_gate.errors import CaptureError
from edge_gate.vision import imgops, mtcnn, quality
from edge_gate.vision.pipeline import FacePipeline

U8 = npt.NDArray[np.uint8]

BENCH_VIDEO = Path("pyfeat") / "WolfgangLanger_Pexels.mp4"
FRAME_W, FRAME_H = 640, 480


def letterbox(frame: U8, width: int = FRAME_W, height: int = FRAME_H) -> U8:
    """Scale to fit ``width``x``height`` keeping the aspect ratio; pad with black."""
    h, w = frame.shape[:2]
    s = min(width / w, height / h)
    nw, nh = round(w * s), round(h * s)
    resized = (
        cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA) if (nw, nh) != (w, h) else frame
    )
    out = np.zeros((height, width, 3), dtype=np.uint8)
    y0, x0 = (height - nh) // 2, (width - nw) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = resized
    return out


def read_frames(video: Path, count: int, stride: int = 3) -> list[U8]:
    """``count`` frames (every ``stride``-th) of ``video``, letterboxed to 640x480 BGR."""
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise CaptureError(f"{video}: cannot open video")
    frames: list[U8] = []
    index = 0
    try:
        while len(frames) < count:
            ok, frame = cap.read()
            if not ok:
                break
            if index % stride == 0:
                frames.append(letterbox(np.asarray(frame, dtype=np.uint8)))
            index += 1
    finally:
        cap.release()
    if not frames:
        raise CaptureError(f"{video}: no frames decoded")
    return frames


def _stats(values_ms: list[float]) -> dict[str, float]:
    arr = np.asarray(values_ms, dtype=np.float64)
    return {
        "median_ms": round(float(np.median(arr)), 2),
        "p95_ms": round(float(np.percentile(arr, 95)), 2),
        "mean_ms": round(float(arr.mean()), 2),
    }


def bench_pipeline(pipe: FacePipeline, frames: list[U8], warmup: int = 5) -> dict[str, Any]:
    """Per-stage timings over ``frames``; the first ``warmup`` frames are run but not counted."""
    detect_ms: list[float] = []
    align_ms: list[float] = []
    embed_ms: list[float] = []
    quality_ms: list[float] = []
    total_ms: list[float] = []
    faces_found = 0
    for i, frame in enumerate(frames):
        t0 = time.perf_counter()
        dets = pipe.detect(frame)
        t1 = time.perf_counter()
        if not dets:
            if i >= warmup:
                detect_ms.append((t1 - t0) * 1000)
            continue
        crops = pipe.embedder_inputs(frame, dets[0])
        t2 = time.perf_counter()
        pipe.embed_inputs([crops])
        t3 = time.perf_counter()
        aligned = pipe.align(frame, dets[0])
        quality.measure(dets[0].box, dets[0].landmarks, aligned, (frame.shape[0], frame.shape[1]))
        t4 = time.perf_counter()
        if i < warmup:
            continue
        faces_found += 1
        detect_ms.append((t1 - t0) * 1000)
        align_ms.append((t2 - t1) * 1000)
        embed_ms.append((t3 - t2) * 1000)
        quality_ms.append((t4 - t3) * 1000)
        total_ms.append((t3 - t0) * 1000)
    counted = max(len(frames) - warmup, 0)
    return {
        "frames": counted,
        "frame_size": [FRAME_W, FRAME_H],
        "faces_found": faces_found,
        "face_rate": round(faces_found / counted, 3) if counted else 0.0,
        "detect": _stats(detect_ms) if detect_ms else None,
        "align": _stats(align_ms) if align_ms else None,
        "embed": _stats(embed_ms) if embed_ms else None,
        "quality": _stats(quality_ms) if quality_ms else None,
        "detect_align_embed": _stats(total_ms) if total_ms else None,
    }


def detector_breakdown(pipe: FacePipeline, frames: list[U8]) -> dict[str, Any]:
    """Per-frame time inside each MTCNN net's ``invoke`` vs. the rest (pyramid, crops, NMS)."""
    pnet, rnet, onet = pipe.nets()
    spent: dict[str, float] = {}

    def timed_pr(name: str, fn: mtcnn.PNetFn) -> mtcnn.PNetFn:
        def run(batch: mtcnn.F32) -> tuple[mtcnn.F32, mtcnn.F32]:
            t0 = time.perf_counter()
            out = fn(batch)
            spent[name] = spent.get(name, 0.0) + (time.perf_counter() - t0) * 1000
            return out

        return run

    def timed_o(fn: mtcnn.ONetFn) -> mtcnn.ONetFn:
        def run(batch: mtcnn.F32) -> tuple[mtcnn.F32, mtcnn.F32, mtcnn.F32]:
            t0 = time.perf_counter()
            out = fn(batch)
            spent["onet"] = spent.get("onet", 0.0) + (time.perf_counter() - t0) * 1000
            return out

        return run

    nets = (timed_pr("pnet", pnet), timed_pr("rnet", rnet), timed_o(onet))
    rows: dict[str, list[float]] = {"pnet": [], "rnet": [], "onet": [], "other": []}
    for frame in frames:
        spent.clear()
        t0 = time.perf_counter()
        mtcnn.detect_faces(imgops.bgr_to_rgb(frame), *nets, imgops.resize_area, pipe.params)
        total = (time.perf_counter() - t0) * 1000
        for name in ("pnet", "rnet", "onet"):
            rows[name].append(spent.get(name, 0.0))
        rows["other"].append(total - sum(spent.values()))
    return {f"{name}_ms": _stats(values) for name, values in rows.items()}


def machine_load() -> dict[str, Any]:
    """CPU count and load average, so a figure can be read with its conditions."""
    load1, load5, _ = os.getloadavg()
    return {"cpus": os.cpu_count(), "loadavg_1m": round(load1, 2), "loadavg_5m": round(load5, 2)}


def run_vision_bench(pipe: FacePipeline, cache: Path, frames: int = 60) -> dict[str, Any]:
    """The ``vision`` section of ``edge-gate bench``."""
    video = Path(cache) / BENCH_VIDEO
    images = read_frames(video, frames + 5)
    t0 = time.perf_counter()
    result = bench_pipeline(pipe, images)
    result["detect_breakdown"] = detector_breakdown(pipe, images[5:])
    result.update(
        {
            "video": str(BENCH_VIDEO),
            "embedder": pipe.embedder_id,
            "detector": pipe.detector_ids,
            "min_face_px": pipe.params.min_face_px,
            "threads": pipe.threads,
            "wall_s": round(time.perf_counter() - t0, 2),
            "load_before": machine_load(),
        }
    )
    median = (result.get("detect_align_embed") or {}).get("median_ms")
    result["target_ms"] = 25.0
    result["meets_target"] = bool(median is not None and median <= 25.0)
    return result
