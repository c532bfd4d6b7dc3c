"""Admin commands over the encrypted gallery: enroll, users, gallery verify, identify,
calibrate, keys rotate.

Every command verifies the whole gallery before it reads or changes it and fails closed:
exit 65 when the gallery fails its integrity checks, 1 on other errors, 78 on a bad config.
Changes (enroll, revoke, rename) append a signed audit event to the outbox.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
import numpy as np

from edge_gate.cli.options import config_option, load_or_exit
from edge_gate.config import EdgeGateConfig
from edge_gate.errors import EdgeGateError, GalleryTamperedError, ImageError
from edge_gate.gallery.loaded import LoadedGallery
from edge_gate.gallery.record import USER_ID_RE
from edge_gate.gallery.store import GalleryStore, store_from_config

if TYPE_CHECKING:
    from edge_gate.vision.pipeline import FacePipeline

EXIT_FAILURE = 1
EXIT_TAMPERED = 65  # EX_DATAERR
RECOMMENDED_IMAGES = (3, 5)
MAX_DETAIL_CHARS = 200


def _fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    click.echo(f"edge-gate: {message}", err=True)
    raise SystemExit(code)


@contextmanager
def _errors(cfg: EdgeGateConfig | None = None) -> Iterator[None]:
    """Turn edge-gate errors into a clear message and a fail-closed exit status; a failed
    integrity check is also recorded as a ``gallery.tampered`` audit event (best effort)."""
    try:
        yield
    except GalleryTamperedError as e:
        if cfg is not None:
            _audit_tampered(cfg, str(e))
        _fail(f"GALLERY INTEGRITY FAILURE: {e}", EXIT_TAMPERED)
    except EdgeGateError as e:
        _fail(str(e))


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, sort_keys=False))


def _store(cfg: EdgeGateConfig) -> GalleryStore:
    return store_from_config(cfg.gallery)


def _load(cfg: EdgeGateConfig) -> tuple[GalleryStore, LoadedGallery]:
    store = _store(cfg)
    return store, store.load()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_user_id(user_id: str) -> str:
    if not USER_ID_RE.match(user_id):
        _fail(f"{user_id!r} is not a user id (they look like u_abcdefghijkl)")
    return user_id


def _audit(cfg: EdgeGateConfig, event: str, subject: str, reason: str, **fields: object) -> None:
    """Append one signed event to the outbox; a failure is reported and exits non-zero."""
    from edge_gate.audit.trail import AuditTrail

    if not cfg.mqtt.include_names:
        fields.pop("name", None)  # names leave the gateway only when the operator opts in
    try:
        trail = AuditTrail.from_config(cfg.mqtt)
    except EdgeGateError as e:
        _fail(f"the change is done but its audit event could not be recorded: {e}")
    try:
        seq = trail.emit(event, door=None, subject=subject, reason=reason, **fields)
    finally:
        trail.close()
    if seq is None:
        _fail("the change is done but its audit event could not be stored in the outbox")


def _audit_tampered(cfg: EdgeGateConfig, message: str) -> None:
    from edge_gate.audit.trail import AuditTrail

    try:
        trail = AuditTrail.from_config(cfg.mqtt)
    except EdgeGateError:
        return  # the command fails closed anyway; nothing more to do without the audit key
    try:
        detail = "".join(c if c.isprintable() else " " for c in message)[:MAX_DETAIL_CHARS]
        trail.emit("gallery.tampered", door=None, reason="integrity_check_failed", detail=detail)
    finally:
        trail.close()


def _require_audit_key(cfg: EdgeGateConfig) -> None:
    """Refuse a change up front when its audit event could not be signed."""
    from edge_gate.audit.signing import load_signing_key

    load_signing_key(cfg.mqtt.signing_key_file)


def _pipeline(cfg: EdgeGateConfig) -> FacePipeline:
    from edge_gate.vision.pipeline import FacePipeline

    return FacePipeline.from_config(cfg.vision)


def _progress(items: Sequence[Path], show: bool) -> Iterator[Path]:
    if not show:
        yield from items
        return
    from rich.progress import Progress

    with Progress(transient=True, console=_stderr_console()) as progress:
        task = progress.add_task("analysing images", total=len(items))
        for item in items:
            yield item
            progress.advance(task)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


# -- enroll ---------------------------------------------------------------------------------


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
        _fail(f"--name: {e}")
    with _errors(cfg):
        store = _store(cfg)
        gallery = store.load() if store.exists() else None
        _require_audit_key(cfg)
        pipe = _pipeline(cfg)
        if gallery is not None:
            gallery.require_model(pipe.embedder_id)
        files = expand_inputs(list(inputs))
        if not files:
            _fail("no image files given")
        limits, img_limits = limits_from_config(cfg.gallery), image_limits(cfg)
        verdicts = [
            examine_for_enrollment(pipe, f, limits, img_limits)
            for f in _progress(files, show=len(files) > 1 and sys.stderr.isatty())
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
            _echo_json({**report, "user_id": None, "error": "no usable image"})
        _fail("no usable image: nothing enrolled (see the reasons above)")
    embeddings = np.stack(
        [v.face.embedding for v in keep if v.face and v.face.embedding is not None]
    )
    with _errors(cfg):
        dup = find_duplicate(gallery, embeddings, cfg.gallery.threshold) if gallery else None
        if dup is not None and not force:
            msg = (
                f"this face already matches enrolled user {dup.user_id} ({dup.name}, "
                f"score {dup.score:.3f} ≥ {cfg.gallery.threshold:.3f}); nothing enrolled "
                "(use --force if this really is a different person)"
            )
            if as_json:
                _echo_json({**report, "user_id": None, "error": msg, "duplicate_of": dup.user_id})
            _fail(msg)
        user_id = store.enroll(clean_name, pipe.embedder_id, embeddings)
    _audit(cfg, "gallery.enrolled", user_id, "enrolled", count=len(keep), name=clean_name)
    if as_json:
        _echo_json({**report, "user_id": user_id})
    else:
        click.echo(f"enrolled {clean_name!r} as {user_id} with {len(keep)} template(s)")
        click.echo(user_id)


# -- users ----------------------------------------------------------------------------------


def _person_json(rec: Any) -> dict[str, Any]:
    return {
        "user_id": rec.user_id,
        "name": rec.name,
        "templates": rec.n_templates,
        "model": rec.model,
        "enrolled_at": _iso(rec.created_at),
    }


@click.group("users")
def users() -> None:
    """List, show, revoke (erase) and rename enrolled people."""


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per person per line")
@config_option
def users_list(as_json: bool, config_path: Path | None) -> None:
    """List enrolled people."""
    cfg = load_or_exit(config_path)
    with _errors(cfg):
        _, gallery = _load(cfg)
    for rec in gallery.people:
        if as_json:
            _echo_json(_person_json(rec))
        else:
            click.echo(f"{rec.user_id}  {rec.n_templates:2d}  {_iso(rec.created_at)}  {rec.name}")
    if not as_json:
        click.echo(f"{len(gallery.people)} people, generation {gallery.generation}", err=True)


@users.command("show")
@click.argument("user_id")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@config_option
def users_show(user_id: str, as_json: bool, config_path: Path | None) -> None:
    """Show one person."""
    cfg = load_or_exit(config_path)
    _check_user_id(user_id)
    with _errors(cfg):
        _, gallery = _load(cfg)
    rec = gallery.get(user_id)
    if rec is None:
        _fail(f"no such user {user_id}")
    info = _person_json(rec)
    if as_json:
        _echo_json(info)
    else:
        for k, v in info.items():
            click.echo(f"{k}: {v}")


@users.command("revoke")
@click.argument("user_id")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@config_option
def users_revoke(user_id: str, as_json: bool, config_path: Path | None) -> None:
    """Erase a person's record from the gallery (secure delete + VACUUM)."""
    cfg = load_or_exit(config_path)
    _check_user_id(user_id)
    with _errors(cfg):
        _require_audit_key(cfg)
        store = _store(cfg)
        try:
            store.revoke(user_id)
        except KeyError:
            _fail(f"no such user {user_id}")
    _audit(cfg, "gallery.revoked", user_id, "revoked")
    if as_json:
        _echo_json({"user_id": user_id, "revoked": True})
    else:
        click.echo(f"revoked {user_id}: record erased")
        click.echo(
            "tip: `edge-gate keys rotate` also makes copies of the old record (backups, freed "
            "disk blocks) undecryptable",
            err=True,
        )


