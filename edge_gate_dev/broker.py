"""A throw-away mosquitto with generated PKI: for tests, ``edge-gate bench`` and the demo. Not for
production (see ``deploy/mosquitto/`` for a real broker configuration).

Usage::

    from edge_gate_dev.broker import DeskSubscriber, gateway_config, mosquitto_broker

    with mosquitto_broker(tmp_path) as broker:          # starts /usr/sbin/mosquitto -c <conf>
        cfg = gateway_config(broker, tmp_path)          # MqttConfig for the gateway (mTLS)
        with DeskSubscriber(broker, "edge-gate/#") as desk:
            ...                                         # desk.events(), desk.wait_for(...)
        broker.restart()                                # same ports, same persisted state

Two TLS listeners on 127.0.0.1 (server certificate for ``localhost`` and ``127.0.0.1``):

* ``broker.port`` — gateways: ``require_certificate true``, ``use_identity_as_username true`` (the
  client certificate's CN is the user name); ACL ``pattern write <prefix>/%u/#`` plus Home Assistant
  discovery topics. ``broker.pki.client_cert``/``client_key`` is the good gateway certificate
  (CN = ``gateway_id``); ``rogue_client_cert``/``rogue_client_key`` has the same CN but is signed by
  another CA; ``rogue_ca`` is a CA that did not sign the broker certificate.
* ``broker.password_port`` — password users: ``desk`` (read-only on ``<prefix>/#`` and
  ``homeassistant/#``) and
  ``pw-<gateway_id>`` (write on its own gateway's topics) with passwords in ``broker.passwords``.

Persistence is on (sessions and queued QoS 1 messages survive ``restart()``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_gate.config.mqtt import MqttConfig
from edge_gate_dev.pki import free_port, new_ca, new_leaf, write_cert, write_key

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_USERDB_TOOL = "/usr/bin/mosquitto_passwd"


@dataclass(frozen=True)
class Pki:
    """Paths of every generated certificate and key (keys are mode 0600)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_ca: Path
    rogue_client_cert: Path
    rogue_client_key: Path
    ca_key: Path | None = None


def issue_client(pki: Pki, cn: str, directory: Path) -> tuple[Path, Path]:
    """Another client certificate (CN = ``cn``, the broker's user name) from the test CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    if pki.ca_key is None:
        raise RuntimeError("this PKI kept no CA key")
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise RuntimeError("unexpected CA key type")
    ca_cert = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    cert, key = new_leaf(cn, (ca_cert, ca_key))
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{cn}.crt", directory / f"{cn}.key"
    write_cert(cert_path, cert)
    write_key(key_path, key)
    return cert_path, key_path


def make_pki(
    directory: Path, gateway_id: str, server_names: tuple[str, ...] = ("localhost", "127.0.0.1")
) -> Pki:
    """A CA, a broker certificate, a gateway client certificate and rogue counterparts."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = new_ca("edge-gate test CA")
    rogue = new_ca("rogue CA")
    server = new_leaf("mosquitto", ca, server_names=server_names)
    client = new_leaf(gateway_id, ca)
    rogue_client = new_leaf(gateway_id, rogue)
    pki = Pki(
        ca=directory / "ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
        rogue_ca=directory / "rogue-ca.crt",
        rogue_client_cert=directory / "rogue-client.crt",
        rogue_client_key=directory / "rogue-client.key",
        ca_key=directory / "ca.key",
    )
    write_key(directory / "ca.key", ca[1])
    write_cert(pki.ca, ca[0])
    write_cert(pki.rogue_ca, rogue[0])
    write_cert(pki.server_cert, server[0])
    write_key(pki.server_key, server[1])
    write_cert(pki.client_cert, client[0])
    write_key(pki.client_key, client[1])
    write_cert(pki.rogue_client_cert, rogue_client[0])
    write_key(pki.rogue_client_key, rogue_client[1])
    return pki


