"""Fleet bundle benchmark for ``edge-gate bench --section fleet``: a door group of 100k people.

Measured on this box: ``seal_s`` — the admin's publish work (payload encoding, AES-GCM of every
chunk, key wrap, signing); ``bytes`` — what goes on the broker (header + chunks); in a fresh
child process that stands for the gateway follower: ``open_s`` (signature, hashes, decryption,
payload parsing), ``apply_s`` (one transaction into an empty local gallery, re-encrypted with
its own key) and ``follower_max_rss_mb`` (peak resident memory of that child, Python included).

With ``mqtt`` (the default) the same bundle also goes through a real mosquitto (mTLS, the
per-gateway ACL, this box, loopback): ``mqtt_publish_s`` — the admin's publish as ``fleet
publish`` does it (every chunk, then the header, each QoS 1 retained and waited for until its
PUBACK); ``mqtt_transfer_s`` — from the start of that publish until a subscribed gateway (another
process, the follower's own MQTT client) has received the header and every chunk.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edge_gate.fleet.admin import FleetState, Group, PublishPlan, plan_publish
from edge_gate.fleet.keys import raw_public
from edge_gate.fleet.link import FleetLink
from edge_gate.fleet.publish import publish_plan
from edge_gate.fleet.topics import FleetTopics
from edge_gate.fsutil import atomic_write
from edge_gate.gallery.loaded import LoadedGallery, new_user_id
from edge_gate.gallery.record import PersonRecord


def write_gateway_key(path: Path, key: X25519PrivateKey) -> None:
    from cryptography.hazmat.primitives import serialization

    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    atomic_write(path, pem)


def _people(n: int, dim: int, per_person: int) -> tuple[PersonRecord, ...]:
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        v = rng.standard_normal((per_person, dim), dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out.append(PersonRecord(new_user_id(), f"Person {i}", "mobilefacenet-fp32", 1.0, v))
    return tuple(sorted(out, key=lambda p: p.user_id))


def run_fleet_bench(
    n_people: int = 100_000,
    dim: int = 192,
    per_person: int = 1,
    chunk_kib: int = 1024,
    *,
    mqtt: bool = True,
) -> dict[str, Any]:
    people = _people(n_people, dim, per_person)
    master = LoadedGallery("g_bench", 1, "k_bench", people)
    gw_key = X25519PrivateKey.generate()
    state = FleetState(
        {"lobby": Group({"gw-1": raw_public(gw_key.public_key())}, dict.fromkeys(master._by_id))}
    )
    signing_key = Ed25519PrivateKey.generate()
    begun = time.perf_counter()
    plan = plan_publish(
        state, "lobby", master, signing_key, created=time.time(), chunk_bytes=chunk_kib * 1024
    )
    seal_s = time.perf_counter() - begun
    if plan is None:
        raise RuntimeError("nothing to publish")
    message = plan.full.standalone()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "bundle").write_bytes(message)
        (d / "chunks").write_bytes(
            b"".join(len(c).to_bytes(4, "little") + c for c in plan.full.chunks)
        )
        (d / "fleet.pub").write_text(raw_public(signing_key.public_key()))
        write_gateway_key(d / "gw.key", gw_key)
        proc = subprocess.run(  # noqa: S603 (our interpreter, a fresh follower-like process)
            [sys.executable, "-m", "edge_gate_dev.bench.fleet_child", str(d)],
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"the follower stand-in failed: {proc.stderr[-2000:]}")
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    transfer = mqtt_transfer(state, plan) if mqtt else {}
    return {
        "people": n_people,
        "dim": dim,
        "templates_per_person": per_person,
        "chunks": len(plan.full.chunks),
        "bytes": len(message) + sum(len(c) for c in plan.full.chunks),
        "seal_s": round(seal_s, 2),
        **child,
        **transfer,
    }


def mqtt_transfer(state: FleetState, plan: PublishPlan) -> dict[str, Any]:
    """Publish ``plan`` through a throw-away mosquitto to a gateway in another process."""
    from edge_gate_dev.broker import gateway_config, issue_client, mosquitto_broker

    acl = "\nuser fleet-admin\ntopic readwrite edge-gate/fleet/#\n"
    acl += "\nuser gw-1\ntopic read edge-gate/fleet/lobby/#\n"
    with tempfile.TemporaryDirectory() as tmp, mosquitto_broker(Path(tmp), extra_acl=acl) as broker:
        d = Path(tmp)
        cert, key = issue_client(broker.pki, "fleet-admin", d / "admin")
        admin = gateway_config(
            broker, d / "admin", cert_file=cert, key_file=key, gateway_id="fleet-admin"
        )
        gw_cert, gw_key = issue_client(broker.pki, "gw-1", d / "gw")
        settings = {
            "dir": str(d / "gw"),
            "host": broker.host,
            "port": broker.port,
            "ca": str(broker.pki.ca),
            "cert": str(gw_cert),
            "key": str(gw_key),
            "gateway": "gw-1",
            "prefix": broker.topic_prefix,
            "group": plan.group,
            "chunks": len(plan.full.chunks),
            "timeout_s": 600,
        }
        receiver = subprocess.Popen(  # noqa: S603 (our interpreter, our module)
            [sys.executable, "-m", "edge_gate_dev.bench.fleet_receive", json.dumps(settings)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            if receiver.stdout is None or receiver.stdout.readline().strip() != "ready":
                raise RuntimeError("the receiving gateway did not connect")
            link = FleetLink(admin, role="bench-admin")
            link.start()
            try:
                if not link.wait_ready(30.0):
                    raise RuntimeError("the admin did not connect to the bench broker")
                began = time.time()
                report = publish_plan(
                    link,
                    FleetTopics(broker.topic_prefix),
                    state,
                    d / "state.json",
                    plan,
                    timeout_s=600,
                )
            finally:
                link.stop()
            out, _ = receiver.communicate(timeout=600)
        finally:
            if receiver.poll() is None:
                receiver.kill()
                receiver.wait(10)
        if receiver.returncode != 0:
            raise RuntimeError(f"the receiving gateway failed ({receiver.returncode})")
        got = json.loads(out.strip().splitlines()[-1])
    if got["chunks"] != len(plan.full.chunks):
        raise RuntimeError(f"the gateway got {got['chunks']} of {len(plan.full.chunks)} chunks")
    return {
        "mqtt_publish_s": round(report.seconds, 2),
        "mqtt_transfer_s": round(got["last_at"] - began, 2),
        "mqtt_received_bytes": got["bytes"],
    }
