"""Door modes with an OSDP reader, the daemon's own decision path on real parts.

The daemon's door (:func:`build_door`'s pieces: :class:`DoorActions`, the second-factor stage,
the OSDP control panel and strike, the pipeline thread with the real face models and liveness)
against the libosdp PD simulator in another process over a socat pty pair. Real face clips are
played into the pipeline's frame slot: the enrolled person of ``WolfgangLanger_Pexels.mp4``
("alice") and a second enrolled person, the one of ``single_face.mp4`` ("bob"). The card
directory is a small in-memory one (the gallery's is tested with the gallery).
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from edge_gate.audit.events import build_event
from edge_gate.capture.frame import Frame, fit_within
from edge_gate.capture.latest import LatestFrame
from edge_gate.config import EdgeGateConfig
from edge_gate.config.osdp import OsdpCpConfig
from edge_gate.config.policy import PolicyConfig
from edge_gate.gallery.credentials import card_tag_key
from edge_gate.gallery.matching import TemplateMatrix
from edge_gate.osdp.cards import CardCredential, CardFormat, card_hash, cards_equal
from edge_gate.osdp.keys import load_scbk
from edge_gate.service.components import GalleryMatcher
from edge_gate.service.compose import build_factors, build_processor, open_osdp_door
from edge_gate.service.door_actions import DoorActions
from edge_gate.service.notify import Notifier
from edge_gate.service.pipeline_thread import PipelineThread
from edge_gate.service.second_factor import ReaderInbox
from edge_gate.threads import Heartbeat
from edge_gate.vision.pipeline import FacePipeline
from tests.osdp_rig import SimProcess, SocatLink, socat_link, wait_until, write_scbk

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ALICE, BOB = "u_aliceaaaaaaa", "u_bobbbbbbbbbb"
ALICE_CARD = CardCredential(CardFormat.WIEGAND26, 123, 54321)
BOB_CARD = CardCredential(CardFormat.WIEGAND26, 77, 31337)
UNKNOWN_CARD = (201, 47474)  # facility, number: nobody holds it
ALICE_PIN = "97531"
TAG_KEY = card_tag_key(b"g" * 32)  # the gallery key's card-tag key
CLIPS = {ALICE: "WolfgangLanger_Pexels.mp4", BOB: "single_face.mp4"}


class Cards:
    """In-memory credential directory (the shape of edge_gate.gallery.credentials)."""

    def __init__(self) -> None:
        self._cards = {ALICE: ALICE_CARD, BOB: BOB_CARD}
        self._pins = {ALICE: ALICE_PIN}

    def holder_of(self, card: CardCredential) -> str | None:
        for user, held in self._cards.items():
            if cards_equal(held, card):
                return user
        return None

    def card_of(self, user_id: str) -> CardCredential | None:
        return self._cards.get(user_id)

    def check_pin(self, user_id: str, pin: str) -> bool:
        return hmac.compare_digest(self._pins.get(user_id, "").encode(), pin.encode())


class Events:
    """The audit sink: each event built (validated) exactly as the real trail builds it."""

    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []
        self._lock = threading.Lock()

    def emit(self, event_type: object, *, door: str | None, subject: str | None = None,
             reason: str | None = None, **fields: object) -> int | None:  # fmt: skip
        with self._lock:
            built = build_event(
                event_type=str(event_type),
                seq=len(self.events) + 1,
                unix_ms=1_770_000_000_000,
                rand=bytes(10),
                gateway="gw-test",
                door=door,
                subject=subject,
                reason=reason,
                extra=fields,
            )
            self.events.append(dict(built.fields))
            return len(self.events)

    def of(self, kind: str) -> list[dict[str, object]]:
        with self._lock:
            return [e for e in self.events if e["type"] == kind]

    def flush(self, timeout_s: float) -> bool:
        return True

    def stop(self, timeout_s: float = 5.0) -> bool:
        return True


def _frames(clip: Path, limit: int = 90) -> list[npt.NDArray[np.uint8]]:
    cap = cv2.VideoCapture(str(clip))
    out: list[npt.NDArray[np.uint8]] = []
    try:
        while len(out) < limit:
            ok, frame = cap.read()
            if not ok:
                break
            h, w = frame.shape[:2]
            size = fit_within(w, h, 640, 480)
            out.append(np.asarray(cv2.resize(frame, size), dtype=np.uint8))
    finally:
        cap.release()
    return out


@dataclass
class World:
    pipe: FacePipeline
    frames: dict[str, list[npt.NDArray[np.uint8]]]
    matrix: TemplateMatrix


@pytest.fixture(scope="module")
def world(testdata: Path) -> World:
    cfg = EdgeGateConfig()
    pipe = FacePipeline.from_config(cfg.vision)
    frames = {u: _frames(testdata / "pyfeat" / clip) for u, clip in CLIPS.items()}
    templates = []
    for user in (ALICE, BOB):
        rows = []
        for img in frames[user][0:40:8]:  # five enrollment frames per person
            faces = pipe.analyze(img)
            assert faces, f"no face in {user}'s enrollment frame"
            emb = max(faces, key=lambda f: (f.box.x2 - f.box.x1) * (f.box.y2 - f.box.y1)).embedding
            assert emb is not None
            rows.append(emb)
        templates.append(np.stack(rows))
    matrix = TemplateMatrix([ALICE, BOB], templates, pipe.embedding_size, pipe.score_scale)
    return World(pipe, frames, matrix)


class Door:
    """The daemon's door parts for one config, the PD simulator on the other pty end."""

    def __init__(self, world: World, link: SocatLink, tmp: Path, mode: str) -> None:
        cp_file, pd_file = tmp / "cp.scbk", tmp / "pd.scbk"
        key = write_scbk(cp_file)
        write_scbk(pd_file, key)
        self.cfg = EdgeGateConfig(
            policy=PolicyConfig(mode=mode, second_factor_timeout_s=8.0, pin_timeout_s=1.0),
            osdp_cp=OsdpCpConfig(
                enabled=True, port=link.a, scbk_file=cp_file, pulse_ms=300, reply_timeout_s=2.0
            ),
        )
        self.world = world
        self.sim = SimProcess("pd", link.b, pd_file)
        self.events = Events()
        self.stop = threading.Event()
        self.actions = DoorActions(self.cfg, self.events, Notifier(None))
        self.inbox = ReaderInbox(self.cfg.policy.pin_timeout_s)
        scbk = load_scbk("osdp-cp.scbk", cp_file)
        matcher = GalleryMatcher(
            world.matrix,
            self.cfg.gallery.threshold,
            self.cfg.gallery.margin,
            2,
            Cards(),
            TAG_KEY,
        )
        factors = build_factors(self.cfg, matcher, self.inbox)
        self.door = open_osdp_door(self.cfg, self.actions, self.inbox, self.stop, scbk)
        self.actions.connect(self.door)
        self.slot: LatestFrame[Frame] = LatestFrame()
        self.pipeline = PipelineThread(
            self.slot,
            build_processor(self.cfg, world.pipe, matcher, factors),
            on_decision=self.actions.on_decision,
            on_error=self.actions.on_pipeline_error,
            on_factor=self.actions.on_factor,
            stop=self.stop,
            max_fps=self.cfg.policy.max_fps,
            heartbeat=Heartbeat(),
        )
        self.door.start()
        self.pipeline.start()
        assert wait_until(lambda: bool(self.events.of("osdp.online")), 10.0), self.events.events

    def play(self, user: str, until: str, timeout_s: float = 20.0) -> bool:
        """Feed ``user``'s clip at ~15 fps until an event of type/reason ``until`` appears."""
        seq = 0
        deadline = time.monotonic() + timeout_s
        frames = self.world.frames[user]
        while time.monotonic() < deadline:
            for img in frames:
                if self.seen(until):
                    return True
                seq += 1
                self.slot.put(Frame(img, time.monotonic(), seq))
                time.sleep(1 / 15)
                if time.monotonic() > deadline:
                    break
        return self.seen(until)

    def seen(self, what: str) -> bool:
        return any(what in (e["type"], e["reason"]) for e in self.events.events)

    def outputs(self) -> list[dict[str, object]]:
        return [e for e in self.sim.of("command") if e["kind"] == "output"]

    def close(self) -> None:
        self.stop.set()
        self.pipeline.stop(5.0)
        self.door.stop(5.0)
        self.sim.close()


