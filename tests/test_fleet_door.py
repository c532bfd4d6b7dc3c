"""A fleet revocation reaches a real daemon's door: RTSP camera → `edge-gate run` → relay
simulator, the gallery delivered by `edge-gate fleet follow` from the admin station over mTLS."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_gate.config import load_config
from edge_gate.gallery.keyfile import load_keyring_file
from edge_gate.gallery.store import GalleryStore, default_generation_path
from edge_gate_dev.broker import DeskSubscriber, issue_client, mosquitto_broker
from tests.door_rig import NotifyListener, cli, merge_toml
from tests.test_e2e_daemon import (
    GENUINE,
    _start_with_nobody_at_the_door,
    _wait_log,
    make_rig,
    of_type,
    verified_events,
    wait_events,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def _people(cfg_path: Path) -> set[str]:
    g = load_config(cfg_path).gallery
    store = GalleryStore(g.db_file, g.generation_file, load_keyring_file(g.key_file))
    return {p.user_id for p in store.load().people}


def _events(desk: DeskSubscriber) -> list[dict[str, object]]:
    return [json.loads(m.payload) for m in desk.events()]


def _wait(pred: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_a_fleet_revocation_is_refused_at_a_real_door(tmp_path: Path, testdata: Path) -> None:
    """The person arrives through the fleet; the admin revokes; the follower applies; the
    running daemon reloads by itself; the person, let in before, is now denied, no unlock."""
    acl = (
        "\nuser fleet-admin\ntopic readwrite edge-gate/fleet/#\ntopic read edge-gate/+/fleet/#\n"
        "topic read edge-gate/+/status\ntopic read edge-gate/+/health\n"
        "\nuser gw1\ntopic read edge-gate/fleet/lobby/#\n"
    )
    with mosquitto_broker(tmp_path / "broker", extra_acl=acl) as broker:
        rig = make_rig(tmp_path, testdata, broker, GENUINE)
        notify = NotifyListener(tmp_path / "notify.sock")
        follower: subprocess.Popen[bytes] | None = None
        try:
            gw = load_config(rig.config)
            (user_id,) = _people(rig.config)
            # the rig's local enrollment becomes the admin's master gallery; the door starts empty
            admin = tmp_path / "admin"
            admin.mkdir()
            gen = gw.gallery.generation_file or default_generation_path(gw.gallery.db_file)
            shutil.copy(gw.gallery.db_file, admin / "gallery.db")
            shutil.copy(gen, admin / "gallery.db.gen")
            shutil.copy(gw.gallery.key_file, admin / "gallery.key")
            gw.gallery.db_file.unlink()
            gen.unlink()
            GalleryStore(gw.gallery.db_file, gen, load_keyring_file(gw.gallery.key_file)).create()
            cert, key = issue_client(broker.pki, "fleet-admin", admin / "tls")
            admin_cfg = admin / "edge-gate.toml"
            admin_cfg.write_text(
                f'[gallery]\ndb_file = "{admin}/gallery.db"\nkey_file = "{admin}/gallery.key"\n'
                f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n'
                f'ca_file = "{broker.pki.ca}"\n'
                f'cert_file = "{cert}"\nkey_file = "{key}"\ngateway_id = "fleet-admin"\n'
                f'[fleet]\nsigning_key_file = "{admin}/fleet.key"\n'
                f'state_file = "{admin}/state.json"\n'
            )
            pub = admin / "fleet.pub"
            cli(["fleet", "init", "--public-key-out", str(pub), "--config", str(admin_cfg)])
            site = rig.site
            rig.config.write_text(
                merge_toml(
                    rig.config.read_text(),
                    f'[fleet]\ngroups = ["lobby"]\npublic_key_file = "{pub}"\n'
                    f'gateway_key_file = "{site}/fleet-gateway.key"\n'
                    f'applied_file = "{site}/fleet-applied.json"\n'
                    "[policy]\ncooldown_s = 1.0\n",
                )
            )
            gw_keys = cli(["fleet", "keygen", "--config", str(rig.config)]).split()
            cli(
                [
                    "fleet",
                    "add-gateway",
                    "lobby",
                    broker.gateway_id,
                    *gw_keys,
                    "--config",
                    str(admin_cfg),
                ]
            )
            cli(["fleet", "enroll", user_id, "--group", "lobby", "--config", str(admin_cfg)])
            cli(["fleet", "publish", "--config", str(admin_cfg)])
            with (tmp_path / "follower.log").open("wb") as log:
                follower = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "edge_gate",
                        "fleet",
                        "follow",
                        "--config",
                        str(rig.config),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            assert _wait(lambda: _people(rig.config) == {user_id}, 30), (
                tmp_path / "follower.log"
            ).read_text()
            with DeskSubscriber(broker, "edge-gate/#") as desk:
                _start_with_nobody_at_the_door(rig, notify)
                assert rig.rtsp is not None
                rig.rtsp.start()  # control: the person the fleet delivered is let in
                assert wait_events(desk, rig, "access.granted", 40), rig.daemon_log.read_text()
                rig.rtsp.stop()
                before = verified_events(rig, desk)
                granted = len(of_type(before, "access.granted"))
                denied = len(of_type(before, "access.denied"))
                unlocked = len(rig.relay.of("unlocked"))
                time.sleep(1.5)  # past the cooldown: a later denial is not the cooldown's
                cli(["fleet", "revoke", user_id, "--config", str(admin_cfg)])
                assert _wait(lambda: _people(rig.config) == set(), 10)
                assert _wait_log(rig, "gallery.reloaded", 10), rig.daemon_log.read_text()
                rig.rtsp.start()  # the revoked person walks up again
                assert _wait(lambda: len(of_type(_events(desk), "access.denied")) > denied, 40), (
                    rig.daemon_log.read_text()
                )
                events = verified_events(rig, desk)
                # the follower's events reach the broker through the daemon's publisher
                assert "lobby v2 delta" in {
                    e.get("reason") for e in of_type(events, "fleet.applied")
                }
                time.sleep(1.2)  # the daemon's health message follows its last event
                status = cli(
                    ["fleet", "status", "--json", "--wait-s", "1.0", "--config", str(admin_cfg)]
                )
                row = json.loads(status.splitlines()[0])
                assert (row["applied"], row["lag"], row["ack"]) == (2, 0, "trusted"), status
                assert (row["daemon"], row["follower"], row["health"]) == (
                    "online",
                    "online",
                    "trusted",
                ), row
                assert row["camera"] == "streaming"
                assert row["door"] == "up"
                assert row["last_event"]["type"] in {"access.denied", "fleet.applied"}
            assert len(of_type(events, "access.granted")) == granted
            assert len(rig.relay.of("unlocked")) == unlocked
            after = of_type(events, "access.denied")[denied:]
            assert after
            assert {e["reason"] for e in after} <= {"unknown", "not_live"}
        finally:
            if follower is not None:
                follower.terminate()
                follower.wait(10)
            notify.close()
            rig.close()
