"""systemd/edge-gate.service: hardening score, syntax, and agreement with the code's names."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from edge_gate.audit import signing
from edge_gate.config import DEFAULT_CONFIG_PATH, EdgeGateConfig
from edge_gate.door import keys as relay_keys
from edge_gate.gallery import keyfile

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "edge-gate.service"
MAX_EXPOSURE = 2.0
CREDENTIALS = (
    "gallery.key",
    "relay.key",
    "audit.key",
    "mqtt.key",
    "mqtt.password",
    "camera.username",
    "camera.password",
)

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed (apt systemd)"
)


def unit_settings(path: Path = UNIT) -> dict[tuple[str, str], list[str]]:
    """``(section, key) -> values`` in file order; systemd allows repeated keys."""
    settings: dict[tuple[str, str], list[str]] = {}
    section = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {raw!r}"
        settings.setdefault((section, key.strip()), []).append(value.strip())
    return settings


def one(settings: dict[tuple[str, str], list[str]], key: str, section: str = "Service") -> str:
    values = settings[(section, key)]
    assert len(values) == 1, f"{key} set {len(values)} times"
    return values[0]


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|min)?", value)
    assert match, value
    scale = {"ms": 0.001, "s": 1.0, "min": 60.0, None: 1.0}[match.group(2)]
    return float(match.group(1)) * scale


@needs_analyze
def test_security_exposure_is_at_most_2() -> None:
    """`systemd-analyze security --offline=true` rates the unit's exposure ≤ 2.0."""
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = proc.stdout + proc.stderr
    match = re.search(r"Overall exposure level for edge-gate\.service:\s*(\d+\.\d+)", output)
    assert match, output
    exposure = float(match.group(1))
    assert exposure <= MAX_EXPOSURE, output
    # The unit parsed cleanly: an ignored (misspelt or unsupported) line would inflate trust.
    assert "ignoring" not in output.lower(), output


@needs_analyze
def test_unit_verifies() -> None:
    """`systemd-analyze verify` finds nothing but the not-yet-installed ExecStart binary."""
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    problems = [
        line
        for line in (proc.stdout + proc.stderr).splitlines()
        if line.strip() and "/opt/edge-gate/venv/bin/edge-gate is not executable" not in line
    ]
    assert problems == []


def test_lifecycle_settings() -> None:
    """Type=notify from the main PID, a watchdog, restart on failure but never on a bad config."""
    s = unit_settings()
    assert one(s, "Type") == "notify"
    assert one(s, "NotifyAccess") == "main"
    assert one(s, "Restart") == "on-failure"
    assert "78" in one(s, "RestartPreventExitStatus").split()
    assert one(s, "ExecStart").split() == [
        "/opt/edge-gate/venv/bin/edge-gate",
        "run",
        "--config",
        str(DEFAULT_CONFIG_PATH),
    ]
    defaults = EdgeGateConfig().service
    # A stalled pipeline stops the pings after heartbeat_timeout_s; systemd must then notice.
    assert seconds(one(s, "WatchdogSec")) > defaults.heartbeat_timeout_s
    assert seconds(one(s, "TimeoutStopSec")) > defaults.shutdown_timeout_s


def test_dedicated_user_and_directories() -> None:
    """A static edge-gate account, private state dir matching the config's state_dir."""
    s = unit_settings()
    assert one(s, "User") == "edge-gate"
    assert one(s, "Group") == "edge-gate"
    assert "DynamicUser" not in {k for _, k in s}
    assert Path("/var/lib") / one(s, "StateDirectory") == EdgeGateConfig().service.state_dir
    assert one(s, "StateDirectoryMode") == "0700"
    assert Path("/etc") / one(s, "ConfigurationDirectory") == DEFAULT_CONFIG_PATH.parent
    assert one(s, "UMask") == "0077"


def test_credentials_match_the_names_the_code_reads() -> None:
    """Every secret the code reads via $CREDENTIALS_DIRECTORY is loaded from credentials/."""
    s = unit_settings()
    loaded = dict(v.split(":", 1) for v in s[("Service", "LoadCredential")])
    assert set(loaded) == set(CREDENTIALS)
    for name in (keyfile.CREDENTIAL_NAME, relay_keys.CREDENTIAL_NAME, signing.CREDENTIAL_NAME):
        assert name in loaded
    for name, source in loaded.items():
        assert source == f"/etc/edge-gate/credentials/{name}"
    cfg = EdgeGateConfig()
    assert cfg.gallery.key_file.name == keyfile.CREDENTIAL_NAME
    assert cfg.relay.key_file.name == relay_keys.CREDENTIAL_NAME
    assert cfg.mqtt.signing_key_file.name == signing.CREDENTIAL_NAME


def test_devices_closed_except_relay_and_camera() -> None:
    """DevicePolicy=closed; only the udev symlinks (and V4L2 class) are allowed, read-write."""
    s = unit_settings()
    assert one(s, "DevicePolicy") == "closed"
    allowed = {tuple(v.split()) for v in s[("Service", "DeviceAllow")]}
    assert (EdgeGateConfig().relay.port, "rw") in allowed
    assert ("/dev/edge-gate-camera", "rw") in allowed
    assert {a for a, _ in allowed} <= {
        "/dev/edge-gate-relay",
        "/dev/edge-gate-camera",
        "char-video4linux",
    }


def test_no_privileges() -> None:
    """No capabilities, no new privileges, no W+X memory, syscalls filtered."""
    s = unit_settings()
    assert one(s, "CapabilityBoundingSet") == ""
    assert one(s, "NoNewPrivileges") == "yes"
    assert one(s, "MemoryDenyWriteExecute") == "yes"
    assert one(s, "ProtectSystem") == "strict"
    assert "@system-service" in s[("Service", "SystemCallFilter")]
