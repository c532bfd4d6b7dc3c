"""Fleet over one real mosquitto (mTLS, per-gateway ACL) with 21 follower processes.

The admin station (in-process CLI) publishes a gallery to the ``lobby`` group; 20 followers
(real ``edge-gate fleet follow`` processes, each with its own gallery, keys and client
certificate) apply it; the admin revokes one person and every follower applies the revocation
— the seconds from the revoke command to each gateway's acknowledgement are printed (p50, p95,
max; target max ≤ 5 s). A 21st gateway that was offline catches up from the retained bundle.
A subscriber to ``#`` sees only ciphertext, and the broker's ACL keeps another group's gateway
from reading the lobby's bundles and a gateway from writing fleet topics.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge_gate.audit.signing import generate_signing_key
from edge_gate.fleet.keys import raw_public, write_new_gateway_key, write_new_signing_key
from edge_gate.fsutil import atomic_write
from edge_gate.gallery.keyfile import KeyRing, load_keyring_file, new_key, write_keyring
from edge_gate.gallery.store import GalleryStore
from edge_gate_dev.broker import DeskSubscriber, MosquittoBroker, issue_client, mosquitto_broker
from tests.cli_helpers import json_lines, run
from tests.fleet_helpers import templates

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

N_ONLINE = 20
PREFIX = "edge-gate"
CARD = "8675309123"
NAMES = ["Ada Lovelace", "Bo Diddley", "Cy Twombly"]
REPO = Path(__file__).resolve().parent.parent


def _acl(gateways: list[str]) -> str:
    lines = ["", "user fleet-admin", f"topic readwrite {PREFIX}/fleet/#"]
    lines += [f"topic read {PREFIX}/+/fleet/#", f"topic read {PREFIX}/+/status", ""]
    for gw in gateways:
        group = "lab" if gw == "gw-lab" else "lobby"
        lines += [f"user {gw}", f"topic read {PREFIX}/fleet/{group}/#", ""]
    return "\n".join(lines) + "\n"


def _mqtt_toml(broker: MosquittoBroker, cert: Path, key: Path, gw: str, d: Path) -> str:
    return (
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\nca_file = "{broker.pki.ca}"\n'
        f'cert_file = "{cert}"\nkey_file = "{key}"\ngateway_id = "{gw}"\n'
        f'outbox_file = "{d}/outbox.db"\nsigning_key_file = "{d}/audit.key"\n'
    )


def _gallery_toml(d: Path) -> str:
    return f'[gallery]\ndb_file = "{d}/gallery.db"\nkey_file = "{d}/gallery.key"\n'


def _setup_gateway(broker: MosquittoBroker, tmp: Path, gw: str, pub: Path) -> tuple[Path, str, str]:
    d = tmp / gw
    d.mkdir()
    cert, key = issue_client(broker.pki, gw, d / "tls")
    atomic_write(d / "audit.key", generate_signing_key())
    write_keyring(d / "gallery.key", KeyRing((new_key(),)))
    gpub = raw_public(write_new_gateway_key(d / "fleet-gateway.key").public_key())
    ack = raw_public(write_new_signing_key(d / "fleet-ack.key").public_key())
    group = "lab" if gw == "gw-lab" else "lobby"
    (d / "edge-gate.toml").write_text(
        _gallery_toml(d)
        + _mqtt_toml(broker, cert, key, gw, d)
        + f'[fleet]\ngroups = ["{group}"]\npublic_key_file = "{pub}"\n'
        f'gateway_key_file = "{d}/fleet-gateway.key"\napplied_file = "{d}/applied.json"\n'
    )
    return d, gpub, ack


@dataclass(frozen=True)
class AdminStation:
    directory: Path
    cert: Path
    key: Path
    master: GalleryStore
    ids: list[str]
    config: Path
    public_key: Path


def admin_station(broker: MosquittoBroker, tmp: Path, names: list[str]) -> AdminStation:
    """An admin station: client certificate, master gallery of ``names``, `fleet init` done."""
    admin = tmp / "admin"
    admin.mkdir()
    cert, key = issue_client(broker.pki, "fleet-admin", admin / "tls")
    atomic_write(admin / "audit.key", generate_signing_key())
    write_keyring(admin / "gallery.key", KeyRing((new_key(),)))
    master = GalleryStore(admin / "gallery.db", None, load_keyring_file(admin / "gallery.key"))
    master.create()
    ids = master.enroll_many([(n, templates(i)) for i, n in enumerate(names)], "m")
    cfg = admin / "edge-gate.toml"
    cfg.write_text(
        _gallery_toml(admin)
        + _mqtt_toml(broker, cert, key, "fleet-admin", admin)
        + f'[fleet]\nsigning_key_file = "{admin}/fleet.key"\n'
        + f'state_file = "{admin}/state.json"\n'
    )
    pub = admin / "fleet.pub"
    assert run("fleet", "init", "--public-key-out", str(pub), "--config", str(cfg)).exit_code == 0
    return AdminStation(admin, cert, key, master, list(ids), cfg, pub)


def _follow(d: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "edge_gate", "fleet", "follow", "--config"]
    with (d / "follower.log").open("wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [*cmd, str(d / "edge-gate.toml")], stdout=log, stderr=subprocess.STDOUT, env=env
        )


class AckWatcher:
    """The admin's view of ``<prefix>/+/fleet/applied``: latest version per gateway, arrival."""

    def __init__(self, broker: MosquittoBroker, cert: Path, key: Path) -> None:
        self.versions: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        ctx = broker.client_tls_context()
        ctx.load_cert_chain(str(cert), str(key))
        self._c = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5
        )
        self._c.tls_set_context(ctx)
        self._c.on_connect = lambda c, *a: c.subscribe(f"{PREFIX}/+/fleet/applied", qos=1)
        self._c.on_message = self._on_message
        self._c.connect(broker.host, broker.port)
        self._c.loop_start()

    def _on_message(self, c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        for g in body["groups"].values():
            with self._lock:
                self.versions[body["gateway"]] = (int(g["version"]), float(g["applied_at"]))

    def at(self, version: int) -> dict[str, float]:
        with self._lock:
            return {gw: t for gw, (v, t) in self.versions.items() if v >= version}

    def stop(self) -> None:
        self._c.disconnect()
        self._c.loop_stop()


def _wait(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def _received_by(
    broker: MosquittoBroker, cert: Path, key: Path, topic: str, wait_s: float
) -> list[bytes]:
    got: list[bytes] = []
    ctx = broker.client_tls_context()
    ctx.load_cert_chain(str(cert), str(key))
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.tls_set_context(ctx)
    c.on_connect = lambda cl, *a: cl.subscribe(topic, qos=1)
    c.on_message = lambda cl, u, m: got.append(bytes(m.payload))
    c.connect(broker.host, broker.port)
    c.loop_start()
    time.sleep(wait_s)
    c.disconnect()
    c.loop_stop()
    return got


def test_revocation_reaches_twenty_followers(tmp_path: Path) -> None:
    """Applied by all 20 within 5 s of the revoke command; the offline one catches up; the
    broker only ever carries ciphertext; the ACL holds."""
    gateways = [f"gw-{i:02d}" for i in range(N_ONLINE + 1)] + ["gw-lab"]
    with (
        mosquitto_broker(tmp_path, extra_acl=_acl(gateways)) as broker,
        DeskSubscriber(broker, "#") as desk,
    ):
        st = admin_station(broker, tmp_path, NAMES)
        admin, cert, key, master, ids, cfg, pub = (
            st.directory,
            st.cert,
            st.key,
            st.master,
            st.ids,
            st.config,
            st.public_key,
        )
        assert (admin / "fleet.key").stat().st_mode & 0o777 == 0o600
        dirs = {}
        for gw in gateways:
            dirs[gw], gpub, ack = _setup_gateway(broker, tmp_path, gw, pub)
            group = "lab" if gw == "gw-lab" else "lobby"
            res = run("fleet", "add-gateway", group, gw, gpub, ack, "--config", str(cfg))
            assert res.exit_code == 0, res.output
        for i, uid in enumerate(ids):
            extra = ["--card", CARD] if i == 1 else []
            res = run(
                "fleet",
                "enroll",
                uid,
                "--group",
                "lobby",
                "--group",
                "lab",
                *extra,
                "--config",
                str(cfg),
            )
            assert res.exit_code == 0, res.output
        res = run("fleet", "publish", "--json", "--config", str(cfg))
        assert res.exit_code == 0, res.output
        assert {r["group"]: r["version"] for r in json_lines(res.output)} == {"lobby": 1, "lab": 1}

        online = gateways[:N_ONLINE]
        late = gateways[N_ONLINE]
        watcher = AckWatcher(broker, cert, key)
        procs = {gw: _follow(dirs[gw]) for gw in online}
        try:
            assert _wait(lambda: len(set(watcher.at(1)) & set(online)) == N_ONLINE, 90), (
                f"only {sorted(watcher.at(1))} applied v1"
            )
            rss_mb = []
            for proc in procs.values():
                status = Path(f"/proc/{proc.pid}/status").read_text()
                rss_mb.append(
                    int(next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1])
                    / 1024
                )
                maps = Path(f"/proc/{proc.pid}/maps").read_text()
                assert "cv2" not in maps
                assert "litert" not in maps
                assert "tflite" not in maps

            revoked = ids[1]
            t0 = time.time()
            res = run("fleet", "revoke", revoked, "--json", "--config", str(cfg))
            assert res.exit_code == 0, res.output
            assert _wait(lambda: len(set(watcher.at(2)) & set(online)) == N_ONLINE, 30), (
                f"only {sorted(watcher.at(2))} applied v2"
            )
            lat = sorted(t - t0 for gw, t in watcher.at(2).items() if gw in online)
            p50 = statistics.median(lat)
            p95 = lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))]
            print(
                f"\nfleet revocation to {N_ONLINE} followers: p50 {p50:.3f} s, p95 {p95:.3f} s, "
                f"max {lat[-1]:.3f} s; follower RSS median {statistics.median(rss_mb):.0f} MB"
            )
            assert lat[-1] <= 5.0
            for gw in online:
                store = GalleryStore(
                    dirs[gw] / "gallery.db", None, load_keyring_file(dirs[gw] / "gallery.key")
                )
                assert {p.user_id for p in store.load().people} == {ids[0], ids[2]}

            # the gateway that was offline during both versions catches up from retained
            procs[late] = _follow(dirs[late])
            assert _wait(lambda: late in watcher.at(2), 30)
            store = GalleryStore(
                dirs[late] / "gallery.db", None, load_keyring_file(dirs[late] / "gallery.key")
            )
            assert {p.user_id for p in store.load().people} == {ids[0], ids[2]}

            # status: lobby gateways at the published version, the lab one never followed;
            # a follower killed without a goodbye shows offline (the broker sends its will)
            procs["gw-01"].kill()
            procs["gw-01"].wait(10)
            res = run("fleet", "status", "--json", "--wait-s", "1.5", "--config", str(cfg))
            assert res.exit_code == 1  # one gateway is behind
            rows = {(r["group"], r["gateway"]): r for r in json_lines(res.output)}
            lobby = [r for (g, _), r in rows.items() if g == "lobby"]
            assert len(lobby) == N_ONLINE + 1
            assert all(r["applied"] == r["published"] == 2 and r["lag"] == 0 for r in lobby)
            assert rows[("lobby", "gw-01")]["follower"] == "offline"
            assert rows[("lobby", "gw-02")]["follower"] == "online"
            assert rows[("lab", "gw-lab")]["lag"] == 2
            assert rows[("lab", "gw-lab")]["follower"] is None

            # ACL: the lab gateway cannot read lobby bundles; a gateway cannot write fleet topics
            lab_cert, lab_key = (
                dirs["gw-lab"] / "tls" / "gw-lab.crt",
                dirs["gw-lab"] / "tls" / "gw-lab.key",
            )
            assert _received_by(broker, lab_cert, lab_key, f"{PREFIX}/fleet/lobby/#", 1.0) == []
            assert _received_by(broker, lab_cert, lab_key, f"{PREFIX}/fleet/lab/#", 1.0) != []
            gw0 = dirs["gw-00"] / "tls"
            forged = b"forged-by-gw-00"
            c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
            ctx = broker.client_tls_context()
            ctx.load_cert_chain(str(gw0 / "gw-00.crt"), str(gw0 / "gw-00.key"))
            c.tls_set_context(ctx)
            c.connect(broker.host, broker.port)
            c.loop_start()
            c.publish(f"{PREFIX}/fleet/lobby/bundle", forged, qos=1, retain=True).wait_for_publish(
                5
            )
            c.disconnect()
            c.loop_stop()
            time.sleep(0.5)
        finally:
            watcher.stop()
            for proc in procs.values():
                proc.terminate()
            for proc in procs.values():
                proc.wait(10)

        seen = desk.snapshot()
        assert all(m.payload != forged for m in seen)
        assert any(m.topic.endswith("/fleet/lobby/bundle") for m in seen)
        assert sum(m.topic.startswith(f"{PREFIX}/fleet/") for m in seen) >= 4
        secrets_ = [n.encode() for n in NAMES] + [CARD.encode()]
        for p in master.load().people:
            secrets_ += [row.tobytes()[:16] for row in p.templates]
        for m in seen:
            for s in secrets_:
                assert s not in m.payload, f"plaintext on {m.topic}"
        # every refusal or application was audited on the gateways, none refused
        for gw in online:
            log = (dirs[gw] / "follower.log").read_text()
            assert "fleet.refused" not in log, log
