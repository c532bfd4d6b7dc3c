"""``AuditTrail``: the one object the daemon and the CLIs use to record audit events.

API::

    trail = AuditTrail.from_config(cfg.mqtt)          # loads the signing key, opens the outbox
    trail.start()                                      # optional: deliver to the broker in a thread
    seq = trail.emit("access.granted", door="door-1", subject="u-7f3a", reason="match",
                     score=0.8123, liveness=0.97, latency_ms=183.4)   # -> seq, or None on failure
    trail.flush(timeout_s=5.0)                         # True once all PUBACKed
    trail.stats()                                      # AuditStats snapshot
    trail.stop(timeout_s=5.0)                          # offline status, disconnect, close

* ``emit`` is thread-safe, never raises and never waits for the network: it builds the event, signs
  it (Ed25519) and commits it to the durable outbox (one SQLite transaction with fsync), then wakes
  the publisher. Errors are logged (``audit.emit_failed``) and returned as ``None``: the decision
  path is never blocked or broken by auditing.
* Without ``start()`` events are only stored (the enroll CLI does this); the daemon's publisher
  picks them up from the shared outbox file.
* Keyword fields outside the schema (and ``name`` unless ``mqtt.include_names``) are left out and
  logged by key name only (``audit.fields_dropped``): no images, embeddings or names leak by
  mistake.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from edge_gate.audit.events import BuiltEvent, EventType, build_event, encode_event
from edge_gate.audit.outbox import DropCounters, Outbox, OutboxEntry
from edge_gate.audit.publisher import Publisher, PublisherOptions, PublisherStats
from edge_gate.audit.signing import EventSigner, load_signing_key
from edge_gate.config.mqtt import MqttConfig

log = logging.getLogger(__name__)


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class AuditStats:
    """Snapshot for health reporting and ``edge-gate audit test``."""

    queued: int
    last_seq: int
    dropped_unreported: int
    emitted: int
    emit_failures: int
    publisher: PublisherStats


class AuditTrail:
    """Sign → outbox → (optionally) publish."""

    def __init__(
        self,
        cfg: MqttConfig,
        *,
        signer: EventSigner,
        outbox: Outbox,
        clock_ms: Callable[[], int] = _wall_clock_ms,
        rand: Callable[[int], bytes] = secrets.token_bytes,
        publisher_options: PublisherOptions | None = None,
        health_signer: EventSigner | None = None,
    ) -> None:
        self._cfg = cfg
        self._signer = signer
        self._outbox = outbox
        self._clock_ms = clock_ms
        self._rand = rand
        self._publisher = Publisher(
            cfg,
            outbox,
            report_drops=self._report_drops,
            health_signer=health_signer,
            **(publisher_options or {}),
        )
        self._lock = threading.Lock()
        self._emitted = 0
        self._failures = 0
        self._closed = False
        self._final: tuple[int, int, int] | None = None

    @classmethod
    def from_config(
        cls,
        cfg: MqttConfig,
        *,
        publisher_options: PublisherOptions | None = None,
        health_signer: EventSigner | None = None,
    ) -> AuditTrail:
        """Load ``signing_key_file`` (credential ``audit.key``) and open ``outbox_file``.

        ``health_signer`` (the gateway's fleet key) signs the retained health message.
        Raises SecretFileError / AuditError: a gateway without its audit key must not run.
        """
        signer = EventSigner(load_signing_key(cfg.signing_key_file))
        outbox = Outbox(cfg.outbox_file, cfg.outbox_max_events)
        return cls(
            cfg,
            signer=signer,
            outbox=outbox,
            publisher_options=publisher_options,
            health_signer=health_signer,
        )

    @property
    def outbox(self) -> Outbox:
        return self._outbox

    @property
    def public_key_id(self) -> str:
        return self._signer.kid

    def _entry(self, built: BuiltEvent) -> OutboxEntry:
        signed = self._signer.sign(built.fields)
        return OutboxEntry(
            event_id=str(signed["id"]),
            event_type=built.event_type.value,
            door=built.door,
            is_security=built.is_security,
            payload=encode_event(signed),
        )

    def emit(
        self,
        event_type: EventType | str,
        *,
        door: str | None,
        subject: str | None = None,
        reason: str | None = None,
        **fields: object,
    ) -> int | None:
        """Record one event; return its seq, or None if it could not be stored (logged)."""
        try:
            if self._closed:
                raise RuntimeError("audit trail is closed")
            holder: list[BuiltEvent] = []

            def make(seq: int) -> OutboxEntry:
                built = build_event(
                    event_type=event_type,
                    seq=seq,
                    unix_ms=self._clock_ms(),
                    rand=self._rand(10),
                    gateway=self._cfg.gateway_id,
                    door=door,
                    subject=subject,
                    reason=reason,
                    include_names=self._cfg.include_names,
                    extra=fields,
                )
                holder.append(built)
                return self._entry(built)

            result = self._outbox.append(make)
        except Exception as e:  # the decision path must never see an audit failure
            with self._lock:
                self._failures += 1
            log.error(
                "audit.emit_failed",
                extra={
                    "EG_EVENT": str(event_type),
                    "EG_DOOR": door,
                    "EG_ERROR": f"{type(e).__name__}: {e}",
                },
            )
            return None
        with self._lock:
            self._emitted += 1
        if holder and holder[0].dropped_fields:
            log.warning(
                "audit.fields_dropped",
                extra={
                    "EG_EVENT": str(event_type),
                    "EG_FIELDS": ",".join(holder[0].dropped_fields),
                },
            )
        if not result.stored:
            log.error(
                "audit.outbox_full", extra={"EG_EVENT": str(event_type), "EG_SEQ": result.seq}
            )
        self._publisher.wake()
        return result.seq if result.stored else None

    def _report_drops(self) -> None:
        def make(seq: int, drops: DropCounters) -> OutboxEntry:
            built = build_event(
                event_type=EventType.AUDIT_DROPPED,
                seq=seq,
                unix_ms=self._clock_ms(),
                rand=self._rand(10),
                gateway=self._cfg.gateway_id,
                door=None,
                reason="outbox_overflow",
                extra={"dropped": drops.dropped, "dropped_security": drops.dropped_security},
            )
            return self._entry(built)

        result = self._outbox.take_drop_report(make)
        if result is not None:
            log.warning("audit.dropped_reported", extra={"EG_SEQ": result.seq})

    def start(self) -> None:
        """Start delivering to the broker (background thread)."""
        self._publisher.start()

    def wait_online(self, timeout_s: float) -> bool:
        return self._publisher.wait_online(timeout_s)

    def set_health_source(self, source: Callable[[], Mapping[str, object]]) -> None:
        """Small state fields for the retained health message (camera, door; nothing personal)."""
        self._publisher.set_health_source(source)

    def flush(self, timeout_s: float) -> bool:
        """Wait until every stored event is acknowledged; False on timeout."""
        deadline = time.monotonic() + timeout_s
        self._publisher.wake()
        while self._outbox.count() > 0:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def _outbox_numbers(self) -> tuple[int, int, int]:
        return self._outbox.count(), self._outbox.last_seq(), self._outbox.drops().total

    def stats(self) -> AuditStats:
        """Counters; after :meth:`stop` the outbox figures are those seen at close."""
        queued, last_seq, dropped = self._final or self._outbox_numbers()
        with self._lock:
            emitted, failures = self._emitted, self._failures
        return AuditStats(
            queued=queued,
            last_seq=last_seq,
            dropped_unreported=dropped,
            emitted=emitted,
            emit_failures=failures,
            publisher=self._publisher.stats(),
        )

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Stop publishing (``offline`` status, disconnect) and close the outbox. Idempotent."""
        if self._closed:
            return True
        ok = self._publisher.stop(timeout_s)
        self._closed = True
        if ok:
            self._final = self._outbox_numbers()
            self._outbox.close()
        return ok

    def close(self) -> None:
        """Alias of :meth:`stop` for CLIs that never started the publisher."""
        self.stop()

    def __enter__(self) -> AuditTrail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
