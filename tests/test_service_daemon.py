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

from edge_gate.audit.events import EventType
from edge_gate.capture.failure import CaptureFailure, CaptureOpenError
from edge_gate.capture.frame import Frame
from edge_gate.capture.latest import LatestFrame
from edge_gate.capture.sources import Source
from edge_gate.capture.thread import CaptureThread
from edge_gate.config import EdgeGateConfig
from edge_gate.decision.policy import DenyReason, Grant
from edge_gate.door.client import UnlockOutcome
from edge_gate.door.worker import UnlockCommand
from edge_gate.service.compose import Composer, ConfigGallery, DoorParts
from edge_gate.service.daemon import Daemon
from edge_gate.service.door_actions import DoorActions
from edge_gate.service.frame_processor import FrameResult
from edge_gate.service.notify import Notifier
from edge_gate.service.pipeline_thread import Heartbeat, PipelineThread
from edge_gate.service.ports import EventSink
from edge_gate.service.snapshots import SnapshotWriter
from edge_gate.threads import ServiceThread

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


class _Events:
    """An in-memory audit trail: the events the daemon emitted, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str | None, dict[str, object]]] = []

    def emit(
        self,
        event_type: EventType,
        *,
        door: str | None,
        subject: str | None = None,
        reason: str | None = None,
        **fields: object,
    ) -> int | None:
        self.events.append((str(event_type), reason, {"subject": subject, **fields}))
        return len(self.events)

    def flush(self, timeout_s: float) -> bool:
        return True

    def stop(self, timeout_s: float = 5.0) -> bool:
        return True


class _RecordingDoor(ServiceThread):
    """A door actuator that records what the daemon submits (and answers nothing)."""

    def __init__(self, stop: threading.Event) -> None:
        super().__init__("recording-door", stop=stop)
        self.submitted: list[UnlockCommand] = []

    def run(self) -> None:
        while not self.wait(0.05):
            self.heartbeat.beat()

    def submit(self, cmd: UnlockCommand) -> bool:
        self.submitted.append(cmd)
        return True


def _idle_camera(slot: LatestFrame[Frame], stop: threading.Event) -> CaptureThread:
    """A real capture thread whose camera never answers (it keeps retrying with backoff)."""

    def opener(wait: object) -> Source:
        raise CaptureOpenError(CaptureFailure.UNREACHABLE, "no camera in this test")

    return CaptureThread(opener, slot, description="none", stop_event=stop)


def _composer_with(processor: object, slot: LatestFrame[Frame]) -> Composer:
    """Real parts around ``processor``: the daemon gets them through its compose hook."""

    def compose(
        cfg: EdgeGateConfig,
        events: EventSink,
        stop: threading.Event,
        notifier: Notifier,
        snapshots: SnapshotWriter | None,
    ) -> DoorParts:
        actions = DoorActions(cfg, events, notifier, snapshots=snapshots)
        door = _RecordingDoor(stop)
        actions.connect(door)
        pipeline = PipelineThread(
            slot,
            processor,  # type: ignore[arg-type]
            on_decision=actions.on_decision,
            on_error=actions.on_pipeline_error,
            stop=stop,
            max_fps=15,
            heartbeat=Heartbeat(),
        )
        gallery = ConfigGallery(cfg, "mobilefacenet-fp32", 128)
        return DoorParts(
            actions,
            pipeline,
            door,
            _idle_camera(slot, stop),
            gallery,
            gallery.nobody(),
            gallery.stamp(),
            "mobilefacenet-fp32",
        )

    return compose


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
    slot: LatestFrame[Frame] = LatestFrame()
    stuck = _StuckProcessor()
    events = _Events()
    daemon = Daemon(
        cfg,
        notifier=Notifier(str(sock_path)),
        compose=_composer_with(stuck, slot),
        open_events=lambda cfg: events,
    )
    daemon.start()
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
    assert ("service.degraded", "pipeline_stalled") in [(t, r) for t, r, _ in events.events]


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


def test_a_snapshot_that_cannot_be_written_does_not_cost_the_grant(tmp_path: Path) -> None:
    """Snapshots opted in but unwritable (here: the directory is a file; a full disk is the
    same OSError): the grant still goes to the door and nothing is raised to the pipeline."""
    blocker = tmp_path / "snapshots"
    blocker.write_text("not a directory")
    snapshots = SnapshotWriter(blocker)
    actions = DoorActions(EdgeGateConfig(), _Events(), Notifier(None), snapshots=snapshots)
    door = _RecordingDoor(threading.Event())
    actions.connect(door)
    now = time.monotonic()
    grant = Grant(1, "u_abcdefghijkl", 0.9, 0.3, 0.9, 3, now - 0.4, now)
    frame = Frame(np.zeros((48, 64, 3), np.uint8), 0.0, 0)
    actions.on_decision(grant, frame, FrameResult(faces=1, decisions=(grant,), annotations=()))
    assert len(door.submitted) == 1
    assert snapshots.written == []


def test_every_relay_outcome_is_one_enumerated_event(tmp_path: Path) -> None:
    """A grant the relay did not carry out is denied with a DenyReason member (no invented
    relay_<x> strings); a busy door is relay_busy; a verified ACK is access.granted."""
    events = _Events()
    actions = DoorActions(EdgeGateConfig(), events, Notifier(None))
    door = _RecordingDoor(threading.Event())
    actions.connect(door)
    now = time.monotonic()
    outcomes = ["unlocked", "nack:expired", "unconfirmed", "stale", "timeout", "counter_error"]
    for i, why in enumerate(outcomes):
        grant = Grant(i, "u_abcdefghijkl", 0.9, 0.3, 0.9, 3, now - 0.4, now)
        actions.on_decision(grant, Frame(np.zeros((8, 8, 3), np.uint8), 0.0, 0), _NO_FACES)
        actions.on_unlocked(door.submitted[-1], UnlockOutcome(why == "unlocked", why, 12.0))
    results = [(t, r) for t, r, _ in events.events if t.startswith("access.")]
    assert results == [
        ("access.granted", "match"),
        ("access.denied", "relay_refused"),
        ("access.denied", "relay_unconfirmed"),
        ("access.denied", "relay_stale"),
        ("access.denied", "relay_unavailable"),
        ("access.denied", "relay_counter_error"),
    ]
    assert {r for _, r in results[1:]} <= {m.value for m in DenyReason}


_NO_FACES = FrameResult(faces=0, decisions=(), annotations=())
