"""Relay protocol v1 pure core: known-answer vectors, framing, relay logic with a fake clock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_gate.door.codec import (
    Answer,
    Challenge,
    Decoded,
    Hello,
    Message,
    MsgType,
    Result,
    Status,
    StatusRequest,
    Unlock,
    body_length,
    decode_frame,
    encode,
    encode_body,
    from_unframed,
)
from edge_gate.door.counter import CounterStore
from edge_gate.door.framing import (
    MAX_ENCODED_BYTES,
    FrameStatus,
    StreamDecoder,
    cobs_decode,
    cobs_encode,
    crc32,
)
from edge_gate.door.keys import create_relay_key, load_relay_key, parse_key
from edge_gate.door.relay_core import EventKind, RelayCore, RelayInputs, RelayPolicy
from edge_gate.errors import RelayError, SecretFileError

VECTORS = Path(__file__).parent / "vectors" / "relay" / "vectors.json"
MAKE_VECTORS = VECTORS.with_name("make_vectors.py")
SPEC = Path(__file__).resolve().parent.parent / "deploy" / "relay-protocol.md"
KEY = bytes(range(32))


def _vectors() -> dict[str, object]:
    data: dict[str, object] = json.loads(VECTORS.read_text())
    return data


def _message_from_fields(msg_type: int, f: dict[str, object]) -> Message:
    def b(name: str) -> bytes:
        return bytes.fromhex(str(f[name]))

    def i(name: str) -> int:
        value = f[name]
        assert isinstance(value, int)
        return value

    t = MsgType(msg_type)
    if t is MsgType.HELLO:
        return Hello(b("gw_nonce"))
    if t is MsgType.CHALLENGE:
        return Challenge(b("gw_nonce"), b("relay_nonce"), i("ttl_ms"), i("relay_counter"))
    if t is MsgType.UNLOCK:
        return Unlock(b("relay_nonce"), i("counter"), i("pulse_ms"))
    if t in (MsgType.ACK, MsgType.NACK):
        return Answer(
            t is MsgType.ACK,
            b("relay_nonce"),
            i("counter"),
            i("code"),
            i("pulse_ms"),
            i("relay_counter"),
        )
    if t is MsgType.STATUS_REQ:
        return StatusRequest(b("gw_nonce"))
    return Status(
        b("gw_nonce"),
        bool(f["door_open"]),
        bool(f["tamper"]),
        bool(f["energised"]),
        i("relay_counter"),
    )


def _positive() -> list[dict[str, object]]:
    v = _vectors()["vectors"]
    assert isinstance(v, list)
    return v


def _negative() -> list[dict[str, object]]:
    v = _vectors()["negative"]
    assert isinstance(v, list)
    return v


@pytest.mark.parametrize("vector", _positive(), ids=lambda v: str(v["name"]))
def test_vectors_encode(vector: dict[str, object]) -> None:
    """Encoding each vector's fields with the spec key gives exactly the published bytes."""
    fields = vector["fields"]
    assert isinstance(fields, dict)
    msg = _message_from_fields(int(str(vector["type"])), fields)
    assert encode_body(msg, KEY).hex() == vector["body_hex"]
    assert encode(msg, KEY).hex() == vector["wire_hex"]


@pytest.mark.parametrize("vector", _positive(), ids=lambda v: str(v["name"]))
def test_vectors_decode(vector: dict[str, object]) -> None:
    """Decoding each published frame gives OK and exactly the vector's fields."""
    fields = vector["fields"]
    assert isinstance(fields, dict)
    decoded = decode_frame(bytes.fromhex(str(vector["wire_hex"])), KEY)
    assert decoded.result is Result.OK
    assert decoded.message == _message_from_fields(int(str(vector["type"])), fields)


@pytest.mark.parametrize("vector", _negative(), ids=lambda v: str(v["name"]))
def test_negative_vectors(vector: dict[str, object]) -> None:
    """Each damaged published frame is refused with the outcome the spec names."""
    decoded = decode_frame(bytes.fromhex(str(vector["wire_hex"])), KEY)
    assert decoded.result.value == vector["expect"]
    assert decoded.message is None


def test_committed_vectors_are_what_the_generator_makes(tmp_path: Path) -> None:
    """Running make_vectors.py (isolated: stdlib only, outside the repository) into a temp file
    gives exactly the committed vectors.json, so the generator, the file and (via the next test)
    the spec cannot drift apart."""
    out = tmp_path / "vectors.json"
    with out.open("wb") as f:
        subprocess.run(
            [sys.executable, "-I", str(MAKE_VECTORS)],
            cwd=tmp_path,
            stdout=f,
            check=True,
            timeout=60,
        )
    assert out.read_bytes() == VECTORS.read_bytes()


