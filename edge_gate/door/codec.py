"""Relay protocol v1 messages: build, parse and authenticate (spec: deploy/relay-protocol.md).

Every body starts with ``version (u8) | type (u8)``; integers are big-endian; authenticated
messages end with ``HMAC-SHA256(key, every preceding body byte)`` (32 bytes). Parsing returns a
:class:`Decoded` value — never raises — whose ``result`` names what went wrong.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import struct
from dataclasses import dataclass

from edge_gate.door.framing import FrameStatus, Unframed, encode_frame, unframe

__layer__ = "core"

PROTOCOL_VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 16
MAC_BYTES = 32
MAX_NONCE_TTL_MS = 2000
MAX_COUNTER = 2**64 - 1
MAX_PULSE_MS = 0xFFFF


class MsgType(enum.IntEnum):
    HELLO = 0x01  # gateway -> relay: please issue a challenge
    CHALLENGE = 0x02  # relay -> gateway: single-use nonce (MAC'd)
    UNLOCK = 0x03  # gateway -> relay: signed pulse command
    ACK = 0x04  # relay -> gateway: unlocked (MAC'd)
    NACK = 0x05  # relay -> gateway: refused, with a code (MAC'd)
    STATUS_REQ = 0x06  # gateway -> relay: report inputs
    STATUS = 0x07  # relay -> gateway: door sensor, tamper, relay state (MAC'd)


class NackCode(enum.IntEnum):
    OK = 0x00  # only in ACK
    BAD_MAC = 0x01
    REPLAY = 0x02  # nonce unknown or already used
    EXPIRED = 0x03  # nonce older than its ttl
    COUNTER = 0x04  # counter not above the highest accepted
    BAD_PULSE = 0x05  # pulse_ms == 0
    INTERNAL = 0x06  # relay could not persist its counter


class Result(enum.Enum):
    """Parse / verification outcome. Only OK carries a message."""

    OK = "ok"
    NEED_MORE = "need_more"
    BAD_FRAME = "bad_frame"
    BAD_CRC = "bad_crc"
    BAD_VERSION = "bad_version"
    BAD_TYPE = "bad_type"
    BAD_LENGTH = "bad_length"
    BAD_MAC = "bad_mac"
    REPLAY = "replay"
    EXPIRED = "expired"
    COUNTER = "counter"
    BAD_PULSE = "bad_pulse"


@dataclass(frozen=True)
class Hello:
    gw_nonce: bytes


@dataclass(frozen=True)
class Challenge:
    gw_nonce: bytes
    relay_nonce: bytes
    ttl_ms: int
    relay_counter: int  # highest counter the relay has accepted


@dataclass(frozen=True)
class Unlock:
    relay_nonce: bytes
    counter: int
    pulse_ms: int


@dataclass(frozen=True)
class Answer:
    """ACK (code OK) or NACK: both MAC'd over nonce, counter and result."""

    is_ack: bool
    relay_nonce: bytes
    counter: int
    code: int
    pulse_ms: int  # applied pulse (ACK), 0 for NACK
    relay_counter: int


@dataclass(frozen=True)
class StatusRequest:
    gw_nonce: bytes


@dataclass(frozen=True)
class Status:
    gw_nonce: bytes
    door_open: bool
    tamper: bool
    energised: bool
    relay_counter: int


Message = Hello | Challenge | Unlock | Answer | StatusRequest | Status

# struct layouts of the fields after "version | type" and before the MAC
_LAYOUT: dict[MsgType, str] = {
    MsgType.HELLO: ">16s",
    MsgType.CHALLENGE: ">16s16sHQ",
    MsgType.UNLOCK: ">16sQH",
    MsgType.ACK: ">16sQBHQ",
    MsgType.NACK: ">16sQBHQ",
    MsgType.STATUS_REQ: ">16s",
    MsgType.STATUS: ">16sBQ",
}
_MACED = frozenset({MsgType.CHALLENGE, MsgType.UNLOCK, MsgType.ACK, MsgType.NACK, MsgType.STATUS})
_HEADER = struct.Struct(">BB")
_FLAG_DOOR_OPEN = 0x01
_FLAG_TAMPER = 0x02
_FLAG_ENERGISED = 0x04


def body_length(msg_type: MsgType) -> int:
    """Exact body length (header, fields and MAC; without CRC) of a message type."""
    mac = MAC_BYTES if msg_type in _MACED else 0
    return _HEADER.size + struct.calcsize(_LAYOUT[msg_type]) + mac


def compute_mac(key: bytes, signed_part: bytes) -> bytes:
    """HMAC-SHA256 over the body bytes that precede the MAC (version and type included)."""
    return hmac.new(key, signed_part, hashlib.sha256).digest()


