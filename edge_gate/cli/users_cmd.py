"""`edge-gate users list|show|revoke|rename`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from edge_gate.cli.gallery_common import (
    check_user_id,
    echo_json,
    emit_audit,
    gallery_errors,
    iso,
    load_gallery,
    open_store,
    require_audit_trail,
)
from edge_gate.cli.support import config_option, fail, load_or_exit


def _person_json(rec: Any) -> dict[str, Any]:
    return {
        "user_id": rec.user_id,
        "name": rec.name,
        "templates": rec.n_templates,
        "model": rec.model,
        "enrolled_at": iso(rec.created_at),
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
    with gallery_errors(cfg):
        _, gallery = load_gallery(cfg)
    for rec in gallery.people:
        if as_json:
            echo_json(_person_json(rec))
        else:
            click.echo(f"{rec.user_id}  {rec.n_templates:2d}  {iso(rec.created_at)}  {rec.name}")
    if not as_json:
        click.echo(f"{len(gallery.people)} people, generation {gallery.generation}", err=True)


@users.command("show")
@click.argument("user_id")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@config_option
def users_show(user_id: str, as_json: bool, config_path: Path | None) -> None:
    """Show one person."""
    cfg = load_or_exit(config_path)
    check_user_id(user_id)
    with gallery_errors(cfg):
        _, gallery = load_gallery(cfg)
    rec = gallery.get(user_id)
    if rec is None:
        fail(f"no such user {user_id}")
    info = _person_json(rec)
    if as_json:
        echo_json(info)
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
    check_user_id(user_id)
    with gallery_errors(cfg):
        require_audit_trail(cfg)
        store = open_store(cfg)
        try:
            store.revoke(user_id)
        except KeyError:
            if as_json:
                echo_json({"user_id": user_id, "revoked": False, "error": "no such user"})
            fail(f"no such user {user_id}")
    emit_audit(cfg, "gallery.revoked", user_id, "revoked")
    if as_json:
        echo_json({"user_id": user_id, "revoked": True})
    else:
        click.echo(f"revoked {user_id}: record erased")
        click.echo(
            f"a running daemon refuses them within {cfg.service.gallery_poll_s:g} s "
            "(it watches the gallery)",
            err=True,
        )
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
    check_user_id(user_id)
    with gallery_errors(cfg):
        require_audit_trail(cfg)
        try:
            open_store(cfg).rename(user_id, new_name)
        except KeyError:
            fail(f"no such user {user_id}")
        except ValueError as e:
            fail(f"new name: {e}")
    emit_audit(cfg, "gallery.renamed", user_id, "renamed", name=new_name.strip())
    if as_json:
        echo_json({"user_id": user_id, "name": new_name.strip()})
    else:
        click.echo(f"renamed {user_id}")
