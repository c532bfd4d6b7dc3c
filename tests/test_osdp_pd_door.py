"""``[osdp_pd]`` at the door: a face grant becomes exactly one card read at a real libosdp
panel in another process (over a socat pty pair); denials, people without a card and a panel
with the wrong SCBK get nothing; the panel's commands become audit events (and NAKs where
nothing local can act on them). The daemon end to end is in ``test_e2e_osdp_pd.py``."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edge_gate.audit.events import EventType
from edge_gate.capture.frame import Frame
from edge_gate.config import EdgeGateConfig
from edge_gate.decision.policy import Deny, DenyReason, Grant
from edge_gate.gallery.credentials import CredentialDirectory, card_tag_key
from edge_gate.gallery.loaded import new_user_id
from edge_gate.gallery.record import PersonRecord
from edge_gate.osdp.cards import CardCredential, CardFormat, card_hash
from edge_gate.osdp.link import SerialLink
from edge_gate.osdp.messages import BuzzerCommand, LedCommand, OutputCommand
from edge_gate.osdp.peripheral import OsdpPeripheral
from edge_gate.service.door_actions import DoorActions
from edge_gate.service.frame_processor import FrameResult
from edge_gate.service.notify import Notifier
from edge_gate.service.panel_reader import PanelReader
from edge_gate.service.ports import EventValue
from tests.osdp_rig import SimProcess, SocatLink, socat_link, wait_until, write_scbk

CARD = CardCredential(CardFormat.WIEGAND26, 77, 51234)
TAG_KEY = card_tag_key(b"g" * 32)
FRAME = Frame(np.zeros((2, 2, 3), np.uint8), 0.0, 0)
RESULT = FrameResult(0, (), ())


class Events:
    """The audit trail as the door sees it (an EventSink), recording every event."""

    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []
        self._lock = threading.Lock()

    def emit(
        self,
        event_type: EventType,
        *,
        door: str | None,
        subject: str | None = None,
        reason: str | None = None,
        **fields: EventValue,
    ) -> int | None:
        with self._lock:
            ev = {"type": event_type.value, "subject": subject, "reason": reason, **fields}
            self.events.append({k: v for k, v in ev.items() if v is not None})
            return len(self.events)

    def flush(self, timeout_s: float) -> bool:
        return True

    def stop(self, timeout_s: float = 5.0) -> bool:
        return True

    def of(self, kind: str) -> list[dict[str, object]]:
        with self._lock:
            return [e for e in self.events if e["type"] == kind]


def _person(card: CardCredential | None) -> PersonRecord:
    t = np.full((1, 4), 0.5, np.float32)
    return PersonRecord(new_user_id(), "P", "m", 1.0, t, card=card)


def _grant(user_id: str) -> Grant:
    now = time.monotonic()
    return Grant(1, user_id, 0.8, 0.2, 0.9, 5, now - 0.5, now)


@pytest.fixture
def link(tmp_path: Path) -> Iterator[SocatLink]:
    with socat_link(tmp_path) as ln:
        yield ln


def _door(
    port: str, key: bytes, people: list[PersonRecord]
) -> tuple[DoorActions, PanelReader, Events]:
    events = Events()
    actions = DoorActions(EdgeGateConfig(), events, Notifier.from_env({}))
    actions.use_credentials(CredentialDirectory(people), TAG_KEY)
    reader = PanelReader(actions.emit, reader_no=0, unlock_expiry_s=3.0, stop=threading.Event())
    pd = OsdpPeripheral(
        SerialLink(port, 115200),
        1,
        key,
        on_command=reader.on_command,
        on_link=reader.on_link,
        stop=threading.Event(),
    )
    reader.attach(pd, None)
    actions.connect(reader, reporter=reader)
    reader.start()
    return actions, reader, events


def test_a_grant_is_one_card_read_at_the_panel(link: SocatLink, tmp_path: Path) -> None:
    """Face grant → exactly one card read with the person's facility and number; a denial and
    a person without a card → nothing sent (``no_card``); events carry the keyed tag only."""
    key_file = tmp_path / "panel.scbk"
    key = write_scbk(key_file)
    holder, no_card = _person(CARD), _person(None)
    cp = SimProcess("cp", link.b, key_file)
    actions, reader, events = _door(link.a, key, [holder, no_card])
    try:
        assert wait_until(lambda: reader.link is not None and reader.link.secure, 8.0)
        now = time.monotonic()
        deny = Deny(2, DenyReason.UNKNOWN, 0.3, 0.0, 0.9, 5, now - 1, now)
        actions.on_decision(deny, FRAME, RESULT)
        actions.on_decision(_grant(no_card.user_id), FRAME, RESULT)
        time.sleep(0.5)
        assert cp.of("card") == []
        actions.on_decision(_grant(holder.user_id), FRAME, RESULT)
        assert cp.wait_for(lambda e: e["event"] == "card", 3.0)
        time.sleep(0.7)
        cards = cp.of("card")
        assert len(cards) == 1
        assert (cards[0]["facility"], cards[0]["number"], cards[0]["bits"]) == (77, 51234, 26)
        granted = events.of("access.granted")
        assert [(e["subject"], e["reason"]) for e in granted] == [(holder.user_id, "card_reported")]
        assert granted[0]["card"] == card_hash(TAG_KEY, CARD)
        denied = events.of("access.denied")
        assert [(e.get("subject"), e["reason"]) for e in denied] == [
            (None, "unknown"),
            (no_card.user_id, "no_card"),
        ]
        assert "51234" not in json.dumps(events.events)
    finally:
        reader.stop()
        cp.close()


def test_wrong_scbk_no_secure_channel_no_card_read(link: SocatLink, tmp_path: Path) -> None:
    """The panel holds another SCBK: no Secure Channel, the grant sends nothing and is denied
    ``panel_unavailable``; the panel sees no card read."""
    panel_key = tmp_path / "panel.scbk"
    write_scbk(panel_key)
    holder = _person(CARD)
    cp = SimProcess("cp", link.b, panel_key)
    actions, reader, events = _door(link.a, write_scbk(tmp_path / "pd.scbk"), [holder])
    try:
        assert not wait_until(lambda: reader.link is not None and reader.link.secure, 4.0)
        actions.on_decision(_grant(holder.user_id), FRAME, RESULT)
        time.sleep(1.0)
        assert cp.of("card") == []
        assert not any(e.get("secure") for e in cp.of("link"))
        denied = events.of("access.denied")
        assert [(e["subject"], e["reason"]) for e in denied] == [
            (holder.user_id, "panel_unavailable")
        ]
        assert events.of("access.granted") == []
    finally:
        reader.stop()
        cp.close()


def test_panel_output_without_a_wired_door_is_naked_and_recorded(
    link: SocatLink, tmp_path: Path
) -> None:
    """The panel's osdp_OUT reaches edge-gate; with no [relay] door to apply it to
    (``apply_output`` off) it is refused (NAK at the panel) and recorded."""
    key_file = tmp_path / "panel.scbk"
    key = write_scbk(key_file)
    cp = SimProcess("cp", link.b, key_file)
    _, reader, events = _door(link.a, key, [])
    try:
        assert wait_until(lambda: reader.link is not None and reader.link.secure, 8.0)
        # the panel's side too: it counts the PD online a poll after the PD saw Secure Channel
        assert cp.wait_for(lambda e: e["event"] == "link" and e.get("secure") is True, 8.0)
        cp.send("pulse 400")
        assert cp.wait_for(lambda e: e["event"] == "pulse", 5.0)
        assert cp.of("pulse")[0]["result"] == "naked"
        assert wait_until(lambda: bool(events.of("osdp.panel_command")), 2.0)
        cmd = events.of("osdp.panel_command")[0]
        assert (cmd["reason"], cmd["detail"]) == ("output_not_wired", "output 0, 400 ms")
    finally:
        reader.stop()
        cp.close()


def test_led_buzzer_and_output_commands_are_decided_without_waiting() -> None:
    """LED/buzzer: ACK and an event (no local indicator); osdp_OUT without a relay: NAK; the
    events are emitted from the reader's own thread, not libosdp's."""
    events = Events()

    def emit(event_type: EventType, **kw: EventValue) -> None:
        events.emit(event_type, door=None, **kw)  # type: ignore[arg-type]

    reader = PanelReader(
        emit,
        reader_no=0,
        unlock_expiry_s=3.0,
        stop=threading.Event(),
    )
    assert reader.on_command(LedCommand(0, 0, 2, 0, True))
    assert reader.on_command(BuzzerCommand(0, 2, 2, 3))
    assert not reader.on_command(OutputCommand(0, 5, 500))
    assert events.events == []  # queued, not emitted on the caller's thread
    reader._drain()
    assert [e["reason"] for e in events.of("osdp.panel_command")] == [
        "led",
        "buzzer",
        "output_not_wired",
    ]
