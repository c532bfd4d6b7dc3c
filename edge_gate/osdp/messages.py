"""What crosses the OSDP boundary, as typed values (pure core): reader events at the CP,
panel commands at the PD, link states and pulse outcomes. libosdp's dicts are converted in
the adapters (:mod:`~edge_gate.osdp.panel`, :mod:`~edge_gate.osdp.peripheral`) and nowhere else.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import TypeAlias

from edge_gate.osdp.cards import CardCredential, RawCard

__layer__ = "core"

OUTPUT_TIMER_UNIT_MS = 100  # osdp_OUT timer counts in units of 100 ms
MAX_TIMER_COUNT = 0xFFFF
# osdp_OUT control codes (table 19 of the spec)
OUT_PERMANENT_OFF = 1
OUT_PERMANENT_ON = 2
OUT_TEMPORARY_ON = 5  # on for the timer, then back to the permanent state
OUT_TEMPORARY_OFF = 6


@dataclass(frozen=True, slots=True)
class CardRead:
    """A card presented at the reader at ``address`` (``card`` None: not a format we decode)."""

    address: int
    reader_no: int
    raw: RawCard
    card: CardCredential | None


@dataclass(frozen=True, slots=True)
class KeypadEntry:
    """Keys pressed at the reader (a PIN: never logged)."""

    address: int
    reader_no: int
    keys: str

    def __repr__(self) -> str:
        return f"KeypadEntry(address={self.address}, {len(self.keys)} keys)"


@dataclass(frozen=True, slots=True)
class LinkState:
    """The link to one PD: polled and answering (online), and with a Secure Channel."""

    address: int
    online: bool
    secure: bool


ReaderEvent: TypeAlias = CardRead | KeypadEntry | LinkState


class PulseResult(enum.StrEnum):
    ACKED = "acked"  # the PD acknowledged the osdp_OUT: the strike is energised
    NAKED = "naked"  # the PD refused it
    OFFLINE = "offline"  # no link, or no Secure Channel: nothing was sent
    TIMEOUT = "timeout"  # sent, no answer in time (the door may have opened)
    NOT_SENT = "not_sent"  # libosdp did not take the command (queue full, no capability)
    ABORTED = "aborted"  # flushed or the link went down before the answer


@dataclass(frozen=True, slots=True)
class PulseOutcome:
    result: PulseResult
    pulse_ms: int
    latency_ms: float

    @property
    def ok(self) -> bool:
        return self.result is PulseResult.ACKED


def timer_count(pulse_ms: int) -> int:
    """osdp_OUT timer units for a pulse of ``pulse_ms`` (rounded up, at least one unit)."""
    if pulse_ms <= 0:
        raise ValueError("pulse_ms must be positive")
    return min(MAX_TIMER_COUNT, max(1, math.ceil(pulse_ms / OUTPUT_TIMER_UNIT_MS)))


@dataclass(frozen=True, slots=True)
class OutputCommand:
    """osdp_OUT from the panel: set output ``output_no`` (timer in ms, 0 = permanent)."""

    output_no: int
    control_code: int
    timer_ms: int

    @property
    def energise(self) -> bool:
        return self.control_code in (OUT_PERMANENT_ON, OUT_TEMPORARY_ON)


@dataclass(frozen=True, slots=True)
class LedCommand:
    reader_no: int
    led_number: int
    on_color: int
    off_color: int
    temporary: bool


@dataclass(frozen=True, slots=True)
class BuzzerCommand:
    reader_no: int
    on_count: int
    off_count: int
    rep_count: int


@dataclass(frozen=True, slots=True)
class OtherCommand:
    """A command edge-gate does not act on (acknowledged, ignored): text, comset, status…"""

    command: int


PanelCommand: TypeAlias = OutputCommand | LedCommand | BuzzerCommand | OtherCommand
