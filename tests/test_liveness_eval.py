"""ISO/IEC 30107-3 evaluation on generated attacks and real bona fide clips (fixed test seed).

The test seed differs from the seeds used for tuning (1, 2). Attacks are synthetic.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_gate.cli import cli
from edge_gate.config import EdgeGateConfig
from edge_gate.vision.pipeline import FacePipeline
from edge_gate_dev.bench.liveness import bench_liveness
from edge_gate_dev.liveness.attacks import Material, generate
from edge_gate_dev.liveness.evaluate import Report, evaluate, plot_det
from edge_gate_dev.liveness.metrics import apcer_by_species, bpcer, threshold_for_bpcer

TEST_SEED = 20261126
PER_KIND = 10
N_FRAMES = 20


@pytest.fixture(scope="module")
def report(testdata: Path) -> Report:
    cfg = EdgeGateConfig()
    pipe = FacePipeline.from_config(cfg.vision)
    counts = {"bona_fide": PER_KIND, "print": PER_KIND, "replay": PER_KIND}
    clips = generate(Material.from_cache(testdata), TEST_SEED, counts, N_FRAMES)
    return evaluate(clips, pipe.detect, cfg.liveness)


def test_report_counts_every_clip_and_draws_det(report: Report, tmp_path: Path) -> None:
    """Every clip is scored or counted as no-face; rates are fractions; the DET PNG is written."""
    total = sum(report.counts.values()) + sum(report.no_face.values())
    assert total == 3 * PER_KIND
    assert set(report.apcer) == {"print", "replay"}
    assert all(0.0 <= v <= 1.0 for v in [*report.apcer.values(), report.bpcer])
    png = tmp_path / "det.png"
    plot_det(report.presentations, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_still_and_waved_prints_are_denied(report: Report) -> None:
    """On the test seed no perfectly steady print and no waved print is accepted."""
    assert report.apcer_by_variant["print-still"] == 0.0
    assert report.apcer_by_variant["print-waved"] == 0.0


def test_prints_and_bona_fide_at_the_measured_level(report: Report) -> None:
    """Regression guard at the measured level (print APCER 0-3 %, BPCER 0-23 % per seed)."""
    assert report.apcer["print"] <= 0.1
    assert report.bpcer <= 0.3


def test_verdicts_come_within_one_second(report: Report) -> None:
    """Every verdict came within 1 s (15 frames at 15 fps) of the face appearing."""
    assert report.first_verdict_s_max is not None
    assert report.first_verdict_s_max <= 1.0


@pytest.mark.xfail(
    strict=True,
    reason="NOT MET for replay: a replayed real face video shows real blinks, speech and head "
    "motion; at 640x480 a screen's pixel grid rarely survives the optics, and a screen on a "
    "stand does not move, so most replays are accepted (measured over 8 seeds x 30 clips: "
    "APCER replay 50-60 %, print 0-3 %, BPCER 0-23 % at the default threshold). "
    "Needs IR/depth sensing or a trained, certified PAD model.",
)
def test_iso_requirement_apcer_2pct_per_type_at_bpcer_5pct(report: Report) -> None:
    """The issue's target: APCER <= 2 % for each attack type at a threshold with BPCER <= 5 %."""
    items = report.presentations
    threshold = threshold_for_bpcer(items, 0.05)
    assert bpcer(items, threshold) <= 0.05
    assert all(v <= 0.02 for v in apcer_by_species(items, threshold).values())


def test_cli_generate_then_liveness_json_then_eval(tmp_path: Path, testdata: Path) -> None:
    """`attacks generate` writes clips, `liveness --json` one line per clip, eval reads them."""
    runner = CliRunner()
    env = {"EDGE_GATE_CONFIG": str(tmp_path / "absent.toml"), "EDGE_GATE_CACHE": str(testdata)}
    out_dir = tmp_path / "set"
    args = ["attacks", "generate", "--out", str(out_dir), "--seed", "5", "--frames", "12"]
    args += ["--bona-fide", "1", "--print", "1", "--replay", "1"]
    res = runner.invoke(cli, args, env=env)
    assert res.exit_code == 0, res.output
    files = sorted(out_dir.glob("*.avi"))
    assert len(files) == 3
    res = runner.invoke(cli, ["liveness", "--json", *map(str, files)], env=env)
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert [line["path"] for line in lines] == [str(f) for f in files]
    for line in lines:
        assert set(line) == {"path", "live", "score", "frames", "reasons"}
        assert isinstance(line["live"], bool)
        assert 0.0 <= line["score"] <= 1.0
    assert lines[1]["live"] is False  # the print (index 0: held perfectly steady)
    png = tmp_path / "det.png"
    res = runner.invoke(
        cli, ["liveness-eval", "--clips", str(out_dir), "--json", "--det", str(png)], env=env
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout.splitlines()[-1])
    assert rep["counts"] == {"bona_fide": 1, "print": 1, "replay": 1}
    assert png.exists()


def test_liveness_refuses_an_unreadable_clip(tmp_path: Path) -> None:
    """A file that is not a video is reported and the command exits 1."""
    bad = tmp_path / "not-a-video.avi"
    bad.write_bytes(b"hello")
    env = {"EDGE_GATE_CONFIG": str(tmp_path / "absent.toml")}
    res = CliRunner().invoke(cli, ["liveness", "--json", str(bad)], env=env)
    assert res.exit_code == 1
    assert "not a readable video" in res.output


def test_liveness_update_cost(testdata: Path) -> None:
    """Liveness adds <= 3 ms per frame (benchmark); asserted loosely on a shared 2-core box."""
    figures = bench_liveness(testdata, n_frames=45)
    assert figures["liveness_frames"] >= 40
    assert figures["liveness_update_ms_median"] <= 10.0
    assert figures["liveness_first_verdict_s"] <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 6])
def test_larger_evaluation_on_other_seeds(testdata: Path, seed: int) -> None:
    """40 clips per kind on seeds not used for tuning (1, 2, 4, 5 were): regression guards.

    Still and waved prints stay at 0 %; print APCER and BPCER stay near what was measured
    (see the README); replay is reported, not asserted (known gap).
    """
    cfg = EdgeGateConfig()
    pipe = FacePipeline.from_config(cfg.vision)
    counts = {"bona_fide": 40, "print": 40, "replay": 40}
    rep = evaluate(
        generate(Material.from_cache(testdata), seed, counts, N_FRAMES), pipe.detect, cfg.liveness
    )
    print(json.dumps(rep.as_json()))
    assert rep.apcer_by_variant["print-still"] == 0.0
    assert rep.apcer_by_variant["print-waved"] == 0.0
    assert rep.apcer["print"] <= 0.1
    assert rep.bpcer <= 0.3  # measured 3-23 % per 1.3 s clip across seeds
