"""``edge-gate init DIR``: a complete, valid installation with private keys in DIR."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_gate.audit.signing import load_signing_key
from edge_gate.capture.url import SourceKind, parse_source
from edge_gate.cli import cli
from edge_gate.cli.init_cmd import default_gateway_id
from edge_gate.config import load_config
from edge_gate.door.keys import load_relay_key
from edge_gate.errors import GalleryError
from edge_gate.gallery.store import GalleryStore, store_from_config

# what init writes or would make stale, and so what --force must move aside
REPLACED = (
    "edge-gate.toml",
    "gallery.key",
    "relay.key",
    "audit.key",
    "gallery.db",
    "gallery.db.gen",
    "gallery.db-wal",
    "gallery.db-shm",
)


def test_init_writes_valid_config_and_private_keys(tmp_path: Path) -> None:
    """Config validates, every state path is inside DIR, keys are 0600 and load, gallery empty."""
    d = tmp_path / "site"
    result = CliRunner().invoke(cli, ["init", str(d)])
    assert result.exit_code == 0, result.output
    cfg = load_config(d / "edge-gate.toml")
    paths = [
        cfg.gallery.db_file,
        cfg.gallery.key_file,
        cfg.relay.key_file,
        cfg.relay.counter_file,
        cfg.mqtt.outbox_file,
        cfg.mqtt.signing_key_file,
        cfg.service.state_dir,
        Path(cfg.relay.port),
    ]
    for p in paths:
        assert p == d or d in p.parents, p
    for key in (cfg.gallery.key_file, cfg.relay.key_file, cfg.mqtt.signing_key_file):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert len(load_relay_key(cfg.relay.key_file)) == 32
    load_signing_key(cfg.mqtt.signing_key_file)
    loaded = store_from_config(cfg.gallery).load()
    assert loaded.people == ()
    assert loaded.generation == 0
    assert stat.S_IMODE(d.stat().st_mode) == 0o700


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    """A second init keeps the existing keys unless --force is given."""
    d = tmp_path / "site"
    runner = CliRunner()
    assert runner.invoke(cli, ["init", str(d)]).exit_code == 0
    key_before = (d / "gallery.key").read_bytes()
    again = runner.invoke(cli, ["init", str(d)])
    assert again.exit_code != 0
    assert "refusing to overwrite" in again.output
    assert (d / "gallery.key").read_bytes() == key_before
    forced = runner.invoke(cli, ["init", "--force", str(d)])
    assert forced.exit_code == 0, forced.output
    assert (d / "gallery.key").read_bytes() != key_before
    cfg = load_config(d / "edge-gate.toml")
    assert store_from_config(cfg.gallery).load().people == ()
    (backup,) = d.glob("backup-*")
    assert (backup / "gallery.key").read_bytes() == key_before


def test_init_force_moves_the_old_installation_aside(tmp_path: Path) -> None:
    """--force never destroys: every file it replaces (config, keys, gallery and its generation,
    WAL and SHM files) lands unchanged, mode kept, in DIR/backup-<UTC time>/ (0700); the new
    installation is fresh and valid; files init does not own stay where they are."""
    d = tmp_path / "site"
    runner = CliRunner()
    assert runner.invoke(cli, ["init", str(d)]).exit_code == 0
    modes = {}
    for name in REPLACED:
        p = d / name
        p.write_bytes(b"marker " + name.encode())
        if name == "edge-gate.toml":
            p.chmod(0o640)
        else:
            p.chmod(0o600)
        modes[name] = stat.S_IMODE(p.stat().st_mode)
    (d / "relay.counter").write_bytes(b"counter marker")
    (d / "outbox.db").write_bytes(b"outbox marker")
    forced = runner.invoke(cli, ["init", "--force", str(d)])
    assert forced.exit_code == 0, forced.output
    backups = list(d.glob("backup-*"))
    assert len(backups) == 1
    backup = backups[0]
    assert re.fullmatch(r"backup-\d{8}T\d{6}Z", backup.name), backup.name
    assert stat.S_IMODE(backup.stat().st_mode) == 0o700
    assert str(backup) in forced.output
    assert sorted(os.listdir(backup)) == sorted(REPLACED)
    for name in REPLACED:
        moved = backup / name
        assert moved.read_bytes() == b"marker " + name.encode(), name
        assert stat.S_IMODE(moved.stat().st_mode) == modes[name], name
    # the new installation: valid config, loadable keys, an empty gallery, no stale side files
    cfg = load_config(d / "edge-gate.toml")
    assert len(load_relay_key(cfg.relay.key_file)) == 32
    load_signing_key(cfg.mqtt.signing_key_file)
    loaded = store_from_config(cfg.gallery).load()
    assert (loaded.people, loaded.generation) == ((), 0)
    assert not (d / "gallery.db-wal").exists()
    assert not (d / "gallery.db-shm").exists()
    for key in (cfg.gallery.key_file, cfg.relay.key_file, cfg.mqtt.signing_key_file):
        assert b"marker" not in key.read_bytes()
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert (d / "relay.counter").read_bytes() == b"counter marker"
    assert (d / "outbox.db").read_bytes() == b"outbox marker"


def test_init_works_in_a_path_with_spaces_and_non_ascii(tmp_path: Path) -> None:
    """`edge-gate init "/tmp/sp ace/ü"`: a valid config whose placeholder file:// camera URL
    names the directory (percent-encoded, decoded again by the URL parser)."""
    d = tmp_path / "sp ace" / "ü"
    result = CliRunner().invoke(cli, ["init", str(d)])
    assert result.exit_code == 0, result.output
    cfg = load_config(d / "edge-gate.toml")
    assert " " not in cfg.camera.url
    source = parse_source(cfg.camera.url)
    assert (source.kind, source.target) == (SourceKind.FILE, str(d / "camera.mp4"))
    assert cfg.gallery.db_file == d / "gallery.db"
    assert store_from_config(cfg.gallery).load().people == ()
    check = CliRunner().invoke(cli, ["check-config", "--config", str(d / "edge-gate.toml")])
    assert check.exit_code == 0, check.output


def test_failed_init_leaves_no_half_made_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the keys were written removes them and the directories init made."""

    def broken_create(self: GalleryStore, *, force: bool = False) -> str:
        raise GalleryError("disk on fire")

    monkeypatch.setattr(GalleryStore, "create", broken_create)
    d = tmp_path / "new" / "site"
    result = CliRunner().invoke(cli, ["init", str(d)])
    assert result.exit_code == 1
    assert "disk on fire" in result.output
    assert not (tmp_path / "new").exists()
    assert os.listdir(tmp_path) == []


