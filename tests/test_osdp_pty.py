"""OSDP with real libosdp at both ends over real ptys, the far end in another process.

edge-gate's control panel (:class:`OsdpPanel`) against the PD simulator process, and edge-gate's
peripheral device (:class:`OsdpPeripheral`) against the CP simulator process; a man-in-the-middle
pty relay for bit flips, replays and garbage; socat killed and restarted for an unplugged cable.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_gate.osdp.cards import CardCredential, CardFormat
from edge_gate.osdp.keys import load_scbk, store_scbk
from edge_gate.osdp.link import SerialLink
from edge_gate.osdp.messages import (
    CardRead,
    KeypadEntry,
    LinkState,
    OutputCommand,
    PanelCommand,
    PulseResult,
    ReaderEvent,
)
from edge_gate.osdp.panel import OsdpPanel, PdSpec
from edge_gate.osdp.peripheral import OsdpPeripheral
from tests.osdp_rig import (
    SCB_ENCRYPTED_FROM_CP,
    MitmPty,
    SimProcess,
    SocatLink,
    flip_bit_fix_crc,
    scb_type,
    socat_link,
    wait_until,
    write_scbk,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

ADDRESS = 1


class Recorder:
    """What the panel handed on, in order."""

    def __init__(self) -> None:
        self.events: list[ReaderEvent] = []
        self._lock = threading.Lock()

    def __call__(self, ev: ReaderEvent) -> None:
        with self._lock:
            self.events.append(ev)

    def of(self, kind: type) -> list[ReaderEvent]:
        with self._lock:
            return [e for e in self.events if isinstance(e, kind)]


def _panel(port: str, key: bytes, rec: Recorder) -> OsdpPanel:
    panel = OsdpPanel([PdSpec(ADDRESS, SerialLink(port, 115200), key)], on_event=rec)
    panel.start()
    return panel


def _secure(panel: OsdpPanel, timeout_s: float = 8.0) -> bool:
    return wait_until(lambda: panel.link(ADDRESS).secure, timeout_s)


def _outputs(sim: SimProcess) -> list[dict[str, object]]:
    return [e for e in sim.of("command") if e["kind"] == "output"]


@pytest.fixture
def link(tmp_path: Path) -> Iterator[SocatLink]:
    with socat_link(tmp_path) as ln:
        yield ln


@pytest.fixture
def key_files(tmp_path: Path) -> tuple[Path, Path, bytes]:
    cp_file, pd_file = tmp_path / "cp.scbk", tmp_path / "pd.scbk"
    key = write_scbk(cp_file)
    write_scbk(pd_file, key)
    return cp_file, pd_file, key


def test_cp_secure_channel_card_keys_and_pulse(
    link: SocatLink, key_files: tuple[Path, Path, bytes]
) -> None:
    """Right SCBK: the Secure Channel comes up; one card presented is one CardRead (decoded
    Wiegand-26), keys arrive; a pulse returns only after the PD's ACK, for the asked length."""
    _, pd_file, key = key_files
    sim = SimProcess("pd", link.b, pd_file)
    rec = Recorder()
    panel = _panel(link.a, key, rec)
    try:
        assert _secure(panel)
        assert wait_until(lambda: LinkState(ADDRESS, True, True) in rec.of(LinkState), 2.0)
        sim.send("card 17 40001")
        assert wait_until(lambda: bool(rec.of(CardRead)), 3.0)
        time.sleep(0.5)  # a duplicate would be here by now
        reads = rec.of(CardRead)
        assert len(reads) == 1
        read = reads[0]
        assert isinstance(read, CardRead)
        assert read.card == CardCredential(CardFormat.WIEGAND26, 17, 40001)
        assert read.raw.bits == 26
        sim.send("keys 2468")
        assert wait_until(lambda: bool(rec.of(KeypadEntry)), 3.0)
        entry = rec.of(KeypadEntry)[0]
        assert isinstance(entry, KeypadEntry)
        assert entry.keys == "2468"
        assert "2468" not in repr(entry)

        assert _outputs(sim) == []
        out = panel.pulse_output(ADDRESS, 300)
        assert out.result is PulseResult.ACKED, out
        assert out.pulse_ms == 300
        # the ACK came after the PD applied the command: it has logged it already
        assert sim.wait_for(lambda e: e.get("kind") == "output", 1.0)
        outs = _outputs(sim)
        assert len(outs) == 1
        assert outs[0]["timer_ms"] == 300
        assert outs[0]["control_code"] == 5  # temporary on, then back to off
        assert out.latency_ms < 1000
    finally:
        panel.stop()
        sim.close()


