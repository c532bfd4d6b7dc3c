"""``edge-gate osdp test|keygen`` for installers; ``osdp sim-pd|sim-cp`` (dev tools, libosdp)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from edge_gate.cli.support import EXIT_FAILURE, config_option, load_or_exit, require_dev
from edge_gate.config import OsdpCpConfig, default_config_path
from edge_gate.config.osdp import CP_CREDENTIAL
from edge_gate.errors import SecretFileError
from edge_gate.osdp.keys import create_scbk, load_scbk
from edge_gate.osdp.link import SerialLink
from edge_gate.osdp.messages import ReaderEvent
from edge_gate.osdp.panel import OsdpPanel, PdSpec


def _cp_config(config_path: Path | None) -> OsdpCpConfig:
    if config_path is None and not default_config_path().exists():
        return OsdpCpConfig()
    return load_or_exit(config_path).osdp_cp


@click.group()
def osdp() -> None:
    """OSDP tools: check a reader/IO module, create an SCBK, simulate a PD or CP."""


@osdp.command("test")
@config_option
@click.option("--port", default=None, help="serial device [default: [osdp_cp] port]")
@click.option("--pulse-ms", type=click.IntRange(0, 2000), default=0, help="also pulse the output")
@click.option("--timeout-s", type=click.FloatRange(0.5, 60), default=8.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="one JSON line")
def osdp_test(
    config_path: Path | None, port: str | None, pulse_ms: int, timeout_s: float, as_json: bool
) -> None:
    """Bring up the Secure Channel with the [osdp_cp] PD, print its id and capabilities."""
    cfg = _cp_config(config_path)
    try:
        key = load_scbk(CP_CREDENTIAL, cfg.scbk_file)
    except SecretFileError as e:
        click.echo(f"edge-gate osdp: {e}", err=True)
        raise SystemExit(EXIT_FAILURE) from e
    chosen = port or cfg.port

    def ignore(_ev: ReaderEvent) -> None:
        return None

    panel = OsdpPanel(
        [PdSpec(cfg.address, SerialLink(chosen, cfg.baudrate), key)],
        on_event=ignore,
        install_mode=cfg.install_mode,
    )
    t0 = time.monotonic()
    panel.start()
    report: dict[str, object] = {"port": chosen, "address": cfg.address}
    try:
        while time.monotonic() - t0 < timeout_s and not panel.link(cfg.address).secure:
            time.sleep(0.05)
        state = panel.link(cfg.address)
        report |= {"online": state.online, "secure": state.secure}
        if state.secure:
            report["secure_after_ms"] = round((time.monotonic() - t0) * 1000)
            report |= panel.describe(cfg.address)
            if pulse_ms:
                out = panel.pulse_output(
                    cfg.address, pulse_ms, output_no=cfg.output_no, timeout_s=cfg.reply_timeout_s
                )
                report |= {"pulse": out.result.value, "round_trip_ms": round(out.latency_ms, 1)}
    finally:
        panel.stop()
    ok = bool(report.get("secure")) and report.get("pulse", "acked") == "acked"
    if as_json:
        click.echo(json.dumps(report, sort_keys=True))
    else:
        for k, v in report.items():
            click.echo(f"osdp: {k} = {v}")
    if not ok:
        click.echo(
            "edge-gate osdp: FAILED: no Secure Channel (wiring, address, baud rate, or the PD's "
            "SCBK differs from scbk_file) or the pulse was not acknowledged",
            err=True,
        )
        raise SystemExit(EXIT_FAILURE)


@osdp.command("keygen")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
def osdp_keygen(path: Path) -> None:
    """Create a fresh 16-byte SCBK (mode 0600) at PATH; never overwrites."""
    try:
        create_scbk(path)
    except SecretFileError as e:
        click.echo(f"edge-gate osdp: {e}", err=True)
        raise SystemExit(EXIT_FAILURE) from e
    click.echo(f"osdp: SCBK written to {path} (0600)")


def _sim(role: str, port: str, address: int, scbk_file: Path, install_mode: bool) -> None:
    require_dev(f"osdp sim-{role}")
    from edge_gate_dev.osdp_sim import SimOptions, print_emit, run_cp, run_pd

    opts = SimOptions(port, address, scbk_file, install_mode=install_mode)
    run = run_pd if role == "pd" else run_cp
    try:
        run(opts, iter(sys.stdin.readline, ""), print_emit)
    except SecretFileError as e:
        click.echo(f"edge-gate osdp: {e}", err=True)
        raise SystemExit(EXIT_FAILURE) from e


_sim_options = [
    click.option("--port", required=True, help="serial device"),
    click.option("--address", type=click.IntRange(0, 126), default=1, show_default=True),
    click.option("--scbk-file", type=click.Path(path_type=Path, dir_okay=False), required=True),
    click.option("--install-mode", is_flag=True, help="commissioning: SCBK-D + KEYSET"),
]


@osdp.command("sim-pd")
@_sim_options[0]
@_sim_options[1]
@_sim_options[2]
@_sim_options[3]
def osdp_sim_pd(port: str, address: int, scbk_file: Path, install_mode: bool) -> None:
    """Simulate a reader (libosdp PD); stdin: ``card FACILITY NUMBER``, ``keys 1234``."""
    _sim("pd", port, address, scbk_file, install_mode)


@osdp.command("sim-cp")
@_sim_options[0]
@_sim_options[1]
@_sim_options[2]
@_sim_options[3]
def osdp_sim_cp(port: str, address: int, scbk_file: Path, install_mode: bool) -> None:
    """Simulate a panel (libosdp CP); stdin: ``pulse MS``; events as JSON lines."""
    _sim("cp", port, address, scbk_file, install_mode)
