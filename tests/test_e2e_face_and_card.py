"""End to end, ``face_and_card``: RTSP camera → `edge-gate run` (OSDP control panel) → libosdp PD.

One door for the whole module, every part a real process:

    RTSP server (GStreamer, auth) ──▶ edge-gate run ──▶ socat pty pair ──▶ osdp_sim pd (libosdp)
                                           └──▶ mosquitto (mTLS) ──▶ desk subscriber (verifies sigs)

``[policy] mode = "face_and_card"`` and ``[osdp_cp]``: the daemon polls the PD under Secure
Channel, the PD's card reads are the second factor, and the door strike is the PD's output
(an ``osdp_OUT`` the PD ACKs). The woman of ``WolfgangLanger_Pexels.mp4`` ("alice") is at the
camera the whole time; "bob" (the person of ``single_face.mp4``) is enrolled too, each with a
card (``users set-card``). The cases present different cards at the PD while the same clip
plays; every event is checked on the broker with every Ed25519 signature verified.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_gate.osdp.cards import CardCredential, CardFormat
from edge_gate_dev.broker import DeskSubscriber, MosquittoBroker, mosquitto_broker
from edge_gate_dev.pki import free_port
from tests.door_rig import DoorRig, cli, extract_frames
from tests.osdp_rig import SimProcess, SocatLink, wait_until, write_scbk
from tests.test_e2e_daemon import GENUINE, STRANGER, of_type, verified_events
from tests.test_metrics import _scrape

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(180),
    pytest.mark.skipif(shutil.which("socat") is None, reason="socat not installed"),
]

ALICE_CARD = CardCredential(CardFormat.WIEGAND26, 123, 54321)
BOB_CARD = CardCredential(CardFormat.WIEGAND26, 77, 31337)
UNKNOWN_CARD = CardCredential(CardFormat.WIEGAND26, 201, 47474)  # nobody holds it
PULSE_MS = 400
FACE_ALONE_S = 5.0  # a face grant in face mode takes well under this once she is in view


@dataclass
class Door:
    rig: DoorRig
    desk: DeskSubscriber
    pd: SimProcess
    alice: str
    bob: str
    metrics_port: int

    def frames(self) -> float:
        """Frames the daemon's decision path processed (its metrics endpoint)."""
        try:
            return _scrape(self.metrics_port)["edge_gate_frames_total"]
        except OSError:  # not listening yet
            return 0.0

    def outputs(self) -> list[dict[str, object]]:
        """The osdp_OUT commands the PD received (and whether it ACKed them)."""
        return [e for e in self.pd.of("command") if e["kind"] == "output"]

    def events(self) -> list[dict[str, object]]:
        """Every event on the broker so far, every signature verified."""
        return verified_events(self.rig, self.desk)

    def wait_event(self, since: int, kind: str, reason: str | None, timeout_s: float) -> bool:
        """An event ``kind`` (with ``reason``) among the desk's events after the first ``since``."""

        def seen() -> bool:
            for m in self.desk.events()[since:]:
                e = json.loads(m.payload)
                if e["type"] == kind and (reason is None or e["reason"] == reason):
                    return True
            return False

        return wait_until(seen, timeout_s, step_s=0.05)

    def present(self, card: CardCredential) -> int:
        """The card at the PD; returns the desk's event count before it (for :meth:`since`)."""
        mark = len(self.desk.events())
        submitted = len(self.pd.of("card_submitted"))
        self.pd.send(f"card {card.facility} {card.number}")
        assert wait_until(lambda: len(self.pd.of("card_submitted")) > submitted, 5.0)
        assert self.pd.of("card_submitted")[-1]["ok"] is True
        return mark

    def since(self, mark: int) -> list[dict[str, object]]:
        return self.events()[mark:]

    def log(self) -> str:
        return self.rig.daemon_log.read_text(errors="replace")


def _number_in(text: str, card: CardCredential) -> bool:
    """``card``'s number (or its canonical key) anywhere in ``text`` as a number of its own:
    not inside a longer number, a decimal fraction or a hex digest."""
    number = re.compile(rf"(?<![0-9A-Za-z.]){card.number}(?![0-9A-Za-z])")
    return bool(number.search(text)) or card.key() in text


def _unsigned(event: dict[str, object]) -> str:
    """The event as JSON without its signature and random id (opaque bytes, not content)."""
    return json.dumps({k: v for k, v in event.items() if k not in {"sig", "id"}})


def _card_nowhere(door: Door, card: CardCredential) -> None:
    leaks = [e["type"] for e in door.events() if _number_in(_unsigned(e), card)]
    assert leaks == [], f"card number in events {leaks}"
    raw = [m.topic for m in door.desk.snapshot() if card.key().encode() in m.payload]
    assert raw == [], f"card key in MQTT payloads on {raw}"
    assert not _number_in(door.log(), card), "card number in the daemon log"


@pytest.fixture(scope="module")
def door(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Door]:
    tmp = tmp_path_factory.mktemp("face-and-card")
    with mosquitto_broker(tmp / "broker") as broker:
        yield from _door(testdata, tmp, broker)


