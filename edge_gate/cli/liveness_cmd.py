"""``edge-gate liveness``, ``edge-gate liveness-eval`` and ``edge-gate attacks generate``.

Liveness runs the same detector, tracker and estimator as the daemon over video files. The
attack generator makes SYNTHETIC presentation attacks from real face photos and videos (see
:mod:`edge_gate_dev.liveness.attacks`); the evaluation reports ISO/IEC 30107-3 APCER per attack
type and BPCER at the configured threshold, and draws a DET curve.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from edge_gate.cli.support import (
    EXIT_FAILURE,
    cache_option,
    config_option,
    default_cache,
    exit_on_errors,
    load_or_exit,
    require_dev,
)
from edge_gate.config import EdgeGateConfig, default_config_path
from edge_gate.errors import EdgeGateError

DEFAULT_TEST_SEED = 20261126


def _config(config_path: Path | None) -> EdgeGateConfig:
    """The config file; with no ``--config`` and no file at the default path, the defaults."""
    if config_path is None and not default_config_path().exists():
        click.echo("edge-gate: no config file, using defaults", err=True)
        return EdgeGateConfig()
    return load_or_exit(config_path)


class _ScoreByDefault(click.Group):
    """``edge-gate liveness CLIP…`` (the old spelling) means ``edge-gate liveness score CLIP…``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["score", *args]
        return super().parse_args(ctx, args)


@click.group("liveness", cls=_ScoreByDefault)
def liveness() -> None:
    """Liveness tools: score clips, generate attack clips, ISO/IEC 30107-3 evaluation (dev)."""


@liveness.command("score")
@config_option
@click.option("--json", "as_json", is_flag=True, help="one JSON line per clip")
@click.option(
    "--max-frames",
    default=150,
    show_default=True,
    type=click.IntRange(2, 10_000),
    help="frames read per clip",
)
@click.argument("clips", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
def liveness_score(
    config_path: Path | None, as_json: bool, max_frames: int, clips: tuple[Path, ...]
) -> None:
    """Liveness verdict for each video CLIP (resampled to the camera's frame rate).

    A clip is live when any face track in it reached the configured threshold; undecided or
    faceless clips are reported as not live (fail secure). Exit 1 if any clip was unreadable.
    """
    require_dev("liveness")
    from edge_gate.vision.pipeline import FacePipeline
    from edge_gate_dev.liveness.clipio import read_clip
    from edge_gate_dev.liveness.evaluate import run_frames

    cfg = _config(config_path)
    with exit_on_errors("liveness score"):
        pipe = FacePipeline.from_config(cfg.vision)
    failed = False
    for path in clips:
        try:
            frames, fps = read_clip(path, cfg.camera.fps, max_frames)
        except EdgeGateError as e:
            failed = True
            click.echo(f"edge-gate: {e}", err=True)
            continue
        out = run_frames(frames, fps, pipe.detect, cfg.liveness)
        live = bool(out.result.live)
        score = out.score if out.score is not None else out.result.score
        if as_json:
            line = {
                "path": str(path),
                "live": live,
                "score": round(score, 4),
                "frames": len(frames),
            }
            line["reasons"] = list(out.result.reasons)
            click.echo(json.dumps(line))
        else:
            verdict = "LIVE" if live else "NOT LIVE"
            why = ", ".join(out.result.reasons)
            click.echo(f"{path}: {verdict} score={score:.3f} frames={len(frames)} ({why})")
    if failed:
        raise SystemExit(EXIT_FAILURE)


def _clips(cache: Path, seed: int, counts: dict[str, int], n_frames: int) -> Iterator[Any]:
    from edge_gate_dev.liveness.attacks import Material, generate

    return generate(Material.from_cache(cache), seed, counts, n_frames)


@click.group("attacks")
def attacks() -> None:
    """Synthetic presentation attacks from real face photos and videos."""


@attacks.command("generate")
@cache_option
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="output directory",
)
@click.option(
    "--seed", default=DEFAULT_TEST_SEED, show_default=True, type=int, help="generator seed"
)
@click.option(
    "--bona-fide", "n_bona", default=10, show_default=True, type=click.IntRange(0, 10_000)
)
@click.option("--print", "n_print", default=10, show_default=True, type=click.IntRange(0, 10_000))
@click.option("--replay", "n_replay", default=10, show_default=True, type=click.IntRange(0, 10_000))
@click.option(
    "--frames",
    "n_frames",
    default=20,
    show_default=True,
    type=click.IntRange(2, 1000),
    help="frames per clip (15 fps)",
)
def generate_cmd(
    cache: Path | None,
    out_dir: Path,
    seed: int,
    n_bona: int,
    n_print: int,
    n_replay: int,
    n_frames: int,
) -> None:
    """Write clips (MJPEG AVI, 640x480, 15 fps) and labels.jsonl to OUT.

    Print and replay clips are SYNTHETIC renderings of real photos/videos; bona fide clips are
    real face videos re-framed to door-camera conditions.
    """
    require_dev("attacks generate")
    from edge_gate_dev.liveness.clipio import write_set

    counts = {"bona_fide": n_bona, "print": n_print, "replay": n_replay}
    with exit_on_errors("liveness attacks generate"):
        n = write_set(out_dir, _clips(cache or default_cache(), seed, counts, n_frames))
    click.echo(f"wrote {n} clips to {out_dir}")


