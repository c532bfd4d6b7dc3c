"""A whole door on one machine, from real parts: for the end-to-end tests and ``make demo``.

    RTSP server (GStreamer, auth) ──▶ edge-gate run ──▶ pty pair (socat) ──▶ edge-gate relay-sim
                                           └──▶ mosquitto (mTLS) ──▶ desk subscriber (verifies sigs)

Every part is a real process; the rig only wires them and collects what a desk and a relay
would see. Nothing is faked.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2

from edge_gate_dev.broker import DeskSubscriber, MosquittoBroker, gateway_config
from tests.rtsp_server import RtspTestServer

REPO = Path(__file__).resolve().parent.parent
EDGE_GATE = str(Path(sys.executable).parent / "edge-gate")


def extract_frames(clip: Path, out_dir: Path, times_s: list[float]) -> list[Path]:
    """PNG frames of ``clip`` at the given times (for enrollment)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(clip))
    paths = []
    try:
        for i, t in enumerate(times_s):
            cap.set(cv2.CAP_PROP_POS_MSEC, t * 1000.0)
            ok, frame = cap.read()
            if not ok:
                continue
            p = out_dir / f"frame-{i:02d}.png"
            cv2.imwrite(str(p), frame)
            paths.append(p)
    finally:
        cap.release()
    return paths


def attack_clip(video_path: Path, cache: Path, out: Path, kind: str, variant_index: int) -> Path:
    """A presentation attack of the ENROLLED person: their clip frame printed, or their clip
    replayed on a screen (synthetic rendering; see edge_gate/liveness/attacks.py)."""
    from edge_gate.config import VisionConfig
    from edge_gate.vision.pipeline import FacePipeline
    from edge_gate_dev.liveness import sources
    from edge_gate_dev.liveness.attacks import Material, print_attack, replay_attack
    from edge_gate_dev.liveness.clipio import write_clip

    video = sources.read_video(video_path, 15.0)
    assert video is not None
    # a printed portrait: the face with a generous margin, as a photo an attacker would print
    frame = video[60]
    x1, y1, x2, y2 = FacePipeline.from_config(VisionConfig()).detect(frame)[0].box.as_list()
    mx, my = 0.6 * (x2 - x1), 0.5 * (y2 - y1)
    h, w = frame.shape[:2]
    portrait = frame[
        max(0, int(y1 - my)) : min(h, int(y2 + my)), max(0, int(x1 - mx)) : min(w, int(x2 + mx))
    ]
    photo = [("enrolled/portrait", portrait)]
    mat = Material(photo, [sources.Video("enrolled", tuple(video))], sources.backgrounds(cache))
    make = print_attack if kind == "print" else replay_attack
    clip = make(mat, variant_index, seed=9_000_001, n_frames=90)  # 6 s, looped by the server
    path = out / f"{kind}-{clip.variant}.avi"
    write_clip(path, clip)
    return path