class MosquittoBroker:
    """A mosquitto subprocess with generated TLS material; see the module docstring."""

    def __init__(
        self,
        workdir: Path,
        *,
        gateway_id: str = "gw1",
        topic_prefix: str = "edge-gate",
        server_names: tuple[str, ...] = ("localhost", "127.0.0.1"),
        extra_acl: str = "",
        extra_conf: str = "",
    ) -> None:
        self.workdir = workdir
        self.extra_acl = extra_acl
        self.extra_conf = extra_conf  # global options, e.g. "max_packet_size 65536\n"
        self.gateway_id = gateway_id
        self.topic_prefix = topic_prefix
        self.host = "localhost"
        self.port = free_port()
        self.password_port = free_port()
        self.pki = make_pki(workdir / "pki", gateway_id, server_names)
        self.passwords = {
            "desk": "desk-" + secrets.token_hex(6),
            f"pw-{gateway_id}": secrets.token_hex(8),
        }
        self.log_file = workdir / "mosquitto.log"
        self.conf_file = workdir / "mosquitto.conf"
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_config()

    def _write_config(self) -> None:
        w = self.workdir
        (w / "data").mkdir(exist_ok=True)
        pw_file = w / "passwd"
        pw_file.write_text("")
        for user, password in self.passwords.items():
            subprocess.run(  # noqa: S603 (fixed program, our own arguments)
                [MOSQUITTO_USERDB_TOOL, "-b", str(pw_file), user, password], check=True
            )
        pw_file.chmod(0o600)
        prefix = self.topic_prefix
        (w / "acl-mtls").write_text(
            "# gateways: user name = client certificate CN\n"
            f"pattern write {prefix}/%u/#\n"
            "pattern write homeassistant/+/%u/#\n" + self.extra_acl
        )
        (w / "acl-password").write_text(
            f"user desk\ntopic read {prefix}/#\ntopic read homeassistant/#\n\n"
            f"user pw-{self.gateway_id}\ntopic write {prefix}/pw-{self.gateway_id}/#\n"
        )
        pki = self.pki
        tls = f"cafile {pki.ca}\ncertfile {pki.server_cert}\nkeyfile {pki.server_key}\n"
        user = pwd.getpwuid(os.getuid()).pw_name
        self.conf_file.write_text(
            f"per_listener_settings true\nuser {user}\n"
            f"persistence true\npersistence_location {w / 'data'}/\n"
            f"log_dest file {self.log_file}\nlog_type error\nlog_type warning\nlog_type notice\n"
            "log_type information\nconnection_messages true\nlog_timestamp true\n"
            "max_inflight_messages 1000\nmax_queued_messages 100000\n"
            f"{self.extra_conf}\n"
            f"listener {self.port} 127.0.0.1\n{tls}require_certificate true\n"
            f"use_identity_as_username true\nacl_file {w / 'acl-mtls'}\nallow_anonymous false\n\n"
            f"listener {self.password_port} 127.0.0.1\n{tls}require_certificate false\n"
            f"password_file {pw_file}\nacl_file {w / 'acl-password'}\nallow_anonymous false\n"
        )

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = 10.0) -> None:
        if self.running:
            return
        self._proc = subprocess.Popen(  # noqa: S603 (fixed program, generated config)
            [MOSQUITTO, "-c", str(self.conf_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                raise RuntimeError(f"mosquitto exited: {err}\n{self.log()}")
            if all(_listening(p) for p in (self.port, self.password_port)):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not listen within {timeout_s} s\n{self.log()}")
            time.sleep(0.02)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (mosquitto saves its persistence file), then wait until the ports are free."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout_s)
        if proc.stderr:
            proc.stderr.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def client_tls_context(self, *, ca: Path | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(ca or self.pki.ca))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


@contextlib.contextmanager
def mosquitto_broker(tmp_path: Path, **kwargs: Any) -> Iterator[MosquittoBroker]:
    """Start a broker under ``tmp_path/mosquitto`` and stop it afterwards."""
    if shutil.which(MOSQUITTO) is None:
        raise RuntimeError("mosquitto is not installed (make apt)")
    workdir = tmp_path / "mosquitto"
    workdir.mkdir(parents=True, exist_ok=True)
    broker = MosquittoBroker(workdir, **kwargs)
    with broker:
        yield broker


def gateway_config(broker: MosquittoBroker, tmp_path: Path, **overrides: Any) -> MqttConfig:
    """A gateway ``[mqtt]`` section for ``broker`` (mTLS, outbox and signing key in ``tmp_path``).

    The signing key file is created (0600) if missing.
    """
    from edge_gate.audit.signing import generate_signing_key
    from edge_gate.fsutil import atomic_write

    key_file = tmp_path / "audit.key"
    if not key_file.exists():
        atomic_write(key_file, generate_signing_key())
    values: dict[str, Any] = {
        "host": broker.host,
        "port": broker.port,
        "ca_file": broker.pki.ca,
        "cert_file": broker.pki.client_cert,
        "key_file": broker.pki.client_key,
        "topic_prefix": broker.topic_prefix,
        "gateway_id": broker.gateway_id,
        "outbox_file": tmp_path / "outbox.db",
        "signing_key_file": key_file,
    }
    values.update(overrides)
    return MqttConfig(**values)


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool


@dataclass
class DeskSubscriber:
    """The security desk: read-only user over TLS, QoS 1, persistent session (survives restarts)."""

    broker: MosquittoBroker
    topic: str = "edge-gate/#"
    client_id: str = field(default_factory=lambda: "desk-" + secrets.token_hex(4))
    messages: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=False,  # persistent session: queued QoS 1 messages survive restarts
            protocol=mqtt.MQTTv311,
        )
        self._client.tls_set_context(self.broker.client_tls_context())
        self._client.username_pw_set("desk", self.broker.passwords["desk"])
        self._client.reconnect_delay_set(1, 1)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    def _on_connect(self, c: mqtt.Client, u: object, f: object, rc: Any, p: object) -> None:
        if not rc.is_failure:
            c.subscribe(self.topic, qos=1)

    def _on_subscribe(self, *args: object) -> None:
        self._subscribed.set()

    def _on_message(self, c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain)))

    def start(self, timeout_s: float = 10.0) -> None:
        self._client.connect(
            self.broker.host,
            self.broker.password_port,
            keepalive=5,
        )
        self._client.loop_start()
        if not self._subscribed.wait(timeout_s):
            raise RuntimeError(f"desk could not subscribe\n{self.broker.log()}")

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.messages)

    def events(self) -> list[Received]:
        return [m for m in self.snapshot() if m.topic.endswith("/events")]

    def wait_for(self, predicate: Any, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(self.snapshot()):
                return True
            time.sleep(0.02)
        return bool(predicate(self.snapshot()))

    def __enter__(self) -> DeskSubscriber:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
