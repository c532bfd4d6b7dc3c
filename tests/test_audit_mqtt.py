"""Audit trail against a real mosquitto (generated CA, mutual TLS, ACLs, read-only desk user)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge_gate.audit.events import decode_event
from edge_gate.audit.outbox import Outbox
from edge_gate.audit.publisher import PublisherOptions
from edge_gate.audit.signing import load_signing_key
from edge_gate.audit.trail import AuditTrail
from edge_gate.audit.verify import verify_lines
from edge_gate.config.mqtt import MqttConfig
from edge_gate.fsutil import atomic_write
from tests.mqtt_broker import (
    DeskSubscriber,
    MosquittoBroker,
    Received,
    mosquitto_broker,
    mqtt_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

FAST: PublisherOptions = {"backoff_min_s": 0.1, "backoff_max_s": 1.0, "poll_interval_s": 0.1}
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with mosquitto_broker(tmp_path) as b:
        yield b


def wait_until(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def unique_seqs(messages: list[Received]) -> list[int]:
    """seqs in order of first arrival, duplicates (same id) removed."""
    seen: set[str] = set()
    out: list[int] = []
    for m in messages:
        if not m.topic.endswith("/events"):
            continue
        event = json.loads(m.payload)
        if event["id"] not in seen:
            seen.add(event["id"])
            out.append(int(event["seq"]))
    return out


def write_config(path: Path, cfg: MqttConfig, door_id: str = "door-1") -> Path:
    lines = ["[mqtt]"]
    for key, value in cfg.model_dump(exclude_none=True).items():
        lines.append(f"{key} = {json.dumps(value if not isinstance(value, Path) else str(value))}")
    lines += ["", "[policy]", f'door_id = "{door_id}"']
    path.write_text("\n".join(lines) + "\n")
    return path


def test_end_to_end_signed_events_reach_the_desk(broker: MosquittoBroker, tmp_path: Path) -> None:
    """mTLS publish → read-only desk subscriber: topics, retained online/offline, and every payload
    verifies against the gateway's public key."""
    cfg = mqtt_config(broker, tmp_path)
    with DeskSubscriber(broker) as desk:
        trail = AuditTrail.from_config(cfg, publisher_options=FAST)
        trail.start()
        assert trail.emit("service.started", door=None, reason="boot") == 1
        for i in range(20):
            trail.emit("access.granted", door="door-1", subject=f"u-{i}", reason="match", score=0.9)
        trail.emit("access.denied", door="door-2", reason="unknown_face", score=0.31)
        assert trail.flush(15)
        assert desk.wait_for(lambda ms: len(unique_seqs(ms)) == 22, 10)
        trail.stop(5)
        assert desk.wait_for(lambda ms: any(m.payload == b"offline" for m in ms), 5)
    msgs = desk.snapshot()
    topics = {m.topic for m in msgs}
    assert {
        "edge-gate/gw1/_gateway/events",
        "edge-gate/gw1/door-1/events",
        "edge-gate/gw1/door-2/events",
        "edge-gate/gw1/status",
        "edge-gate/gw1/health",
    } <= topics
    status = [m.payload for m in msgs if m.topic.endswith("/status")]
    assert status[0] == b"online"
    assert status[-1] == b"offline"
    pub = load_signing_key(cfg.signing_key_file).public_key()
    report = verify_lines([m.payload.decode() for m in msgs if m.topic.endswith("/events")], pub)
    assert report.ok, report.problems
    assert report.valid == 22
    assert unique_seqs(msgs) == list(range(1, 23))


def test_retained_status_for_late_desk(broker: MosquittoBroker, tmp_path: Path) -> None:
    """A desk that connects later still learns the gateway is online (retained status)."""
    trail = AuditTrail.from_config(mqtt_config(broker, tmp_path), publisher_options=FAST)
    trail.start()
    assert trail.wait_online(10)
    time.sleep(0.2)
    with DeskSubscriber(broker, topic="edge-gate/gw1/status") as desk:
        assert desk.wait_for(lambda ms: any(m.retain and m.payload == b"online" for m in ms), 5)
    trail.stop(5)


def _refused(cfg: MqttConfig, expected_error: str) -> None:
    trail = AuditTrail.from_config(cfg, publisher_options=FAST)
    trail.emit("access.granted", door="door-1", subject="u-1")
    trail.emit("access.denied", door="door-1")
    trail.start()
    try:
        assert wait_until(lambda: (trail.stats().publisher.last_error or "") != "", 15)
        stats = trail.stats()
        assert expected_error in (stats.publisher.last_error or "")
        assert stats.publisher.acked == 0
        assert stats.queued == 2  # the events wait in the outbox
    finally:
        trail.stop(5)


