"""libosdp's command and event dicts ↔ the typed values of :mod:`edge_gate.osdp.messages`."""

from __future__ import annotations

from typing import Any

import osdp

from edge_gate.osdp.cards import CardCredential, RawCard, decode_wiegand26, encode_card
from edge_gate.osdp.messages import (
    OUTPUT_TIMER_UNIT_MS,
    BuzzerCommand,
    CardRead,
    KeypadEntry,
    LedCommand,
    OtherCommand,
    OutputCommand,
    PanelCommand,
)

# osdp_KEYPAD sends ASCII digits; '*' and '#' arrive as DEL (0x7F) and CR (0x0D)
_KEY_NAMES = {0x7F: "*", 0x0D: "#"}


def _int(d: dict[str, Any], key: str) -> int:
    value = d.get(key, 0)
    return int(value) if isinstance(value, int | bool) else 0


def _bytes(d: dict[str, Any], key: str) -> bytes:
    value = d.get(key, b"")
    return bytes(value) if isinstance(value, bytes | bytearray) else b""


def reader_event(address: int, event: dict[str, Any]) -> CardRead | KeypadEntry | None:
    """A card read or key presses from a PD; None for anything else (notifications, status)."""
    kind = event.get("event")
    if kind == osdp.Event.CardRead:
        data = _bytes(event, "data")
        fmt = _int(event, "format")
        bits = _int(event, "length")
        if fmt != osdp.CardFormat.Wiegand:
            bits = len(data) * 8
        raw = RawCard(bits, data)
        card = decode_wiegand26(raw) if fmt == osdp.CardFormat.Wiegand else None
        return CardRead(address, _int(event, "reader_no"), raw, card)
    if kind == osdp.Event.KeyPress:
        keys = "".join(
            _KEY_NAMES.get(b, chr(b))
            for b in _bytes(event, "data")
            if b in _KEY_NAMES or 48 <= b <= 57
        )
        return KeypadEntry(address, _int(event, "reader_no"), keys)
    return None


def card_event(card: CardCredential, reader_no: int = 0) -> dict[str, Any]:
    """The osdp_RAW event dict a PD submits for ``card``."""
    raw = encode_card(card)
    return {
        "event": osdp.Event.CardRead,
        "reader_no": reader_no,
        "direction": 0,
        "length": raw.bits,
        "format": osdp.CardFormat.Wiegand,
        "data": raw.data,
    }


def keypad_event(keys: str, reader_no: int = 0) -> dict[str, Any]:
    inverse = {v: k for k, v in _KEY_NAMES.items()}
    data = bytes(inverse.get(c, ord(c)) for c in keys if c.isdigit() or c in inverse)
    return {"event": osdp.Event.KeyPress, "reader_no": reader_no, "data": data}


def panel_command(cmd: dict[str, Any]) -> PanelCommand:
    """A command from the CP as a typed value."""
    kind = _int(cmd, "command")
    if kind == osdp.Command.Output:
        return OutputCommand(
            _int(cmd, "output_no"),
            _int(cmd, "control_code"),
            _int(cmd, "timer_count") * OUTPUT_TIMER_UNIT_MS,
        )
    if kind == osdp.Command.LED:
        return LedCommand(
            _int(cmd, "reader"),
            _int(cmd, "led_number"),
            _int(cmd, "on_color"),
            _int(cmd, "off_color"),
            bool(cmd.get("temporary", False)),
        )
    if kind == osdp.Command.Buzzer:
        return BuzzerCommand(
            _int(cmd, "reader"),
            _int(cmd, "on_count"),
            _int(cmd, "off_count"),
            _int(cmd, "rep_count"),
        )
    return OtherCommand(kind)
