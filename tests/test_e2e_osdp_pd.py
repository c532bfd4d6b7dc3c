"""End to end, real parts only, with edge-gate as the panel's OSDP reader (``[osdp_pd]``):

    RTSP server (GStreamer, auth) ──▶ edge-gate run ──▶ socat pty pair ──▶ libosdp CP (the panel,
                                           │                               ``edge_gate_dev.osdp_sim
                                           └──▶ mosquitto (mTLS) ──▶ desk   cp`` in its own process)

One site (enrolled person with a card) is shared by the module; each test restarts the panel and
the daemon with its own clip. The enrolled person's face becomes exactly one card read at the
panel with their facility and number; a stranger, a photo of the enrolled person and a panel
holding another SCBK get no card read. The card number is never in the daemon log or in MQTT.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_gate.osdp.cards import CardCredential, CardFormat, encode_card
from edge_gate_dev.broker import DeskSubscriber, MosquittoBroker, mosquitto_broker
from tests.door_rig import DoorRig, attack_clip, cli, extract_frames
from tests.osdp_rig import SimProcess, SocatLink, write_scbk
from tests.test_e2e_daemon import GENUINE, POLICY, STRANGER, of_type, verified_events

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

FACILITY, NUMBER = 77, 51234
RAW = encode_card(CardCredential(CardFormat.WIEGAND26, FACILITY, NUMBER)).data
# the number, and the 26 bits as sent to the panel (hex, or as a Python bytes repr would show)
LEAKS = (str(NUMBER), RAW.hex(), RAW.hex().upper(), repr(RAW)[2:-1])
DECIDED = {"access.granted", "access.denied", "liveness.failed"}


@dataclass
class PdDoor:
    """The shared site: the door rig, its broker, the OSDP link and the panel's SCBK."""

    rig: DoorRig
    broker: MosquittoBroker
    link: SocatLink
    scbk_file: Path
    user_id: str
    card_tag: str
    clips: dict[str, Path]

    def show(self, clip: str) -> None:
        """The camera now shows ``clip`` (a camera restart, as between two approaches)."""
        rtsp = self.rig.rtsp
        assert rtsp is not None
        rtsp.stop()
        rtsp.clip = self.clips[clip]
        rtsp.start()


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory, testdata: Path) -> Iterator[PdDoor]:
    base = tmp_path_factory.mktemp("e2e-osdp-pd")
    with mosquitto_broker(base / "broker") as broker:
        rig = DoorRig(base / "door", testdata / "pyfeat" / GENUINE, broker)
        (rig.workdir / "rtsp").mkdir(parents=True)
        (rig.workdir / "attack").mkdir()
        link = SocatLink(rig.workdir)
        link.plug()
        scbk_file = rig.workdir / "osdp-pd.scbk"
        write_scbk(scbk_file)
        try:
            rig.init_site(
                POLICY
                + f'\n[osdp_pd]\nenabled = true\nport = "{link.a}"\nscbk_file = "{scbk_file}"\n'
            )
            frames = extract_frames(
                testdata / "pyfeat" / GENUINE, rig.workdir / "enroll", [1, 4, 8, 12, 16]
            )
            user_id = rig.enroll("Card Holder", frames)
            card = ["--format", "wiegand26", "--facility", str(FACILITY), "--number", str(NUMBER)]
            out = cli(["users", "set-card", user_id, *card, "--json", "--config", str(rig.config)])
            clips = {
                GENUINE: testdata / "pyfeat" / GENUINE,
                STRANGER: testdata / "pyfeat" / STRANGER,
                "photo": attack_clip(
                    testdata / "pyfeat" / GENUINE, testdata, rig.workdir / "attack", "print", 0
                ),
            }
            tag = json.loads(out)["card"]["tag"]
            yield PdDoor(rig, broker, link, scbk_file, user_id, tag, clips)
        finally:
            rig.close()
            link.unplug()