@users.command("rename")
@click.argument("user_id")
@click.argument("new_name")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@config_option
def users_rename(user_id: str, new_name: str, as_json: bool, config_path: Path | None) -> None:
    """Change a person's display name."""
    cfg = load_or_exit(config_path)
    _check_user_id(user_id)
    with _errors(cfg):
        _require_audit_key(cfg)
        try:
            _store(cfg).rename(user_id, new_name)
        except KeyError:
            _fail(f"no such user {user_id}")
        except ValueError as e:
            _fail(f"new name: {e}")
    _audit(cfg, "gallery.enrolled", user_id, "renamed", name=new_name.strip())
    if as_json:
        _echo_json({"user_id": user_id, "name": new_name.strip()})
    else:
        click.echo(f"renamed {user_id}")


# -- gallery verify ---------------------------------------------------------------------------


@click.group("gallery")
def gallery() -> None:
    """Gallery maintenance."""


@gallery.command("verify")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@config_option
def gallery_verify(as_json: bool, config_path: Path | None) -> None:
    """Check every record, the manifest MAC and the rollback counter (exit 65 on tampering)."""
    cfg = load_or_exit(config_path)
    with _errors(cfg):
        store, loaded = _load(cfg)
    info = {
        "ok": True,
        "people": len(loaded.people),
        "templates": sum(p.n_templates for p in loaded.people),
        "generation": loaded.generation,
        "key_id": loaded.key_id,
        "model": loaded.model,
        "db_file": str(store.db_path),
    }
    if as_json:
        _echo_json(info)
    else:
        click.echo(
            f"gallery OK: {info['people']} people, {info['templates']} templates, "
            f"generation {loaded.generation}, key {loaded.key_id}"
        )


