"""``edge-gate init DIR``: a self-contained installation for trying things out.

Writes ``DIR/edge-gate.toml`` with every state path inside DIR, fresh keys (gallery key ring,
relay HMAC key, audit Ed25519 signing key; mode 0600, written atomically) and an empty
encrypted gallery. Refuses to overwrite anything without ``--force``; with ``--force`` every
file it would replace (config, keys, gallery database and its companions) is first moved into
``DIR/backup-<UTC time>/`` (mode 0700), never deleted. A failed init puts the old files back
and removes whatever it created, including DIR itself when init made it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import time
from pathlib import Path
from urllib.parse import quote

import click

from edge_gate.audit.signing import generate_signing_key
from edge_gate.cli.support import fail
from edge_gate.config import EdgeGateConfig, validate_config_text
from edge_gate.errors import EdgeGateError
from edge_gate.fsutil import atomic_write, fsync_dir
from edge_gate.gallery.keyfile import KeyRing, new_key, write_keyring
from edge_gate.gallery.store import GalleryStore, default_generation_path

CONFIG_NAME = "edge-gate.toml"
RELAY_KEY_BYTES = 32
DEFAULT_GATEWAY_ID = "gateway"
BACKUP_PREFIX = "backup-"
# SQLite side files next to the gallery database (init writes journal_mode=DELETE, but a
# database someone switched to WAL, or a crash mid-commit, leaves these behind)
_DB_COMPANIONS = ("-journal", "-wal", "-shm")


def _q(path: Path | str) -> str:
    """A TOML basic string (JSON escapes are valid TOML escapes)."""
    return json.dumps(str(path))


def default_gateway_id(hostname: str | None = None) -> str:
    """This host's short name as an ``[mqtt] gateway_id`` (``[A-Za-z0-9_-]{1,64}``).

    Other characters become ``-``; an empty or meaningless name (``localhost``) gives
    :data:`DEFAULT_GATEWAY_ID`.
    """
    if hostname is None:
        try:
            hostname = socket.gethostname()
        except OSError:
            hostname = ""
    short = hostname.strip().split(".", 1)[0]
    gid = re.sub(r"[^A-Za-z0-9_-]+", "-", short).strip("-")[:64].strip("-")
    if not gid or gid.lower() in ("localhost", "localhost-localdomain"):
        return DEFAULT_GATEWAY_ID
    return gid


def render_config(d: Path, gateway_id: str = DEFAULT_GATEWAY_ID) -> str:
    """The demo configuration with every state path inside ``d`` (absolute)."""
    # the file:// URL is percent-encoded: camera.url refuses white space, and
    # edge_gate.capture.url.parse_source decodes the path again
    camera_url = "file://" + quote(str(d / "camera.mp4"))
    return f"""\
# edge-gate configuration written by `edge-gate init {_q(d)}`.
# Every file lives in this directory; keys are mode 0600. Edit freely, then run
# `edge-gate check-config --config {_q(d / CONFIG_NAME)}`.

[camera]
# placeholder: point this at rtsp(s)://camera/stream, /dev/videoN or a file:// clip
url = {_q(camera_url)}

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
# this gateway's id in topics and signed events (from the host name; change it freely)
gateway_id = {_q(gateway_id)}
outbox_file = {_q(d / "outbox.db")}
signing_key_file = {_q(d / "audit.key")}

