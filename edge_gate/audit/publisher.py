"""Outbox → MQTT publisher: one worker thread that owns a paho client and drives its loop.

* QoS 1, up to ``window`` events in flight; an event leaves the outbox only when its PUBACK arrives
  with a success reason code (MQTT v5, so an ACL refusal is a visible failure, not a silent drop).
* Every (re)connection uses a fresh client and a clean session and restarts from the oldest event
  still in the outbox, in ``seq`` order. Duplicates are possible
  after a crash and carry the same ``id``.
* Reconnect with exponential backoff and full jitter (``backoff_min_s`` … ``backoff_max_s``).
* Retained ``online`` on ``<prefix>/<gateway>/status`` after each connect, retained ``offline`` as
  the last will and on a clean stop; retained health JSON on ``…/health`` (QoS 1: outbox figures,
  the last event's type and time — nothing personal —, whatever :meth:`Publisher.set_health_source`
  adds, e.g. camera and door state, signed by the gateway's fleet key when one is given) every
  ``health_interval_s`` and soon after new events; optional Home Assistant discovery. Other
  processes (the enroll CLI, the fleet follower) may append to the same outbox: it is polled.

Use it through :class:`edge_gate.audit.trail.AuditTrail`; this class is its delivery half.
"""

from __future__ import annotations

import json
import logging
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from edge_gate.audit.connection import (
    STATUS_OFFLINE,
    STATUS_ONLINE,
    Topics,
    make_client,
    topics_for,
)
from edge_gate.audit.outbox import Outbox
from edge_gate.audit.signing import EventSigner
from edge_gate.config.mqtt import MqttConfig
from edge_gate.errors import EdgeGateError
from edge_gate.threads import ServiceThread

log = logging.getLogger(__name__)

KEEPALIVE_S = 30
HEALTH_AFTER_EVENTS_S = 1.0  # a new last event shows up in the health message this soon
CONNACK_TIMEOUT_S = 10.0
STOP_GRACE_S = 1.0


class PublisherOptions(TypedDict, total=False):
    """Tuning knobs of :class:`Publisher` (defaults suit a gateway)."""

    window: int
    backoff_min_s: float
    backoff_max_s: float
    poll_interval_s: float
    health_interval_s: float


@dataclass
class PublisherStats:
    """Counters since start (read with :meth:`Publisher.stats`)."""

    online: bool = False
    published: int = 0
    acked: int = 0
    rejected: int = 0
    connects: int = 0
    connect_failures: int = 0
    last_error: str | None = None


@dataclass
class _Session:
    """State of one broker connection; paho's callbacks run in the worker thread and fill it."""

    connack: ReasonCode | None = None
    closed: bool = False
    inflight: dict[int, int] = field(default_factory=dict)  # mid -> seq
    acked: list[int] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    control_mids: set[int] = field(default_factory=set)


def _event_summary(payload: bytes) -> dict[str, str] | None:
    """The type and time of an event, nothing else (no subject, reason or other fields)."""
    try:
        body = json.loads(payload)
        kind, ts = body["type"], body["ts"]
    except (ValueError, KeyError, TypeError):
        return None
    return {"type": kind, "ts": ts} if isinstance(kind, str) and isinstance(ts, str) else None


def backoff_delay_s(attempt: int, min_s: float, max_s: float, rand01: float) -> float:
    """Exponential backoff with full jitter: uniform in [min_s, min(max_s, min_s·2^attempt)]."""
    ceiling = min(max_s, min_s * (2 ** min(attempt, 30)))
    return float(min_s + (ceiling - min_s) * rand01)


