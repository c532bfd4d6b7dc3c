"""Liveness cost benchmark: milliseconds per ``update`` + ``verdict`` on a real face clip.

Detections are computed first (not timed): the figure is what liveness adds per frame.
``edge-gate bench`` calls :func:`bench_liveness`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edge_gate.config.liveness import LivenessConfig
from edge_gate.config.vision import VisionConfig
from edge_gate.liveness.estimator import LivenessEstimator
from edge_gate_dev.liveness.attacks import Material, bona_fide


def bench_liveness(
    cache: Path,
    n_frames: int = 60,
    liveness: LivenessConfig | None = None,
    vision: VisionConfig | None = None,
) -> dict[str, float]:
    """Per-frame liveness cost on a 640x480 bona fide clip; returns median/p95/max ms."""
    from edge_gate.vision.pipeline import FacePipeline

    pipe = FacePipeline.from_config(vision or VisionConfig())
    clip = bona_fide(Material.from_cache(cache), 1, seed=0, n_frames=n_frames)
    dets = [pipe.detect(f) for f in clip.frames]
    est = LivenessEstimator.from_config(liveness or LivenessConfig())
    times_ms = []
    first_verdict_s = float("nan")
    for i, (frame, found) in enumerate(zip(clip.frames, dets, strict=True)):
        if not found:
            continue
        now_s = i / clip.fps
        t0 = time.perf_counter()
        est.update(1, frame, found[0], now_s)
        result = est.verdict(1)
        times_ms.append((time.perf_counter() - t0) * 1000)
        if result.live is not None and first_verdict_s != first_verdict_s:
            first_verdict_s = now_s
    arr = np.array(times_ms[1:] or [float("nan")])
    return {
        "liveness_frames": float(len(times_ms)),
        "liveness_update_ms_median": round(float(np.median(arr)), 3),
        "liveness_update_ms_p95": round(float(np.quantile(arr, 0.95)), 3),
        "liveness_update_ms_max": round(float(arr.max()), 3),
        "liveness_first_verdict_s": round(first_verdict_s, 3),
    }


def run_liveness_bench(cache: Path) -> dict[str, float]:
    """The ``liveness`` section of ``edge-gate bench`` (default configs)."""
    return bench_liveness(cache)