class PtyPair:
    """``socat`` linking two ptys; stop() is a relay unplugged, start() plugs it back."""

    def __init__(self, gateway_end: Path, relay_end: Path) -> None:
        self.gateway_end, self.relay_end = gateway_end, relay_end
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        socat = shutil.which("socat") or "/usr/bin/socat"
        self.proc = subprocess.Popen(
            [
                socat,
                f"pty,raw,echo=0,link={self.gateway_end}",
                f"pty,raw,echo=0,link={self.relay_end}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while not (self.gateway_end.exists() and self.relay_end.exists()):
            if time.monotonic() > deadline:
                raise RuntimeError("socat did not create its ptys")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
            self.proc = None


class NotifyListener:
    """A real ``$NOTIFY_SOCKET``: collects the daemon's sd_notify datagrams (READY, WATCHDOG …)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.messages: list[tuple[float, str]] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode(errors="replace")))

    def has(self, line: str) -> bool:
        return any(line in m.splitlines() for _, m in list(self.messages))

    def wait_for(self, line: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.has(line):
                return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


@dataclass
class RelaySim:
    """``edge-gate relay-sim --json`` on the relay end; its JSON lines collected on a thread."""

    port: Path
    key_file: Path
    state_file: Path
    events: list[dict[str, Any]] = field(default_factory=list)
    proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                EDGE_GATE,
                "relay-sim",
                "--port",
                str(self.port),
                "--key-file",
                str(self.key_file),
                "--state-file",
                str(self.state_file),
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        deadline = time.monotonic() + 10
        while not self.events and time.monotonic() < deadline:
            time.sleep(0.05)  # the simulator prints a first line once it listens

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with contextlib.suppress(json.JSONDecodeError):
                self.events.append(json.loads(line))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in list(self.events) if e.get("event") == kind]

    def _wait(self, kind: str, count: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if len(self.of(kind)) >= count:
                return True
            time.sleep(0.05)
        return False

    def wait_for_unlocked(self, timeout_s: float) -> bool:
        return self._wait("unlocked", 1, timeout_s)

    def wait_for_locked(self, timeout_s: float) -> bool:
        return self._wait("locked", len(self.of("unlocked")), timeout_s)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None


@dataclass
class DoorRig:
    """Owns the site directory (from ``edge-gate init``) and every peer process."""

    workdir: Path
    clip: Path
    broker: MosquittoBroker
    camera_password: str = "door-cam-Pa55"
    site: Path = field(init=False)
    config: Path = field(init=False)
    pty: PtyPair = field(init=False)
    relay: RelaySim = field(init=False)
    rtsp: RtspTestServer | None = field(default=None, init=False)
    daemon: subprocess.Popen[str] | None = field(default=None, init=False)
    daemon_log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.site = self.workdir / "site"
        self.config = self.site / "edge-gate.toml"
        self.daemon_log = self.workdir / "daemon.log"

    # -- set-up ---------------------------------------------------------------------------

    def init_site(self, extra_toml: str = "") -> None:
        cli(["init", str(self.site)])
        self.pty = PtyPair(self.workdir / "relay-gw", self.workdir / "relay-dev")
        self.relay = RelaySim(
            self.workdir / "relay-dev", self.site / "relay.key", self.workdir / "relay-sim.state"
        )
        self.rtsp = RtspTestServer(
            self.clip, self.workdir / "rtsp", password=self.camera_password, width=640, height=480
        )
        self.rtsp.start()
        mqtt = gateway_config(self.broker, self.workdir / "mqtt")
        self.write_config(mqtt_toml(mqtt, self.site) + extra_toml)

    def write_config(self, extra_toml: str) -> None:
        """Append sections to the config ``edge-gate init`` wrote (replacing same-named ones)."""
        base = (
            (self.site / "edge-gate.toml.init").read_text()
            if (self.site / "edge-gate.toml.init").exists()
            else self.config.read_text()
        )
        (self.site / "edge-gate.toml.init").write_text(base)
        merged = merge_toml(base, extra_toml)
        rtsp = self.rtsp
        assert rtsp is not None
        merged = merge_toml(
            merged,
            f"""
[camera]
url = "{rtsp.url}"
username_file = "{rtsp.username_file}"
password_file = "{rtsp.password_file}"
width = 640
height = 480
fps = 15

[relay]
port = "{self.pty.gateway_end}"
""",
        )
        self.config.write_text(merged)

    def enroll(self, name: str, images: list[Path]) -> str:
        out = cli(
            ["enroll", "--config", str(self.config), "--name", name, "--json"]
            + [str(p) for p in images]
        )
        user_id = None
        for line in out.splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                obj = json.loads(line)
                user_id = obj.get("user_id") or user_id
        assert user_id, out
        return str(user_id)

    def start_relay(self) -> None:
        self.pty.start()
        self.relay.start()

    def stop_relay(self) -> None:
        self.relay.stop()
        self.pty.stop()

    # -- the daemon -----------------------------------------------------------------------

    def start_daemon(
        self, *, extra_args: list[str] | None = None, notify: NotifyListener | None = None
    ) -> subprocess.Popen[str]:
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        if notify is not None:
            env["NOTIFY_SOCKET"] = str(notify.path)
            env["WATCHDOG_USEC"] = "2000000"
            env.pop("WATCHDOG_PID", None)
        with open(self.daemon_log, "a") as log:  # the child keeps its own copy of the fd
            self.daemon = subprocess.Popen(
                [EDGE_GATE, "run", "--config", str(self.config), *(extra_args or [])],
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
            )
        return self.daemon

    def stop_daemon(self, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> int:
        assert self.daemon is not None
        self.daemon.send_signal(sig)
        code = self.daemon.wait(timeout_s)
        self.daemon = None
        return code

    def close(self) -> None:
        if self.daemon is not None:
            self.daemon.kill()
            self.daemon.wait(5)
        with contextlib.suppress(Exception):
            self.stop_relay()
        if self.rtsp is not None:
            self.rtsp.stop()


def cli(args: list[str], check: bool = True) -> str:
    proc = subprocess.run([EDGE_GATE, *args], capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"edge-gate {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc.stdout


def mqtt_toml(mqtt: Any, site: Path) -> str:
    lines = ["", "[mqtt]"]
    for key in ("host", "port", "ca_file", "cert_file", "key_file", "topic_prefix", "gateway_id"):
        value = getattr(mqtt, key)
        if value is None:
            continue
        lines.append(f"{key} = {json.dumps(value if isinstance(value, int) else str(value))}")
    lines.append(f'outbox_file = "{site / "outbox.db"}"')
    lines.append(f'signing_key_file = "{site / "audit.key"}"')
    return "\n".join(lines) + "\n"


def merge_toml(base: str, extra: str) -> str:
    """Overlay ``extra``'s keys onto ``base`` table by table (flat tables only)."""

    def parse(text: str) -> dict[str, dict[str, str]]:
        tables: dict[str, dict[str, str]] = {}
        current = ""
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("[") and line.endswith("]"):
                current = line[1:-1].strip()
                tables.setdefault(current, {})
                continue
            key, _, value = line.partition("=")
            tables.setdefault(current, {})[key.strip()] = value.strip()
        return tables

    merged = parse(base)
    for table, kv in parse(extra).items():
        merged.setdefault(table, {}).update(kv)
    out = []
    for table, kv in merged.items():
        if table:
            out.append(f"\n[{table}]")
        out.extend(f"{k} = {v}" for k, v in kv.items())
    return "\n".join(out).strip() + "\n"


@contextlib.contextmanager
def desk(broker: MosquittoBroker) -> Iterator[DeskSubscriber]:
    with DeskSubscriber(broker, "edge-gate/#") as sub:
        yield sub
