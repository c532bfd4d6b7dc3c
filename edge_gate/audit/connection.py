"""Broker connection settings: topics, TLS context, credentials, a configured paho client.

TLS is mandatory unless ``mqtt.insecure_plaintext = true``: TLS ≥ 1.2, the broker certificate is
verified against ``ca_file`` (or the system CAs) and its name against ``host``; with
``cert_file`` and ``key_file`` the gateway authenticates itself (mutual TLS).
The client key and the password are read like every secret (systemd credentials ``mqtt.key``
and ``mqtt.password`` first; files must be 0600).
"""

from __future__ import annotations

import logging
import os
import secrets
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_gate.config.mqtt import MqttConfig
from edge_gate.errors import AuditError, ConfigError
from edge_gate.fsutil import CREDENTIALS_ENV, read_secret

log = logging.getLogger(__name__)

STATUS_ONLINE = "online"
STATUS_OFFLINE = "offline"
HA_DISCOVERY_PREFIX = "homeassistant"
GATEWAY_DOOR_SEGMENT = "_gateway"  # topic level for events that belong to no door
MAX_CREDENTIAL_BYTES = 1024


@dataclass(frozen=True)
class Topics:
    """``<prefix>/<gateway>/<door>/events``, ``<prefix>/<gateway>/status``, ``…/health``."""

    prefix: str
    gateway: str

    def events(self, door: str | None) -> str:
        return f"{self.base}/{door or GATEWAY_DOOR_SEGMENT}/events"

    @property
    def base(self) -> str:
        return f"{self.prefix.rstrip('/')}/{self.gateway}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def health(self) -> str:
        return f"{self.base}/health"

    def discovery(self, component: str, object_id: str) -> str:
        return f"{HA_DISCOVERY_PREFIX}/{component}/{self.gateway}/{object_id}/config"


def topics_for(cfg: MqttConfig) -> Topics:
    return Topics(prefix=cfg.topic_prefix, gateway=cfg.gateway_id)


def _credential_path(name: str, configured: Path | None) -> Path | None:
    """Where ``read_secret`` would read ``name`` from (ssl needs a path, not bytes)."""
    cred_dir = os.environ.get(CREDENTIALS_ENV)
    if cred_dir and (Path(cred_dir) / name).exists():
        return Path(cred_dir) / name
    return configured


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when the handshake fails (paho drops the socket without closing it)."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def build_tls_context(cfg: MqttConfig) -> ssl.SSLContext | None:
    """The client TLS context, or None for an explicitly allowed plaintext connection."""
    if cfg.insecure_plaintext:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED + check_hostname
    what = "system CA store"
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.sslsocket_class = _ClosingSSLSocket
    try:
        if cfg.ca_file is not None:
            what = f"mqtt.ca_file {cfg.ca_file}"
            ctx.load_verify_locations(cafile=str(cfg.ca_file))
        else:
            ctx.load_default_certs()
        key_path = _credential_path("mqtt.key", cfg.key_file)
        if cfg.cert_file is not None:
            if key_path is None:
                raise ConfigError("mqtt.key_file: required with mqtt.cert_file")
            read_secret("mqtt.key", key_path)  # refuses a group/world-readable key
            what = f"mqtt.cert_file {cfg.cert_file} / mqtt.key_file {key_path}"
            ctx.load_cert_chain(certfile=str(cfg.cert_file), keyfile=str(key_path))
        elif cfg.key_file is not None:
            raise ConfigError("mqtt.cert_file: required with mqtt.key_file")
    except OSError as e:
        raise AuditError(f"mqtt TLS setup failed: {what}: {e.strerror or e}") from e
    except ssl.SSLError as e:
        raise AuditError(f"mqtt TLS setup failed: {what}: {e}") from e
    return ctx


def check_settings(cfg: MqttConfig) -> None:
    """Build the TLS context and read the credentials once, as the publisher will.

    For start-up: a missing CA, a loose key or an unreadable password is a configuration
    problem (``ConfigError``/``SecretFileError``: the service stops with exit 78) rather than
    an audit trail that silently never connects.
    """
    try:
        build_tls_context(cfg)
        read_credentials(cfg)
    except AuditError as e:
        raise ConfigError(str(e)) from e


def read_credentials(cfg: MqttConfig) -> tuple[str, str | None] | None:
    """``(username, password)`` from the credential files, or None when not configured."""
    if cfg.username_file is None:
        if cfg.password_file is not None:
            raise ConfigError("mqtt.username_file: required with mqtt.password_file")
        return None
    try:  # not secret (mode 0640 is fine); O_NONBLOCK: a FIFO planted there cannot hang us
        fd = os.open(cfg.username_file, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise AuditError(f"{cfg.username_file}: not a regular file")
            raw_user = fh.read(MAX_CREDENTIAL_BYTES)
    except OSError as e:
        raise AuditError(f"{cfg.username_file}: cannot read: {e.strerror}") from e
    username = _credential_text("mqtt.username", raw_user)
    password: str | None = None
    if cfg.password_file is not None:  # the unit always passes mqtt.password, maybe empty
        pw_path = _credential_path("mqtt.password", cfg.password_file)
        if pw_path is not None:
            raw_pw = read_secret("mqtt.password", pw_path, MAX_CREDENTIAL_BYTES)
            password = _credential_text("mqtt.password", raw_pw)
    return username, password


def _credential_text(name: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError as e:
        raise AuditError(f"{name} is not UTF-8 text") from e


def make_client(cfg: MqttConfig, topics: Topics, *, max_inflight: int) -> mqtt.Client:
    """A paho MQTT v5 client (callback API v2) with TLS, credentials and the ``offline`` will set.

    Each connection attempt gets a fresh client with a unique id and a clean session: what is not
    yet acknowledged is re-sent from the outbox, so no broker-side session state is needed.
    """
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"edge-gate-{cfg.gateway_id}-{secrets.token_hex(4)}",
        protocol=mqtt.MQTTv5,
        reconnect_on_failure=False,
    )
    ctx = build_tls_context(cfg)
    if ctx is None:
        log.warning(
            "audit.insecure_plaintext",
            extra={
                "EG_HOST": cfg.host,
                "EG_PORT": cfg.port,
                "EG_DETAIL": "INSECURE: audit events "
                "are sent unencrypted and the broker is not authenticated",
            },
        )
    else:
        client.tls_set_context(ctx)
    creds = read_credentials(cfg)
    if creds is not None:
        client.username_pw_set(creds[0], creds[1])
    client.will_set(topics.status, STATUS_OFFLINE, qos=1, retain=True)
    client.max_inflight_messages_set(max_inflight)
    client.max_queued_messages_set(0)
    client.connect_timeout = 10.0
    return client