@pytest.fixture
def link(tmp_path: Path) -> Iterator[SocatLink]:
    with socat_link(tmp_path) as ln:
        yield ln


def _card(door: Door, card: CardCredential) -> None:
    door.sim.send(f"card {card.facility} {card.number}")


def test_card_and_matching_face_is_one_acked_pulse(
    world: World, link: SocatLink, tmp_path: Path
) -> None:
    """face_and_card: alice's card, then alice's live face → one access.granted (face+card),
    emitted only after the PD's ACK of exactly one osdp_OUT; the event names the card by its
    keyed hash only."""
    door = Door(world, link, tmp_path, "face_and_card")
    try:
        assert door.play(ALICE, "access.denied", timeout_s=3.0) is False  # a face alone: no
        assert door.outputs() == []
        _card(door, ALICE_CARD)
        assert door.play(ALICE, "access.granted"), door.events.events
        time.sleep(1.0)  # a second pulse would be here by now
        outs = door.outputs()
        assert len(outs) == 1, outs
        assert outs[0]["timer_ms"] == 300
        granted = door.events.of("access.granted")
        assert len(granted) == 1
        g = granted[0]
        assert (g["subject"], g["reason"]) == (ALICE, "face+card")
        assert g["detail"] == f"via face+card card {card_hash(TAG_KEY, ALICE_CARD)}"
        assert door.events.of("access.denied") == []
    finally:
        door.close()