def test_cp_pulse_refused_by_pd_is_nak(
    link: SocatLink, key_files: tuple[Path, Path, bytes]
) -> None:
    """A PD that refuses the output answers NAK: the pulse result says so, not "acked"."""
    _, pd_file, key = key_files
    sim = SimProcess("pd", link.b, pd_file, "--nak-output")
    panel = _panel(link.a, key, Recorder())
    try:
        assert _secure(panel)
        out = panel.pulse_output(ADDRESS, 300)
        assert out.result is PulseResult.NAKED
        assert not out.ok
    finally:
        panel.stop()
        sim.close()


def test_cp_wrong_scbk_no_secure_channel_no_card_no_pulse(link: SocatLink, tmp_path: Path) -> None:
    """PD with another SCBK: no Secure Channel, no card read reaches the panel, no pulse sent."""
    pd_file = tmp_path / "pd.scbk"
    write_scbk(pd_file)
    sim = SimProcess("pd", link.b, pd_file)
    rec = Recorder()
    panel = _panel(link.a, write_scbk(tmp_path / "cp.scbk"), rec)
    try:
        assert not _secure(panel, 4.0)
        sim.send("card 17 40001")
        assert sim.wait_for(lambda e: e["event"] == "card_submitted", 3.0)
        assert sim.of("card_submitted")[0]["ok"] is False  # the PD refuses outside SC
        time.sleep(1.0)
        assert rec.of(CardRead) == []
        out = panel.pulse_output(ADDRESS, 300)
        assert out.result is PulseResult.OFFLINE
        time.sleep(0.3)
        assert sim.of("command") == []
        assert LinkState(ADDRESS, True, True) not in rec.of(LinkState)
    finally:
        panel.stop()
        sim.close()


def test_unplugged_reader_goes_offline_and_reconnects(
    link: SocatLink, key_files: tuple[Path, Path, bytes]
) -> None:
    """Cable pulled (socat killed): the panel reports the PD offline and refuses to pulse; cable
    back: the same processes reconnect and the Secure Channel and pulses work again."""
    _, pd_file, key = key_files
    sim = SimProcess("pd", link.b, pd_file)
    rec = Recorder()
    panel = _panel(link.a, key, rec)
    try:
        assert _secure(panel)
        link.unplug()
        t0 = time.monotonic()
        assert wait_until(lambda: not panel.link(ADDRESS).online, 10.0)
        offline_s = time.monotonic() - t0
        assert LinkState(ADDRESS, False, False) in rec.of(LinkState)
        assert panel.pulse_output(ADDRESS, 300).result is PulseResult.OFFLINE
        link.plug()
        t1 = time.monotonic()
        assert _secure(panel, 15.0)
        reconnect_s = time.monotonic() - t1
        assert panel.pulse_output(ADDRESS, 300).ok
        print(f"offline after {offline_s:.2f} s, secure again {reconnect_s:.2f} s after replug")
    finally:
        panel.stop()
        sim.close()


@pytest.fixture
def mitm() -> Iterator[MitmPty]:
    m = MitmPty()
    yield m
    m.close()


def test_garbage_on_the_line_offline_then_reconnect(
    mitm: MitmPty, key_files: tuple[Path, Path, bytes]
) -> None:
    """Noise instead of the PD's answers: offline, no pulse; clean line again: reconnects."""
    _, pd_file, key = key_files
    sim = SimProcess("pd", mitm.pd_port, pd_file)
    rec = Recorder()
    panel = _panel(mitm.cp_port, key, rec)
    try:
        assert _secure(panel)
        mitm.garbage_to_cp = True
        assert wait_until(lambda: not panel.link(ADDRESS).secure, 10.0)
        assert panel.pulse_output(ADDRESS, 300).result is PulseResult.OFFLINE
        assert wait_until(lambda: LinkState(ADDRESS, False, False) in rec.of(LinkState), 10.0)
        mitm.garbage_to_cp = False
        assert _secure(panel, 15.0)
        assert panel.pulse_output(ADDRESS, 300).ok
        assert len(_outputs(sim)) == 1
    finally:
        panel.stop()
        sim.close()


