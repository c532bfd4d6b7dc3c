"""``[service]``: daemon lifecycle."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from edge_gate.config.base import NonEmptyPath, Section


class ServiceConfig(Section):
    state_dir: NonEmptyPath = Field(
        Path("/var/lib/edge-gate"), description="writable state directory"
    )
    heartbeat_timeout_s: float = Field(
        5.0,
        gt=0,
        le=300,
        description="pipeline heartbeat age after which the watchdog stops being pinged",
    )
    shutdown_timeout_s: float = Field(5.0, gt=0, le=60, description="deadline for a graceful stop")
    gallery_poll_s: float = Field(
        2.0,
        gt=0,
        le=60,
        description="how often the gallery's generation file is checked; an enroll, revoke or "
        "rename by the admin CLI takes effect at the door within this time",
    )
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="serve Prometheus text metrics on http://127.0.0.1:<port>/metrics (off "
        "when unset; localhost only)",
    )
    snapshot_dir: NonEmptyPath | None = Field(
        None, description="write annotated PNG snapshots of decisions here (opt in: contains faces)"
    )
