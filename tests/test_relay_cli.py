"""``edge-gate relay-sim`` and ``edge-gate relay test`` over socat pty pairs, and unplug/replug."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_gate.cli import cli
from edge_gate.door.client import RelayClient
from edge_gate.door.counter import CounterStore
from edge_gate.door.keys import create_relay_key
from edge_gate.door.transport import SerialChannel
from edge_gate_dev.relay_sim import RelaySim
from tests.test_relay_support import EventLog, Socat

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def socat_pair(tmp_path: Path) -> Iterator[Socat]:
    """A socat pty pair: ``a`` for the relay, ``b`` for the gateway."""
    pair = Socat(tmp_path / "relay-tty", tmp_path / "gw-tty")
    pair.start()
    yield pair
    pair.stop()


class SimProcess:
    """``python -m edge_gate relay-sim --json`` in a subprocess, its JSON lines collected."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge_gate", "relay-sim", "--json", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events = EventLog()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events(json.loads(line))

    def wait_kind(self, kind: str, count: int = 1, timeout_s: float = 10.0) -> bool:
        return self.events.wait_for(
            lambda ev: sum(e["event"] == kind for e in ev) >= count, timeout_s
        )

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(10.0)
        self._reader.join(5.0)
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc


def test_relay_sim_cli_and_relay_test_happy(tmp_path: Path, socat_pair: Socat) -> None:
    """relay-sim prints JSON events; relay test handshakes, pulses, verifies the ACK, exits 0."""
    key_file = tmp_path / "relay.key"
    create_relay_key(key_file)
    sim = SimProcess(
        [
            "--port",
            str(socat_pair.a),
            "--key-file",
            str(key_file),
            "--state-file",
            str(tmp_path / "relay.state"),
            "--max-pulse-ms",
            "250",
        ]
    )
    try:
        assert sim.wait_kind("ready")
        result = CliRunner().invoke(
            cli,
            [
                "relay",
                "test",
                "--port",
                str(socat_pair.b),
                "--key-file",
                str(key_file),
                "--counter-file",
                str(tmp_path / "counter"),
                "--pulse-ms",
                "400",
            ],
        )
        assert result.exit_code == 0, result.output
        assert "ACK verified" in result.output
        assert "round trip" in result.output
        assert sim.wait_kind("locked")
    finally:
        rc = sim.terminate()
    assert rc == 0
    kinds = sim.events.kinds()
    assert kinds[0] == "ready"
    assert {"event": "unlocked", "pulse_ms": 250, "counter": 1} in sim.events.events
    assert kinds.index("locked") > kinds.index("unlocked")
    assert (tmp_path / "relay.state").read_text().split()[-1] == "1"


def test_relay_test_from_config_and_wrong_key(tmp_path: Path, socat_pair: Socat) -> None:
    """relay test reads [relay] from --config; a mismatched key exits 1 with a clear message."""
    key_file = tmp_path / "relay.key"
    create_relay_key(key_file)
    wrong_key = tmp_path / "wrong.key"
    create_relay_key(wrong_key, hex_format=True)
    sim = SimProcess(["--port", str(socat_pair.a), "--key-file", str(key_file)])
    try:
        assert sim.wait_kind("ready")
        config = tmp_path / "edge-gate.toml"
        config.write_text(
            "[relay]\n"
            f'port = "{socat_pair.b}"\n'
            "baudrate = 115200\n"
            f'key_file = "{key_file}"\n'
            f'counter_file = "{tmp_path / "counter"}"\n'
            "pulse_ms = 1500\n"
        )
        ok = CliRunner().invoke(cli, ["relay", "test", "--config", str(config)])
        assert ok.exit_code == 0, ok.output
        status = CliRunner().invoke(cli, ["relay", "status", "--config", str(config)])
        assert status.exit_code == 0, status.output
        assert "door closed" in status.output
        bad = CliRunner().invoke(
            cli, ["relay", "test", "--config", str(config), "--key-file", str(wrong_key)]
        )
        assert bad.exit_code == 1
        assert "does not match" in bad.output
    finally:
        assert sim.terminate() == 0
    assert len(sim.events.of("unlocked")) == 1


def test_relay_test_without_device_fails_clearly(tmp_path: Path) -> None:
    """No device at the port: exit 1 naming relay_unavailable and what to check."""
    key_file = tmp_path / "relay.key"
    create_relay_key(key_file)
    result = CliRunner().invoke(
        cli,
        [
            "relay",
            "test",
            "--port",
            str(tmp_path / "no-such-tty"),
            "--key-file",
            str(key_file),
            "--counter-file",
            str(tmp_path / "counter"),
        ],
    )
    assert result.exit_code == 1
    assert "relay_unavailable" in result.output
    assert not (tmp_path / "counter").exists()  # no counter burnt without a relay


def test_unplug_replug_reconnects(tmp_path: Path) -> None:
    """Killing the pty pair (USB unplug) makes unlocks fail fast with relay_unavailable;
    recreating it (replug) reconnects both sides without restarting anything."""
    key_file = tmp_path / "relay.key"
    key = create_relay_key(key_file)
    pair = Socat(tmp_path / "relay-tty", tmp_path / "gw-tty")
    pair.start()
    events = EventLog()
    stop = threading.Event()
    relay_channel = SerialChannel(str(pair.a), 115200, backoff_max_s=0.2)
    relay_channel.ensure_open()  # opening flushes input: open before the gateway speaks
    sim = RelaySim(relay_channel, key, emit=events)
    thread = threading.Thread(target=sim.run, args=(stop,), daemon=True)
    thread.start()
    gw_channel = SerialChannel(str(pair.b), 115200, backoff_max_s=0.2)
    client = RelayClient(gw_channel, key, CounterStore(tmp_path / "counter"), timeout_s=0.5)
    try:
        assert client.unlock(100).ok
        pair.stop()  # unplug
        during = []
        for _ in range(5):
            t0 = time.monotonic()
            during.append(client.unlock(100))
            assert time.monotonic() - t0 < 1.0
        assert [o.reason for o in during] == ["relay_unavailable"] * 5
        assert not any(o.ok for o in during)
        pair.start()  # replug: new pty numbers behind the same links
        deadline = time.monotonic() + 10.0
        outcome = client.unlock(100)
        while not outcome.ok and time.monotonic() < deadline:
            time.sleep(0.1)
            outcome = client.unlock(100)
        assert outcome.ok, outcome
        assert len(events.of("unlocked")) == 2
    finally:
        stop.set()
        thread.join(5.0)
        gw_channel.close()
        relay_channel.close()
        pair.stop()
    assert not thread.is_alive()
