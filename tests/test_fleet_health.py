"""`fleet status` over one real mosquitto (mTLS, per-gateway ACL): what each gateway applied,
its lag, online state, last event and camera/door state — from reports the gateway signed with
its own key — and forged, unsigned or replayed reports flagged, never counted as applied.

``gw-a`` runs a real ``edge-gate fleet follow`` process and an audit publisher (the daemon's
delivery half, with the camera/door state the daemon gives it). ``mallory`` stands for whoever
could write on a gateway's topics besides the gateway (a broker-side attacker, a leaked broad
credential): the ACL below lets it write every gateway's ``fleet/applied`` and ``health``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from edge_gate.audit.events import EventType, encode_event
from edge_gate.audit.signing import (
    EventSigner,
    VerifyOutcome,
    load_signing_key,
    verify_event,
)
from edge_gate.audit.trail import AuditTrail
from edge_gate.config import load_config
from edge_gate.fleet.keys import load_ack_key
from edge_gate_dev.broker import DeskSubscriber, MosquittoBroker, issue_client, mosquitto_broker
from tests.cli_helpers import json_lines, run
from tests.test_fleet_mqtt import (
    PREFIX,
    _follow,
    _setup_gateway,
    _wait,
    admin_station,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ACL = (
    f"\nuser fleet-admin\ntopic readwrite {PREFIX}/fleet/#\ntopic read {PREFIX}/+/fleet/#\n"
    f"topic read {PREFIX}/+/status\ntopic read {PREFIX}/+/health\n"
    f"\nuser gw-a\ntopic read {PREFIX}/fleet/lobby/#\n"
    f"\nuser gw-b\ntopic read {PREFIX}/fleet/lobby/#\n"
    f"\nuser mallory\ntopic write {PREFIX}/+/fleet/applied\ntopic write {PREFIX}/+/health\n"
    f"topic read {PREFIX}/+/fleet/applied\n"
)
GATEWAYS = ("gw-a", "gw-b", "gw-c")


class Client:
    """A plain mTLS client (the forger, or a reader of retained messages)."""

    def __init__(self, broker: MosquittoBroker, cert: Path, key: Path) -> None:
        self.got: dict[str, bytes] = {}
        ctx = broker.client_tls_context()
        ctx.load_cert_chain(str(cert), str(key))
        self._c = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5
        )
        self._c.tls_set_context(ctx)
        self._c.on_message = lambda c, u, m: self.got.__setitem__(m.topic, bytes(m.payload))
        self._c.connect(broker.host, broker.port)
        self._c.loop_start()

    def subscribe(self, topic: str) -> None:
        self._c.subscribe(topic, qos=1)

    def publish(self, topic: str, body: dict[str, Any]) -> None:
        info = self._c.publish(topic, encode_event(body), qos=1, retain=True)
        info.wait_for_publish(5)
        assert info.is_published()

    def stop(self) -> None:
        self._c.disconnect()
        self._c.loop_stop()


def _status(cfg: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    res = run("fleet", "status", "--json", "--wait-s", "1.0", "--config", str(cfg))
    assert res.exit_code in (0, 1), res.output
    return res.exit_code, {r["gateway"]: r for r in json_lines(res.output)}


def _acked(client: Client, gw: str) -> int | None:
    raw = client.got.get(f"{PREFIX}/{gw}/fleet/applied")
    version = json.loads(raw)["groups"].get("lobby", {}).get("version") if raw else None
    return version if isinstance(version, int) else None


def _ack(gw: str, version: int, ts_ms: int) -> dict[str, Any]:
    return {
        "gateway": gw,
        "ts_ms": ts_ms,
        "groups": {"lobby": {"version": version, "applied_at": ts_ms / 1000}},
    }


def test_status_shows_signed_health_and_flags_forged_acks(tmp_path: Path) -> None:
    """gw-a: applied, online, last event, camera and door state, all trusted. Acks signed by
    another gateway's key, by an unknown key or not at all, and gw-a's own older ack replayed,
    are flagged and not counted as applied; so is a health message signed by the wrong key."""
    with (
        mosquitto_broker(tmp_path, extra_acl=ACL) as broker,
        DeskSubscriber(broker, f"{PREFIX}/gw-a/+/events") as desk,
    ):
        st = admin_station(broker, tmp_path, ["Ada Lovelace", "Bo"])
        cert, key, ids, cfg, pub = st.cert, st.key, st.ids, st.config, st.public_key
        dirs = {}
        for gw in GATEWAYS:
            dirs[gw], gpub, ack = _setup_gateway(broker, tmp_path, gw, pub)
            res = run("fleet", "add-gateway", "lobby", gw, gpub, ack, "--config", str(cfg))
            assert res.exit_code == 0, res.output
        for uid in ids:
            assert (
                run("fleet", "enroll", uid, "--group", "lobby", "--config", str(cfg)).exit_code == 0
            )
        assert run("fleet", "publish", "--config", str(cfg)).exit_code == 0

        gw_cfg = load_config(dirs["gw-a"] / "edge-gate.toml")
        trail = AuditTrail.from_config(
            gw_cfg.mqtt,
            publisher_options={"health_interval_s": 0.3},
            health_signer=EventSigner(load_ack_key(dirs["gw-a"] / "fleet-ack.key")),
        )
        trail.set_health_source(lambda: {"camera": "streaming", "camera_fps": 9.8, "door": "up"})
        mcert, mkey = issue_client(broker.pki, "mallory", tmp_path / "mallory")
        mallory = Client(broker, mcert, mkey)
        follower = _follow(dirs["gw-a"])
        try:
            trail.start()
            mallory.subscribe(f"{PREFIX}/gw-a/fleet/applied")
            assert _wait(lambda: f"{PREFIX}/gw-a/fleet/applied" in mallory.got, 30), (
                dirs["gw-a"] / "follower.log"
            ).read_bytes()[-2000:]
            assert _wait(
                lambda: _acked(mallory, "gw-a") == 1,
                30,
            )
            old_ack = json.loads(mallory.got[f"{PREFIX}/gw-a/fleet/applied"])
            trail.emit(
                EventType.ACCESS_DENIED, door="door-1", subject="u_secretsubject", reason="unknown"
            )

            # forgeries on the other gateways' topics
            now_ms = round(time.time() * 1000)
            gw_a_key = EventSigner(load_ack_key(dirs["gw-a"] / "fleet-ack.key"))
            stranger = EventSigner(Ed25519PrivateKey.generate())
            mallory.publish(f"{PREFIX}/gw-b/fleet/applied", gw_a_key.sign(_ack("gw-b", 1, now_ms)))
            mallory.publish(f"{PREFIX}/gw-c/fleet/applied", _ack("gw-c", 1, now_ms))  # unsigned
            forged_health = stranger.sign(
                {"gateway": "gw-b", "ts_ms": now_ms, "camera": "streaming", "door": "up"}
            )
            mallory.publish(f"{PREFIX}/gw-b/health", forged_health)

            time.sleep(0.8)  # a health tick after the event
            code, rows = _status(cfg)
            assert code == 1  # gw-b and gw-c are behind and untrusted
            a = rows["gw-a"]
            assert (a["applied"], a["lag"], a["ack"]) == (1, 0, "trusted"), a
            assert a["follower"] == "online"
            assert a["daemon"] == "online"
            assert a["health"] == "trusted"
            assert (a["camera"], a["door"]) == ("streaming", "up")
            assert a["last_event"]["type"] == "access.denied"
            assert a["last_event"]["ts"].endswith("Z")
            b, c = rows["gw-b"], rows["gw-c"]
            assert (b["ack"], b["applied"], b["lag"]) == ("wrong_key", 0, 1)
            assert (b["health"], b["camera"], b["door"]) == ("wrong_key", None, None)
            assert (c["ack"], c["applied"], c["lag"]) == ("unsigned", 0, 1)
            assert c["health"] is None

            # gw-a moves on to v2; then its own v1 ack is replayed in place of the v2 one
            assert run("fleet", "publish", "--force", "--config", str(cfg)).exit_code == 0
            assert _wait(
                lambda: _acked(mallory, "gw-a") == 2,
                30,
            )
            _code, rows = _status(cfg)
            assert (rows["gw-a"]["applied"], rows["gw-a"]["ack"]) == (2, "trusted")
            mallory.publish(f"{PREFIX}/gw-a/fleet/applied", old_ack)
            _code, rows = _status(cfg)
            a = rows["gw-a"]
            assert (a["ack"], a["applied"], a["lag"]) == ("replayed", 0, 2), a
            text = run("fleet", "status", "--wait-s", "1.0", "--config", str(cfg)).output
            assert "ack REPLAYED" in text
            assert "ack WRONG_KEY" in text
            assert "last fleet.applied" in text  # v2 applied after the denial

            # the health message carries the type and time of the last event, nothing personal
            health = Client(broker, cert, key)
            health.subscribe(f"{PREFIX}/gw-a/health")
            assert _wait(lambda: f"{PREFIX}/gw-a/health" in health.got, 10)
            health.stop()
            raw = health.got[f"{PREFIX}/gw-a/health"]
            assert b"u_secretsubject" not in raw
            assert b"unknown" not in raw

            # the follower's own events (fleet.applied) reach the broker like every audit event:
            # the follower writes them to the gateway's outbox, the daemon's publisher sends them
            audit_pub = load_signing_key(dirs["gw-a"] / "audit.key").public_key()
            assert _wait(
                lambda: (
                    sum(json.loads(m.payload)["type"] == "fleet.applied" for m in desk.snapshot())
                    >= 2
                ),
                10,
            )
            applied = [
                json.loads(m.payload)
                for m in desk.snapshot()
                if json.loads(m.payload)["type"] == "fleet.applied"
            ]
            assert {e["reason"] for e in applied} >= {"lobby v1 full", "lobby v2 delta"}
            assert all(e["gateway"] == "gw-a" for e in applied)
            assert all(verify_event(e, audit_pub) is VerifyOutcome.VALID for e in applied)
        finally:
            mallory.stop()
            follower.terminate()
            follower.wait(10)
            trail.stop()
