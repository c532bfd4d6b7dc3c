"""Hypothesis fuzz of the relay decoder: 10^5 mutated frames here, 10^6 under ``-m slow``.

Each hypothesis example draws a seed and a mix of mutation operators, then derives a batch of
frames from genuinely signed ones (bit flips, byte edits, splices, truncation, CRC repaired
after the edit so the MAC check is reached, wrong-key MACs, random bodies of the right shape).
The property: the decoder never raises, and nothing it accepts as authenticated differs from a
message the key holder signed — zero accepted forgeries — and the relay logic grants nothing
that was not signed for its outstanding nonce.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_gate.door.codec import (
    Answer,
    Challenge,
    Hello,
    Message,
    MsgType,
    Status,
    StatusRequest,
    Unlock,
    body_length,
    encode_body,
    from_unframed,
)
from edge_gate.door.framing import StreamDecoder, Unframed, encode_frame, unframe
from edge_gate.door.relay_core import RelayCore, RelayInputs, RelayPolicy

FRAMES_PER_EXAMPLE = 100
KEY = bytes(range(100, 132))
OTHER_KEY = bytes(range(32))
AUTHENTICATED = {MsgType.CHALLENGE, MsgType.UNLOCK, MsgType.ACK, MsgType.NACK, MsgType.STATUS}
RELAY_NONCE = b"\xab" * 16


def _random_message(rng: random.Random) -> Message:
    n16 = rng.randbytes(16)
    counter = rng.randrange(1, 2**64)
    kind = rng.randrange(7)
    if kind == 0:
        return Hello(n16)
    if kind == 1:
        return Challenge(n16, rng.randbytes(16), rng.randrange(1, 2001), counter)
    if kind == 2:
        return Unlock(RELAY_NONCE if rng.random() < 0.7 else n16, counter, rng.randrange(1, 5000))
    if kind == 3:
        return Answer(rng.random() < 0.5, n16, counter, rng.randrange(7), 100, counter)
    if kind == 4:
        return StatusRequest(n16)
    return Status(n16, rng.random() < 0.5, rng.random() < 0.5, rng.random() < 0.5, counter)


def _reframe(body: bytes) -> bytes:
    """Frame with a correct CRC (so the damage is only caught by length, type or MAC)."""
    return encode_frame(body[:128])


def _flip_bits(rng: random.Random, wire: bytes, body: bytes, other: bytes) -> bytes:
    out = bytearray(wire)
    for _ in range(rng.randrange(1, 4)):
        i = rng.randrange(len(out) * 8)
        out[i // 8] ^= 1 << (i % 8)
    return bytes(out)


def _flip_body_bits_recrc(rng: random.Random, wire: bytes, body: bytes, other: bytes) -> bytes:
    out = bytearray(body)
    for _ in range(rng.randrange(1, 4)):
        i = rng.randrange(len(out) * 8)
        out[i // 8] ^= 1 << (i % 8)
    return _reframe(bytes(out))


def _replace_bytes(rng: random.Random, wire: bytes, body: bytes, other: bytes) -> bytes:
    out = bytearray(body)
    for _ in range(rng.randrange(1, 6)):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return _reframe(bytes(out))


def _insert_delete(rng: random.Random, wire: bytes, body: bytes, other: bytes) -> bytes:
    out = bytearray(body)
    i = rng.randrange(len(out))
    if rng.random() < 0.5:
        out.insert(i, rng.randrange(256))
    else:
        del out[i]
    return _reframe(bytes(out)) if rng.random() < 0.5 else encode_frame(bytes(out))


def _truncate(rng: random.Random, wire: bytes, body: bytes, other: bytes) -> bytes:
    cut = rng.randrange(1, len(wire))
    return wire[:cut] if rng.random() < 0.5 else _reframe(body[:cut])


def _wrong_key_mac(rng: random.Random, wire: bytes, body: bytes, other: bytes) -> bytes:
    if len(body) > 34:
        signed = body[:-32]
        return _reframe(signed + hmac.new(OTHER_KEY, signed, hashlib.sha256).digest())
    return _reframe(body + rng.randbytes(32))


def _random_shaped_body(rng: random.Random, wire: bytes, body: bytes, other: bytes) -> bytes:
    msg_type = rng.choice(list(MsgType))
    size = body_length(msg_type)
    return _reframe(bytes([1, msg_type]) + rng.randbytes(size - 2))


def _retype(rng: random.Random, wire: bytes, body: bytes, other: bytes) -> bytes:
    """Same bytes under another type/version byte (MAC no longer covers what it claims)."""
    out = bytearray(body)
    out[rng.randrange(2)] = rng.randrange(256)
    return _reframe(bytes(out))


def _random_bytes(rng: random.Random, wire: bytes, body: bytes, other: bytes) -> bytes:
    return bytes([0]) + rng.randbytes(rng.randrange(0, 200)) + bytes([0])


def _splice(rng: random.Random, wire: bytes, body: bytes, other: bytes) -> bytes:
    cut = rng.randrange(1, min(len(body), len(other)))
    return _reframe(body[:cut] + other[cut:])


def _mac_tail_swap(rng: random.Random, wire: bytes, body: bytes, other: bytes) -> bytes:
    """Keep fields, take the MAC of a different genuine message of the same type."""
    if len(body) <= 34 or len(other) != len(body):
        return _reframe(body[:-32] + rng.randbytes(32)) if len(body) > 34 else wire
    return _reframe(body[:-32] + other[-32:])


Mutation = Callable[[random.Random, bytes, bytes, bytes], bytes]
MUTATIONS: list[Mutation] = [
    _flip_bits,
    _flip_body_bits_recrc,
    _replace_bytes,
    _insert_delete,
    _truncate,
    _wrong_key_mac,
    _random_shaped_body,
    _retype,
    _random_bytes,
    _splice,
    _mac_tail_swap,
]


_IN = RelayInputs()
_HELLO = encode_frame(encode_body(Hello(b"h" * 16)))


def _hello() -> Unframed:
    return unframe(_HELLO.strip(b"\x00"))


def _check_batch(seed: int, ops: list[int], signed: set[bytes], seen: Counter[str]) -> int:
    rng = random.Random(seed)
    core = RelayCore(
        KEY,
        highest_counter=0,
        policy=RelayPolicy(),
        nonce_source=lambda n: RELAY_NONCE,
    )
    core.handle(from_unframed(_hello(), KEY), 0, _IN)  # RELAY_NONCE is outstanding
    for _ in range(FRAMES_PER_EXAMPLE):
        body = encode_body(_random_message(rng), KEY)
        other = encode_body(_random_message(rng), KEY)
        signed.update((body, other))
        frame = MUTATIONS[rng.choice(ops)](rng, encode_frame(body), body, other)
        for unframed in StreamDecoder().feed(frame + b"\x00"):
            decoded = from_unframed(unframed, KEY)
            seen[decoded.result.value] += 1
            msg = decoded.message
            if msg is None:
                continue
            accepted = encode_body(msg, KEY)
            if decoded.msg_type in AUTHENTICATED:
                assert accepted in signed, f"forgery accepted: {accepted.hex()}"
            action = core.handle(decoded, 0.5, _IN)
            if action.grant is not None:
                assert accepted in signed
                core.commit(action.grant)
                core.handle(from_unframed(_hello(), KEY), 0.5, _IN)
    return FRAMES_PER_EXAMPLE


def _run(examples: int) -> tuple[int, Counter[str]]:
    total = [0]
    signed: set[bytes] = set()
    seen: Counter[str] = Counter()

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        seed=st.integers(0, 2**63),
        ops=st.lists(st.integers(0, len(MUTATIONS) - 1), min_size=1, max_size=len(MUTATIONS)),
    )
    def fuzz(seed: int, ops: list[int]) -> None:
        total[0] += _check_batch(seed, ops, signed, seen)

    fuzz()
    return total[0], seen


@pytest.mark.timeout(120)
def test_fuzz_decoder_1e5_frames_zero_forgeries() -> None:
    """10^5 mutated frames: the decoder never raises and accepts no forged authenticated frame."""
    frames, seen = _run(1000)
    assert frames >= 100_000
    # the mutations reach every check, the MAC check included
    for outcome in ("ok", "bad_crc", "bad_frame", "bad_mac", "bad_length", "bad_type"):
        assert seen[outcome] > 100, (outcome, seen)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_fuzz_decoder_1e6_frames_zero_forgeries() -> None:
    """10^6 mutated frames (slow suite): zero accepted forgeries."""
    frames, seen = _run(10_000)
    assert frames >= 1_000_000
    assert seen["bad_mac"] > 1000
