"""``[mqtt]``: where audit events go."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from edge_gate.config.base import NonEmptyPath, NonEmptyStr, Section


class MqttConfig(Section):
    host: NonEmptyStr = Field(
        "localhost", description="broker host name (checked against its certificate)"
    )
    port: int = Field(8883, ge=1, le=65535, description="broker port")
    ca_file: NonEmptyPath | None = Field(None, description="CA that signed the broker certificate")
    cert_file: NonEmptyPath | None = Field(None, description="client certificate for mutual TLS")
    key_file: NonEmptyPath | None = Field(
        None, description="client private key for mutual TLS (credential mqtt.key)"
    )
    username_file: NonEmptyPath | None = Field(
        None,
        description="optional broker user name file (used with password_file; TLS still applies)",
    )
    password_file: NonEmptyPath | None = Field(
        None, description="optional broker password file (credential mqtt.password)"
    )
    topic_prefix: str = Field(
        "edge-gate",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_\-/]+$",
        description="first topic level",
    )
    gateway_id: str = Field(
        "gateway",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_\-]+$",
        description="this gateway's id in topics and events",
    )
    insecure_plaintext: bool = Field(
        False,
        description="send audit events without TLS (testing only: no encryption, no broker "
        "authentication; logs a warning at every connect)",
    )
    outbox_file: NonEmptyPath = Field(
        Path("/var/lib/edge-gate/outbox.db"), description="durable outbox database"
    )
    outbox_max_events: int = Field(
        100_000,
        ge=100,
        le=10_000_000,
        description="outbox bound; when full the oldest non-security event is dropped, and when "
        "only security events remain the new one is refused; drops are counted and published "
        "as one signed audit.dropped event",
    )
    signing_key_file: NonEmptyPath = Field(
        Path("/etc/edge-gate/credentials/audit.key"),
        description="Ed25519 event signing key (credential audit.key)",
    )
    homeassistant_discovery: bool = Field(
        False, description="publish Home Assistant MQTT discovery config"
    )
    include_names: bool = Field(False, description="opt in: put display names into events")
