"""Configuration: one TOML file → frozen pydantic models.

Each section lives in its own module; this one composes them and turns validation
errors into ``key.path: message`` lines.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import Field, ValidationError

from edge_gate.config.base import Section
from edge_gate.config.camera import CameraConfig
from edge_gate.config.gallery import GalleryConfig
from edge_gate.config.liveness import LivenessConfig
from edge_gate.config.mqtt import MqttConfig
from edge_gate.config.policy import PolicyConfig
from edge_gate.config.relay import RelayConfig
from edge_gate.config.service import ServiceConfig
from edge_gate.config.vision import VisionConfig
from edge_gate.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/edge-gate/edge-gate.toml")
CONFIG_ENV = "EDGE_GATE_CONFIG"
MAX_CONFIG_BYTES = 1_000_000

__all__ = [
    "CameraConfig",
    "EdgeGateConfig",
    "GalleryConfig",
    "LivenessConfig",
    "MqttConfig",
    "PolicyConfig",
    "RelayConfig",
    "ServiceConfig",
    "VisionConfig",
    "default_config_path",
    "load_config",
    "validate_config_text",
]


class EdgeGateConfig(Section):
    camera: CameraConfig = Field(default_factory=CameraConfig, description="camera source")
    vision: VisionConfig = Field(default_factory=VisionConfig, description="models")
    liveness: LivenessConfig = Field(
        default_factory=LivenessConfig, description="presentation attack detection"
    )
    gallery: GalleryConfig = Field(default_factory=GalleryConfig, description="encrypted templates")
    policy: PolicyConfig = Field(default_factory=PolicyConfig, description="decision policy")
    relay: RelayConfig = Field(default_factory=RelayConfig, description="door relay")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="audit events")
    service: ServiceConfig = Field(default_factory=ServiceConfig, description="lifecycle")


def default_config_path() -> Path:
    """``$EDGE_GATE_CONFIG`` if set, else ``/etc/edge-gate/edge-gate.toml``."""
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else DEFAULT_CONFIG_PATH


def _format_errors(err: ValidationError) -> list[str]:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        lines.append(f"{loc}: {e['msg']}")
    return lines


def validate_config_text(
    text: str, base_dir: Path | None = None
) -> tuple[EdgeGateConfig | None, list[str]]:
    """Parse and validate; return the config or every problem as ``key.path: message``."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        return None, [f"<toml>: {e}"]
    try:
        cfg = EdgeGateConfig.model_validate(raw)
    except ValidationError as e:
        return None, _format_errors(e)
    return cfg, []


def load_config(path: Path | None = None) -> EdgeGateConfig:
    """Load and validate the config file; raise :class:`ConfigError` listing every problem."""
    path = Path(path) if path is not None else default_config_path()
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config: {e.strerror}") from e
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: config larger than {MAX_CONFIG_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: config is not UTF-8") from e
    cfg, problems = validate_config_text(text)
    if cfg is None:
        raise ConfigError(f"{path}: invalid config\n" + "\n".join(problems))
    return cfg
