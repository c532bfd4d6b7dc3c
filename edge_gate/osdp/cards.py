"""Card credentials and their wire format (pure core): Wiegand 26-bit H10301, keyed hashes.

A Wiegand-26 frame is ``P_even | facility (8 bits) | number (16 bits) | P_odd``: the first bit
makes bits 1..13 even, the last makes bits 14..26 odd. OSDP carries it as raw bits, most
significant first, padded with zero bits to whole bytes (``osdp_RAW``, format "wiegand").

A card number is a credential: it never goes to a log or an event as such; :func:`card_hash`
gives the keyed HMAC that may.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from dataclasses import dataclass

__layer__ = "core"

WIEGAND26_BITS = 26
MAX_FACILITY = 0xFF
MAX_NUMBER = 0xFFFF


class CardFormat(enum.StrEnum):
    WIEGAND26 = "wiegand26"


@dataclass(frozen=True, slots=True)
class CardCredential:
    """A card as an access-control system names it: format, facility code, card number."""

    format: CardFormat
    facility: int
    number: int

    def __post_init__(self) -> None:
        if not 0 <= self.facility <= MAX_FACILITY:
            raise ValueError(f"facility code must be 0..{MAX_FACILITY}")
        if not 0 <= self.number <= MAX_NUMBER:
            raise ValueError(f"card number must be 0..{MAX_NUMBER}")

    def __repr__(self) -> str:  # a credential: never in a traceback or a log line by accident
        return f"CardCredential({self.format.value}, <redacted>)"

    def key(self) -> str:
        """A stable text form for keyed hashing and record storage (never logged)."""
        return f"{self.format.value}:{self.facility}:{self.number}"


@dataclass(frozen=True, slots=True)
class RawCard:
    """Bits as a reader sent them (``bits`` significant bits of ``data``, MSB first)."""

    bits: int
    data: bytes

    def __repr__(self) -> str:
        return f"RawCard({self.bits} bits, <redacted>)"


def _parity_even(value: int) -> int:
    return bin(value).count("1") % 2


def encode_wiegand26(card: CardCredential) -> RawCard:
    """The 26 bits of ``card`` (H10301) with both parity bits, padded to 4 bytes."""
    payload = (card.facility << 16) | card.number  # 24 bits
    high12, low12 = payload >> 12, payload & 0xFFF
    p_even = _parity_even(high12)  # makes bits 1..13 even
    p_odd = 1 - _parity_even(low12)  # makes bits 14..26 odd
    frame = (p_even << 25) | (payload << 1) | p_odd
    padded = frame << (32 - WIEGAND26_BITS)
    return RawCard(WIEGAND26_BITS, padded.to_bytes(4, "big"))


def decode_wiegand26(raw: RawCard) -> CardCredential | None:
    """The credential in ``raw``; None when it is not 26 bits or a parity bit is wrong."""
    if raw.bits != WIEGAND26_BITS or len(raw.data) * 8 < WIEGAND26_BITS:
        return None
    value = int.from_bytes(raw.data, "big") >> (len(raw.data) * 8 - WIEGAND26_BITS)
    payload = (value >> 1) & 0xFFFFFF
    p_even, p_odd = value >> 25, value & 1
    if p_even != _parity_even(payload >> 12) or p_odd != 1 - _parity_even(payload & 0xFFF):
        return None
    return CardCredential(CardFormat.WIEGAND26, payload >> 16, payload & 0xFFFF)


def encode_card(card: CardCredential) -> RawCard:
    match card.format:
        case CardFormat.WIEGAND26:
            return encode_wiegand26(card)


def card_hash(key: bytes, card: CardCredential) -> str:
    """A keyed, non-reversible name of ``card`` for events (HMAC-SHA256, 16 hex chars)."""
    return hmac.new(key, card.key().encode(), hashlib.sha256).hexdigest()[:16]


def cards_equal(a: CardCredential, b: CardCredential) -> bool:
    """Constant-time comparison of two credentials."""
    return hmac.compare_digest(a.key().encode(), b.key().encode())
