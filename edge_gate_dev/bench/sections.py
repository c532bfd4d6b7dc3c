"""The ``edge-gate bench`` sections: ``SECTIONS[name] = function(ctx) -> dict``.

Each section gets a :class:`BenchContext` (test-data cache, config, options) and returns a
JSON-able dict. To add one, write the function in its subsystem's module under
:mod:`edge_gate_dev.bench` and register it here with :func:`register_section`; the lazy import
inside each function keeps ``bench --section relay`` from loading TensorFlow Lite. The command
itself (:mod:`edge_gate.cli.bench_cmd`) only parses options and prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_gate.config import EdgeGateConfig, VisionConfig

DOOR_MIN_FACE_PX = 60
"""The default P-Net pyramid floor (config ``vision.min_face_px``): a face 60 px wide at 640x480
is a person about 2 m from a typical door camera; smaller faces are too far away to be at the
door, and skipping them saves pyramid levels (measured detect: 12.7 ms at 40 px, 9.5 ms
at 60 px)."""


@dataclass(frozen=True)
class BenchContext:
    """What every benchmark section receives."""

    cache: Path
    vision: VisionConfig
    frames: int
    evaluate: bool
    config: EdgeGateConfig = field(default_factory=EdgeGateConfig)
    """The whole ``--config`` (policy, liveness, gallery), with ``vision`` as above."""


SectionFn = Callable[[BenchContext], dict[str, Any]]
SECTIONS: dict[str, SectionFn] = {}


def register_section(name: str, fn: SectionFn) -> None:
    """Add (or replace) a benchmark section."""
    SECTIONS[name] = fn


def _vision_section(ctx: BenchContext) -> dict[str, Any]:
    from edge_gate.vision.pipeline import FacePipeline
    from edge_gate_dev.bench.vision import machine_load, run_vision_bench

    pipe = FacePipeline.from_config(ctx.vision)
    result = run_vision_bench(pipe, ctx.cache, frames=ctx.frames)
    if ctx.evaluate:
        from edge_gate_dev.vision import heldout

        result["embedders"] = _evaluate_embedders(ctx)
        # held out by person: each embedder and the fused sets, at the shipped thresholds
        result["heldout"] = heldout.run(ctx.cache)
        result["load_after"] = machine_load()
    return result


def _evaluate_embedders(ctx: BenchContext) -> list[dict[str, Any]]:
    """Verification figures and speed of every embedder in the manifest (default choice input)."""
    from edge_gate.vision.embedders.registry import is_embedder_family
    from edge_gate.vision.pipeline import FacePipeline
    from edge_gate.vision.runtime import load_manifest, resolve_models_dir
    from edge_gate_dev.bench.vision import bench_pipeline, read_frames
    from edge_gate_dev.vision.evaluate import evaluate_embedder, markdown_table

    manifest = load_manifest(resolve_models_dir(ctx.vision.models_dir))
    eval_cfg = ctx.vision.model_copy(update={"min_face_px": 20})
    frames = read_frames(ctx.cache / "pyfeat" / "WolfgangLanger_Pexels.mp4", 35)
    reports = []
    out: list[dict[str, Any]] = []
    for spec in sorted(manifest.models.values(), key=lambda s: s.model_id):
        if not is_embedder_family(spec.family):
            continue
        pipe = FacePipeline.from_manifest(manifest, eval_cfg, embedder=spec.model_id)
        report = evaluate_embedder(pipe, ctx.cache)
        reports.append(report)
        row = report.as_dict()
        speed_pipe = FacePipeline.from_manifest(manifest, ctx.vision, embedder=spec.model_id)
        row["video_bench"] = bench_pipeline(speed_pipe, frames)
        out.append(row)
    out.append({"markdown": markdown_table(reports)})
    return out


def _pipeline_section(ctx: BenchContext) -> dict[str, Any]:
    from edge_gate_dev.bench.pipeline import run_pipeline_bench

    return run_pipeline_bench(ctx.cache, ctx.config.model_copy(update={"vision": ctx.vision}))


def _gallery_section(ctx: BenchContext) -> dict[str, Any]:
    from edge_gate_dev.bench.gallery import run_gallery_bench

    return dict(run_gallery_bench())


def _relay_section(ctx: BenchContext) -> dict[str, Any]:
    from edge_gate_dev.bench.relay import bench_relay

    return dict(bench_relay(n=200))


def _audit_section(ctx: BenchContext) -> dict[str, Any]:
    import tempfile

    from edge_gate_dev.bench.audit import bench_local

    with tempfile.TemporaryDirectory(prefix="edge-gate-bench-") as tmp:
        return dict(bench_local(Path(tmp), events=5000).as_dict())


def _capture_section(ctx: BenchContext) -> dict[str, Any]:
    from dataclasses import asdict

    from edge_gate_dev.bench.capture import bench_capture

    clip = ctx.cache / "pyfeat" / "WolfgangLanger_Pexels.mp4"
    return {
        "rtsp": asdict(bench_capture(clip, seconds=10)),
        "rtsps": asdict(bench_capture(clip, seconds=10, tls=True)),
    }


def _liveness_section(ctx: BenchContext) -> dict[str, Any]:
    from edge_gate_dev.bench.liveness import run_liveness_bench

    return dict(run_liveness_bench(ctx.cache))


def _fleet_section(ctx: BenchContext) -> dict[str, Any]:
    from edge_gate_dev.bench.fleet import run_fleet_bench

    return run_fleet_bench(n_people=100_000)


register_section("vision", _vision_section)
register_section("pipeline", _pipeline_section)
register_section("gallery", _gallery_section)
register_section("relay", _relay_section)
register_section("audit", _audit_section)
register_section("capture", _capture_section)
register_section("liveness", _liveness_section)
register_section("fleet", _fleet_section)