def test_bit_flipped_out_rejected_by_secure_channel(
    mitm: MitmPty, key_files: tuple[Path, Path, bytes]
) -> None:
    """A MITM flips one bit of the encrypted osdp_OUT and fixes the CRC: the PD's Secure
    Channel rejects it, the output is never driven and the pulse is not reported as done."""
    _, pd_file, key = key_files
    sim = SimProcess("pd", mitm.pd_port, pd_file)
    panel = _panel(mitm.cp_port, key, Recorder())
    try:
        assert _secure(panel)
        assert mitm.crc_checked > 0  # the rig computes OSDP's CRC: only the MAC is left
        for bit in (3, 21, 42):
            flipped: list[bytes] = []

            def flip(frame: bytes, bit: int = bit, flipped: list[bytes] = flipped) -> bytes:
                if not flipped and scb_type(frame) == SCB_ENCRYPTED_FROM_CP:
                    flipped.append(frame)
                    return flip_bit_fix_crc(frame, bit)
                return frame

            mitm.to_pd = flip
            out = panel.pulse_output(ADDRESS, 300, timeout_s=3.0)
            mitm.to_pd = None
            assert flipped, "no encrypted command frame crossed the line"
            assert not out.ok, out
            assert out.result is PulseResult.NAKED  # the PD's answer: a Secure Channel error
            assert _outputs(sim) == []
            # the session is torn down and established afresh
            assert wait_until(lambda: not panel.link(ADDRESS).secure, 5.0)
            assert _secure(panel, 15.0)
        assert panel.pulse_output(ADDRESS, 300).ok
        assert len(_outputs(sim)) == 1
    finally:
        panel.stop()
        sim.close()


def test_replayed_out_frame_rejected(mitm: MitmPty, key_files: tuple[Path, Path, bytes]) -> None:
    """The encrypted frame of an acknowledged osdp_OUT, recorded and sent again later, never
    drives the output a second time."""
    _, pd_file, key = key_files
    sim = SimProcess("pd", mitm.pd_port, pd_file)
    panel = _panel(mitm.cp_port, key, Recorder())
    try:
        assert _secure(panel)
        mitm.recorded_to_pd.clear()
        assert panel.pulse_output(ADDRESS, 300).ok
        recorded = [f for f in mitm.recorded_to_pd if scb_type(f) == SCB_ENCRYPTED_FROM_CP]
        assert recorded
        time.sleep(0.5)  # several polls later: the MAC chain has moved on
        for frame in recorded:
            mitm.inject_to_pd(frame)
        time.sleep(1.5)
        assert len(_outputs(sim)) == 1
    finally:
        panel.stop()
        sim.close()


class PdRecorder:
    def __init__(self) -> None:
        self.commands: list[PanelCommand] = []

    def __call__(self, cmd: PanelCommand) -> bool:
        self.commands.append(cmd)
        return True


def _peripheral(port: str, key: bytes | None, rec: PdRecorder, **kw: object) -> OsdpPeripheral:
    pd = OsdpPeripheral(SerialLink(port, 115200), ADDRESS, key, on_command=rec, **kw)  # type: ignore[arg-type]
    pd.start()
    return pd


