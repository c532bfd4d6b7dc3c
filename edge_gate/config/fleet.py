"""``[fleet]``: follow signed, encrypted gallery bundles of door groups (gateway), or publish
them (admin station). See :mod:`edge_gate.fleet`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, StringConstraints

from edge_gate.config.base import NonEmptyPath, Section

ACK_KEY_NAME = "fleet-ack.key"
GroupName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]


class FleetConfig(Section):
    groups: tuple[GroupName, ...] = Field(
        (), max_length=64, description="door groups this gateway follows (e.g. lobby, lab)"
    )
    public_key_file: NonEmptyPath = Field(
        Path("/etc/edge-gate/fleet.pub"),
        description="the fleet's Ed25519 public key (from `edge-gate fleet init`); a bundle "
        "signed by any other key is refused",
    )
    gateway_key_file: NonEmptyPath = Field(
        Path("/etc/edge-gate/credentials/fleet-gateway.key"),
        description="this gateway's X25519 key, mode 0600 (credential fleet-gateway.key; "
        "`edge-gate fleet keygen` writes it, and the Ed25519 ack key fleet-ack.key beside it, "
        "and prints both public halves for the admin)",
    )
    applied_file: NonEmptyPath = Field(
        Path("/var/lib/edge-gate/fleet-applied.json"),
        description="versions and members applied per group (rollback protection)",
    )
    signing_key_file: NonEmptyPath = Field(
        Path("/etc/edge-gate/credentials/fleet-signing.key"),
        description="admin station: the fleet's Ed25519 signing key, mode 0600",
    )
    state_file: NonEmptyPath = Field(
        Path("/var/lib/edge-gate/fleet-admin.json"),
        description="admin station: door groups, their gateways and members, published "
        "versions (mode 0600)",
    )
    chunk_kib: int = Field(
        1024, ge=16, le=65536, description="admin station: bundle chunk size (KiB)"
    )
    publish_timeout_s: float = Field(
        60.0, gt=0, le=3600, description="admin station: wait this long for the broker's PUBACKs"
    )

    @property
    def ack_key_file(self) -> Path:
        """This gateway's Ed25519 key, mode 0600 (credential ``fleet-ack.key``), beside
        ``gateway_key_file``: it signs the gateway's applied acknowledgements and health
        messages; `edge-gate fleet keygen` writes it and prints its public half."""
        return self.gateway_key_file.with_name(ACK_KEY_NAME)
