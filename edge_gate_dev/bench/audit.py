"""Publish throughput benchmark: drain a pre-filled outbox to a broker over TLS.

``bench_publish(cfg, events=5000)`` measures against any broker in ``cfg``; ``bench_local(workdir)``
starts a throw-away mosquitto with mutual TLS on loopback (what ``edge-gate bench`` reports). The
figure is sustained events/s from the first publish to the last PUBACK (each PUBACK'd batch is
deleted from the SQLite outbox with ``synchronous=FULL``, as in production).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge_gate.audit.events import EventType, build_event, encode_event
from edge_gate.audit.outbox import Outbox, OutboxEntry
from edge_gate.audit.publisher import Publisher
from edge_gate.audit.signing import EventSigner, load_signing_key
from edge_gate.config.mqtt import MqttConfig
from edge_gate.errors import AuditError

TARGET_EVENTS_PER_S = 500.0


@dataclass(frozen=True)
class PublishBenchResult:
    events: int
    seconds: float
    events_per_s: float
    window: int
    tls: bool
    target_events_per_s: float = TARGET_EVENTS_PER_S

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _prefill(outbox: Outbox, signer: EventSigner, cfg: MqttConfig, events: int) -> None:
    def maker(i: int) -> Callable[[int], OutboxEntry]:
        def make(seq: int) -> OutboxEntry:
            built = build_event(
                event_type=EventType.TEST,
                seq=seq,
                unix_ms=time.time_ns() // 1_000_000,
                rand=secrets.token_bytes(10),
                gateway=cfg.gateway_id,
                door="bench",
                reason="bench",
                extra={"count": i},
            )
            signed = signer.sign(built.fields)
            return OutboxEntry(str(signed["id"]), "test", "bench", False, encode_event(signed))

        return make

    batch = 1000
    for start in range(0, events, batch):
        outbox.append_many([maker(i) for i in range(start, min(start + batch, events))])


def bench_publish(
    cfg: MqttConfig, *, events: int = 5000, window: int = 256, timeout_s: float = 120.0
) -> PublishBenchResult:
    """Fill ``cfg.outbox_file`` with ``events`` signed events, then time the drain to the broker."""
    signer = EventSigner(load_signing_key(cfg.signing_key_file))
    with Outbox(cfg.outbox_file, max(cfg.outbox_max_events, events)) as outbox:
        if outbox.count():
            raise AuditError(f"{cfg.outbox_file}: outbox not empty; use a scratch outbox")
        _prefill(outbox, signer, cfg, events)
        publisher = Publisher(cfg, outbox, window=window, health_interval_s=3600.0)
        publisher.start()
        try:
            if not publisher.wait_online(min(timeout_s, 30.0)):
                raise AuditError(f"benchmark: broker not reachable: {publisher.stats().last_error}")
            t0 = time.perf_counter()
            deadline = time.monotonic() + timeout_s
            while outbox.count() > 0:
                if time.monotonic() > deadline:
                    raise AuditError(f"benchmark: {outbox.count()} events left after {timeout_s} s")
                time.sleep(0.005)
            seconds = time.perf_counter() - t0
        finally:
            publisher.stop(5.0)
    return PublishBenchResult(
        events=events,
        seconds=round(seconds, 3),
        events_per_s=round(events / seconds, 1),
        window=window,
        tls=not cfg.insecure_plaintext,
    )


def bench_local(workdir: Path, *, events: int = 5000, window: int = 256) -> PublishBenchResult:
    """Start a local mosquitto (mutual TLS, loopback) in ``workdir``; run :func:`bench_publish`."""
    from edge_gate_dev.broker import gateway_config, mosquitto_broker

    with mosquitto_broker(workdir) as broker:
        cfg = gateway_config(broker, workdir)
        return bench_publish(cfg, events=events, window=window)
