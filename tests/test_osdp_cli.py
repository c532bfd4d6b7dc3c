"""``edge-gate osdp test|keygen`` against the libosdp PD simulator in another process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cli_helpers import json_lines, run
from tests.osdp_rig import SimProcess, socat_link, write_scbk

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _config(tmp_path: Path, port: str, key_file: Path) -> Path:
    conf = tmp_path / "edge-gate.toml"
    conf.write_text(f'[osdp_cp]\nport = "{port}"\nscbk_file = "{key_file}"\nbaudrate = 115200\n')
    return conf


def test_osdp_test_reports_secure_channel_id_and_pulse(tmp_path: Path) -> None:
    """Right key: Secure Channel, the PD's id/capabilities and an acknowledged pulse; exit 0."""
    key_file = tmp_path / "cp.scbk"
    key = write_scbk(key_file)
    write_scbk(tmp_path / "pd.scbk", key)
    with socat_link(tmp_path) as link:
        sim = SimProcess("pd", link.b, tmp_path / "pd.scbk")
        try:
            conf = _config(tmp_path, link.a, key_file)
            result = run("osdp", "test", "--config", str(conf), "--pulse-ms", "200", "--json")
        finally:
            sim.close()
    assert result.exit_code == 0, result.output
    report = json_lines(result.output)[0]
    assert report["secure"] is True
    assert report["pulse"] == "acked"
    assert report["cap_output_control_items"] == 1
    assert key.hex() not in result.output


def test_osdp_test_wrong_key_fails(tmp_path: Path) -> None:
    key_file = tmp_path / "cp.scbk"
    write_scbk(key_file)
    write_scbk(tmp_path / "pd.scbk")
    with socat_link(tmp_path) as link:
        sim = SimProcess("pd", link.b, tmp_path / "pd.scbk")
        try:
            conf = _config(tmp_path, link.a, key_file)
            result = run("osdp", "test", "--config", str(conf), "--timeout-s", "3", "--json")
        finally:
            sim.close()
    assert result.exit_code == 1
    assert json_lines(result.output)[0]["secure"] is False
    assert "no Secure Channel" in result.output


def test_osdp_keygen(tmp_path: Path) -> None:
    path = tmp_path / "new.scbk"
    assert run("osdp", "keygen", str(path)).exit_code == 0
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert run("osdp", "keygen", str(path)).exit_code == 1