def _fields(msg: Message) -> tuple[MsgType, tuple[bytes | int, ...]]:
    if isinstance(msg, Hello):
        return MsgType.HELLO, (msg.gw_nonce,)
    if isinstance(msg, Challenge):
        return MsgType.CHALLENGE, (msg.gw_nonce, msg.relay_nonce, msg.ttl_ms, msg.relay_counter)
    if isinstance(msg, Unlock):
        return MsgType.UNLOCK, (msg.relay_nonce, msg.counter, msg.pulse_ms)
    if isinstance(msg, Answer):
        msg_type = MsgType.ACK if msg.is_ack else MsgType.NACK
        return msg_type, (msg.relay_nonce, msg.counter, msg.code, msg.pulse_ms, msg.relay_counter)
    if isinstance(msg, StatusRequest):
        return MsgType.STATUS_REQ, (msg.gw_nonce,)
    flags = (
        (_FLAG_DOOR_OPEN if msg.door_open else 0)
        | (_FLAG_TAMPER if msg.tamper else 0)
        | (_FLAG_ENERGISED if msg.energised else 0)
    )
    return MsgType.STATUS, (msg.gw_nonce, flags, msg.relay_counter)


def encode_body(msg: Message, key: bytes | None = None) -> bytes:
    """Body bytes of ``msg`` (MAC appended for authenticated types; ``key`` required then)."""
    msg_type, fields = _fields(msg)
    for f in fields:
        if isinstance(f, bytes) and len(f) != NONCE_BYTES:
            raise ValueError("nonces are 16 bytes")
    try:
        packed = struct.pack(_LAYOUT[msg_type], *fields)
    except struct.error as e:
        raise ValueError(f"{msg_type.name}: field out of range: {e}") from e
    signed = _HEADER.pack(PROTOCOL_VERSION, msg_type) + packed
    if msg_type not in _MACED:
        return signed
    if key is None or len(key) != KEY_BYTES:
        raise ValueError("a 32-byte key is required for authenticated messages")
    return signed + compute_mac(key, signed)


def encode(msg: Message, key: bytes | None = None) -> bytes:
    """Wire bytes of ``msg``: framed body (see :mod:`edge_gate.door.framing`)."""
    return encode_frame(encode_body(msg, key))


@dataclass(frozen=True)
class Decoded:
    """A parse outcome. ``message`` is set only when ``result`` is OK."""

    result: Result
    message: Message | None = None
    msg_type: int | None = None
    # fields of a well-formed frame whose MAC failed: untrusted, only for echoing in a NACK
    unverified: Message | None = None


def parse_body(body: bytes, key: bytes) -> Decoded:
    """Validate version, type, length and (for authenticated types) the MAC; never raises."""
    if len(body) < _HEADER.size:
        return Decoded(Result.BAD_LENGTH)
    version, raw_type = _HEADER.unpack_from(body)
    if version != PROTOCOL_VERSION:
        return Decoded(Result.BAD_VERSION, msg_type=raw_type)
    try:
        msg_type = MsgType(raw_type)
    except ValueError:
        return Decoded(Result.BAD_TYPE, msg_type=raw_type)
    if len(body) != body_length(msg_type):
        return Decoded(Result.BAD_LENGTH, msg_type=msg_type)
    if msg_type in _MACED:
        signed, mac = body[:-MAC_BYTES], body[-MAC_BYTES:]
        if not hmac.compare_digest(compute_mac(key, signed), mac):
            return Decoded(Result.BAD_MAC, msg_type=msg_type, unverified=_message(msg_type, body))
    return Decoded(Result.OK, _message(msg_type, body), msg_type)


def _message(msg_type: MsgType, body: bytes) -> Message:
    f = struct.unpack_from(_LAYOUT[msg_type], body, _HEADER.size)
    if msg_type is MsgType.HELLO:
        return Hello(f[0])
    if msg_type is MsgType.STATUS_REQ:
        return StatusRequest(f[0])
    if msg_type is MsgType.CHALLENGE:
        return Challenge(f[0], f[1], f[2], f[3])
    if msg_type is MsgType.UNLOCK:
        return Unlock(f[0], f[1], f[2])
    if msg_type in (MsgType.ACK, MsgType.NACK):
        return Answer(msg_type is MsgType.ACK, f[0], f[1], f[2], f[3], f[4])
    flags = f[1]
    return Status(
        f[0],
        bool(flags & _FLAG_DOOR_OPEN),
        bool(flags & _FLAG_TAMPER),
        bool(flags & _FLAG_ENERGISED),
        f[2],
    )


def from_unframed(unframed: Unframed, key: bytes) -> Decoded:
    """Map a framing outcome onto a parse outcome."""
    if unframed.status is FrameStatus.BAD_CRC:
        return Decoded(Result.BAD_CRC)
    if unframed.status is not FrameStatus.OK:
        return Decoded(Result.BAD_FRAME)
    return parse_body(unframed.body, key)


def decode_chunk(chunk: bytes, key: bytes) -> Decoded:
    """Parse the bytes between two delimiters (without the zeros)."""
    return from_unframed(unframe(chunk), key)


def decode_frame(wire: bytes, key: bytes) -> Decoded:
    """Parse exactly one framed message (leading/trailing delimiters optional)."""
    chunk = wire.strip(b"\x00")
    if not chunk:
        return Decoded(Result.NEED_MORE)
    if b"\x00" in chunk:
        return Decoded(Result.BAD_FRAME)
    return decode_chunk(chunk, key)
