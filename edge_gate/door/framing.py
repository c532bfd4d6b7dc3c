"""Wire framing: COBS-encoded body + CRC-32, delimited by 0x00 bytes, with resynchronisation.

A frame on the wire is ``0x00 COBS(body || crc32_be(body)) 0x00``. COBS removes every zero from
the encoded bytes, so a 0x00 always marks a frame boundary: after line noise the receiver drops
whatever it has and starts afresh at the next zero. The leading zero flushes any garbage the
receiver may hold; empty chunks between two zeros are ignored.
"""

from __future__ import annotations

import binascii
import enum
import struct
from dataclasses import dataclass

__layer__ = "core"

DELIMITER = 0x00
CRC_BYTES = 4
MAX_BODY_BYTES = 128
# COBS adds at most one byte per 254 plus one; the CRC travels inside the encoded part.
MAX_ENCODED_BYTES = MAX_BODY_BYTES + CRC_BYTES + (MAX_BODY_BYTES + CRC_BYTES) // 254 + 1


class FrameStatus(enum.Enum):
    """Outcome of un-framing one chunk (the bytes between two delimiters)."""

    OK = "ok"
    BAD_FRAME = "bad_frame"  # invalid COBS, too short or too long
    BAD_CRC = "bad_crc"


def crc32(data: bytes) -> int:
    """CRC-32/ISO-HDLC (zlib/Ethernet: poly 0x04C11DB7 reflected, init = xorout = 0xFFFFFFFF)."""
    return binascii.crc32(data) & 0xFFFFFFFF


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: the output holds no zero byte."""
    out = bytearray()
    block = bytearray()
    for byte in data:
        if byte == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
        else:
            block.append(byte)
            if len(block) == 254:
                out.append(255)
                out += block
                block.clear()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes | None:
    """Inverse of :func:`cobs_encode`; ``None`` when ``data`` is not valid COBS.

    Code 0xFF (a 254-byte run without zero) is refused: bodies are far shorter, and refusing
    it makes the decoding one-to-one (exactly one wire form per body).
    """
    if not data:
        return None
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        end = i + code
        if code == 0 or code == 0xFF or end > n:
            return None
        block = data[i + 1 : end]
        if 0 in block:
            return None
        out += block
        i = end
        if i < n:
            out.append(0)
    return bytes(out)


def encode_frame(body: bytes) -> bytes:
    """Wire bytes for one message body: delimiter, COBS(body + CRC), delimiter."""
    if len(body) > MAX_BODY_BYTES:
        raise ValueError(f"body of {len(body)} bytes exceeds {MAX_BODY_BYTES}")
    payload = body + struct.pack(">I", crc32(body))
    return bytes([DELIMITER]) + cobs_encode(payload) + bytes([DELIMITER])


@dataclass(frozen=True)
class Unframed:
    """One chunk after un-framing: ``body`` is set only when ``status`` is OK."""

    status: FrameStatus
    body: bytes = b""


def unframe(chunk: bytes) -> Unframed:
    """Decode the bytes between two delimiters; never raises."""
    if not chunk or len(chunk) > MAX_ENCODED_BYTES:
        return Unframed(FrameStatus.BAD_FRAME)
    payload = cobs_decode(chunk)
    if payload is None or len(payload) <= CRC_BYTES:
        return Unframed(FrameStatus.BAD_FRAME)
    body, crc_bytes = payload[:-CRC_BYTES], payload[-CRC_BYTES:]
    if struct.unpack(">I", crc_bytes)[0] != crc32(body):
        return Unframed(FrameStatus.BAD_CRC)
    return Unframed(FrameStatus.OK, body)


class StreamDecoder:
    """Cuts a byte stream into chunks at 0x00 and un-frames them.

    Never holds more than :data:`MAX_ENCODED_BYTES`: an over-long run is reported once as
    BAD_FRAME and skipped up to the next delimiter (resynchronisation after noise).
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._overflow = False

    def reset(self) -> None:
        """Forget any partial frame (e.g. before a new request, after a reconnect)."""
        self._buf.clear()
        self._overflow = False

    @property
    def pending_bytes(self) -> int:
        """Bytes held for a frame not yet terminated (NEED_MORE)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Unframed]:
        """Add received bytes; return every complete chunk's outcome, in order."""
        results: list[Unframed] = []
        for byte in data:
            if byte == DELIMITER:
                if self._overflow:
                    self._overflow = False
                elif self._buf:
                    results.append(unframe(bytes(self._buf)))
                self._buf.clear()
            elif self._overflow:
                continue
            elif len(self._buf) >= MAX_ENCODED_BYTES:
                self._buf.clear()
                self._overflow = True
                results.append(Unframed(FrameStatus.BAD_FRAME))
            else:
                self._buf.append(byte)
        return results