@click.command("liveness-eval")
@config_option
@cache_option
@click.option(
    "--clips",
    "clips_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="evaluate a set written by `attacks generate` instead of generating one",
)
@click.option(
    "--seed",
    default=DEFAULT_TEST_SEED,
    show_default=True,
    type=int,
    help="generator seed (use one not used for tuning)",
)
@click.option(
    "--per-kind",
    default=30,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="clips per kind (bona fide, print, replay)",
)
@click.option(
    "--frames",
    "n_frames",
    default=20,
    show_default=True,
    type=click.IntRange(2, 1000),
    help="frames per clip (15 fps)",
)
@click.option(
    "--det",
    "det_png",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="write the DET curve to this PNG",
)
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def liveness_eval(
    config_path: Path | None,
    cache: Path | None,
    clips_dir: Path | None,
    seed: int,
    per_kind: int,
    n_frames: int,
    det_png: Path | None,
    as_json: bool,
) -> None:
    """ISO/IEC 30107-3 figures: APCER per attack type and BPCER at the configured threshold.

    The attacks are SYNTHETIC: good figures here are necessary, not sufficient.
    """
    require_dev("liveness-eval")
    from edge_gate.vision.pipeline import FacePipeline
    from edge_gate_dev.liveness.clipio import read_set
    from edge_gate_dev.liveness.evaluate import evaluate, plot_det

    cfg = _config(config_path)
    with exit_on_errors("liveness eval"):
        pipe = FacePipeline.from_config(cfg.vision)
        if clips_dir is not None:
            clips = read_set(clips_dir, max_frames=1000)
        else:
            counts = {"bona_fide": per_kind, "print": per_kind, "replay": per_kind}
            clips = _clips(cache or default_cache(), seed, counts, n_frames)
        report = evaluate(clips, pipe.detect, cfg.liveness)
    if det_png is not None:
        plot_det(report.presentations, det_png, f"liveness DET (seed {seed}, synthetic attacks)")
    if as_json:
        click.echo(json.dumps({"seed": seed, **report.as_json()}))
        return
    click.echo(f"threshold {report.threshold:.2f}  seed {seed}  (attacks are synthetic)")
    click.echo(f"{'type':<16}{'n':>5}{'APCER':>9}")
    for species, value in report.apcer_by_variant.items():
        click.echo(f"{species:<16}{report.counts_by_variant.get(species, 0):>5}{value:>9.1%}")
    for species, value in report.apcer.items():
        click.echo(f"{species:<16}{report.counts.get(species, 0):>5}{value:>9.1%}")
    click.echo(f"{'BPCER':<16}{report.counts.get('bona_fide', 0):>5}{report.bpcer:>9.1%}")
    if report.no_face:
        click.echo(f"no face found (excluded): {report.no_face}")


liveness.add_command(liveness_eval, "eval")
liveness.add_command(attacks, "attacks")
