"""OSDP simulators on real libosdp: a PD (card reader + strike output) and a CP (a panel).

Each runs the runtime's own :class:`~edge_gate.osdp.peripheral.OsdpPeripheral` /
:class:`~edge_gate.osdp.panel.OsdpPanel` on a serial port and speaks JSON lines: events out on
``emit``, commands in as text lines (``card FACILITY NUMBER``, ``keys 1234``, ``pulse MS``,
``quit``). Used by ``edge-gate osdp sim-pd|sim-cp`` and, as separate processes, by the tests
(``python -m edge_gate_dev.osdp_sim pd|cp …``). A simulator is a test tool: it prints the card
numbers it sees, which the runtime never does.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from edge_gate.osdp.cards import CardCredential, CardFormat
from edge_gate.osdp.keys import load_scbk, store_scbk
from edge_gate.osdp.link import SerialLink
from edge_gate.osdp.messages import (
    BuzzerCommand,
    CardRead,
    KeypadEntry,
    LedCommand,
    LinkState,
    OtherCommand,
    OutputCommand,
    PanelCommand,
    ReaderEvent,
)
from edge_gate.osdp.panel import OsdpPanel, PdSpec
from edge_gate.osdp.peripheral import OsdpPeripheral

Emit = Callable[[dict[str, object]], None]


def print_emit(record: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")
    sys.stdout.flush()


@dataclass(frozen=True)
class SimOptions:
    port: str
    address: int
    scbk_file: Path
    baudrate: int = 9600
    install_mode: bool = False
    nak_output: bool = False  # the PD refuses osdp_OUT (a NAK for the CP to handle)


def _command_record(cmd: PanelCommand) -> dict[str, object]:
    match cmd:
        case OutputCommand():
            return {
                "event": "command",
                "kind": "output",
                "output_no": cmd.output_no,
                "control_code": cmd.control_code,
                "timer_ms": cmd.timer_ms,
            }
        case LedCommand():
            return {"event": "command", "kind": "led", "on_color": cmd.on_color}
        case BuzzerCommand():
            return {"event": "command", "kind": "buzzer", "rep_count": cmd.rep_count}
        case OtherCommand():
            return {"event": "command", "kind": "other", "command": cmd.command}


def _link_record(state: LinkState) -> dict[str, object]:
    return {"event": "link", "online": state.online, "secure": state.secure}


def run_pd(opts: SimOptions, lines: Iterable[str], emit: Emit) -> int:
    """A simulated reader until ``quit`` or the end of ``lines``."""
    scbk = None if opts.install_mode else load_scbk("osdp-sim.scbk", opts.scbk_file)

    def on_command(cmd: PanelCommand) -> bool:
        record = _command_record(cmd)
        refused = opts.nak_output and isinstance(cmd, OutputCommand)
        emit({**record, "acked": not refused})
        return not refused

    def on_keyset(key: bytes) -> None:
        store_scbk(opts.scbk_file, key)
        emit({"event": "keyset", "stored": str(opts.scbk_file)})

    pd = OsdpPeripheral(
        SerialLink(opts.port, opts.baudrate),
        opts.address,
        scbk,
        on_command=on_command,
        on_keyset=on_keyset,
        on_link=lambda s: emit(_link_record(s)),
        install_mode=opts.install_mode,
    )
    pd.start()
    emit({"event": "ready", "role": "pd", "install_mode": pd.in_install_mode})
    try:
        for line in lines:
            words = line.split()
            if not words:
                continue
            if words[0] == "quit":
                break
            if words[0] == "card" and len(words) == 3:
                card = CardCredential(CardFormat.WIEGAND26, int(words[1]), int(words[2]))
                emit({"event": "card_submitted", "ok": pd.report_card(card)})
            elif words[0] == "keys" and len(words) == 2:
                emit({"event": "keys_submitted", "ok": pd.report_keys(words[1])})
            else:
                emit({"event": "error", "detail": "unknown command"})
    finally:
        pd.stop(timeout_s=5.0)
    return 0


def _event_record(ev: ReaderEvent) -> dict[str, object]:
    match ev:
        case CardRead():
            out: dict[str, object] = {"event": "card", "address": ev.address, "bits": ev.raw.bits}
            if ev.card is not None:
                out |= {"format": ev.card.format.value, "facility": ev.card.facility}
                out["number"] = ev.card.number
            return out
        case KeypadEntry():
            return {"event": "keys", "address": ev.address, "keys": ev.keys}
        case LinkState():
            return {"event": "link", "address": ev.address} | _link_record(ev)


def run_cp(opts: SimOptions, lines: Iterable[str], emit: Emit, pulse_ms: int = 500) -> int:
    """A simulated panel until ``quit`` or the end of ``lines``."""
    scbk = load_scbk("osdp-sim.scbk", opts.scbk_file)
    panel = OsdpPanel(
        [PdSpec(opts.address, SerialLink(opts.port, opts.baudrate), scbk)],
        on_event=lambda ev: emit(_event_record(ev)),
        install_mode=opts.install_mode,
    )
    panel.start()
    emit({"event": "ready", "role": "cp"})
    try:
        for line in lines:
            words = line.split()
            if not words:
                continue
            if words[0] == "quit":
                break
            if words[0] == "pulse":
                ms = int(words[1]) if len(words) > 1 else pulse_ms
                out = panel.pulse_output(opts.address, ms)
                emit(
                    {
                        "event": "pulse",
                        "result": out.result.value,
                        "pulse_ms": out.pulse_ms,
                        "latency_ms": round(out.latency_ms, 1),
                    }
                )
            else:
                emit({"event": "error", "detail": "unknown command"})
    finally:
        panel.stop(timeout_s=5.0)
    return 0


def _stdin_lines(stop: threading.Event) -> Iterable[str]:
    for line in sys.stdin:
        if stop.is_set():
            return
        yield line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge_gate_dev.osdp_sim")
    parser.add_argument("role", choices=["pd", "cp"])
    parser.add_argument("--port", required=True)
    parser.add_argument("--address", type=int, default=1)
    parser.add_argument("--scbk-file", type=Path, required=True)
    parser.add_argument("--baudrate", type=int, default=9600)
    parser.add_argument("--install-mode", action="store_true")
    parser.add_argument("--nak-output", action="store_true")
    args = parser.parse_args(argv)
    opts = SimOptions(
        args.port, args.address, args.scbk_file, args.baudrate, args.install_mode, args.nak_output
    )
    lines = _stdin_lines(threading.Event())
    if args.role == "pd":
        return run_pd(opts, lines, print_emit)
    return run_cp(opts, lines, print_emit)


if __name__ == "__main__":
    raise SystemExit(main())