def test_card_and_another_enrolled_face_is_card_face_mismatch(
    world: World, link: SocatLink, tmp_path: Path
) -> None:
    """alice's card, bob's (enrolled, live) face → access.denied card_face_mismatch, no
    osdp_OUT. Then the reader unplugged: a signed osdp.offline; plugged back: osdp.online."""
    door = Door(world, link, tmp_path, "face_and_card")
    try:
        _card(door, ALICE_CARD)
        assert door.play(BOB, "card_face_mismatch"), door.events.events
        time.sleep(0.5)
        assert door.outputs() == []
        assert door.events.of("access.granted") == []
        denied = door.events.of("access.denied")
        assert [d["reason"] for d in denied] == ["card_face_mismatch"]
        assert denied[0]["subject"] is None  # a denied face is never named
        link.unplug()  # the reader's cable pulled: osdp.offline, door locked, then reconnect
        assert wait_until(lambda: bool(door.events.of("osdp.offline")), 10.0)
        assert door.events.of("osdp.offline")[0]["reason"] == "link_down"
        link.plug()
        assert wait_until(lambda: len(door.events.of("osdp.online")) == 2, 15.0)
        assert door.outputs() == []
    finally:
        door.close()


def test_unknown_card_denied_and_no_number_or_pin_in_logs_or_events(
    world: World, link: SocatLink, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An unknown card → card_unknown at once (no face needed), no pulse. face_and_pin: alice's
    face, then a wrong PIN → pin_wrong, no pulse.
    Neither any card number nor any PIN appears in a log record or an event."""
    caplog.set_level(logging.DEBUG)
    door = Door(world, link, tmp_path, "face_and_card")
    try:
        door.sim.send(f"card {UNKNOWN_CARD[0]} {UNKNOWN_CARD[1]}")
        assert wait_until(lambda: door.seen("card_unknown"), 5.0), door.events.events
        denied = door.events.of("access.denied")
        assert [d["reason"] for d in denied] == ["card_unknown"]
        assert str(denied[0]["detail"]).startswith("card ")
        time.sleep(0.5)
        assert door.outputs() == []
        events = list(door.events.events)
    finally:
        door.close()
    pin_door = Door(world, link, tmp_path, "face_and_pin")
    try:
        _card(pin_door, ALICE_CARD)  # ignored in this mode, but it crosses the same path
        pin_door.sim.send("keys 13579#")
        assert pin_door.play(ALICE, "xx", timeout_s=3.0) is False  # the face waits for a PIN
        pin_door.sim.send("keys 11111#")
        assert wait_until(lambda: pin_door.seen("pin_wrong"), 5.0), pin_door.events.events
        assert pin_door.outputs() == []
        events += pin_door.events.events
    finally:
        pin_door.close()
    text = json.dumps(events) + "\n".join(
        f"{r.getMessage()} {r.exc_text} "
        + str({k: v for k, v in r.__dict__.items() if k.startswith("EG_")})
        for r in caplog.records
    )
    secrets_ = [
        str(ALICE_CARD.number),
        str(UNKNOWN_CARD[1]),
        ALICE_CARD.key(),
        "13579",
        "11111",
        ALICE_PIN,
    ]
    assert [s for s in secrets_ if s in text] == []
    assert "pin_wrong" in text  # the check saw the outcomes
    assert "card_unknown" in text