def _door(testdata: Path, tmp: Path, broker: MosquittoBroker) -> Iterator[Door]:
    rig = DoorRig(tmp / "door", testdata / "pyfeat" / GENUINE, broker)
    (rig.workdir / "rtsp").mkdir(parents=True)
    link = SocatLink(tmp)
    cp_key, pd_key = rig.workdir / "osdp-cp.scbk", rig.workdir / "osdp-pd.scbk"
    metrics_port = free_port()
    rig.init_site(
        f"""
[policy]
mode = "face_and_card"
second_factor_timeout_s = 8.0

[osdp_cp]
enabled = true
port = "{link.a}"
scbk_file = "{cp_key}"
pulse_ms = {PULSE_MS}
reply_timeout_s = 2.0

[service]
metrics_port = {metrics_port}
"""
    )
    pd: SimProcess | None = None
    try:
        cli(["osdp", "keygen", str(cp_key)])  # the installer's key for the PD
        write_scbk(pd_key, bytes.fromhex(cp_key.read_text().strip()))
        frames = extract_frames(
            testdata / "pyfeat" / GENUINE, rig.workdir / "alice", [1, 4, 8, 12, 16]
        )
        alice = rig.enroll("Alice Card", frames)
        bob_frames = extract_frames(
            testdata / "pyfeat" / STRANGER, rig.workdir / "bob", [0.5, 1.5, 2.5, 3.5]
        )
        bob = rig.enroll("Bob Card", bob_frames)
        for user, card in ((alice, ALICE_CARD), (bob, BOB_CARD)):
            held = ["--format", "wiegand26", "--facility", str(card.facility)]
            held += ["--number", str(card.number)]
            cli(["users", "set-card", user, "--config", str(rig.config), *held])
        link.plug()
        pd = SimProcess("pd", link.b, pd_key)
        with DeskSubscriber(broker, "edge-gate/#") as desk:
            rig.start_daemon(extra_args=["-v"])  # debug logging: the card check sees it all
            d = Door(rig, desk, pd, alice, bob, metrics_port)
            assert d.wait_event(0, "osdp.online", "secure", 40), d.log()
            yield d
            assert rig.stop_daemon(signal.SIGTERM) == 0
            assert d.wait_event(0, "service.stopping", None, 10)
            d.events()  # every signature of the whole run verified
    finally:
        if pd is not None:
            pd.close()
        rig.close()
        link.unplug()


def test_face_alone_opens_nothing_then_her_card_opens_exactly_once(door: Door) -> None:
    """Alice's face alone at the camera: no osdp_OUT, no grant. Her card at the PD: exactly one
    osdp_OUT pulse, ACKed by the PD, and one signed access.granted with reason face+card that
    names the card by the keyed tag `users set-card` recorded. The card number is in no MQTT
    payload and not in the daemon's (debug) log."""
    assert wait_until(lambda: door.frames() >= 15, 30.0, step_s=0.2), door.log()  # streaming
    mark, frames = len(door.desk.events()), door.frames()
    time.sleep(FACE_ALONE_S)  # she is in view: a face door would have opened by now
    assert door.frames() - frames >= 30  # the camera's frames went through the decision path
    assert door.outputs() == []
    assert of_type(door.since(mark), "access.granted") == []
    mark = door.present(ALICE_CARD)
    # quick: her face was in view and recognisable all along, only the card was missing
    assert door.wait_event(mark, "access.granted", None, 6.0), door.log()
    time.sleep(1.0)  # a second pulse or grant would be here by now
    outs = door.outputs()
    assert len(outs) == 1, outs
    assert (outs[0]["acked"], outs[0]["timer_ms"], outs[0]["output_no"]) == (True, PULSE_MS, 0)
    events = door.since(mark)
    granted = of_type(events, "access.granted")
    assert len(granted) == 1, granted
    g = granted[0]
    assert (g["subject"], g["reason"]) == (door.alice, "face+card")
    assert of_type(events, "access.denied") == []
    set_card = [
        e
        for e in of_type(door.events(), "gallery.credential_changed")
        if e["subject"] == door.alice and e["reason"] == "card_set"
    ]
    assert len(set_card) == 1
    assert g["detail"] == f"via face+card card {set_card[0]['card']}"
    _card_nowhere(door, ALICE_CARD)


def test_another_persons_card_at_her_face_is_card_face_mismatch(door: Door) -> None:
    """Bob's card (enrolled, with a card) while alice is at the camera: access.denied
    card_face_mismatch on MQTT, naming no one, and no osdp_OUT."""
    outs_before = len(door.outputs())
    mark = door.present(BOB_CARD)
    assert door.wait_event(mark, "access.denied", "card_face_mismatch", 10.0), door.log()
    time.sleep(0.5)
    events = door.since(mark)
    assert of_type(events, "access.granted") == []
    denied = of_type(events, "access.denied")
    assert [d["reason"] for d in denied] == ["card_face_mismatch"]
    assert denied[0]["subject"] is None  # a denied face is never named
    assert len(door.outputs()) == outs_before
    _card_nowhere(door, BOB_CARD)


def test_unknown_card_is_card_unknown(door: Door) -> None:
    """A card nobody holds: access.denied card_unknown on MQTT at once, no osdp_OUT."""
    outs_before = len(door.outputs())
    mark = door.present(UNKNOWN_CARD)
    assert door.wait_event(mark, "access.denied", "card_unknown", 5.0), door.log()
    time.sleep(0.5)
    events = door.since(mark)
    assert [d["reason"] for d in of_type(events, "access.denied")] == ["card_unknown"]
    assert of_type(events, "access.granted") == []
    assert len(door.outputs()) == outs_before
    _card_nowhere(door, UNKNOWN_CARD)