def test_pd_card_read_reaches_cp_process_once(
    link: SocatLink, key_files: tuple[Path, Path, bytes]
) -> None:
    """edge-gate as a reader: one reported card is one card read, with that number, at a
    libosdp panel in another process; the panel's osdp_OUT reaches the callback and is ACKed."""
    cp_file, _, key = key_files
    cp = SimProcess("cp", link.a, cp_file)
    rec = PdRecorder()
    pd = _peripheral(link.b, key, rec)
    try:
        assert wait_until(lambda: pd.link.secure, 8.0)
        card = CardCredential(CardFormat.WIEGAND26, 200, 65000)
        assert pd.report_card(card)
        assert cp.wait_for(lambda e: e["event"] == "card", 3.0)
        time.sleep(0.5)
        cards = cp.of("card")
        assert len(cards) == 1
        assert (cards[0]["facility"], cards[0]["number"], cards[0]["bits"]) == (200, 65000, 26)
        cp.send("pulse 700")
        assert cp.wait_for(lambda e: e["event"] == "pulse", 5.0)
        assert cp.of("pulse")[0]["result"] == "acked"
        assert [c for c in rec.commands if isinstance(c, OutputCommand)] == [
            OutputCommand(0, 5, 700)
        ]
    finally:
        pd.stop()
        cp.close()


def test_pd_wrong_scbk_reports_nothing(link: SocatLink, tmp_path: Path) -> None:
    """A panel with another SCBK: no Secure Channel, report_card sends nothing, no card read."""
    cp_file = tmp_path / "cp.scbk"
    write_scbk(cp_file)
    cp = SimProcess("cp", link.a, cp_file)
    pd = _peripheral(link.b, write_scbk(tmp_path / "pd.scbk"), PdRecorder())
    try:
        assert not wait_until(lambda: pd.link.secure, 4.0)
        assert not pd.report_card(CardCredential(CardFormat.WIEGAND26, 1, 2))
        time.sleep(1.0)
        assert cp.of("card") == []
    finally:
        pd.stop()
        cp.close()


def test_pd_install_mode_takes_the_panels_key(link: SocatLink, tmp_path: Path) -> None:
    """Commissioning: a PD in install mode (no key yet) opens a session with SCBK-D, stores the
    panel's KEYSET key 0600, and the Secure Channel then runs on that key."""
    cp_file = tmp_path / "cp.scbk"
    key = write_scbk(cp_file)
    cp = SimProcess("cp", link.a, cp_file, "--install-mode")
    pd_file = tmp_path / "pd.scbk"
    pd = _peripheral(
        link.b, None, PdRecorder(), install_mode=True, on_keyset=lambda k: store_scbk(pd_file, k)
    )
    try:
        assert pd.in_install_mode
        assert wait_until(pd_file.exists, 10.0)
        assert load_scbk("none", pd_file) == key
        assert stat.S_IMODE(os.stat(pd_file).st_mode) == 0o600
        assert wait_until(lambda: pd.link.secure, 8.0)
    finally:
        pd.stop()
        cp.close()


def test_osdp_door_actuator_unlocks_after_ack_and_drops_stale(
    link: SocatLink, key_files: tuple[Path, Path, bytes]
) -> None:
    """The daemon's door on a PD output: a grant is ok only after the PD's ACK, with the
    configured pulse; a stale command is never sent."""
    from edge_gate.door.client import UnlockOutcome
    from edge_gate.door.worker import UnlockCommand
    from edge_gate.osdp.door import OsdpDoor

    _, pd_file, key = key_files
    sim = SimProcess("pd", link.b, pd_file)
    results: list[tuple[UnlockCommand, UnlockOutcome]] = []
    stop = threading.Event()
    panel = OsdpPanel([PdSpec(ADDRESS, SerialLink(link.a, 115200), key)], on_event=Recorder())
    door = OsdpDoor(
        panel,
        ADDRESS,
        output_no=0,
        pulse_ms=400,
        reply_timeout_s=2.0,
        on_result=lambda c, o: results.append((c, o)),
        stop=stop,
    )
    door.start()
    try:
        assert _secure(panel)
        assert door.submit(UnlockCommand(1500, time.monotonic() - 1, "old"))
        assert wait_until(lambda: len(results) == 1, 3.0)
        assert results[0][1].reason == "stale"
        assert door.submit(UnlockCommand(1500, time.monotonic() + 2, "d1"))
        assert wait_until(lambda: len(results) == 2, 5.0)
        cmd, outcome = results[1]
        assert (cmd.tag, outcome.ok, outcome.reason, outcome.pulse_ms) == (
            "d1",
            True,
            "unlocked",
            400,
        )
        assert [e["timer_ms"] for e in _outputs(sim)] == [400]
    finally:
        stop.set()
        assert door.join(10)
        sim.close()
