"""Relay protocol over a real pseudo-terminal: the simulator on the master side, the gateway's
pyserial client on the slave side. Covers every "Must show" scenario of the relay issue."""

from __future__ import annotations

import os
import secrets
import shutil
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

import pytest

from edge_gate.door.client import RelayClient
from edge_gate.door.codec import (
    Answer,
    Challenge,
    Hello,
    Message,
    Status,
    StatusRequest,
    Unlock,
    encode,
    from_unframed,
)
from edge_gate.door.framing import StreamDecoder
from edge_gate.door.relay_core import RelayPolicy
from edge_gate.door.transport import Channel, ChannelUnavailable, FdChannel, SerialChannel
from tests.test_relay_support import (
    NoisyChannel,
    RecordingChannel,
    make_client,
    pty_relay,
    silent_pty,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _key() -> bytes:
    return secrets.token_bytes(32)


def _sync(client: RelayClient) -> None:
    """A fresh handshake: the relay processes frames in order, so earlier ones are done."""
    assert client.handshake().ok


def test_happy_path(tmp_path: Path) -> None:
    """Handshake, signed unlock, verified ACK; the relay pulses, then relocks by itself."""
    key = _key()
    with pty_relay(key, policy=RelayPolicy(max_pulse_ms=5000)) as relay:
        client = make_client(relay.port, key, tmp_path / "counter")
        outcome = client.unlock(150)
        assert outcome.ok, outcome
        assert outcome.reason == "unlocked"
        assert outcome.pulse_ms == 150
        assert outcome.counter == 1
        assert outcome.ack_latency_ms is not None
        assert outcome.latency_ms < 500
        assert relay.events.wait_for(lambda ev: any(e["event"] == "locked" for e in ev), 2.0)
        assert relay.events.of("unlocked") == [{"event": "unlocked", "pulse_ms": 150, "counter": 1}]
        status = client.status()
        assert status.ok
        assert not status.energised
        assert status.relay_counter == 1
        client.channel.close()


def test_relay_enforces_max_pulse(tmp_path: Path) -> None:
    """A request longer than the relay's maximum is clamped; the ACK reports the applied pulse."""
    key = _key()
    with pty_relay(key, policy=RelayPolicy(max_pulse_ms=200)) as relay:
        client = make_client(relay.port, key, tmp_path / "counter")
        outcome = client.unlock(10_000)
        assert outcome.ok
        assert outcome.pulse_ms == 200
        t0 = time.monotonic()
        assert relay.events.wait_for(lambda ev: ev[-1]["event"] == "locked", 2.0)
        assert time.monotonic() - t0 < 1.0
        client.channel.close()


def test_recorded_unlock_replayed_is_rejected(tmp_path: Path) -> None:
    """A recorded UNLOCK frame sent again (same session, and after a new challenge) is refused."""
    key = _key()
    with pty_relay(key) as relay:
        rec: list[RecordingChannel] = []

        def wrap(ch: Channel) -> Channel:
            rec.append(RecordingChannel(ch))
            return rec[0]

        client = make_client(relay.port, key, tmp_path / "counter", wrap=wrap)
        assert client.unlock(100).ok
        unlock_frame = rec[0].writes[-1]
        rec[0].write(unlock_frame)  # straight replay
        _sync(client)
        rec[0].write(unlock_frame)  # replay while a different nonce is outstanding
        _sync(client)
        assert len(relay.events.of("unlocked")) == 1
        assert [e["reason"] for e in relay.events.of("rejected")] == ["replay", "replay"]
        client.channel.close()


def test_replay_with_repeated_nonce_stopped_by_counter(tmp_path: Path) -> None:
    """Even if the relay's RNG repeated a nonce, the counter refuses the recorded command."""
    key = _key()
    with pty_relay(key, nonce_source=lambda n: b"\x07" * n) as relay:
        rec: list[RecordingChannel] = []

        def wrap(ch: Channel) -> Channel:
            rec.append(RecordingChannel(ch))
            return rec[0]

        client = make_client(relay.port, key, tmp_path / "counter", wrap=wrap)
        assert client.unlock(100).ok
        unlock_frame = rec[0].writes[-1]
        _sync(client)  # the same (broken) nonce is outstanding again
        rec[0].write(unlock_frame)
        _sync(client)
        assert len(relay.events.of("unlocked")) == 1
        assert relay.events.of("rejected")[-1]["reason"] == "counter"
        client.channel.close()


def test_every_single_bit_flip_of_unlock_rejected_over_pty(tmp_path: Path) -> None:
    """For each bit of a fresh, valid UNLOCK frame, the frame with that bit flipped is refused."""
    key = _key()
    with pty_relay(key) as relay:
        client = make_client(relay.port, key, tmp_path / "counter")
        channel = client.channel
        n_bits = len(encode(Unlock(bytes(16), 1, 100), key)) * 8
        for bit in range(n_bits):
            hs = client.handshake()
            assert hs.ok
            assert hs.challenge is not None
            rejected_before = len(relay.events.of("rejected"))
            frame = bytearray(encode(Unlock(hs.challenge.relay_nonce, bit + 1, 100), key))
            frame[bit // 8] ^= 1 << (bit % 8)
            channel.write(bytes(frame))
            _sync(client)
            assert len(relay.events.of("rejected")) > rejected_before, bit
        assert relay.events.of("unlocked") == []
        assert relay.sim.unlock_count == 0
        assert client.unlock(100).ok  # and the link still works afterwards
        client.channel.close()


def test_wrong_key_never_unlocks(tmp_path: Path) -> None:
    """A gateway with another key fails the challenge; a command MAC'd with it is refused."""
    key = _key()
    with pty_relay(key) as relay:
        wrong = make_client(relay.port, _key(), tmp_path / "wrong-counter")
        outcome = wrong.unlock(100)
        assert not outcome.ok
        assert outcome.reason == "bad_challenge"
        right = RelayClient(wrong.channel, key, wrong._counter, timeout_s=0.5)
        hs = right.handshake()
        assert hs.challenge is not None
        forged = wrong.unlock_with(hs.challenge, 100)
        assert not forged.ok
        assert forged.reason == "bad_mac"  # the relay's NACK does not verify under the wrong key
        _sync(right)
        assert relay.events.of("rejected")[-1]["reason"] == "bad_mac"
        assert relay.events.of("unlocked") == []
        wrong.channel.close()


def test_expired_nonce_refused(tmp_path: Path) -> None:
    """An UNLOCK arriving after the challenge's lifetime is refused with nack:expired."""
    key = _key()
    with pty_relay(key, policy=RelayPolicy(nonce_ttl_ms=100)) as relay:
        client = make_client(relay.port, key, tmp_path / "counter")
        hs = client.handshake()
        assert hs.challenge is not None
        assert hs.challenge.ttl_ms == 100
        time.sleep(0.25)
        outcome = client.unlock_with(hs.challenge, 100)
        assert not outcome.ok
        assert outcome.reason == "nack:expired"
        assert relay.events.of("unlocked") == []
        assert client.unlock(100).ok  # a fresh challenge works
        client.channel.close()


def test_counter_rollback_refused(tmp_path: Path) -> None:
    """Gateway counter file restored from an old copy: the relay refuses the next unlock."""
    key = _key()
    counter_file = tmp_path / "counter"
    with pty_relay(key, state_file=tmp_path / "relay.state") as relay:
        client = make_client(relay.port, key, counter_file)
        assert client.unlock(100).ok
        shutil.copy2(counter_file, tmp_path / "counter.backup")
        assert client.unlock(100).ok
        assert client.unlock(100).ok
        client.channel.close()
        shutil.copy2(tmp_path / "counter.backup", counter_file)  # restore the old copy
        restarted = make_client(relay.port, key, counter_file)
        refused = restarted.unlock(100)
        assert not refused.ok
        assert refused.reason == "nack:counter"
        assert refused.counter == 2
        assert relay.events.of("rejected")[-1]["reason"] == "counter"
        assert len(relay.events.of("unlocked")) == 3
        # the authenticated NACK moved the gateway forward; the next command is fresh
        again = restarted.unlock(100)
        assert again.ok
        assert again.counter == 4
        restarted.channel.close()
    assert (tmp_path / "relay.state").read_text().split()[-1] == "4"


def test_relay_counter_survives_relay_restart(tmp_path: Path) -> None:
    """The simulator persists its highest counter: after a restart an old counter is refused."""
    key = _key()
    state = tmp_path / "relay.state"
    with pty_relay(key, state_file=state) as relay:
        client = make_client(relay.port, key, tmp_path / "counter")
        assert client.unlock(100).ok
        assert client.unlock(100).ok
        client.channel.close()
    with pty_relay(key, state_file=state) as relay:
        client = make_client(relay.port, key, tmp_path / "other-counter")
        hs = client.handshake()
        assert hs.challenge is not None
        assert hs.challenge.relay_counter == 2
        assert client.unlock_with(hs.challenge, 100, counter=2).reason == "nack:counter"
        client.channel.close()


def test_truncated_and_garbage_frames(tmp_path: Path) -> None:
    """Truncated frames and raw garbage are dropped (rejected events); the link resynchronises."""
    key = _key()
    with pty_relay(key) as relay:
        client = make_client(relay.port, key, tmp_path / "counter")
        channel = client.channel
        hs = client.handshake()
        assert hs.challenge is not None
        whole = encode(Unlock(hs.challenge.relay_nonce, 99, 100), key)
        channel.write(whole[: len(whole) // 2])
        channel.write(os.urandom(300))
        channel.write(bytes(range(256)))
        channel.write(b"\x00" + encode(Hello(b"x" * 16), key)[1:9] + b"\x00")
        _sync(client)
        assert relay.events.of("unlocked") == []
        reasons = {e["reason"] for e in relay.events.of("rejected")}
        assert reasons <= {"bad_crc", "bad_frame", "bad_length", "bad_version", "bad_type"}
        assert reasons
        assert client.unlock(100).ok
        client.channel.close()


def test_noise_interleaved_frames_both_directions(tmp_path: Path) -> None:
    """Random noise (zeros included) around every frame, both ways: unlocks still verify."""
    key = _key()
    with pty_relay(key, wrap=lambda ch: NoisyChannel(ch, seed=1)) as relay:
        client = make_client(
            relay.port, key, tmp_path / "counter", wrap=lambda ch: NoisyChannel(ch, 2)
        )
        outcomes = [client.unlock(100) for _ in range(30)]
        assert [o.reason for o in outcomes] == ["unlocked"] * 30
        assert len(relay.events.of("unlocked")) == 30
        client.channel.close()


def test_relay_silent_times_out_without_unlock(tmp_path: Path) -> None:
    """Nothing answers on the line: unlock fails with reason timeout, within its time budget."""
    with silent_pty() as port:
        client = make_client(port, _key(), tmp_path / "counter", timeout_s=0.3)
        t0 = time.monotonic()
        outcome = client.unlock(100)
        assert not outcome.ok
        assert outcome.reason == "timeout"
        assert 0.25 <= time.monotonic() - t0 < 2.0
        assert client.status().reason == "timeout"
        client.channel.close()


def test_port_held_exclusively(tmp_path: Path) -> None:
    """A second opener of the same port is refused while the gateway holds it."""
    key = _key()
    with pty_relay(key) as relay:
        client = make_client(relay.port, key, tmp_path / "counter")
        assert client.handshake().ok
        intruder = SerialChannel(relay.port, 115200)
        with pytest.raises(ChannelUnavailable, match="cannot open"):
            intruder.ensure_open()
        client.channel.close()


def test_status_reports_door_and_tamper(tmp_path: Path) -> None:
    """STATUS carries the door contact and tamper switch, MAC-verified."""
    key = _key()
    with pty_relay(key) as relay:
        relay.sim.set_inputs(door_open=True, tamper=True)
        client = make_client(relay.port, key, tmp_path / "counter")
        st = client.status()
        assert st.ok
        assert st.door_open
        assert st.tamper
        assert not st.energised
        client.channel.close()


class _ScriptedRelay:
    """A hand-driven relay on a pty master that answers with stale or doctored frames."""

    def __init__(self, key: bytes, answer: Callable[[Message, bytes], bytes | None]) -> None:
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.slave = slave
        self.port = os.ttyname(slave)
        self._key = key
        self._answer = answer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        channel = FdChannel(self.master)
        decoder = StreamDecoder()
        while not self._stop.is_set():
            for u in decoder.feed(channel.read(0.05)):
                d = from_unframed(u, self._key)
                if d.message is not None:
                    reply = self._answer(d.message, self._key)
                    if reply is not None:
                        channel.write(reply)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        os.close(self.slave)
        os.close(self.master)


def test_stale_challenge_not_accepted(tmp_path: Path) -> None:
    """A genuine CHALLENGE for another HELLO (old gw_nonce) is ignored: handshake times out."""

    def answer(msg: Message, key: bytes) -> bytes | None:
        if isinstance(msg, Hello):
            return encode(Challenge(b"o" * 16, b"n" * 16, 2000, 0), key)
        return None

    relay = _ScriptedRelay(_key(), answer)
    try:
        client = make_client(relay.port, relay._key, tmp_path / "counter", timeout_s=0.3)
        assert client.handshake().reason == "timeout"
        client.channel.close()
    finally:
        relay.close()


def test_old_ack_does_not_confirm_new_unlock(tmp_path: Path) -> None:
    """A genuine ACK for another counter or nonce never makes the gateway report "unlocked"."""
    replies: list[Answer] = []

    def answer(msg: Message, key: bytes) -> bytes | None:
        if isinstance(msg, Hello):
            return encode(Challenge(msg.gw_nonce, b"n" * 16, 2000, 0), key)
        if isinstance(msg, Unlock):
            old = Answer(True, msg.relay_nonce, msg.counter - 1, 0, msg.pulse_ms, msg.counter - 1)
            other_nonce = Answer(True, b"m" * 16, msg.counter, 0, msg.pulse_ms, msg.counter)
            replies.extend([old, other_nonce])
            return encode(old, key) + encode(other_nonce, key)
        if isinstance(msg, StatusRequest):  # the relay never took the new counter
            return encode(Status(msg.gw_nonce, False, False, False, 5), key)
        return None

    relay = _ScriptedRelay(_key(), answer)
    try:
        client = make_client(relay.port, relay._key, tmp_path / "counter", timeout_s=0.3)
        client._counter.advance_to(5)
        outcome = client.unlock(100)
        assert not outcome.ok
        assert outcome.reason == "timeout"
        assert len(replies) == 2
        client.channel.close()
    finally:
        relay.close()


def _ack_losing_relay(
    accept: bool, answer_status: bool, highest_at_start: int = 0
) -> Callable[[Message, bytes], bytes | None]:
    """A relay whose answers to UNLOCK never arrive (a mangled line). It executes an UNLOCK
    when ``accept`` and the counter is past its highest, and answers STATUS (MAC'd, with its
    highest accepted counter) when ``answer_status``."""
    highest = [highest_at_start]

    def answer(msg: Message, key: bytes) -> bytes | None:
        if isinstance(msg, Hello):
            return encode(Challenge(msg.gw_nonce, b"n" * 16, 2000, highest[0]), key)
        if isinstance(msg, Unlock) and accept and msg.counter > highest[0]:
            highest[0] = msg.counter  # energised; the ACK is lost on the way back
        if isinstance(msg, StatusRequest) and answer_status:
            return encode(Status(msg.gw_nonce, False, False, accept, highest[0]), key)
        return None

    return answer


@pytest.mark.parametrize(
    ("accept", "answer_status", "relay_ahead", "ok", "reason"),
    [
        (True, True, 0, True, "unlocked_ack_lost"),  # the door opened: say so
        (False, True, 0, False, "timeout"),  # authenticated: the relay did not take it
        (True, False, 0, False, "unconfirmed"),  # nothing authenticated: unknown, say that
        # our counter file was restored from an old copy: the relay (at 100) refused our 1
        # and its NACK was lost; its counter being past ours proves nothing about this command
        (True, True, 100, False, "timeout"),
    ],
)
def test_a_lost_ack_is_settled_by_an_authenticated_status(
    tmp_path: Path, accept: bool, answer_status: bool, relay_ahead: int, ok: bool, reason: str
) -> None:
    """No answer after the UNLOCK: the gateway asks for a MAC'd STATUS and reports what the
    door did (opened / did not open / unknown) instead of a plain timeout."""
    relay = _ScriptedRelay(_key(), _ack_losing_relay(accept, answer_status, relay_ahead))
    try:
        client = make_client(relay.port, relay._key, tmp_path / "counter", timeout_s=0.3)
        outcome = client.unlock(200)
        assert (outcome.ok, outcome.reason) == (ok, reason)
        assert outcome.counter == 1
        assert client._counter.value >= relay_ahead  # behind: moved past the relay's counter
        client.channel.close()
    finally:
        relay.close()