def test_spec_document_contains_vectors() -> None:
    """deploy/relay-protocol.md publishes the same vectors as the JSON file."""
    text = SPEC.read_text()
    for v in _positive() + _negative():
        assert str(v["wire_hex"]) in text, v["name"]
    for v in _positive():
        assert f"body {v['body_hex']}" in text, v["name"]
    for t in MsgType:
        row = next(line for line in text.splitlines() if line.startswith(f"| 0x{t.value:02x} "))
        assert t.name in row
        assert row.rstrip(" |").endswith(str(body_length(t)))


def test_crc32_check_value() -> None:
    """The CRC is CRC-32/ISO-HDLC: the catalogue check value for "123456789"."""
    assert crc32(b"123456789") == 0xCBF43926


@given(st.binary(max_size=253))
def test_cobs_roundtrip(data: bytes) -> None:
    """COBS output has no zero byte and decodes back to the input."""
    enc = cobs_encode(data)
    assert 0 not in enc
    assert cobs_decode(enc) == data


@given(st.binary(max_size=MAX_ENCODED_BYTES))
def test_cobs_decode_is_canonical(data: bytes) -> None:
    """Any chunk that decodes re-encodes to itself: one wire form per body (no malleability)."""
    out = cobs_decode(data)
    if out is not None:
        assert cobs_encode(out) == data


def _unlock_wire() -> bytes:
    return encode(Unlock(bytes(range(16)), 7, 500), KEY)


def test_every_single_bit_flip_of_unlock_frame_rejected() -> None:
    """Flipping any one bit of a framed UNLOCK never yields an OK message (codec level)."""
    wire = _unlock_wire()
    for bit in range(len(wire) * 8):
        damaged = bytearray(wire)
        damaged[bit // 8] ^= 1 << (bit % 8)
        decoder = StreamDecoder()
        outcomes = [from_unframed(u, KEY) for u in decoder.feed(bytes(damaged) + b"\x00")]
        assert all(o.result is not Result.OK for o in outcomes), bit


def test_wrong_key_is_bad_mac() -> None:
    """A frame signed with another key parses as BAD_MAC, fields only as untrusted."""
    decoded = decode_frame(encode(Unlock(bytes(16), 1, 100), bytes(32)), KEY)
    assert decoded.result is Result.BAD_MAC
    assert decoded.message is None
    assert isinstance(decoded.unverified, Unlock)


def test_stream_decoder_resyncs_after_garbage_and_truncation() -> None:
    """Garbage, a truncated frame and an over-long run are dropped; later frames decode."""
    good = _unlock_wire()
    noise = bytes(range(1, 256)) * 2  # 510 non-zero bytes: overflows the buffer once
    stream = noise + good[: len(good) // 2] + b"\xff\x13" + good + b"\x00\x00" + good
    decoder = StreamDecoder()
    results = [from_unframed(u, KEY) for u in decoder.feed(stream)]
    oks = [r for r in results if r.result is Result.OK]
    assert len(oks) == 2
    assert any(r.result is Result.BAD_FRAME for r in results)
    assert decoder.pending_bytes == 0


def test_stream_decoder_need_more_byte_by_byte() -> None:
    """A frame fed one byte at a time yields nothing until its closing delimiter."""
    wire = _unlock_wire()
    decoder = StreamDecoder()
    for byte in wire[:-1]:
        assert decoder.feed(bytes([byte])) == []
    assert decoder.pending_bytes > 0
    assert decode_frame(b"", KEY).result is Result.NEED_MORE
    (last,) = decoder.feed(wire[-1:])
    assert last.status is FrameStatus.OK


class _Nonces:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, size: int) -> bytes:
        self.n += 1
        return self.n.to_bytes(size, "big")


def _core(highest: int = 0, ttl_ms: int = 2000, max_pulse_ms: int = 3000) -> RelayCore:
    return RelayCore(
        KEY,
        highest_counter=highest,
        policy=RelayPolicy(max_pulse_ms=max_pulse_ms, nonce_ttl_ms=ttl_ms),
        nonce_source=_Nonces(),
    )


def _feed(core: RelayCore, msg: Message, now_s: float, key: bytes = KEY) -> tuple[str, Decoded]:
    action = core.handle(decode_frame(encode(msg, key), KEY), now_s, RelayInputs())
    reply = (
        decode_frame(action.reply, KEY) if action.reply is not None else Decoded(Result.NEED_MORE)
    )
    if action.grant is not None:
        core.commit(action.grant)
        reply = decode_frame(action.grant.ack, KEY)
    assert action.event is not None
    return (action.reason or action.event.value), reply


def _challenge(core: RelayCore, now_s: float) -> Challenge:
    _, reply = _feed(core, Hello(b"g" * 16), now_s)
    assert isinstance(reply.message, Challenge)
    return reply.message


def test_core_happy_path_clamps_pulse() -> None:
    """Valid UNLOCK → ACK MAC'd over nonce and counter, pulse clamped to the relay's maximum."""
    core = _core(max_pulse_ms=3000)
    ch = _challenge(core, 10.0)
    assert ch.gw_nonce == b"g" * 16
    assert ch.ttl_ms == 2000
    what, reply = _feed(core, Unlock(ch.relay_nonce, 1, 9000), 10.5)
    assert what == "unlocked"
    assert reply.message == Answer(True, ch.relay_nonce, 1, 0, 3000, 1)
    assert core.highest_counter == 1


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("replay_same_nonce", "replay"),
        ("no_challenge", "replay"),
        ("expired", "expired"),
        ("counter_equal", "counter"),
        ("zero_pulse", "bad_pulse"),
        ("wrong_key", "bad_mac"),
        ("superseded_nonce", "replay"),
    ],
)
def test_core_rejections(scenario: str, expected: str) -> None:
    """Each refusal rule of the spec yields its NACK code, and nothing is unlocked."""
    core = _core(highest=5)
    if scenario == "no_challenge":
        what, reply = _feed(core, Unlock(bytes(16), 9, 100), 1.0)
    else:
        ch = _challenge(core, 1.0)
        now = 1.1
        counter, pulse, key = 6, 100, KEY
        nonce = ch.relay_nonce
        if scenario == "replay_same_nonce":
            assert _feed(core, Unlock(nonce, 6, 100), now)[0] == "unlocked"
            counter = 7
        elif scenario == "expired":
            now = 1.0 + 2.001
        elif scenario == "counter_equal":
            counter = 5
        elif scenario == "zero_pulse":
            pulse = 0
        elif scenario == "wrong_key":
            key = bytes(32)
        elif scenario == "superseded_nonce":
            _challenge(core, 1.05)
        what, reply = _feed(core, Unlock(nonce, counter, pulse), now, key)
    assert what == expected
    assert isinstance(reply.message, Answer)
    assert not reply.message.is_ack
    assert reply.message.code != 0
    assert core.highest_counter == (6 if scenario == "replay_same_nonce" else 5)


