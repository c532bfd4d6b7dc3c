"""``edge-gate init DIR``: a complete, valid installation with private keys in DIR."""

from __future__ import annotations

import stat
from pathlib import Path

from click.testing import CliRunner

from edge_gate.audit.signing import load_signing_key
from edge_gate.cli import cli
from edge_gate.config import load_config
from edge_gate.door.keys import load_relay_key
from edge_gate.gallery.store import store_from_config


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