def test_failed_init_force_puts_the_old_installation_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When --force fails half-way, the old files are back in place and no backup is left."""
    d = tmp_path / "site"
    assert CliRunner().invoke(cli, ["init", str(d)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in d.iterdir() if p.is_file()}

    def broken_create(self: GalleryStore, *, force: bool = False) -> str:
        raise GalleryError("disk on fire")

    monkeypatch.setattr(GalleryStore, "create", broken_create)
    result = CliRunner().invoke(cli, ["init", "--force", str(d)])
    assert result.exit_code == 1
    assert {p.name: p.read_bytes() for p in d.iterdir() if p.is_file()} == before
    assert list(d.glob("backup-*")) == []


def test_init_writes_a_gateway_id_from_the_host_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[mqtt] gateway_id comes from the host name, sanitised to what the config accepts."""
    monkeypatch.setattr("socket.gethostname", lambda: "Door 7.büro.example.lan")
    d = tmp_path / "site"
    result = CliRunner().invoke(cli, ["init", str(d)])
    assert result.exit_code == 0, result.output
    assert 'gateway_id = "Door-7"' in (d / "edge-gate.toml").read_text()
    assert load_config(d / "edge-gate.toml").mqtt.gateway_id == "Door-7"


@pytest.mark.parametrize(
    ("hostname", "expected"),
    [
        ("door-1", "door-1"),
        ("door_1.example.lan", "door_1"),
        ("tür", "t-r"),
        ("x" * 80, "x" * 64),
        ("", "gateway"),
        ("...", "gateway"),
        ("ü", "gateway"),
        ("localhost", "gateway"),
        ("localhost.localdomain", "gateway"),
    ],
)
def test_default_gateway_id(hostname: str, expected: str) -> None:
    assert default_gateway_id(hostname) == expected
