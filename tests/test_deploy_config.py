"""deploy/edge-gate.toml: the documented example config is valid and complete."""

from __future__ import annotations

import re
from pathlib import Path

from edge_gate.config import EdgeGateConfig, validate_config_text

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "edge-gate.toml"
CREDENTIALS_DIR = Path("/etc/edge-gate/credentials")


def _load() -> EdgeGateConfig:
    cfg, problems = validate_config_text(EXAMPLE.read_text(encoding="utf-8"))
    assert problems == []
    assert cfg is not None
    return cfg


def test_example_validates() -> None:
    """The shipped example passes the same validation the daemon applies (no exit 78)."""
    cfg = _load()
    assert cfg.liveness.enabled
    assert not cfg.mqtt.insecure_plaintext
    assert cfg.mqtt.port == 8883


def test_secrets_point_at_credential_files() -> None:
    """Every secret path in the example is /etc/edge-gate/credentials/<systemd credential>."""
    cfg = _load()
    expected = {
        cfg.gallery.key_file: "gallery.key",
        cfg.relay.key_file: "relay.key",
        cfg.osdp_cp.scbk_file: "osdp-cp.scbk",
        cfg.osdp_pd.scbk_file: "osdp-pd.scbk",
        cfg.mqtt.signing_key_file: "audit.key",
        cfg.mqtt.key_file: "mqtt.key",
        cfg.camera.username_file: "camera.username",
        cfg.camera.password_file: "camera.password",
    }
    for path, name in expected.items():
        assert path == CREDENTIALS_DIR / name


def test_state_lives_in_the_state_directory() -> None:
    """Databases and the relay counter are under the unit's StateDirectory."""
    cfg = _load()
    state_dir = cfg.service.state_dir
    assert state_dir == Path("/var/lib/edge-gate")
    for path in (cfg.gallery.db_file, cfg.mqtt.outbox_file, cfg.relay.counter_file):
        assert path.parent == state_dir


def test_every_setting_is_documented() -> None:
    """Each config field appears in its table, set or as a ``# key =`` comment."""
    text = EXAMPLE.read_text(encoding="utf-8")
    tables = re.split(r"^\[([a-z_]+)\]\s*$", text, flags=re.MULTILINE)
    body = dict(zip(tables[1::2], tables[2::2], strict=True))
    missing: list[str] = []
    for section, field in EdgeGateConfig.model_fields.items():
        assert section in body, f"[{section}] missing"
        sub = field.annotation
        assert sub is not None
        missing.extend(
            f"{section}.{key}"
            for key in sub.model_fields
            if not re.search(rf"^#?\s*{re.escape(key)}\s*=", body[section], flags=re.MULTILINE)
        )
    assert missing == [], f"document these in deploy/edge-gate.toml: {missing}"
