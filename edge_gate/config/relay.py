"""``[relay]``: the door relay controller on a serial line."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from edge_gate.config.base import NonEmptyPath, NonEmptyStr, Section


class RelayConfig(Section):
    port: NonEmptyStr = Field(
        "/dev/edge-gate-relay", description="serial device of the relay controller"
    )
    baudrate: int = Field(115200, ge=1200, le=4_000_000, description="serial speed")
    key_file: NonEmptyPath = Field(
        Path("/etc/edge-gate/credentials/relay.key"),
        description="32-byte relay HMAC key (credential name relay.key)",
    )
    counter_file: NonEmptyPath = Field(
        Path("/var/lib/edge-gate/relay.counter"), description="persisted monotonic command counter"
    )
    pulse_ms: int = Field(
        1500, ge=100, le=10_000, description="unlock pulse length requested from the relay"
    )
    timeout_s: float = Field(0.5, gt=0, le=10, description="wait this long for each relay answer")
