"""`edge-gate gallery verify` and `edge-gate gallery keys rotate` (old spelling: `keys rotate`)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from edge_gate.cli.gallery_common import (
    echo_json,
    emit_audit,
    gallery_errors,
    load_gallery,
    open_store,
    require_audit_trail,
)
from edge_gate.cli.support import config_option, load_or_exit


@click.group("gallery")
def gallery() -> None:
    """Gallery maintenance."""


@gallery.command("verify")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@config_option
def gallery_verify(as_json: bool, config_path: Path | None) -> None:
    """Check every record, the manifest MAC and the rollback counter (exit 65 on tampering)."""
    cfg = load_or_exit(config_path)
    with gallery_errors(cfg):
        store, loaded = load_gallery(cfg)
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
        echo_json(info)
    else:
        click.echo(
            f"gallery OK: {info['people']} people, {info['templates']} templates, "
            f"generation {loaded.generation}, key {loaded.key_id}"
        )


@click.group("keys")
def keys() -> None:
    """Gallery key management."""


@keys.command("rotate")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@config_option
def keys_rotate(as_json: bool, config_path: Path | None) -> None:
    """Re-encrypt every record under a fresh gallery key (crash-safe at every step)."""
    cfg = load_or_exit(config_path)
    with gallery_errors(cfg):
        require_audit_trail(cfg)
        store = open_store(cfg)
        old_id, new_id = store.rotate(cfg.gallery.key_file)
    emit_audit(cfg, "gallery.keys_rotated", None, f"rotated:{old_id}->{new_id}")
    note = None
    if os.environ.get("CREDENTIALS_DIRECTORY"):
        note = "restart the service so systemd loads the new gallery.key credential"
    if as_json:
        echo_json({"old_key_id": old_id, "new_key_id": new_id, "note": note})
    else:
        click.echo(f"rotated gallery key {old_id} -> {new_id} ({cfg.gallery.key_file})")
        if note:
            click.echo(f"note: {note}", err=True)


gallery.add_command(keys, "keys")
