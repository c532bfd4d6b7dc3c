"""MQTT for the fleet: one paho client per process (gateway follower or admin station).

TLS, client certificate and credentials come from ``[mqtt]`` exactly as for the audit trail
(:func:`edge_gate.audit.connection.build_tls_context`); the broker's ACL decides what each
identity may read and write (a gateway reads ``<prefix>/fleet/<its groups>/#`` and writes only
``<prefix>/<its id>/#``).

Broker message limits: a chunk is ``fleet.chunk_kib`` (default 1024 KiB) of ciphertext plus 33
bytes, the packet adds the topic and ~16 bytes; the bundle header grows ~150 bytes per gateway
of the group; a delta is one message of up to 32 chunks. mosquitto takes everything by default
(``message_size_limit 0``, no ``max_packet_size``; MQTT's own limit is 256 MiB). A broker limit
must stay above the chunk size: mosquitto's ``max_packet_size`` (whole packet, announced to
MQTT v5 clients in the CONNACK, a bigger packet disconnects the client) or the deprecated
``message_size_limit`` (payload; refused with a failing PUBACK — which paho 2.2 cannot parse
from mosquitto 2.0, so the link drops); EMQX's ``mqtt.max_packet_size`` is 1MB in its
documented configuration (use ``chunk_kib = 960`` or raise it). :meth:`FleetLink.publish`
checks the announced limit first, and raises :class:`~edge_gate.errors.AuditError` naming
``fleet.chunk_kib`` on a failing PUBACK or when the link drops twice while one message is in
flight: a bundle the gateways cannot receive is never reported as published.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_gate.audit.connection import build_tls_context, read_credentials
from edge_gate.config.mqtt import MqttConfig
from edge_gate.errors import AuditError

log = logging.getLogger(__name__)

Message = tuple[str, bytes]
PUBLISH_OVERHEAD_BYTES = 16  # fixed header, topic length, packet id, properties length
DROPS_PER_MESSAGE = 2  # disconnects while one message waits for its PUBACK: give up on it


class FleetLink:
    """A connected client: subscriptions renewed on every (re)connect, messages to a queue."""

    def __init__(
        self,
        cfg: MqttConfig,
        *,
        role: str,
        subscriptions: tuple[str, ...] = (),
        will: tuple[str, bytes] | None = None,
        online: tuple[str, bytes] | None = None,
        queue_size: int = 4096,
    ) -> None:
        self._cfg = cfg
        self._subscriptions = subscriptions
        self._online = online
        self._will = will
        self.messages: queue.Queue[Message] = queue.Queue(maxsize=queue_size)
        self.connected = threading.Event()
        self._subscribed = threading.Event()
        self._pending_subs: set[int] = set()
        self._refused: dict[int, str] = {}  # mid -> the reason of a failing PUBACK
        self._max_packet: int | None = None  # the broker's Maximum Packet Size (MQTT v5)
        self._disconnects = 0
        self._stopping = False
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"edge-gate-{role}-{cfg.gateway_id}-{secrets.token_hex(3)}",
            protocol=mqtt.MQTTv5,
        )
        ctx = build_tls_context(cfg)
        if ctx is not None:
            self._client.tls_set_context(ctx)
        creds = read_credentials(cfg)
        if creds is not None:
            self._client.username_pw_set(creds[0], creds[1])
        if will is not None:
            self._client.will_set(will[0], will[1], qos=1, retain=True)
        self._client.max_inflight_messages_set(100)
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(1, 5)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.on_publish = self._on_publish

    def _on_connect(self, client: mqtt.Client, u: object, f: object, rc: Any, p: object) -> None:
        if rc.is_failure:
            log.error("fleet.connect_refused", extra={"EG_REASON": str(rc)})
            return
        limit = getattr(p, "MaximumPacketSize", None)
        self._max_packet = limit if isinstance(limit, int) and limit > 0 else None
        self.connected.set()
        if self._online is not None:
            client.publish(self._online[0], self._online[1], qos=1, retain=True)
        for topic in self._subscriptions:
            _rc, mid = client.subscribe(topic, qos=1)
            if mid is not None:
                self._pending_subs.add(mid)
        if not self._subscriptions:
            self._subscribed.set()
        log.info("fleet.connected", extra={"EG_HOST": self._cfg.host})

    def _on_subscribe(self, client: mqtt.Client, u: object, mid: int, *rest: object) -> None:
        self._pending_subs.discard(mid)
        if not self._pending_subs:
            self._subscribed.set()

    def _on_publish(self, client: mqtt.Client, u: object, mid: int, rc: Any, p: object) -> None:
        if rc.is_failure:  # e.g. over mosquitto's message_size_limit: PUBACK, but not delivered
            self._refused[mid] = str(rc)

    def _on_disconnect(self, *args: object) -> None:
        self._disconnects += 1
        self.connected.clear()
        if not self._stopping:
            log.warning("fleet.disconnected")

    def _on_message(self, client: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        self.messages.put((msg.topic, bytes(msg.payload)))  # blocks: back-pressure on paho

    def start(self, timeout_s: float = 10.0) -> None:
        try:
            self._client.connect_async(self._cfg.host, self._cfg.port, keepalive=30)
        except (OSError, ValueError) as e:
            raise AuditError(f"mqtt {self._cfg.host}:{self._cfg.port}: {e}") from e
        self._client.loop_start()

    def wait_ready(self, timeout_s: float) -> bool:
        """Connected and every subscription acknowledged."""
        return self.connected.wait(timeout_s) and self._subscribed.wait(timeout_s)

    def publish(self, topic: str, payload: bytes, *, retain: bool, timeout_s: float) -> None:
        """Publish QoS 1 and wait for a successful PUBACK; raise AuditError if it does not come,
        if the broker refuses the message, or if it is larger than the broker takes."""
        size = len(payload) + len(topic.encode("utf-8")) + PUBLISH_OVERHEAD_BYTES
        if self._max_packet is not None and size > self._max_packet:
            raise AuditError(
                f"{topic}: a {size}-byte packet exceeds the broker's maximum packet size "
                f"({self._max_packet}); lower fleet.chunk_kib or raise the broker's limit"
            )
        drops_before = self._disconnects
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        deadline = time.monotonic() + timeout_s
        while not info.is_published():
            if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
                raise AuditError(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")
            if self._disconnects - drops_before >= DROPS_PER_MESSAGE:
                # mosquitto 2.0 answers a message over message_size_limit with a PUBACK that
                # paho 2.2 cannot parse: the link drops and the resend drops it again
                raise AuditError(
                    f"the connection dropped {DROPS_PER_MESSAGE} times while {topic} "
                    f"({len(payload)} bytes) was in flight: over the broker's message_size_limit "
                    "or max_packet_size? lower fleet.chunk_kib or raise the limit"
                )
            if time.monotonic() > deadline:
                raise AuditError(f"no PUBACK for {topic} within {timeout_s} s")
            info.wait_for_publish(0.2)
        reason = self._refused.pop(info.mid, None)
        if reason is not None:
            raise AuditError(
                f"the broker refused {topic} ({len(payload)} bytes): {reason} — over its "
                "message_size_limit? lower fleet.chunk_kib or raise the limit"
            )

    def publish_nowait(self, topic: str, payload: bytes, *, retain: bool) -> None:
        self._client.publish(topic, payload, qos=1, retain=retain)

    def stop(self) -> None:
        """Disconnect; a clean disconnect sends no last will, so say ``offline`` first."""
        self._stopping = True
        if self._will is not None and self.connected.is_set():
            info = self._client.publish(self._will[0], self._will[1], qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(2.0)
        self._client.disconnect()
        self._client.loop_stop()


def run_until(
    link: FleetLink, handle: Callable[[str, bytes], object], stop: threading.Event
) -> None:
    """Feed queued messages to ``handle`` on this thread until ``stop`` is set."""
    while not stop.is_set():
        try:
            topic, payload = link.messages.get(timeout=0.5)
        except queue.Empty:
            continue
        handle(topic, payload)
