"""Config loading: every problem reported as key.path: message; bad config exits 78."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from edge_gate.cli import cli
from edge_gate.config import CameraConfig, load_config, validate_config_text


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
    """A valid file passes with exit 0; so does a whole site made by `init`."""
    good = tmp_path / "good.toml"
    good.write_text('[policy]\ndoor_id = "front"\n')
    result = CliRunner().invoke(cli, ["check-config", "--syntax-only", "--config", str(good)])
    assert result.exit_code == 0, result.output
    assert "OK (syntax only)" in result.output
    assert CliRunner().invoke(cli, ["init", str(tmp_path / "site")]).exit_code == 0
    site = tmp_path / "site" / "edge-gate.toml"
    result = CliRunner().invoke(cli, ["check-config", "--config", str(site)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(": OK")


def test_check_config_reads_the_files_the_daemon_reads(tmp_path: Path) -> None:
    """A loose or missing key, a missing CA or missing models: each is named, exit 78 (the
    daemon would refuse to start with the same message)."""
    assert CliRunner().invoke(cli, ["init", str(tmp_path / "site")]).exit_code == 0
    site = tmp_path / "site"
    (site / "audit.key").chmod(0o644)
    (site / "relay.key").unlink()
    conf = site / "edge-gate.toml"
    text = conf.read_text()
    text = text.replace("[mqtt]\n", f'[mqtt]\nca_file = "{tmp_path}/no-ca.crt"\n', 1)
    text += f'\n[vision]\nmodels_dir = "{tmp_path}/no-models"\n'
    conf.write_text(text)
    result = CliRunner().invoke(cli, ["check-config", "--config", str(conf)])
    assert result.exit_code == 78, result.output
    lines = result.output.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "models",
        "relay key",
        "audit signing key",
        "mqtt TLS and credentials",
    ]
    assert "no-models" in lines[0]
    assert "relay.key" in lines[1]
    assert "too open" in lines[2]
    assert "mqtt.ca_file" in lines[3]
    assert "PRIVATE KEY" not in result.output


def _check_config(tmp_path: Path, text: str) -> tuple[int, str]:
    conf = tmp_path / "edge-gate.toml"
    conf.write_text(text)
    result = CliRunner().invoke(cli, ["check-config", "--config", str(conf)])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("rtsp://admin:s3cr3t-pw@cam/x", "carries credentials"),
        ("rtsps://:s3cr3t-pw@cam/x", "carries credentials"),
        ("ftp://x", "unsupported scheme"),
        ("rtsp:///stream", "has no host"),
        ("file://relative.mp4", "absolute local path"),
        ("", "empty"),
    ],
)
def test_check_config_refuses_camera_urls_the_daemon_refuses(
    tmp_path: Path, url: str, message: str
) -> None:
    """check-config applies the daemon's URL parser; a password in the URL is never echoed."""
    code, output = _check_config(tmp_path, f"[camera]\nurl = {json.dumps(url)}\n")
    assert code == 78, output
    assert f"camera.url: {message}" in output or ("camera.url: " in output and message in output)
    assert "s3cr3t" not in output


def test_camera_url_error_does_not_echo_the_password() -> None:
    """``str(ValidationError)`` (printed by `camera probe --url`) hides the rejected input."""
    with pytest.raises(ValidationError) as info:
        CameraConfig.model_validate({"url": "rtsp://admin:s3cr3t-pw@cam/x"})
    assert "s3cr3t" not in str(info.value)
    assert "carries credentials" in str(info.value)


@pytest.mark.parametrize(
    "url", ["rtsp://cam.local:554/stream", "rtsps://cam/x", "/dev/video0", "file:///tmp/a.mp4"]
)
def test_good_camera_urls_pass(url: str) -> None:
    cfg, problems = validate_config_text(f"[camera]\nurl = {json.dumps(url)}\n")
    assert problems == []
    assert cfg is not None


@pytest.mark.parametrize(
    "thresholds",
    ["[5.0, 0.7, 0.8]", "[0.6, -1.0, 0.8]", "[0.6, 0.7, nan]", "[0, 0.7, 0.8]", "[0.6, 0.7, inf]"],
)
def test_detect_thresholds_must_be_probabilities(thresholds: str) -> None:
    """Each MTCNN stage threshold is in (0, 1]: anything else means no face is ever found."""
    cfg, problems = validate_config_text(f"[vision]\ndetect_thresholds = {thresholds}\n")
    assert cfg is None
    assert problems[0].startswith("vision.detect_thresholds:")
    assert "(0, 1]" in problems[0]


def test_detect_thresholds_accept_the_bounds() -> None:
    cfg, problems = validate_config_text("[vision]\ndetect_thresholds = [1e-6, 0.5, 1]\n")
    assert problems == []
    assert cfg is not None
    assert cfg.vision.detect_thresholds == (1e-6, 0.5, 1.0)


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("relay", "port"),
        ("gallery", "db_file"),
        ("gallery", "key_file"),
        ("gallery", "generation_file"),
        ("relay", "counter_file"),
        ("mqtt", "host"),
        ("mqtt", "outbox_file"),
        ("mqtt", "ca_file"),
        ("service", "state_dir"),
        ("vision", "models_dir"),
        ("camera", "password_file"),
    ],
)
@pytest.mark.parametrize("value", ["", "  "])
def test_empty_paths_and_ports_refused(section: str, key: str, value: str) -> None:
    """``db_file = ""`` would silently mean the current directory: it is an error."""
    cfg, problems = validate_config_text(f"[{section}]\n{key} = {json.dumps(value)}\n")
    assert cfg is None
    assert problems == [f"{section}.{key}: Value error, must not be empty"]


RELATIVE = """
[gallery]
db_file = "gallery.db"
key_file = "keys/gallery.key"
[vision]
models_dir = "../models"
[service]
state_dir = "."
[relay]
counter_file = "/abs/relay.counter"
"""


def test_relative_paths_are_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same file loaded from two working directories (and via a relative --config path)
    names the same absolute files: those next to the config."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "edge-gate.toml").write_text(RELATIVE)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    a = load_config(site / "edge-gate.toml")
    monkeypatch.chdir(site)
    b = load_config(Path("edge-gate.toml"))
    assert a == b
    assert a.gallery.db_file == site / "gallery.db"
    assert a.gallery.key_file == site / "keys" / "gallery.key"
    assert a.vision.models_dir == site / ".." / "models"
    assert a.service.state_dir == site / "."
    assert a.relay.counter_file == Path("/abs/relay.counter")
    assert a.mqtt.outbox_file == Path("/var/lib/edge-gate/outbox.db")  # defaults untouched
    assert a.gallery.generation_file is None
    assert a.camera.ca_file is None