def test_core_nonce_single_use_even_after_failure() -> None:
    """A failed UNLOCK uses the challenge up: a correct retry on the same nonce is refused."""
    core = _core()
    ch = _challenge(core, 0.0)
    assert _feed(core, Unlock(ch.relay_nonce, 1, 100), 0.1, bytes(32))[0] == "bad_mac"
    assert _feed(core, Unlock(ch.relay_nonce, 1, 100), 0.2)[0] == "replay"


def test_core_status_reports_inputs() -> None:
    """STATUS echoes the request nonce and reports door, tamper and relay state under MAC."""
    core = _core(highest=3)
    action = core.handle(
        decode_frame(encode(StatusRequest(b"s" * 16)), KEY),
        0.0,
        RelayInputs(door_open=True, tamper=True, energised=False),
    )
    assert action.event is EventKind.STATUS
    assert action.reply is not None
    assert decode_frame(action.reply, KEY).message == Status(b"s" * 16, True, True, False, 3)


def test_relay_policy_bounds() -> None:
    """A nonce lifetime above 2 s is refused by construction."""
    with pytest.raises(ValueError, match="nonce_ttl_ms"):
        RelayPolicy(nonce_ttl_ms=2001)


def test_key_formats(tmp_path: Path) -> None:
    """Keys load as 32 raw bytes or 64 hex + newline; other sizes and loose modes are refused."""
    raw = os.urandom(32)
    assert parse_key(raw) == raw
    assert parse_key(raw.hex().encode() + b"\n") == raw
    with pytest.raises(SecretFileError):
        parse_key(b"x" * 33)
    with pytest.raises(SecretFileError):
        parse_key(b"z" * 64)
    path = tmp_path / "relay.key"
    key = create_relay_key(path, hex_format=True)
    assert (path.stat().st_mode & 0o777) == 0o600
    assert load_relay_key(path) == key
    with pytest.raises(SecretFileError):
        create_relay_key(path)
    path.chmod(0o644)
    with pytest.raises(SecretFileError, match="too open"):
        load_relay_key(path)


def test_counter_store_persists_and_refuses_corruption(tmp_path: Path) -> None:
    """The counter survives a restart, never goes backwards, and a corrupt file fails closed."""
    path = tmp_path / "relay.counter"
    store = CounterStore(path)
    assert [store.reserve(), store.reserve()] == [1, 2]
    assert (path.stat().st_mode & 0o777) == 0o600
    again = CounterStore(path)
    assert again.reserve() == 3
    again.advance_to(2)
    assert again.value == 3
    again.advance_to(10)
    assert CounterStore(path).value == 10
    path.write_text("garbage\n")
    with pytest.raises(RelayError, match="malformed"):
        CounterStore(path)
