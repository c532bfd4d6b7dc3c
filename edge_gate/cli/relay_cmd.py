"""``edge-gate relay test|status|keygen`` for installers; ``relay-sim`` (relay side, dev tool)."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from edge_gate.cli.support import EXIT_FAILURE, config_option, load_or_exit, require_dev
from edge_gate.config import RelayConfig, default_config_path
from edge_gate.door.client import RelayClient
from edge_gate.door.codec import MAX_NONCE_TTL_MS
from edge_gate.door.counter import CounterStore
from edge_gate.door.keys import create_relay_key, load_relay_key
from edge_gate.door.relay_core import RelayPolicy
from edge_gate.door.transport import SerialChannel
from edge_gate.errors import RelayError, SecretFileError

if TYPE_CHECKING:
    from edge_gate_dev.relay_sim import Emit


_HINTS = {
    "relay_unavailable": "cannot open the serial port: check the device path and cable, that no "
    "other process (edge-gate run) holds it, and that this user may open it (dialout group)",
    "timeout": "no answer from the relay in time: check wiring, baud rate, power, and that the "
    "controller speaks edge-gate relay protocol v1",
    "bad_challenge": "the relay answered but its MAC does not verify: the key file does not match "
    "the key provisioned in the relay",
    "bad_mac": "an answer failed MAC verification: key mismatch or line corruption",
    "nack:bad_mac": "the relay rejected our MAC: the key file does not match the relay's key",
    "nack:counter": "the relay has accepted a higher counter before (counter file restored from an "
    "old copy?); the counter was advanced, run the test again",
    "nack:expired": "the challenge expired before the command arrived (slow or congested line)",
    "nack:replay": "the relay did not recognise the challenge (another gateway on the same line?)",
    "counter_error": "the counter file cannot be written: check [relay] counter_file and its "
    "directory permissions",
}


def _relay_config(config_path: Path | None) -> RelayConfig:
    if config_path is None and not default_config_path().exists():
        return RelayConfig()
    return load_or_exit(config_path).relay


def _client(
    cfg: RelayConfig, port: str | None, key_file: Path | None, counter_file: Path | None
) -> tuple[RelayClient, SerialChannel]:
    chosen_port = port or cfg.port
    try:
        key = load_relay_key(key_file or cfg.key_file)
        counter = CounterStore(counter_file or cfg.counter_file)
    except (SecretFileError, RelayError) as e:
        click.echo(f"edge-gate relay: {e}", err=True)
        raise SystemExit(EXIT_FAILURE) from e
    channel = SerialChannel(chosen_port, cfg.baudrate)
    return RelayClient(channel, key, counter, timeout_s=cfg.timeout_s), channel


def _fail(channel: SerialChannel, reason: str) -> None:
    hint = _HINTS.get(reason, "the relay refused or did not confirm the command")
    if reason == "relay_unavailable":
        hint += f" ({channel.last_error})"
    click.echo(f"edge-gate relay: FAILED on {channel.port}: {reason}: {hint}", err=True)
    raise SystemExit(EXIT_FAILURE)


_port_opt = click.option("--port", default=None, help="serial device [default: [relay] port]")
_key_opt = click.option(
    "--key-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="relay key (32 raw bytes or 64 hex chars, mode 0600) [default: [relay] key_file]",
)
_counter_opt = click.option(
    "--counter-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="gateway counter file [default: [relay] counter_file]",
)


@click.group()
def relay() -> None:
    """Relay controller tools: test the link, read status, create a key."""


@relay.command("test")
@config_option
@_port_opt
@_key_opt
@_counter_opt
@click.option("--pulse-ms", type=click.IntRange(1, 2000), default=300, show_default=True)
def relay_test(
    config_path: Path | None,
    port: str | None,
    key_file: Path | None,
    counter_file: Path | None,
    pulse_ms: int,
) -> None:
    """Handshake, send a short signed pulse, verify the ACK, print the round-trip latency."""
    cfg = _relay_config(config_path)
    client, channel = _client(cfg, port, key_file, counter_file)
    try:
        hs = client.handshake()
        if not hs.ok:
            _fail(channel, "bad_challenge" if hs.reason == "bad_mac" else hs.reason)
        click.echo(f"relay: handshake OK on {channel.port} ({hs.latency_ms:.1f} ms)")
        outcome = client.unlock(pulse_ms)
        if not outcome.ok:
            _fail(channel, outcome.reason)
        ack_ms = outcome.ack_latency_ms or 0.0
        click.echo(
            f"relay: unlocked, ACK verified: pulse {outcome.pulse_ms} ms, counter {outcome.counter}"
        )
        click.echo(
            f"relay: round trip {outcome.latency_ms:.1f} ms "
            f"(challenge -> verified ACK {ack_ms:.1f} ms)"
        )
    finally:
        client.channel.close()


@relay.command("status")
@config_option
@_port_opt
@_key_opt
@_counter_opt
def relay_status(
    config_path: Path | None, port: str | None, key_file: Path | None, counter_file: Path | None
) -> None:
    """Read the door sensor, tamper switch and relay state (MAC-verified)."""
    cfg = _relay_config(config_path)
    client, channel = _client(cfg, port, key_file, counter_file)
    try:
        st = client.status()
    finally:
        channel.close()
    if not st.ok:
        _fail(channel, st.reason)
    click.echo(
        f"relay: door {'open' if st.door_open else 'closed'}, tamper "
        f"{'ALARM' if st.tamper else 'ok'}, relay {'energised' if st.energised else 'locked'}, "
        f"highest counter {st.relay_counter}"
    )


@relay.command("keygen")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.option("--hex", "hex_format", is_flag=True, help="write 64 hex characters, not raw bytes")
def relay_keygen(out: Path, hex_format: bool) -> None:
    """Create a new random 32-byte relay key (mode 0600); provision the same key in the relay."""
    try:
        create_relay_key(out, hex_format=hex_format)
    except SecretFileError as e:
        click.echo(f"edge-gate relay: {e}", err=True)
        raise SystemExit(EXIT_FAILURE) from e
    click.echo(f"relay: wrote new key to {out}")


def _emitter(as_json: bool) -> Emit:
    def emit(event: dict[str, object]) -> None:
        if as_json:
            line = json.dumps(event, sort_keys=True)
        else:
            rest = " ".join(f"{k}={v}" for k, v in event.items() if k != "event")
            line = f"relay-sim: {event['event']} {rest}".rstrip()
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    return emit


@click.command("relay-sim")
@click.option("--port", required=True, help="serial device the simulated relay listens on")
@click.option(
    "--key-file", type=click.Path(path_type=Path, dir_okay=False), required=True, help="relay key"
)
@click.option("--json", "as_json", is_flag=True, help="print one JSON line per relay event")
@click.option(
    "--state-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="persist the highest accepted counter here (survives restarts)",
)
@click.option(
    "--max-pulse-ms",
    type=click.IntRange(1, 65535),
    default=5000,
    show_default=True,
    help="longest pulse the relay grants; longer requests are clamped",
)
@click.option(
    "--nonce-ttl-ms",
    type=click.IntRange(1, MAX_NONCE_TTL_MS),
    default=MAX_NONCE_TTL_MS,
    show_default=True,
    help="lifetime of a challenge nonce",
)
@click.option("--baudrate", type=click.IntRange(1200, 4_000_000), default=115200, show_default=True)
def relay_sim(
    port: str,
    key_file: Path,
    as_json: bool,
    state_file: Path | None,
    max_pulse_ms: int,
    nonce_ttl_ms: int,
    baudrate: int,
) -> None:
    """Simulate the relay controller on PORT until SIGTERM/SIGINT (protocol v1)."""
    require_dev("relay-sim")
    from edge_gate_dev.relay_sim import RelaySim

    try:
        key = load_relay_key(key_file)
        channel = SerialChannel(port, baudrate)
        channel.ensure_open()
        sim = RelaySim(
            channel,
            key,
            emit=_emitter(as_json),
            policy=RelayPolicy(max_pulse_ms=max_pulse_ms, nonce_ttl_ms=nonce_ttl_ms),
            state_file=state_file,
        )
    except (SecretFileError, RelayError) as e:
        click.echo(f"edge-gate relay-sim: {e}", err=True)
        raise SystemExit(EXIT_FAILURE) from e
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        sim.run(stop)
    finally:
        channel.close()


relay.add_command(relay_sim, "sim")
