"""`edge-gate users list|show|revoke|rename|set-card|clear-card|set-pin|clear-pin`.

Card numbers and PINs are never printed, logged or put in events: a card appears as its keyed
tag (:func:`edge_gate.osdp.cards.card_hash` under a key derived from the gallery key), a PIN
not at all (it is stored only as a salted scrypt hash)."""

from __future__ import annotations

import sys
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
from edge_gate.config import EdgeGateConfig
from edge_gate.errors import CardInUseError
from edge_gate.gallery.credentials import card_tag_key
from edge_gate.gallery.loaded import LoadedGallery
from edge_gate.gallery.pin import hash_pin, validate_pin
from edge_gate.gallery.record import PersonRecord
from edge_gate.gallery.store import GalleryStore
from edge_gate.osdp.cards import CardCredential, CardFormat, card_hash


def _card_tag(store: GalleryStore, gallery: LoadedGallery, card: CardCredential) -> str:
    """The card's keyed tag, under the key the gallery is encrypted with (as the daemon)."""
    key = store.keyring.get(gallery.key_id) or store.keyring.newest
    return card_hash(card_tag_key(key.key), card)


def _person_json(rec: PersonRecord, store: GalleryStore, gallery: LoadedGallery) -> dict[str, Any]:
    return {
        "user_id": rec.user_id,
        "name": rec.name,
        "templates": rec.n_templates,
        "model": rec.model,
        "enrolled_at": iso(rec.created_at),
        "card": None
        if rec.card is None
        else {"format": rec.card.format.value, "tag": _card_tag(store, gallery, rec.card)},
        "pin": rec.pin is not None,
    }


@click.group("users")
def users() -> None:
    """List, show, revoke (erase) and rename enrolled people; set their card and PIN."""


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per person per line")
@config_option
def users_list(as_json: bool, config_path: Path | None) -> None:
    """List enrolled people."""
    cfg = load_or_exit(config_path)
    with gallery_errors(cfg):
        store, gallery = load_gallery(cfg)
    for rec in gallery.people:
        if as_json:
            echo_json(_person_json(rec, store, gallery))
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
        store, gallery = load_gallery(cfg)
    rec = gallery.get(user_id)
    if rec is None:
        fail(f"no such user {user_id}")
    info = _person_json(rec, store, gallery)
    if as_json:
        echo_json(info)
    else:
        card = info.pop("card")
        info["card"] = "none" if card is None else f"{card['format']} (tag {card['tag']})"
        info["pin"] = "set" if info["pin"] else "none"
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


def _change_credential(
    cfg: EdgeGateConfig, user_id: str, change: Any, reason: str, **fields: object
) -> PersonRecord:
    """Run ``change(store)`` (a store write), then record ``gallery.credential_changed``."""
    with gallery_errors(cfg):
        require_audit_trail(cfg)
        store = open_store(cfg)
        try:
            old: PersonRecord = change(store)
        except KeyError:
            fail(f"no such user {user_id}")
        except CardInUseError as e:
            fail(f"refused: {e}; clear it there first (`edge-gate users clear-card`)")
    emit_audit(cfg, "gallery.credential_changed", user_id, reason, **fields)
    return old


@users.command("set-card")
@click.argument("user_id")
@click.option(
    "--format",
    "card_format",
    type=click.Choice([f.value for f in CardFormat]),
    default=CardFormat.WIEGAND26.value,
    show_default=True,
    help="card format as the panel reads it",
)
@click.option("--facility", type=click.IntRange(0, 0xFF), required=True, help="facility code")
@click.option("--number", type=click.IntRange(0, 0xFFFF), required=True, help="card number")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@config_option
def users_set_card(
    user_id: str,
    card_format: str,
    facility: int,
    number: int,
    as_json: bool,
    config_path: Path | None,
) -> None:
    """Give a person their access card (replaces any card they had). A card already held by
    another person is refused."""
    cfg = load_or_exit(config_path)
    check_user_id(user_id)
    card = CardCredential(CardFormat(card_format), facility, number)
    with gallery_errors(cfg):
        store, gallery = load_gallery(cfg)
        tag = _card_tag(store, gallery, card)
    old = _change_credential(
        cfg, user_id, lambda store: store.set_card(user_id, card), "card_set", card=tag
    )
    replaced = old.card is not None
    if as_json:
        echo_json({"user_id": user_id, "card": {"format": card_format, "tag": tag}})
    else:
        click.echo(f"{user_id}: card set ({card_format}, tag {tag})")
        if replaced:
            click.echo("their previous card no longer names them", err=True)


def _clear(config_path: Path | None, user_id: str, what: str, as_json: bool) -> None:
    """``clear-card`` / ``clear-pin``: remove the credential, audit, report."""
    cfg = load_or_exit(config_path)
    check_user_id(user_id)
    if what == "card":
        old = _change_credential(cfg, user_id, lambda s: s.set_card(user_id, None), "card_cleared")
        had = old.card is not None
    else:
        old = _change_credential(cfg, user_id, lambda s: s.set_pin(user_id, None), "pin_cleared")
        had = old.pin is not None
    label = "card" if what == "card" else "PIN"
    if as_json:
        echo_json({"user_id": user_id, what: None, f"had_{what}": had})
    else:
        click.echo(f"{user_id}: {label} cleared" if had else f"{user_id}: had no {label}")


@users.command("clear-card")
@click.argument("user_id")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@config_option
def users_clear_card(user_id: str, as_json: bool, config_path: Path | None) -> None:
    """Take a person's card away (the card no longer names anyone)."""
    _clear(config_path, user_id, "card", as_json)


@users.command("clear-pin")
@click.argument("user_id")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@config_option
def users_clear_pin(user_id: str, as_json: bool, config_path: Path | None) -> None:
    """Remove a person's PIN."""
    _clear(config_path, user_id, "pin", as_json)


def _read_pin(pin_stdin: bool) -> str:
    if pin_stdin:
        pin = sys.stdin.readline().rstrip("\r\n")
    else:
        pin = click.prompt("PIN", hide_input=True, confirmation_prompt=True, err=True)
    try:
        return validate_pin(pin)
    except ValueError as e:
        fail(str(e))


@users.command("set-pin")
@click.argument("user_id")
@click.option("--pin-stdin", is_flag=True, help="read the PIN from the first line of stdin")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@config_option
def users_set_pin(user_id: str, pin_stdin: bool, as_json: bool, config_path: Path | None) -> None:
    """Set a person's PIN (4-12 digits; asked twice without echo, or read with --pin-stdin).
    Only a salted scrypt hash is stored."""
    cfg = load_or_exit(config_path)
    check_user_id(user_id)
    hashed = hash_pin(_read_pin(pin_stdin))
    _change_credential(cfg, user_id, lambda s: s.set_pin(user_id, hashed), "pin_set")
    if as_json:
        echo_json({"user_id": user_id, "pin": True})
    else:
        click.echo(f"{user_id}: PIN set")
