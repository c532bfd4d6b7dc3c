"""The daemon's lifecycle rules that need no camera: exit codes, watchdog honesty, fail secure."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edge_gate.capture.frame import Frame
from edge_gate.capture.latest import LatestFrame
from edge_gate.config import EdgeGateConfig
from edge_gate.service.daemon import Daemon
from edge_gate.service.notify import Notifier
from edge_gate.service.pipeline_thread import Heartbeat, PipelineThread

EDGE_GATE = str(Path(sys.executable).parent / "edge-gate")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EDGE_GATE, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_run_with_invalid_config_exits_78(tmp_path: Path) -> None:
    """A bad config fails closed with EX_CONFIG so systemd does not restart-loop."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[relay]\npulse_ms = 0\n")
    proc = run_cli("run", "--config", str(bad))
    assert proc.returncode == 78
    assert "relay.pulse_ms" in proc.stderr


def test_run_with_loose_key_file_exits_78(tmp_path: Path) -> None:
    """A world-readable key is refused before anything starts (exit 78, clear message)."""
    assert run_cli("init", str(tmp_path / "site")).returncode == 0
    key = tmp_path / "site" / "audit.key"
    key.chmod(0o644)
    proc = run_cli("run", "--config", str(tmp_path / "site" / "edge-gate.toml"))
    assert proc.returncode == 78
    assert "too open" in proc.stderr
    assert "PRIVATE KEY" not in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    "breakage",
    [
        "relay_key_missing",
        "counter_is_a_directory",
        "counter_cannot_be_written",
        "models_dir_missing",
        "mqtt_ca_missing",
        "mqtt_key_too_open",
    ],
)
def test_late_start_failures_report_the_real_reason(tmp_path: Path, breakage: str) -> None:
    """A failure after the audit trail opened (relay key, counter file) is reported as itself,
    with the config exit code where the config is at fault, and no traceback."""
    assert run_cli("init", str(tmp_path / "site")).returncode == 0
    site = tmp_path / "site"
    if breakage == "relay_key_missing":
        (site / "relay.key").unlink()
        expected, code = "relay.key", 78
    elif breakage == "counter_is_a_directory":
        (site / "relay.counter").mkdir()
        expected, code = "relay.counter", 1
    elif breakage == "counter_cannot_be_written":
        # readable but not writable (as a read-only or full state directory; even root
        # cannot create files in /proc/self): found at start, not at the first unlock
        config = site / "edge-gate.toml"
        text = config.read_text()
        assert f'counter_file = "{site}/relay.counter"' in text
        config.write_text(
            text.replace(f'"{site}/relay.counter"', '"/proc/self/edge-gate-relay.counter"')
        )
        expected, code = "cannot persist relay counter", 1
    elif breakage == "models_dir_missing":  # restarting cannot bring the models back: 78
        _set(site, "vision", f'models_dir = "{tmp_path}/no-models"')
        expected, code = "no-models", 78
    elif breakage == "mqtt_ca_missing":  # used to start and never deliver an event
        _set(site, "mqtt", f'ca_file = "{tmp_path}/no-ca.crt"')
        expected, code = "mqtt.ca_file", 78
    else:  # a client key others can read: refused at start like the other keys
        (site / "mqtt.key").write_text("not really a key\n")
        (site / "mqtt.key").chmod(0o644)
        (site / "mqtt.crt").write_text("not really a certificate\n")
        _set(site, "mqtt", f'cert_file = "{site}/mqtt.crt"\nkey_file = "{site}/mqtt.key"')
        expected, code = "too open", 78
    proc = run_cli("run", "--config", str(site / "edge-gate.toml"))
    assert proc.returncode == code, proc.stderr
    assert expected in proc.stderr
    assert "closed database" not in proc.stderr
    assert "Traceback" not in proc.stderr


def _set(site: Path, table: str, lines: str) -> None:
    """Add ``lines`` to ``[table]`` of the site's config (the table is created if absent)."""
    config = site / "edge-gate.toml"
    text = config.read_text()
    header = f"[{table}]\n"
    if header in text:
        text = text.replace(header, header + lines + "\n", 1)
    else:
        text += f"\n{header}{lines}\n"
    config.write_text(text)