def test_wrong_ca_is_refused(broker: MosquittoBroker, tmp_path: Path) -> None:
    """Broker certificate not signed by our CA → no connection, events stay queued."""
    with DeskSubscriber(broker) as desk:
        _refused(mqtt_config(broker, tmp_path, ca_file=broker.pki.rogue_ca), "certificate_rejected")
        assert desk.events() == []


def test_hostname_mismatch_is_refused(tmp_path: Path) -> None:
    """A valid certificate for another host name is refused (hostname check is on)."""
    with mosquitto_broker(tmp_path, server_names=("broker.invalid",)) as b:
        _refused(mqtt_config(b, tmp_path), "mismatch")


def test_client_cert_from_another_ca_is_rejected_then_events_flow(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    """The broker rejects a client certificate signed by a rogue CA; the events wait in the outbox
    and are delivered once the gateway uses its proper certificate."""
    rogue = mqtt_config(
        broker,
        tmp_path,
        cert_file=broker.pki.rogue_client_cert,
        key_file=broker.pki.rogue_client_key,
    )
    gateway_session = f"u'{broker.gateway_id}')"  # mosquitto's "New client connected" line
    with DeskSubscriber(broker) as desk:
        _refused(rogue, "broker_refused")
        assert desk.events() == []
        refused_log = broker.log()
        assert "certificate verify failed" in refused_log  # the broker refused it in TLS...
        assert gateway_session not in refused_log  # ...so no MQTT session was ever opened
        trail = AuditTrail.from_config(mqtt_config(broker, tmp_path), publisher_options=FAST)
        trail.start()
        assert trail.flush(15)
        trail.stop(5)
        assert desk.wait_for(lambda ms: unique_seqs(ms) == [1, 2], 10)
        assert gateway_session in broker.log()  # the same check sees the proper certificate's


def test_acl_refusal_keeps_events_queued(broker: MosquittoBroker, tmp_path: Path) -> None:
    """Publishing outside the gateway's ACL is refused by PUBACK reason code (MQTT v5): the events
    are not deleted, the refusal is counted and reported."""
    cfg = mqtt_config(broker, tmp_path, gateway_id="not-my-cn")
    trail = AuditTrail.from_config(cfg, publisher_options=FAST)
    trail.emit("access.granted", door="door-1")
    trail.start()
    try:
        assert wait_until(lambda: trail.stats().publisher.rejected > 0, 15)
        assert "publish_rejected" in (trail.stats().publisher.last_error or "")
        assert trail.stats().queued == 1
    finally:
        trail.stop(5)


def test_username_password_over_tls(broker: MosquittoBroker, tmp_path: Path) -> None:
    """Optional user/password from credential files (no client certificate) works over TLS."""
    user = f"pw-{broker.gateway_id}"
    (tmp_path / "mqtt.user").write_text(user + "\n")
    atomic_write(tmp_path / "mqtt.password", broker.passwords[user].encode() + b"\n")
    cfg = mqtt_config(
        broker,
        tmp_path,
        port=broker.password_port,
        cert_file=None,
        key_file=None,
        gateway_id=user,
        username_file=tmp_path / "mqtt.user",
        password_file=tmp_path / "mqtt.password",
    )
    with DeskSubscriber(broker) as desk:
        trail = AuditTrail.from_config(cfg, publisher_options=FAST)
        trail.emit("camera.lost", door="door-1", reason="stall")
        trail.start()
        assert trail.flush(15)
        trail.stop(5)
        assert desk.wait_for(lambda ms: unique_seqs(ms) == [1], 10)


def test_broker_restart_every_event_arrives_in_seq_order(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    """Broker stopped and restarted mid-stream: every event arrives, first arrivals in seq order."""
    total = 150
    trail = AuditTrail.from_config(mqtt_config(broker, tmp_path), publisher_options=FAST)
    with DeskSubscriber(broker) as desk:
        trail.start()

        def produce() -> None:
            for i in range(total):
                trail.emit("access.denied", door="door-1", reason="unknown_face", count=i)
                time.sleep(0.004)

        producer = threading.Thread(target=produce)
        producer.start()
        assert desk.wait_for(lambda ms: len(unique_seqs(ms)) >= 30, 15)
        broker.stop()
        time.sleep(0.5)
        broker.start()
        producer.join(30)
        assert trail.flush(30), trail.stats()
        assert desk.wait_for(lambda ms: len(unique_seqs(ms)) == total, 20), len(
            unique_seqs(desk.snapshot())
        )
        trail.stop(5)
    seqs = unique_seqs(desk.snapshot())
    assert seqs == list(range(1, total + 1))
    assert trail.stats().publisher.connects >= 2


def test_publisher_sigkill_then_restart_delivers_everything(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    """`edge-gate audit test` is killed with SIGKILL mid-stream; the last will says offline; after a
    restart every event that was ever stored arrives (duplicates allowed, recognised by id)."""
    cfg = mqtt_config(broker, tmp_path)
    conf = write_config(tmp_path / "edge-gate.toml", cfg)
    cmd = [sys.executable, "-m", "edge_gate", "audit", "test", "--config", str(conf)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with DeskSubscriber(broker) as desk:
        proc = subprocess.Popen([*cmd, "--count", "3000", "--timeout", "60"], env=env)
        try:
            assert desk.wait_for(lambda ms: len(unique_seqs(ms)) >= 200, 30)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        assert desk.wait_for(lambda ms: ms[-1].payload == b"offline", 10)  # last will
        with Outbox(cfg.outbox_file, cfg.outbox_max_events) as ob:
            stored, unacked = ob.last_seq(), ob.count()
        received_before = len(unique_seqs(desk.snapshot()))
        assert stored < 3000  # killed mid-stream, not after the run finished
        rerun = subprocess.run(
            [*cmd, "--count", "0", "--timeout", "30"], env=env, capture_output=True
        )
        assert rerun.returncode == 0, rerun.stderr
        assert desk.wait_for(lambda ms: len(unique_seqs(ms)) == stored, 20)
    seqs = unique_seqs(desk.snapshot())
    assert sorted(seqs) == list(range(1, stored + 1))
    all_events = [m for m in desk.snapshot() if m.topic.endswith("/events")]
    print(
        f"sigkill: stored={stored} unacked_at_kill={unacked} received_before={received_before} "
        f"received_total={len(all_events)} duplicates={len(all_events) - len(seqs)}"
    )


def test_home_assistant_discovery(broker: MosquittoBroker, tmp_path: Path) -> None:
    """With discovery on, retained config messages describe the gateway's status and queue."""
    cfg = mqtt_config(broker, tmp_path, homeassistant_discovery=True)
    trail = AuditTrail.from_config(cfg, publisher_options=FAST)
    trail.start()
    assert trail.wait_online(10)
    with DeskSubscriber(broker, topic="homeassistant/#") as desk:
        assert desk.wait_for(lambda ms: len(ms) >= 2, 10)
    trail.stop(5)
    configs = {m.topic: json.loads(m.payload) for m in desk.snapshot()}
    online = configs["homeassistant/binary_sensor/gw1/online/config"]
    assert online["state_topic"] == "edge-gate/gw1/status"
    assert online["device_class"] == "connectivity"
    assert "homeassistant/sensor/gw1/queued/config" in configs


def test_payload_on_the_wire_is_the_stored_signed_event(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    """What the desk receives decodes with the schema rules and carries no name by default."""
    cfg = mqtt_config(broker, tmp_path)
    with DeskSubscriber(broker) as desk:
        trail = AuditTrail.from_config(cfg, publisher_options=FAST)
        trail.start()
        trail.emit("access.granted", door="door-1", subject="u-1", name="Alice Example")
        assert trail.flush(10)
        trail.stop(5)
        assert desk.wait_for(lambda ms: len(unique_seqs(ms)) == 1, 10)
    event = decode_event(desk.events()[0].payload)
    assert "name" not in event
    assert b"Alice" not in desk.events()[0].payload


def test_overflow_drops_are_reported_once_back_online(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    """Outbox bound hit while offline: the oldest non-security events are evicted, and once the
    broker is reachable the desk gets a signed audit.dropped event explaining the seq gap."""
    cfg = mqtt_config(broker, tmp_path, outbox_max_events=100)
    trail = AuditTrail.from_config(cfg, publisher_options=FAST)
    for i in range(120):
        trail.emit("camera.lost", door="door-1", count=i)
    with DeskSubscriber(broker) as desk:
        trail.start()
        assert trail.flush(15)
        assert desk.wait_for(lambda ms: len(unique_seqs(ms)) == 101, 10)
        trail.stop(5)
    events = [json.loads(m.payload) for m in desk.events()]
    dropped = [e for e in events if e["type"] == "audit.dropped"]
    assert len(dropped) == 1
    assert dropped[0]["dropped"] == 20
    assert dropped[0]["seq"] == 121
    pub = load_signing_key(cfg.signing_key_file).public_key()
    report = verify_lines([m.payload.decode() for m in desk.events()], pub)
    assert report.problems == []
    assert report.seq_range == {"gw1": (21, 121)}  # seq 1..20 were the evicted ones