[service]
state_dir = {_q(d)}
"""


def replaced_files(cfg: EdgeGateConfig, config_path: Path) -> list[Path]:
    """Every file init writes or would make stale: config, keys, gallery db and companions.

    The relay counter and the audit outbox are left alone: the counter must never go back,
    and the outbox holds events already signed and not yet delivered.
    """
    db = cfg.gallery.db_file
    return [
        config_path,
        cfg.gallery.key_file,
        cfg.relay.key_file,
        cfg.mqtt.signing_key_file,
        db,
        cfg.gallery.generation_file or default_generation_path(db),
        *(db.with_name(db.name + suffix) for suffix in _DB_COMPANIONS),
    ]


def _make_backup_dir(d: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for n in range(1000):
        backup = d / (f"{BACKUP_PREFIX}{stamp}" + (f"-{n}" if n else ""))
        try:
            backup.mkdir(mode=0o700)
        except FileExistsError:
            continue
        backup.chmod(0o700)
        return backup
    fail(f"{d}: cannot pick a backup directory name", command="init")


def _missing_dirs(d: Path) -> list[Path]:
    """``d`` and those of its parents that do not exist yet, deepest first."""
    out: list[Path] = []
    for p in (d, *d.parents):
        if p.exists():
            break
        out.append(p)
    return out


@click.command("init")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--force",
    is_flag=True,
    help="replace an existing installation; its config, keys and gallery are moved to "
    "DIR/backup-<UTC time>/ first",
)
def init(directory: Path, force: bool) -> None:
    """Create DIR/edge-gate.toml, fresh keys and an empty gallery in DIR."""
    d = directory.expanduser().absolute()
    config_path = d / CONFIG_NAME
    text = render_config(d, default_gateway_id())
    cfg, problems = validate_config_text(text)
    if cfg is None:  # a drift between this template and the config models
        fail("generated config is invalid:\n" + "\n".join(problems), command="init")
    existing = [p for p in replaced_files(cfg, config_path) if os.path.lexists(p)]
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        fail(f"refusing to overwrite {names} (use --force)", command="init")
    created_dirs = _missing_dirs(d)
    lock_file = cfg.gallery.db_file.with_name(cfg.gallery.db_file.name + ".lock")
    stray = [] if os.path.lexists(lock_file) else [lock_file]  # GalleryStore's lock file
    backup: Path | None = None
    moved: list[tuple[Path, Path]] = []
    written: list[Path] = []
    try:
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o700)
        if existing:
            backup = _make_backup_dir(d)
            for p in existing:
                dest = backup / p.name
                os.replace(p, dest)  # same directory tree: a rename, modes and bytes kept
                moved.append((p, dest))
            fsync_dir(backup)
            fsync_dir(d)
        ring = KeyRing((new_key(),))
        written.append(cfg.gallery.key_file)
        write_keyring(cfg.gallery.key_file, ring)
        written.append(cfg.relay.key_file)
        atomic_write(cfg.relay.key_file, secrets.token_bytes(RELAY_KEY_BYTES), mode=0o600)
        written.append(cfg.mqtt.signing_key_file)
        atomic_write(cfg.mqtt.signing_key_file, generate_signing_key(), mode=0o600)
        written += [
            cfg.gallery.generation_file or default_generation_path(cfg.gallery.db_file),
            cfg.gallery.db_file,
        ]
        GalleryStore(cfg.gallery.db_file, cfg.gallery.generation_file, ring).create()
        written.append(config_path)
        atomic_write(config_path, text.encode("utf-8"), mode=0o644)
    except (EdgeGateError, OSError) as e:
        _undo([*written, *stray], moved, backup, created_dirs)
        fail(str(e), command="init")
    except BaseException:
        _undo([*written, *stray], moved, backup, created_dirs)
        raise
    if backup is not None:
        click.echo(f"moved the previous {', '.join(p.name for p, _ in moved)} to {backup}/")
    click.echo(f"wrote {config_path}")
    click.echo(f"keys: {cfg.gallery.key_file}, {cfg.relay.key_file}, {cfg.mqtt.signing_key_file}")
    click.echo(f"gateway id: {cfg.mqtt.gateway_id}")
    click.echo(f"next: edge-gate enroll --config {config_path} --name NAME PHOTO...")


def _undo(
    written: list[Path],
    moved: list[tuple[Path, Path]],
    backup: Path | None,
    created_dirs: list[Path],
) -> None:
    """Best effort: remove what this init wrote, put the old files back, drop new dirs."""
    for p in written:
        with contextlib.suppress(OSError):
            p.unlink()
    for original, dest in reversed(moved):
        with contextlib.suppress(OSError):
            os.replace(dest, original)
    if backup is not None:
        with contextlib.suppress(OSError):
            backup.rmdir()  # only when empty: a file that could not go back stays there
    for p in created_dirs:  # deepest first; rmdir never removes anything but an empty dir
        with contextlib.suppress(OSError):
            p.rmdir()
