"""`edge-gate identify` (open-set 1:N on images) and `edge-gate calibrate` (threshold for a FAR)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click
import numpy as np

from edge_gate.cli.gallery_common import (
    echo_json,
    face_pipeline,
    gallery_errors,
    load_gallery,
    with_progress,
)
from edge_gate.cli.support import EXIT_FAILURE, config_option, fail, json_option, load_or_exit
from edge_gate.errors import ImageError


@click.command("identify")
@json_option(help="one JSON object per line per image")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@config_option
def identify(as_json: bool, images: tuple[Path, ...], config_path: Path | None) -> None:
    """Who is in each IMAGE? (open-set: "unknown" when nobody matches well enough)

    A DIR stands for its image files (sorted; subfolders are not searched)."""
    from edge_gate.gallery.images import expand_inputs, identify_faces, image_limits
    from edge_gate.vision.image_io import load_image

    cfg = load_or_exit(config_path)
    with gallery_errors(cfg):
        _, loaded = load_gallery(cfg)
        pipe = face_pipeline(cfg)
        loaded = loaded.matching_with(pipe.embedder_id, pipe.score_scale)
    failures = 0
    paths: list[Path] = []
    for given in images:
        found = expand_inputs([given]) if given.is_dir() else [given]
        paths.extend(found or [given])  # an empty folder is reported below, not skipped
    for path in paths:
        result: dict[str, Any] = {"path": str(path), "faces": [], "error": None}
        if path.is_dir():
            result["error"] = "no image files in this folder (subfolders are not searched)"
            failures += 1
            if as_json:
                echo_json(result)
            else:
                _print_identify(result)
            continue
        try:
            image = load_image(path, image_limits(cfg))
        except ImageError as e:
            result["error"] = str(e)
            failures += 1
        else:
            faces = pipe.analyze(image, embed=True)
            result["faces"] = identify_faces(
                faces, loaded, cfg.gallery.threshold, cfg.gallery.margin
            )
        if as_json:
            echo_json(result)
        else:
            _print_identify(result)
    if failures:
        raise SystemExit(EXIT_FAILURE)


def _print_identify(result: dict[str, Any]) -> None:
    if result["error"]:
        click.echo(f"{result['path']}: error: {result['error']}")
        return
    if not result["faces"]:
        click.echo(f"{result['path']}: no face")
    for face in result["faces"]:
        who = f"{face['user_id']} ({face['name']})" if face["user_id"] else face["decision"]
        if face.get("reason"):
            who += f" ({face['reason']})"
        score = "" if face["score"] is None else f" score {face['score']:.3f}"
        if face["margin"] is not None:
            score += f" margin {face['margin']:.3f}"
        detail = f": {face['detail']}" if face.get("detail") else ""
        click.echo(f"{result['path']}: {who}{score} box {face['box']}{detail}")


def non_enrolled_files(paths: Iterable[Path]) -> list[Path]:
    """Files as given; directories become every image file below them (recursive, sorted).

    A directory without a single image is an error (exit 2): calibrating on nothing while
    believing otherwise is how an unsafe threshold gets recommended.
    """
    from edge_gate.gallery.images import image_files_below

    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = image_files_below(p)
            if not found:
                fail(f"--non-enrolled {p}: no image files found (searched recursively)", 2)
            out.extend(found)
        else:
            out.append(p)
    return out


@click.command("calibrate")
@click.option(
    "--target-far",
    type=click.FloatRange(0, 0.5, min_open=True),
    default=1e-3,
    show_default=True,
    help="false accepts allowed per presentation of a non-enrolled face",
)
@click.option(
    "--non-enrolled",
    "others",
    multiple=True,
    type=click.Path(path_type=Path),
    help="IMAGE or DIR (searched recursively) of faces of people NOT in the gallery (repeatable)",
)
@json_option
@config_option
def calibrate(
    target_far: float, others: tuple[Path, ...], as_json: bool, config_path: Path | None
) -> None:
    """Compute the match threshold for a target false-accept rate from impostor scores.

    No threshold is recommended (exit 1) unless there are at least ceil(3 / target FAR)
    impostor scores (rule of three)."""
    from edge_gate.gallery.calibration import calibrate as run_calibration
    from edge_gate.gallery.images import image_limits
    from edge_gate.vision.image_io import load_image

    cfg = load_or_exit(config_path)
    files = non_enrolled_files(others)
    with gallery_errors(cfg):
        _, loaded = load_gallery(cfg)
        if len(loaded.people) < 2:
            fail("calibration needs at least 2 enrolled people")
        vecs: list[Any] = []
        if files:
            pipe = face_pipeline(cfg)
            loaded = loaded.matching_with(pipe.embedder_id, pipe.score_scale)
            for f in with_progress(files, show=len(files) > 1 and sys.stderr.isatty()):
                try:
                    faces = pipe.analyze(load_image(f, image_limits(cfg)), embed=True)
                except ImageError as e:
                    click.echo(f"skipping {f}: {e}", err=True)
                    continue
                vecs.extend(face.embedding for face in faces[:1] if face.embedding is not None)
    probes = np.stack(vecs) if vecs else np.zeros((0, loaded.dim or 1), np.float32)
    try:
        result = run_calibration(loaded.matrix, probes, target_far, cfg.gallery.margin)
    except ValueError as e:
        fail(f"calibration impossible: {e}")
    out = {**result.as_json(), "non_enrolled_faces": len(vecs), "current": cfg.gallery.threshold}
    if as_json:
        echo_json(out)
        if not result.sufficient:
            raise SystemExit(EXIT_FAILURE)
        return
    click.echo(f"impostor scores: {result.n_impostor} ({len(vecs)} from non-enrolled faces)")
    click.echo(f"genuine scores:  {result.n_genuine} (leave-one-out over enrolled templates)")
    if not result.sufficient:
        fail(
            f"not enough impostor scores to calibrate for FAR {target_far:g}: have "
            f"{result.n_impostor}, need at least {result.n_required} (3 / FAR, rule of three); "
            f"no threshold recommended. Add --non-enrolled faces of people not in the gallery "
            f"(highest impostor score so far {result.max_impostor:.3f})"
        )
    click.echo(f"threshold for FAR ≤ {target_far:g}: {result.threshold:.4f}")
    click.echo(f"  measured FAR {result.measured_far:.5f} (resolution {result.far_resolution:.1e})")
    click.echo(
        f"  expected genuine accept rate {result.genuine_accept_rate:.1%} "
        f"(margin {cfg.gallery.margin})"
    )
    click.echo(f"set in the config: [gallery] threshold = {result.threshold:.3f}")