def _approach(
    door: PdDoor, clip: str, panel_key: Path, until: set[str], settle_s: float
) -> tuple[list[dict[str, object]], SimProcess]:
    """The panel (a libosdp CP holding ``panel_key``) and the daemon start, ``clip`` walks up;
    once one of ``until`` reached the desk, ``settle_s`` more, then SIGTERM. Returns the verified
    events of this run and the (closed) panel with what it saw. Every run: the card, as a number
    or as its raw bits, is in no MQTT payload and nowhere in the (debug) daemon log."""
    door.show(clip)
    panel = SimProcess("cp", door.link.b, panel_key)
    rig = door.rig
    try:
        with DeskSubscriber(door.broker, "edge-gate/#") as desk:
            rig.start_daemon(extra_args=["-v"])  # debug logging: the leak check sees it all
            decided = desk.wait_for(
                lambda msgs: any(
                    json.loads(m.payload)["type"] in until
                    for m in msgs
                    if m.topic.endswith("/events")
                ),
                40,
            )
            assert decided, rig.daemon_log.read_text()
            time.sleep(settle_s)  # the person stays in view: nothing more may reach the panel
            assert rig.stop_daemon(signal.SIGTERM) == 0
            events = verified_events(rig, desk)
            payloads = [m.payload.decode() for m in desk.snapshot()]
    finally:
        if rig.daemon is not None:
            rig.stop_daemon(signal.SIGKILL)
        panel.close()
    assert not [p for p in payloads if any(x in p for x in LEAKS)]  # events, health, status
    log = rig.daemon_log.read_text(errors="replace")
    assert [x for x in LEAKS if x in log] == []  # every run so far, at debug level
    return events, panel


def _was_secure(panel: SimProcess) -> bool:
    return any(e.get("secure") for e in panel.of("link"))


def test_enrolled_face_is_one_card_read_at_the_panel(door: PdDoor) -> None:
    """Enrolled person with a card: the panel receives exactly one card read with their
    facility and number; the desk gets one signed access.granted (card_reported) naming the card
    by its keyed tag only; the card (number or raw bits) is nowhere in the debug daemon log."""
    events, panel = _approach(door, GENUINE, door.scbk_file, {"access.granted"}, 3.0)
    cards = panel.of("card")
    assert [(c["facility"], c["number"], c["bits"]) for c in cards] == [(FACILITY, NUMBER, 26)]
    granted = of_type(events, "access.granted")
    assert [(e["subject"], e["reason"], e["card"]) for e in granted] == [
        (door.user_id, "card_reported", door.card_tag)
    ]
    assert of_type(events, "access.denied") == []
    assert "osdp.panel_secure" in door.rig.daemon_log.read_text(errors="replace")


def test_stranger_sends_no_card_read(door: PdDoor) -> None:
    """Someone not enrolled: access.denied at the desk, and the panel (Secure Channel up) sees
    no card read."""
    events, panel = _approach(door, STRANGER, door.scbk_file, {"access.denied"}, 2.0)
    assert _was_secure(panel)
    assert panel.of("card") == []
    assert of_type(events, "access.granted") == []
    assert {e["reason"] for e in of_type(events, "access.denied")} <= {
        "unknown",
        "not_live",
        "low_quality",
    }


def test_photo_of_the_enrolled_person_sends_no_card_read(door: PdDoor) -> None:
    """A printed photo of the card holder held still: recognised, liveness fails, and the panel
    (Secure Channel up) sees no card read."""
    events, panel = _approach(door, "photo", door.scbk_file, {"liveness.failed"}, 2.0)
    assert _was_secure(panel)
    assert panel.of("card") == []
    assert of_type(events, "access.granted") == []


def test_panel_with_another_scbk_gets_nothing(door: PdDoor, tmp_path: Path) -> None:
    """The panel holds another SCBK: no Secure Channel; the card holder's grant sends nothing
    and is a signed access.denied panel_unavailable."""
    wrong = tmp_path / "panel-other.scbk"
    write_scbk(wrong)
    events, panel = _approach(door, GENUINE, wrong, {"access.denied", "access.granted"}, 1.0)
    assert not _was_secure(panel)
    assert panel.of("card") == []
    assert of_type(events, "access.granted") == []
    denied = of_type(events, "access.denied")
    assert [(e["subject"], e["reason"]) for e in denied] == [(door.user_id, "panel_unavailable")]