# -- identify ---------------------------------------------------------------------------------


@click.command("identify")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line per image")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@config_option
def identify(as_json: bool, images: tuple[Path, ...], config_path: Path | None) -> None:
    """Who is in each IMAGE? (open-set: "unknown" when nobody matches well enough)"""
    from edge_gate.gallery.images import identify_faces, image_limits
    from edge_gate.vision.image_io import load_image

    cfg = load_or_exit(config_path)
    with _errors(cfg):
        _, loaded = _load(cfg)
        pipe = _pipeline(cfg)
        loaded.require_model(pipe.embedder_id)
    failures = 0
    for path in images:
        result: dict[str, Any] = {"path": str(path), "faces": [], "error": None}
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
            _echo_json(result)
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
        score = "" if face["score"] is None else f" score {face['score']:.3f}"
        click.echo(f"{result['path']}: {who}{score} box {face['box']}")


# -- calibrate --------------------------------------------------------------------------------


@click.command("calibrate")
@click.option(
    "--target-far",
    type=click.FloatRange(0, 0.5),
    default=1e-3,
    show_default=True,
    help="false accepts allowed per presentation of a non-enrolled face",
)
@click.option(
    "--non-enrolled",
    "others",
    multiple=True,
    type=click.Path(path_type=Path),
    help="IMAGE or DIR of faces of people NOT in the gallery (repeatable)",
)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@config_option
def calibrate(
    target_far: float, others: tuple[Path, ...], as_json: bool, config_path: Path | None
) -> None:
    """Compute the match threshold for a target false-accept rate from impostor scores."""
    from edge_gate.gallery.calibration import calibrate as run_calibration
    from edge_gate.gallery.images import expand_inputs, image_limits
    from edge_gate.vision.image_io import load_image

    cfg = load_or_exit(config_path)
    with _errors(cfg):
        _, loaded = _load(cfg)
        if len(loaded.people) < 2:
            _fail("calibration needs at least 2 enrolled people")
        vecs: list[Any] = []
        files = expand_inputs(list(others))
        if files:
            pipe = _pipeline(cfg)
            loaded.require_model(pipe.embedder_id)
            for f in _progress(files, show=len(files) > 1 and sys.stderr.isatty()):
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
        _fail(f"calibration impossible: {e}")
    out = {**result.as_json(), "non_enrolled_faces": len(vecs), "current": cfg.gallery.threshold}
    if as_json:
        _echo_json(out)
        return
    click.echo(f"impostor scores: {result.n_impostor} ({len(vecs)} from non-enrolled faces)")
    click.echo(f"genuine scores:  {result.n_genuine} (leave-one-out over enrolled templates)")
    click.echo(f"threshold for FAR ≤ {target_far:g}: {result.threshold:.4f}")
    click.echo(f"  measured FAR {result.measured_far:.5f} (resolution {result.far_resolution:.1e})")
    click.echo(
        f"  expected genuine accept rate {result.genuine_accept_rate:.1%} "
        f"(margin {cfg.gallery.margin})"
    )
    if result.target_far < result.far_resolution:
        click.echo(
            "warning: too few impostor scores to measure this FAR; add --non-enrolled faces",
            err=True,
        )
    click.echo(f"set in the config: [gallery] threshold = {result.threshold:.3f}")


# -- keys rotate ------------------------------------------------------------------------------


@click.group("keys")
def keys() -> None:
    """Gallery key management."""


@keys.command("rotate")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@config_option
def keys_rotate(as_json: bool, config_path: Path | None) -> None:
    """Re-encrypt every record under a fresh gallery key (crash-safe at every step)."""
    cfg = load_or_exit(config_path)
    with _errors(cfg):
        store = _store(cfg)
        old_id, new_id = store.rotate(cfg.gallery.key_file)
    note = None
    if os.environ.get("CREDENTIALS_DIRECTORY"):
        note = "restart the service so systemd loads the new gallery.key credential"
    if as_json:
        _echo_json({"old_key_id": old_id, "new_key_id": new_id, "note": note})
    else:
        click.echo(f"rotated gallery key {old_id} -> {new_id} ({cfg.gallery.key_file})")
        if note:
            click.echo(f"note: {note}", err=True)
