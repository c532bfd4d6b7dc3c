"""Shared plumbing of the gallery admin commands (enroll, users, gallery, identify,
calibrate, keys): fail-closed error handling, JSON output, audit events, progress bars.

Every command verifies the whole gallery before it reads or changes it and fails closed:
exit 65 when the gallery fails its integrity checks, 1 on other errors, 78 on a bad config.
Changes (enroll, revoke, rename) append a signed audit event to the outbox.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from edge_gate.cli.support import EXIT_DATA, fail
from edge_gate.config import EdgeGateConfig
from edge_gate.errors import EdgeGateError, GalleryTamperedError
from edge_gate.gallery.loaded import LoadedGallery
from edge_gate.gallery.record import USER_ID_RE
from edge_gate.gallery.store import GalleryStore, store_from_config

if TYPE_CHECKING:
    from edge_gate.vision.pipeline import FacePipeline

EXIT_TAMPERED = EXIT_DATA  # 65, EX_DATAERR


@contextmanager
def gallery_errors(cfg: EdgeGateConfig | None = None) -> Iterator[None]:
    """Turn edge-gate errors into a clear message and a fail-closed exit status; a failed
    integrity check is also recorded as a ``gallery.tampered`` audit event (best effort)."""
    try:
        yield
    except GalleryTamperedError as e:
        if cfg is not None:
            _audit_tampered(cfg, str(e))
        fail(f"GALLERY INTEGRITY FAILURE: {e}", EXIT_TAMPERED)
    except EdgeGateError as e:
        fail(str(e))
    except OSError as e:  # a full disk, a read-only mount: say which file, not a traceback
        where = f"{e.filename}: " if e.filename else ""
        fail(f"{where}{e.strerror or e}")


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, sort_keys=False))


def open_store(cfg: EdgeGateConfig) -> GalleryStore:
    return store_from_config(cfg.gallery)


def load_gallery(cfg: EdgeGateConfig) -> tuple[GalleryStore, LoadedGallery]:
    store = open_store(cfg)
    return store, store.load()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_user_id(user_id: str) -> str:
    if not USER_ID_RE.match(user_id):
        fail(f"{user_id!r} is not a user id (they look like u_abcdefghijkl)")
    return user_id


def emit_audit(
    cfg: EdgeGateConfig, event: str, subject: str | None, reason: str, **fields: object
) -> None:
    """Append one signed event to the outbox; a failure is reported and exits non-zero."""
    from edge_gate.audit.trail import AuditTrail

    if not cfg.mqtt.include_names:
        fields.pop("name", None)  # names leave the gateway only when the operator opts in
    try:
        trail = AuditTrail.from_config(cfg.mqtt)
    except EdgeGateError as e:
        fail(f"the change is done but its audit event could not be recorded: {e}")
    try:
        seq = trail.emit(event, door=None, subject=subject, reason=reason, **fields)
    finally:
        trail.close()
    if seq is None:
        fail("the change is done but its audit event could not be stored in the outbox")


def _audit_tampered(cfg: EdgeGateConfig, message: str) -> None:
    from edge_gate.audit.trail import AuditTrail

    try:
        trail = AuditTrail.from_config(cfg.mqtt)
    except EdgeGateError:
        return  # the command fails closed anyway; nothing more to do without the audit key
    try:  # build_event cleans and shortens the free-text detail
        trail.emit("gallery.tampered", door=None, reason="integrity_check_failed", detail=message)
    finally:
        trail.close()


def require_audit_trail(cfg: EdgeGateConfig) -> None:
    """Refuse a change up front when its audit event could not be signed or stored (missing
    key, unreadable or damaged outbox): a gallery change never goes unrecorded for that."""
    from edge_gate.audit.trail import AuditTrail

    AuditTrail.from_config(cfg.mqtt).close()


def face_pipeline(cfg: EdgeGateConfig) -> FacePipeline:
    from edge_gate.vision.pipeline import FacePipeline

    return FacePipeline.from_config(cfg.vision)


def with_progress(items: Sequence[Path], show: bool) -> Iterator[Path]:
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
