"""`edge-gate enroll`: add a person from good photos, with quality gates and a duplicate check."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

from edge_gate.cli.gallery_common import (
    echo_json,
    emit_audit,
    face_pipeline,
    fail,
    gallery_errors,
    open_store,
    require_audit_trail,
    with_progress,
)
from edge_gate.cli.options import config_option, load_or_exit

RECOMMENDED_IMAGES = (3, 5)  # accepted photos per person


@click.command("enroll")
@click.option("--name", required=True, help="display name (stored encrypted)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--force", is_flag=True, help="enroll even if the face matches someone enrolled")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@config_option
def enroll(
    name: str, as_json: bool, force: bool, inputs: tuple[Path, ...], config_path: Path | None
) -> None:
    """Enroll a person from IMAGE files or DIRs of images (3-5 good photos recommended)."""
    from edge_gate.gallery.images import (
        examine_for_enrollment,
        expand_inputs,
        find_duplicate,
        image_limits,
        limits_from_config,
        reject_inconsistent,
    )
    from edge_gate.gallery.record import validate_name

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
            gallery.require_model(pipe.embedder_id)
        files = expand_inputs(list(inputs))
        if not files:
            fail("no image files given")
        limits, img_limits = limits_from_config(cfg.gallery), image_limits(cfg)
        verdicts = [
            examine_for_enrollment(pipe, f, limits, img_limits)
            for f in with_progress(files, show=len(files) > 1 and sys.stderr.isatty())
        ]
    verdicts = reject_inconsistent(verdicts, cfg.gallery.threshold)
    accepted = [v for v in verdicts if v.accepted and v.face is not None]
    keep = accepted[: cfg.gallery.enroll_max_templates]
    warnings: list[str] = []
    if len(accepted) > len(keep):
        warnings.append(
            f"{len(accepted)} images accepted; keeping the first {len(keep)} "
            "(gallery.enroll_max_templates)"
        )
    if 0 < len(keep) < RECOMMENDED_IMAGES[0]:
        warnings.append(
            f"only {len(keep)} usable image(s): {RECOMMENDED_IMAGES[0]}-{RECOMMENDED_IMAGES[1]} "
            "photos (slightly different angles and light) recognise far more reliably"
        )
    report: dict[str, Any] = {
        "name": clean_name,
        "images": [v.as_json() for v in verdicts],
        "accepted": len(keep),
        "rejected": len(verdicts) - len(accepted),
        "warnings": warnings,
    }
    if not as_json:
        for v in verdicts:
            mark = "ok " if v.accepted else "REJECTED"
            click.echo(f"  {mark} {v.path}" + ("" if v.accepted else f": {v.message}"))
        for w in warnings:
            click.echo(f"warning: {w}", err=True)
    if not keep:
        if as_json:
            echo_json({**report, "user_id": None, "error": "no usable image"})
        fail("no usable image: nothing enrolled (see the reasons above)")
    embeddings = np.stack(
        [v.face.embedding for v in keep if v.face and v.face.embedding is not None]
    )
    with gallery_errors(cfg):
        dup = find_duplicate(gallery, embeddings, cfg.gallery.threshold) if gallery else None
        if dup is not None and not force:
            msg = (
                f"this face already matches enrolled user {dup.user_id} ({dup.name}, "
                f"score {dup.score:.3f} ≥ {cfg.gallery.threshold:.3f}); nothing enrolled "
                "(use --force if this really is a different person)"
            )
            if as_json:
                echo_json({**report, "user_id": None, "error": msg, "duplicate_of": dup.user_id})
            fail(msg)
        user_id = store.enroll(clean_name, pipe.embedder_id, embeddings)
    if dup is None:
        emit_audit(cfg, "gallery.enrolled", user_id, "enrolled", count=len(keep), name=clean_name)
    else:  # --force over a look-alike: the desk sees it, the admin is told what it means
        emit_audit(
            cfg,
            "gallery.enrolled",
            user_id,
            f"enrolled_despite_duplicate:{dup.user_id}",
            count=len(keep),
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
        click.echo(f"enrolled {clean_name!r} as {user_id} with {len(keep)} template(s)")
        click.echo(user_id)
