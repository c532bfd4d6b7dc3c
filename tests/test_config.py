"""Config loading: every problem reported as key.path: message; bad config exits 78."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from edge_gate.cli import cli
from edge_gate.config import validate_config_text


def test_defaults_validate() -> None:
    """An empty file is a valid config made of documented defaults."""
    cfg, problems = validate_config_text("")
    assert problems == []
    assert cfg is not None
    assert cfg.relay.baudrate == 115200


def test_every_problem_is_listed_with_its_key_path() -> None:
    """Typos, wrong types and out-of-range values are all reported, each with its dotted path."""
    text = """
[camera]
widht = 640
fps = -3
[relay]
baudrate = "fast"
[bogus]
x = 1
"""
    cfg, problems = validate_config_text(text)
    assert cfg is None
    joined = "\n".join(problems)
    assert "camera.widht: Extra inputs are not permitted" in joined
    assert "camera.fps: Input should be greater than 0" in joined
    assert "relay.baudrate:" in joined
    assert "bogus: Extra inputs are not permitted" in joined


def test_toml_syntax_error_is_reported() -> None:
    """Broken TOML gives a message, not a traceback."""
    cfg, problems = validate_config_text("[camera\nurl=")
    assert cfg is None
    assert problems[0].startswith("<toml>:")


def test_check_config_exits_78_on_bad_config(tmp_path: Path) -> None:
    """`edge-gate check-config` fails closed with EX_CONFIG (78) and prints the key path."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[policy]\nk_frames = 0\n")
    result = CliRunner().invoke(cli, ["check-config", "--config", str(bad)])
    assert result.exit_code == 78
    assert "policy.k_frames" in result.output


def test_check_config_missing_file_exits_78(tmp_path: Path) -> None:
    """A missing config file is a config error, not a crash."""
    result = CliRunner().invoke(cli, ["check-config", "--config", str(tmp_path / "none.toml")])
    assert result.exit_code == 78
    assert "cannot read config" in result.output


def test_check_config_ok(tmp_path: Path) -> None:
    """A valid file passes with exit 0."""
    good = tmp_path / "good.toml"
    good.write_text('[policy]\ndoor_id = "front"\n')
    result = CliRunner().invoke(cli, ["check-config", "--config", str(good)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