def test_run_without_relay_fails_and_never_reports_ready(tmp_path: Path) -> None:
    """No relay on the configured port: start-up fails (exit 1) and READY is never sent."""
    assert run_cli("init", str(tmp_path / "site")).returncode == 0
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.1)
    env = dict(os.environ, NOTIFY_SOCKET=str(sock_path))
    proc = subprocess.run(
        [EDGE_GATE, "run", "--config", str(tmp_path / "site" / "edge-gate.toml")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            break
    sock.close()
    assert proc.returncode == 1
    assert "relay" in proc.stderr
    assert not any("READY=1" in m for m in messages)
    assert any("STOPPING=1" in m for m in messages)


class _StuckProcessor:
    """A decision path that hangs on its first frame (e.g. a wedged interpreter)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def process(self, image: object, now_s: float) -> object:
        self.entered.set()
        self.release.wait(30)
        raise RuntimeError("released")

    def set_matcher(self, matcher: object) -> None:
        pass


@pytest.mark.timeout(60)
def test_stalled_pipeline_stops_the_watchdog_pings(tmp_path: Path) -> None:
    """While the pipeline loop turns, WATCHDOG=1 flows; once it hangs, the pings stop (so
    systemd's WatchdogSec kills and restarts the service) and STATUS says why."""
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.1)
    received: list[tuple[float, str]] = []
    done = threading.Event()

    def collect() -> None:
        while not done.is_set():
            try:
                received.append((time.monotonic(), sock.recv(4096).decode()))
            except TimeoutError:
                continue

    collector = threading.Thread(target=collect, daemon=True)
    collector.start()
    cfg = EdgeGateConfig.model_validate({"service": {"heartbeat_timeout_s": 1.0}})
    daemon = Daemon(cfg, notifier=Notifier(str(sock_path)))
    slot: LatestFrame[Frame] = LatestFrame()
    stuck = _StuckProcessor()
    daemon.pipeline = PipelineThread(
        slot,
        stuck,  # type: ignore[arg-type]
        on_decision=lambda *a: None,
        on_error=lambda e: None,
        stop=daemon.stop_event,
        max_fps=15,
        heartbeat=Heartbeat(),
    )
    daemon.pipeline.start()
    runner = threading.Thread(target=daemon.run_until_stopped, kwargs={"run_for_s": 6.0})
    runner.start()
    time.sleep(2.0)
    healthy_pings = [t for t, m in received if "WATCHDOG=1" in m]
    slot.put(Frame(np.zeros((480, 640, 3), np.uint8), time.monotonic(), 1))
    assert stuck.entered.wait(5)
    stalled_at = time.monotonic()
    time.sleep(3.0)
    late_pings = [t for t, m in received if "WATCHDOG=1" in m and t > stalled_at + 1.5]
    stuck.release.set()
    runner.join(15)
    done.set()
    collector.join(2)
    sock.close()
    daemon.notifier.close()
    assert len(healthy_pings) >= 2
    assert late_pings == []
    assert any("pipeline stalled" in m for _, m in received)


@pytest.mark.timeout(120)
def test_ready_within_2s_with_10k_people(tmp_path: Path) -> None:
    """Process start → READY=1 (models verified, 10k people decrypted + verified, relay
    handshake) within 2 s; the STATUS line reports the gallery size."""
    from edge_gate.config import load_config
    from edge_gate.gallery.store import store_from_config
    from tests.door_rig import NotifyListener, PtyPair, RelaySim

    assert run_cli("init", str(tmp_path / "site")).returncode == 0
    config = tmp_path / "site" / "edge-gate.toml"
    text = config.read_text().replace(
        f'port = "{tmp_path / "site" / "relay.pty"}"', f'port = "{tmp_path / "gw"}"'
    )
    config.write_text(text)
    cfg = load_config(config)
    rng = np.random.default_rng(1)
    people = [
        (f"person {i}", rng.standard_normal((3, 192)).astype(np.float32)) for i in range(10_000)
    ]
    store_from_config(cfg.gallery).enroll_many(people, "mobilefacenet-fp32")
    pty = PtyPair(tmp_path / "gw", tmp_path / "dev")
    relay = RelaySim(tmp_path / "dev", tmp_path / "site" / "relay.key", tmp_path / "sim.state")
    notify = NotifyListener(tmp_path / "notify.sock")
    pty.start()
    relay.start()
    env = dict(os.environ, NOTIFY_SOCKET=str(notify.path))
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [EDGE_GATE, "run", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert notify.wait_for("READY=1", 30)
        ready_s = next(t for t, m in notify.messages if "READY=1" in m) - t0
        assert ready_s <= 2.0, f"READY after {ready_s:.2f} s"
        assert any("10000 people" in m for _, m in notify.messages)
    finally:
        proc.terminate()
        assert proc.wait(15) == 0
        notify.close()
        relay.stop()
        pty.stop()


class _RecordingRelay:
    """Stands in for the relay worker: records what the daemon submits."""

    def __init__(self) -> None:
        self.submitted: list[object] = []

    def submit(self, cmd: object) -> bool:
        self.submitted.append(cmd)
        return True


def test_a_snapshot_that_cannot_be_written_does_not_cost_the_grant(tmp_path: Path) -> None:
    """Snapshots opted in but unwritable (here: the directory is a file; a full disk is the
    same OSError): the grant still goes to the relay and nothing is raised to the pipeline."""
    from edge_gate.decision.policy import Grant
    from edge_gate.service.frame_processor import FrameResult
    from edge_gate.service.snapshots import SnapshotWriter

    blocker = tmp_path / "snapshots"
    blocker.write_text("not a directory")
    daemon = Daemon(EdgeGateConfig(), notifier=Notifier(None))
    daemon.snapshots = SnapshotWriter(blocker)
    relay = _RecordingRelay()
    daemon.relay = relay  # type: ignore[assignment]
    now = time.monotonic()
    grant = Grant(1, "u_abcdefghijkl", 0.9, 0.3, 0.9, 3, now - 0.4, now)
    frame = Frame(np.zeros((48, 64, 3), np.uint8), 0.0, 0)
    daemon._on_decision(grant, frame, FrameResult(faces=1, decisions=(grant,), annotations=()))
    assert len(relay.submitted) == 1
    assert daemon.snapshots.written == []