class Publisher(ServiceThread):
    """Delivers outbox events to the broker in a background thread."""

    def __init__(
        self,
        cfg: MqttConfig,
        outbox: Outbox,
        *,
        report_drops: Callable[[], None] | None = None,
        window: int = 256,
        backoff_min_s: float = 0.5,
        backoff_max_s: float = 30.0,
        poll_interval_s: float = 0.5,
        health_interval_s: float = 30.0,
        health_signer: EventSigner | None = None,
    ) -> None:
        self._cfg = cfg
        self._outbox = outbox
        self._topics: Topics = topics_for(cfg)
        # called once connected and whenever unreported overflow drops exist while online
        self._report_drops = report_drops
        self._window = window
        self._backoff = (backoff_min_s, backoff_max_s)
        self._poll_interval_s = poll_interval_s
        self._health_interval_s = health_interval_s
        self._health_signer = health_signer
        self._health_source: Callable[[], Mapping[str, object]] | None = None
        self._last_event: dict[str, str] | None = None
        super().__init__("audit-publisher")
        self._wake = threading.Event()
        self._online = threading.Event()
        self._stats = PublisherStats()
        self._stats_lock = threading.Lock()
        self._rng = secrets.SystemRandom()

    # -- control (any thread) --------------------------------------------------------------------

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Publish ``offline``, disconnect and join; False if the thread did not end in time."""
        return super().stop(timeout_s)

    def _wake_for_stop(self) -> None:
        self._wake.set()

    def wake(self) -> None:
        """New events are in the outbox: look now rather than at the next poll."""
        self._wake.set()

    def wait_online(self, timeout_s: float) -> bool:
        return self._online.wait(timeout_s)

    def set_health_source(self, source: Callable[[], Mapping[str, object]]) -> None:
        """Fields (small, nothing personal) added to every health message, e.g. camera state."""
        self._health_source = source

    def stats(self) -> PublisherStats:
        with self._stats_lock:
            return PublisherStats(**vars(self._stats))

    def _update(self, **changes: Any) -> None:
        with self._stats_lock:
            for k, v in changes.items():
                setattr(self._stats, k, v)

    def _add(self, name: str, n: int) -> None:
        with self._stats_lock:
            setattr(self._stats, name, getattr(self._stats, name) + n)

    # -- worker thread ---------------------------------------------------------------------------

    def run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            self.heartbeat.beat()
            healthy = False
            try:
                healthy = self._one_connection()
            except Exception as e:  # top of the thread: log, back off, try again
                log.exception("audit.publisher_error", extra={"EG_ERROR": type(e).__name__})
                self._update(last_error=f"{type(e).__name__}: {e}")
            self._online.clear()
            self._update(online=False)
            if self._stop.is_set():
                break
            attempt = 0 if healthy else attempt + 1
            delay_s = backoff_delay_s(attempt, *self._backoff, self._rng.random())
            log.info("audit.reconnect_wait", extra={"EG_DELAY_S": round(delay_s, 2)})
            self._stop.wait(delay_s)

    def _fail(self, what: str, detail: str) -> None:
        log.error(
            what, extra={"EG_HOST": self._cfg.host, "EG_PORT": self._cfg.port, "EG_ERROR": detail}
        )
        self._update(last_error=f"{what}: {detail}")
        self._add("connect_failures", 1)

    def _one_connection(self) -> bool:
        """Connect, serve until the link drops or stop; True if it delivered something."""
        session = _Session()
        try:
            client = make_client(self._cfg, self._topics, max_inflight=self._window + 8)
        except EdgeGateError as e:
            self._fail("audit.client_setup_failed", str(e))
            return False
        self._bind(client, session)
        try:
            client.connect(self._cfg.host, self._cfg.port, keepalive=KEEPALIVE_S, clean_start=True)
        except ssl.SSLCertVerificationError as e:
            self._fail("audit.broker_certificate_rejected", e.verify_message or str(e))
            return False
        except (OSError, ssl.SSLError) as e:
            self._fail("audit.connect_failed", f"{type(e).__name__}: {e}")
            return False
        try:
            if not self._await_connack(client, session):
                return False
            return self._serve(client, session)
        finally:
            self._close(client, session)

    def _bind(self, client: mqtt.Client, session: _Session) -> None:
        def on_connect(_c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
            session.connack = rc

        def on_disconnect(
            _c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object
        ) -> None:
            session.closed = True

        def on_publish(_c: mqtt.Client, _u: object, mid: int, rc: ReasonCode, _p: object) -> None:
            seq = session.inflight.pop(mid, None)
            if seq is None:
                session.control_mids.discard(mid)
                return
            (session.rejected if rc.is_failure else session.acked).append(seq)

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_publish = on_publish

    def _await_connack(self, client: mqtt.Client, session: _Session) -> bool:
        deadline = time.monotonic() + CONNACK_TIMEOUT_S
        while session.connack is None and not session.closed and not self._stop.is_set():
            if time.monotonic() > deadline:
                self._fail("audit.connack_timeout", f"no CONNACK within {CONNACK_TIMEOUT_S} s")
                return False
            if client.loop(0.1) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
        if session.connack is None or session.connack.is_failure:
            detail = str(session.connack) if session.connack else "connection closed by broker"
            self._fail("audit.broker_refused", detail)
            return False
        self._update(online=True, last_error=None)
        self._add("connects", 1)
        self._online.set()
        log.info("audit.broker_connected", extra={"EG_HOST": self._cfg.host})
        self._control(client, session, self._topics.status, STATUS_ONLINE, retain=True, qos=1)
        if self._cfg.homeassistant_discovery:
            for topic, payload in self._discovery_messages():
                self._control(client, session, topic, payload, retain=True, qos=1)
        if self._report_drops is not None:
            self._report_drops()
        return True

    def _control(
        self,
        client: mqtt.Client,
        session: _Session,
        topic: str,
        payload: str,
        *,
        retain: bool,
        qos: int,
    ) -> None:
        info = client.publish(topic, payload, qos=qos, retain=retain)
        if qos > 0:
            session.control_mids.add(info.mid)

    def _serve(self, client: mqtt.Client, session: _Session) -> bool:
        last_sent_seq = 0
        more = True
        next_poll = 0.0
        next_health = time.monotonic()
        delivered = False
        while not self._stop.is_set() and not session.closed:
            now = time.monotonic()
            free = self._window - len(session.inflight)
            if free > 0 and (more or self._wake.is_set() or now >= next_poll):
                self._wake.clear()
                rows = self._outbox.pending(after_seq=last_sent_seq, limit=free)
                for row in rows:
                    info = client.publish(self._topics.events(row.door), row.payload, qos=1)
                    if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                        session.closed = True
                        break
                    session.inflight[info.mid] = row.seq
                    last_sent_seq = row.seq
                if rows:
                    self._last_event = _event_summary(rows[-1].payload) or self._last_event
                    next_health = min(next_health, now + HEALTH_AFTER_EVENTS_S)
                self._add("published", len(rows))
                more = len(rows) == free
                next_poll = now + self._poll_interval_s
                if self._report_drops is not None and self._outbox.drops().total:
                    self._report_drops()
                    more = True
            busy = more or bool(session.inflight)
            if client.loop(0.005 if busy else 0.1) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                session.closed = True
            if session.acked:
                self._add("acked", self._outbox.ack(session.acked))
                session.acked.clear()
                delivered = True
            if session.rejected:
                self._add("rejected", len(session.rejected))
                self._fail(
                    "audit.publish_rejected",
                    f"broker refused {len(session.rejected)} events (ACL?); they stay queued",
                )
                return False
            if now >= next_health:
                self._publish_health(client, session)
                next_health = now + self._health_interval_s
        return delivered

    def _publish_health(self, client: mqtt.Client, session: _Session) -> None:
        st = self.stats()
        body: dict[str, Any] = {}
        if self._health_source is not None:
            try:
                body.update(self._health_source())
            except Exception as e:  # telemetry: a failing source costs its fields, not the link
                log.warning("audit.health_source_failed", extra={"EG_ERROR": type(e).__name__})
        body.update(
            gateway=self._cfg.gateway_id,
            ts_ms=time.time_ns() // 1_000_000,
            queued=self._outbox.count(),
            published=st.published,
            acked=st.acked,
            connects=st.connects,
            last_event=self._last_event,
        )
        if self._health_signer is not None:
            body = self._health_signer.sign(body)
        payload = json.dumps(body, sort_keys=True, separators=(",", ":"))
        self._control(client, session, self._topics.health, payload, retain=True, qos=1)

    def _close(self, client: mqtt.Client, session: _Session) -> None:
        if session.connack is not None and not session.connack.is_failure and not session.closed:
            # a clean stop: say so (the will only covers crashes), then wait briefly for the acks
            self._control(client, session, self._topics.status, STATUS_OFFLINE, retain=True, qos=1)
            deadline = time.monotonic() + STOP_GRACE_S
            while (session.control_mids or session.inflight) and time.monotonic() < deadline:
                if client.loop(0.02) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
            if session.acked:
                self._add("acked", self._outbox.ack(session.acked))
            client.disconnect()
            client.loop(0.05)
        sock = client.socket()
        if sock is not None:
            sock.close()
        log.info("audit.broker_disconnected", extra={"EG_HOST": self._cfg.host})

    def _discovery_messages(self) -> list[tuple[str, str]]:
        gw = self._cfg.gateway_id
        device = {
            "identifiers": [f"edge_gate_{gw}"],
            "name": f"edge-gate {gw}",
            "manufacturer": "edge-gate",
        }
        online = {
            "name": "online",
            "unique_id": f"edge_gate_{gw}_online",
            "state_topic": self._topics.status,
            "payload_on": STATUS_ONLINE,
            "payload_off": STATUS_OFFLINE,
            "device_class": "connectivity",
            "device": device,
        }
        queued = {
            "name": "queued audit events",
            "unique_id": f"edge_gate_{gw}_queued",
            "state_topic": self._topics.health,
            "value_template": "{{ value_json.queued }}",
            "availability_topic": self._topics.status,
            "unit_of_measurement": "events",
            "device": device,
        }
        return [
            (self._topics.discovery("binary_sensor", "online"), json.dumps(online, sort_keys=True)),
            (self._topics.discovery("sensor", "queued"), json.dumps(queued, sort_keys=True)),
        ]
