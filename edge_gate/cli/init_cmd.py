"""``edge-gate init DIR``: a self-contained installation for trying things out.

Writes ``DIR/edge-gate.toml`` with every state path inside DIR, fresh keys (gallery key ring,
relay HMAC key, audit Ed25519 signing key; mode 0600, written atomically) and an empty
encrypted gallery. Refuses to overwrite anything without ``--force``.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import click

from edge_gate.audit.signing import generate_signing_key
from edge_gate.config import validate_config_text
from edge_gate.errors import EdgeGateError
from edge_gate.fsutil import atomic_write
from edge_gate.gallery.keyfile import KeyRing, new_key, write_keyring
from edge_gate.gallery.store import GalleryStore

CONFIG_NAME = "edge-gate.toml"
RELAY_KEY_BYTES = 32


def _q(path: Path | str) -> str:
    """A TOML basic string (JSON escapes are valid TOML escapes)."""
    return json.dumps(str(path))


def render_config(d: Path) -> str:
    """The demo configuration with every state path inside ``d`` (absolute)."""
    return f"""\
# edge-gate configuration written by `edge-gate init {d}`.
# Every file lives in this directory; keys are mode 0600. Edit freely, then run
# `edge-gate check-config --config {d / CONFIG_NAME}`.

[camera]
# placeholder: point this at rtsp(s)://camera/stream, /dev/videoN or a file:// clip
url = {_q("file://" + str(d / "camera.mp4"))}

[gallery]
db_file = {_q(d / "gallery.db")}
key_file = {_q(d / "gallery.key")}
generation_file = {_q(d / "gallery.db.gen")}

[relay]
# placeholder: the serial device of the relay controller (e.g. a pty from `edge-gate relay-sim`)
port = {_q(d / "relay.pty")}
key_file = {_q(d / "relay.key")}
counter_file = {_q(d / "relay.counter")}

[mqtt]
outbox_file = {_q(d / "outbox.db")}
signing_key_file = {_q(d / "audit.key")}

[service]
state_dir = {_q(d)}
"""


@click.command("init")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--force", is_flag=True, help="overwrite an existing config, keys and gallery")
def init(directory: Path, force: bool) -> None:
    """Create DIR/edge-gate.toml, fresh keys and an empty gallery in DIR."""
    d = directory.expanduser().absolute()
    config_path = d / CONFIG_NAME
    targets = [config_path, d / "gallery.key", d / "relay.key", d / "audit.key", d / "gallery.db"]
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        raise click.ClickException(f"refusing to overwrite {names} (use --force)")
    text = render_config(d)
    cfg, problems = validate_config_text(text)
    if cfg is None:  # a drift between this template and the config models
        raise click.ClickException("generated config is invalid:\n" + "\n".join(problems))
    try:
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o700)
        ring = KeyRing((new_key(),))
        write_keyring(cfg.gallery.key_file, ring)
        atomic_write(cfg.relay.key_file, secrets.token_bytes(RELAY_KEY_BYTES), mode=0o600)
        atomic_write(cfg.mqtt.signing_key_file, generate_signing_key(), mode=0o600)
        GalleryStore(cfg.gallery.db_file, cfg.gallery.generation_file, ring).create(force=force)
        atomic_write(config_path, text.encode("utf-8"), mode=0o644)
    except (EdgeGateError, OSError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"wrote {config_path}")
    click.echo(f"keys: {cfg.gallery.key_file}, {cfg.relay.key_file}, {cfg.mqtt.signing_key_file}")
    click.echo(f"next: edge-gate enroll --config {config_path} --name NAME PHOTO...")
