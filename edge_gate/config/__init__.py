"""Configuration: one TOML file → frozen pydantic models.

Each section lives in its own module; this one composes them and turns validation
errors into ``key.path: message`` lines.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Self, TypeVar

from pydantic import BaseModel, Field, ValidationError, model_validator

from edge_gate.config.base import Section
from edge_gate.config.camera import CameraConfig
from edge_gate.config.fleet import FleetConfig
from edge_gate.config.gallery import GalleryConfig
from edge_gate.config.liveness import LivenessConfig
from edge_gate.config.mqtt import MqttConfig
from edge_gate.config.osdp import OsdpCpConfig, OsdpPdConfig
from edge_gate.config.policy import PolicyConfig
from edge_gate.config.relay import RelayConfig
from edge_gate.config.service import ServiceConfig
from edge_gate.config.thresholds import calibrated_threshold
from edge_gate.config.vision import VisionConfig
from edge_gate.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/edge-gate/edge-gate.toml")
CONFIG_ENV = "EDGE_GATE_CONFIG"
MAX_CONFIG_BYTES = 1_000_000

_M = TypeVar("_M", bound=BaseModel)

__all__ = [
    "CameraConfig",
    "EdgeGateConfig",
    "FleetConfig",
    "GalleryConfig",
    "LivenessConfig",
    "MqttConfig",
    "OsdpCpConfig",
    "OsdpPdConfig",
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
    osdp_cp: OsdpCpConfig = Field(
        default_factory=OsdpCpConfig, description="OSDP control panel (door strike on a PD)"
    )
    osdp_pd: OsdpPdConfig = Field(
        default_factory=OsdpPdConfig, description="OSDP reader of a building's panel"
    )
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="audit events")
    fleet: FleetConfig = Field(
        default_factory=FleetConfig, description="gallery bundles of door groups"
    )
    service: ServiceConfig = Field(default_factory=ServiceConfig, description="lifecycle")

    @model_validator(mode="before")
    @classmethod
    def _default_threshold(cls, data: Any) -> Any:
        """``gallery.threshold`` left out: the calibrated default of the embedder set in use."""
        if not isinstance(data, dict):
            return data
        vision, gallery = data.get("vision", {}), data.get("gallery", {})
        if isinstance(gallery, GalleryConfig):
            if "threshold" in gallery.model_fields_set:
                return data
        elif not isinstance(gallery, dict) or "threshold" in gallery:
            return data
        try:
            v = vision if isinstance(vision, VisionConfig) else VisionConfig.model_validate(vision)
        except ValidationError:
            return data  # reported by the field's own validation
        threshold = calibrated_threshold(v.embedder_set, v.embedder_weights)
        if threshold is None:
            raise ValueError(
                f"gallery.threshold: no calibrated default for vision embedders "
                f"{list(v.embedder_set)}"
                + (" with unequal embedder_weights" if v.embedder_weights else "")
                + "; set [gallery] threshold (measure it with `edge-gate calibrate`)"
            )
        if isinstance(gallery, GalleryConfig):
            gallery = gallery.model_copy(update={"threshold": threshold})
        else:
            gallery = {**gallery, "threshold": threshold}
        return {**data, "gallery": gallery}

    @model_validator(mode="after")
    def _one_door_path(self) -> Self:
        if self.osdp_cp.enabled and self.osdp_pd.enabled:
            raise ValueError("osdp_cp and osdp_pd are both enabled; a door uses one of them")
        if self.policy.modes() != {"face"}:  # a card/PIN mode, always or on the schedule
            if self.osdp_pd.enabled:
                raise ValueError(
                    "policy.mode: as the panel's reader (osdp_pd) edge-gate reports faces; "
                    'cards and PINs are the panel\'s (use mode = "face")'
                )
            if not self.osdp_cp.enabled:
                raise ValueError(
                    "policy.mode: cards and PINs come from an OSDP reader; enable [osdp_cp]"
                )
        return self


def default_config_path() -> Path:
    """``$EDGE_GATE_CONFIG`` if set, else ``/etc/edge-gate/edge-gate.toml``."""
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else DEFAULT_CONFIG_PATH


def format_errors(err: ValidationError) -> list[str]:
    """``key.path: message`` per problem (the input value is never echoed)."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        lines.append(f"{loc}: {e['msg']}")
    return lines


def _rebase(model: _M, base_dir: Path) -> _M:
    """``model`` with every relative :class:`Path` field (also in sub-tables) under ``base_dir``."""
    update: dict[str, object] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, Path) and not value.is_absolute():
            update[name] = base_dir / value
        elif isinstance(value, BaseModel):
            rebased = _rebase(value, base_dir)
            if rebased is not value:
                update[name] = rebased
    return model.model_copy(update=update) if update else model


def validate_config_text(
    text: str, base_dir: Path | None = None
) -> tuple[EdgeGateConfig | None, list[str]]:
    """Parse and validate; return the config or every problem as ``key.path: message``.

    With ``base_dir`` (the config file's directory) relative paths in the config mean paths
    under it, whatever the current directory; they come back absolute.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        return None, [f"<toml>: {e}"]
    try:
        cfg = EdgeGateConfig.model_validate(raw)
    except ValidationError as e:
        return None, format_errors(e)
    if base_dir is not None:
        cfg = _rebase(cfg, Path(base_dir).absolute())
    return cfg, []


def load_config(path: Path | None = None) -> EdgeGateConfig:
    """Load and validate the config file; raise :class:`ConfigError` listing every problem.

    Relative paths in the file are taken relative to the file's directory.
    """
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
    cfg, problems = validate_config_text(text, base_dir=path.parent)
    if cfg is None:
        raise ConfigError(f"{path}: invalid config\n" + "\n".join(problems))
    return cfg
