"""`edge-gate enroll`: add a person from good photos, the camera or a clip.

The decisions (quality gates, pose diversity, consistency, duplicate check) live in
:mod:`edge_gate.gallery.enrollment`; this module parses options, shows progress and prints.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from edge_gate.cli.gallery_common import (
    echo_json,
    emit_audit,
    face_pipeline,
    gallery_errors,
    open_store,
    require_audit_trail,
    with_progress,
)
from edge_gate.cli.support import EXIT_TIMEOUT, config_option, fail, load_or_exit

if TYPE_CHECKING:
    from edge_gate.config import EdgeGateConfig
    from edge_gate.gallery.enrollment import Plan, Progress
    from edge_gate.gallery.images import ImageVerdict
    from edge_gate.gallery.loaded import LoadedGallery
    from edge_gate.gallery.store import GalleryStore
    from edge_gate.vision.pipeline import FacePipeline

MAX_CAMERA_FRAMES = 5
DEFAULT_SECONDS = 10.0


@click.command("enroll")
@click.option("--name", required=True, help="display name (stored encrypted)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--force", is_flag=True, help="enroll even if the face matches someone enrolled")
@click.option("--camera", is_flag=True, help="look at the configured camera ([camera] url)")
@click.option(
    "--from-clip",
    "clip",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="look at a video file instead of the camera",
)
@click.option(
    "--seconds",
    type=click.FloatRange(1.0, 120.0),
    default=DEFAULT_SECONDS,
    show_default=True,
    help="with --camera/--from-clip: look this long at most (exit 75 if nobody usable)",
)
@click.argument("inputs", nargs=-1, type=click.Path(path_type=Path))
@config_option
def enroll(
    name: str,
    as_json: bool,
    force: bool,
    camera: bool,
    clip: Path | None,
    seconds: float,
    inputs: tuple[Path, ...],
    config_path: Path | None,
) -> None:
    """Enroll a person from IMAGE files or DIRs of images (3-5 good photos recommended), or
    from the best 3-5 frames of the camera (--camera) or of a clip (--from-clip)."""
    from edge_gate.gallery.record import validate_name

    sources = int(bool(inputs)) + int(camera) + int(clip is not None)
    if sources != 1:
        raise click.UsageError("give IMAGE/DIR arguments, --camera or --from-clip (exactly one)")
    cfg = load_or_exit(config_path)
    try:
        clean_name = validate_name(name)
    except ValueError as e:
        fail(f"--name: {e}")
    with gallery_errors(cfg):
        store = open_store(cfg)
        gallery = store.load() if store.exists() else None
        require_audit_trail(cfg)
        pipe = face_pipeline(cfg)
        if gallery is not None:
            gallery = gallery.matching_with(pipe.embedder_id, pipe.score_scale)
        if inputs:
            verdicts = _from_photos(cfg, pipe, inputs)
        else:
            verdicts = _from_video(cfg, pipe, clip, seconds, as_json)
    _enroll(cfg, store, gallery, pipe, verdicts, clean_name, as_json=as_json, force=force)


def _from_photos(
    cfg: EdgeGateConfig, pipe: FacePipeline, inputs: tuple[Path, ...]
) -> list[ImageVerdict]:
    from edge_gate.gallery.images import (
        examine_for_enrollment,
        expand_inputs,
        image_limits,
        limits_from_config,
    )

    files = expand_inputs(list(inputs))
    if not files:
        fail("no image files given")
    limits, img_limits = limits_from_config(cfg.gallery), image_limits(cfg)
    return [
        examine_for_enrollment(pipe, f, limits, img_limits)
        for f in with_progress(files, show=len(files) > 1 and sys.stderr.isatty())
    ]


def _from_video(
    cfg: EdgeGateConfig, pipe: FacePipeline, clip: Path | None, seconds: float, as_json: bool
) -> list[ImageVerdict]:
    from edge_gate.capture.sources import SourceSpec, open_source
    from edge_gate.capture.url import parse_source
    from edge_gate.gallery.enrollment import RECOMMENDED_IMAGES, collect_from_source
    from edge_gate.gallery.images import limits_from_config

    if clip is None:
        spec = SourceSpec.from_config(cfg.camera)
    else:
        spec = SourceSpec(parse_source(str(clip.resolve())), realtime=False)
    label = "camera" if clip is None else clip.name
    where = "in front of the camera" if clip is None else f"in {clip.name}"
    max_keep = min(MAX_CAMERA_FRAMES, cfg.gallery.enroll_max_templates)
    source = open_source(spec)
    try:
        with _live_line(show=sys.stderr.isatty() and not as_json, seconds=seconds) as update:
            kept = collect_from_source(
                pipe,
                source,
                limits_from_config(cfg.gallery),
                label=label,
                seconds=seconds,
                max_keep=max_keep,
                on_progress=update,
            )
    finally:
        source.close()
    need = min(RECOMMENDED_IMAGES[0], max_keep)
    if len(kept) < need:
        msg = (
            f"no usable face {where} within {seconds:g} s "
            f"({len(kept)} frame(s) passed the enrollment gates, {need} needed): nothing "
            "enrolled; have the person face the camera, closer and in good light"
        )
        if as_json:
            echo_json({"user_id": None, "error": msg, "accepted": len(kept), "timeout": True})
        fail(msg, EXIT_TIMEOUT)
    return kept


@contextmanager
def _live_line(show: bool, seconds: float) -> Iterator[Callable[[Progress], None]]:
    """A rich progress line on stderr (a no-op when stderr is not a terminal)."""
    if not show:
        yield lambda _p: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as RichProgress

    with RichProgress(
        TextColumn("looking for a face"),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        transient=True,
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task("", total=seconds)

        def update(p: Progress) -> None:
            why = f", last: {p.last_reason}" if p.last_reason else ""
            bar.update(
                task,
                completed=min(p.elapsed_s, seconds),
                description=f"frames {p.frames} faces {p.faces} passed {p.passed} "
                f"kept {p.kept}{why}",
            )

        yield update


def _enroll(
    cfg: EdgeGateConfig,
    store: GalleryStore,
    gallery: LoadedGallery | None,
    pipe: FacePipeline,
    verdicts: list[ImageVerdict],
    clean_name: str,
    *,
    as_json: bool,
    force: bool,
) -> None:
    from edge_gate.gallery.enrollment import plan

    result: Plan = plan(verdicts, cfg, gallery)
    report = result.report(clean_name)
    if not as_json:
        for v in result.verdicts:
            mark = "ok " if v.accepted else "REJECTED"
            click.echo(f"  {mark} {v.path}" + ("" if v.accepted else f": {v.message}"))
        for w in result.warnings:
            click.echo(f"warning: {w}", err=True)
    if not result.keep:
        if as_json:
            echo_json({**report, "user_id": None, "error": "no usable image"})
        fail("no usable image: nothing enrolled (see the reasons above)")
    dup = result.duplicate
    with gallery_errors(cfg):
        if dup is not None and not force:
            msg = (
                f"this face already matches enrolled user {dup.user_id} ({dup.name}, "
                f"score {dup.score:.3f} ≥ {cfg.gallery.threshold:.3f}); nothing enrolled "
                "(use --force if this really is a different person)"
            )
            if as_json:
                echo_json({**report, "user_id": None, "error": msg, "duplicate_of": dup.user_id})
            fail(msg)
        user_id = store.enroll(clean_name, pipe.embedder_id, result.embeddings(), dims=pipe.dims)
    n = len(result.keep)
    if dup is None:
        emit_audit(cfg, "gallery.enrolled", user_id, "enrolled", count=n, name=clean_name)
    else:  # --force over a look-alike: the desk sees it, the admin is told what it means
        emit_audit(
            cfg,
            "gallery.enrolled",
            user_id,
            f"enrolled_despite_duplicate:{dup.user_id}",
            count=n,
            score=round(dup.score, 3),
            name=clean_name,
        )
        click.echo(
            f"warning: {user_id} looks like {dup.user_id} (score {dup.score:.3f}); where the "
            f"margin ({cfg.gallery.margin:.2f}) cannot tell them apart the door refuses both "
            "(`identify` reports reason 'ambiguous')",
            err=True,
        )
    if as_json:
        echo_json({**report, "user_id": user_id})
    else:
        click.echo(f"enrolled {clean_name!r} as {user_id} with {n} template(s)")
        click.echo(user_id)
