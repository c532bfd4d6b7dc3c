"""Soak: 10k audit events through broker restarts and a publisher SIGKILL → nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edge_gate.audit.outbox import Outbox
from tests.mqtt_broker import DeskSubscriber, Received, mosquitto_broker, mqtt_config

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(900)]

TOTAL = 10_000
REPO = Path(__file__).resolve().parent.parent

PRODUCER = textwrap.dedent(
    """
    import sys
    from edge_gate.config.mqtt import MqttConfig
    from edge_gate.audit.trail import AuditTrail
    cfg = MqttConfig.model_validate_json(sys.argv[1])
    n = int(sys.argv[2])
    trail = AuditTrail.from_config(
        cfg, publisher_options={"backoff_min_s": 0.1, "backoff_max_s": 1.0, "poll_interval_s": 0.1}
    )
    trail.start()
    for i in range(n):
        trail.emit("access.denied", door="door-1", reason="soak", count=i)
    ok = trail.flush(300)
    trail.stop(5)
    sys.exit(0 if ok else 3)
    """
)


def _unique(messages: list[Received]) -> dict[str, int]:
    out: dict[str, int] = {}
    for m in messages:
        if m.topic.endswith("/events"):
            event = json.loads(m.payload)
            out.setdefault(event["id"], int(event["seq"]))
    return out


def test_ten_thousand_events_survive_restarts_and_sigkill(tmp_path: Path) -> None:
    """Producer emits while the broker is restarted three times and the producer is killed -9 once;
    a second producer finishes the 10k. The desk must end up with every seq 1..N."""
    with mosquitto_broker(tmp_path) as broker:
        cfg = mqtt_config(broker, tmp_path)
        env = {**os.environ, "PYTHONPATH": str(REPO)}

        def producer(n: int) -> subprocess.Popen[bytes]:
            args = [sys.executable, "-c", PRODUCER, cfg.model_dump_json(), str(n)]
            return subprocess.Popen(args, env=env)

        with DeskSubscriber(broker) as desk:

            def received() -> int:
                return len(_unique(desk.snapshot()))

            first = producer(TOTAL)
            restarts = 0
            for threshold in (1500, 3000):
                assert desk.wait_for(lambda ms, t=threshold: len(_unique(ms)) >= t, 300)
                broker.restart()
                restarts += 1
            assert desk.wait_for(lambda ms: len(_unique(ms)) >= 4500, 300)
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            with Outbox(cfg.outbox_file, cfg.outbox_max_events) as ob:
                stored_at_kill, unacked_at_kill = ob.last_seq(), ob.count()
            second = producer(TOTAL - stored_at_kill)
            assert desk.wait_for(lambda ms: len(_unique(ms)) >= 7000, 300)
            broker.restart()
            restarts += 1
            assert second.wait(600) == 0
            with Outbox(cfg.outbox_file, cfg.outbox_max_events) as ob:
                stored, left = ob.last_seq(), ob.count()
            assert desk.wait_for(lambda ms: len(_unique(ms)) >= stored, 60)
            time.sleep(0.5)
        seqs = _unique(desk.snapshot())
        all_events = [m for m in desk.snapshot() if m.topic.endswith("/events")]
    lost = set(range(1, stored + 1)) - set(seqs.values())
    print(
        f"soak: stored={stored} delivered_unique={len(seqs)} lost={len(lost)} "
        f"duplicates={len(all_events) - len(seqs)} broker_restarts={restarts} "
        f"unacked_at_sigkill={unacked_at_kill} left_in_outbox={left} received={received()}"
    )
    assert stored == TOTAL
    assert left == 0
    assert lost == set()
