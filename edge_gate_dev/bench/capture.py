"""Benchmark: CPU the capture thread costs for a 640x480 @ 15 fps H.264 RTSP(S) stream.

The stream comes from GStreamer's RTSP server (``deploy/rtsp_test_server.py``, run by the
system python) re-encoding a real clip to the requested size and rate, on a free local port.
CPU is measured for the whole process (capture thread plus FFmpeg's decoder threads; the
consumer only takes frames) and for the capture thread alone, in % of one core. With
``tls=True`` the server speaks rtsps with a throw-away CA and the figures include the loopback
TLS relay (``capture.tls_relay``), whose own thread is also reported.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import selectors
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edge_gate.capture.frame import Frame
from edge_gate.capture.latest import LatestFrame
from edge_gate.capture.rtsp_check import TlsSettings
from edge_gate.capture.sources import Credentials, SourceSpec, open_source
from edge_gate.capture.thread import CaptureThread
from edge_gate.capture.tls_relay import RELAY_THREAD_NAME
from edge_gate.capture.url import parse_source
from edge_gate.errors import CaptureError
from edge_gate.fsutil import atomic_write
from edge_gate_dev.pki import CA, free_port, new_ca, new_leaf, write_cert, write_key

DEFAULT_SERVER_SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "rtsp_test_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"
BENCH_CREDENTIALS = Credentials("bench", secrets.token_urlsafe(16))


@dataclass(frozen=True)
class CaptureBench:
    width: int
    height: int
    target_fps: int
    seconds: float
    frames: int
    measured_fps: float
    process_cpu_percent: float  # of one core: capture thread + FFmpeg decoder threads
    capture_thread_cpu_percent: float  # of one core: the capture thread alone
    dropped: int
    tls: bool = False
    relay_thread_cpu_percent: float = 0.0  # of one core: the rtsps relay thread (tls only)


@contextlib.contextmanager
def _server(
    script: Path, clip: Path, width: int, height: int, fps: int, tls_dir: Path | None
) -> Iterator[str]:
    port = free_port()
    argv = [SYSTEM_PYTHON, str(script), "--clip", str(clip), "--port", str(port)]
    argv += ["--width", str(width), "--height", str(height), "--fps", str(fps)]
    if tls_dir is not None:
        cert, key = new_leaf("127.0.0.1", new_ca_file(tls_dir), server_names=("127.0.0.1",))
        cert_file, key_file = tls_dir / "server.pem", tls_dir / "server.key"
        write_cert(cert_file, cert)
        write_key(key_file, key)
        argv += ["--tls-cert", str(cert_file), "--tls-key", str(key_file)]
        # GStreamer's server authenticates every rtsps client
        password_file = tls_dir / "password"
        atomic_write(password_file, BENCH_CREDENTIALS.password.encode())
        argv += ["--user", BENCH_CREDENTIALS.username, "--password-file", str(password_file)]
    proc = subprocess.Popen(  # noqa: S603 - fixed argv of our own script, no shell
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        if proc.stdout is None:
            raise CaptureError("RTSP bench server: no stdout")
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            if not sel.select(20.0):
                raise CaptureError("RTSP bench server did not start within 20 s")
        line = proc.stdout.readline()
        if not line.startswith(b"READY"):
            raise CaptureError(f"RTSP bench server failed to start: {line!r}")
        yield f"{'rtsps' if tls_dir is not None else 'rtsp'}://127.0.0.1:{port}/cam"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()


def new_ca_file(directory: Path) -> CA:
    """A throw-away CA whose certificate is ``directory/ca.pem``."""
    ca = new_ca("edge-gate bench CA")
    write_cert(directory / "ca.pem", ca[0])
    return ca


def _thread_cpu_s(native_id: int) -> float:
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def bench_capture(
    clip: Path,
    *,
    seconds: float = 10.0,
    width: int = 640,
    height: int = 480,
    fps: int = 15,
    server_script: Path = DEFAULT_SERVER_SCRIPT,
    tls: bool = False,
) -> CaptureBench:
    """Stream ``clip`` at ``width``x``height`` @ ``fps`` over RTSP(S) and measure capture CPU."""
    with contextlib.ExitStack() as stack:
        tls_dir = Path(stack.enter_context(tempfile.TemporaryDirectory())) if tls else None
        url = stack.enter_context(_server(server_script, clip, width, height, fps, tls_dir))
        spec = SourceSpec(
            location=parse_source(url),
            width=width,
            height=height,
            fps=fps,
            tls=TlsSettings(tls_dir / "ca.pem" if tls_dir else None),
            credentials=BENCH_CREDENTIALS if tls_dir else None,
        )
        slot: LatestFrame[Frame] = LatestFrame()
        capture = CaptureThread(lambda wait: open_source(spec, wait), slot, description=url)
        capture.start()
        try:
            if slot.get(15.0) is None:
                raise CaptureError("bench: no frame from the RTSP server")
            warmup_end = time.monotonic() + 1.0
            while time.monotonic() < warmup_end:
                slot.get(0.2)
            native_id = capture.native_id
            relay_id = _relay_thread_id()
            frames0 = capture.status().frames
            cpu0 = time.process_time()
            tcpu0 = _thread_cpu_s(native_id) if native_id else 0.0
            rcpu0 = _thread_cpu_s(relay_id) if relay_id else 0.0
            t0 = time.monotonic()
            while time.monotonic() - t0 < seconds:
                slot.get(0.2)
            elapsed = time.monotonic() - t0
            cpu = time.process_time() - cpu0
            tcpu = (_thread_cpu_s(native_id) - tcpu0) if native_id else 0.0
            rcpu = (_thread_cpu_s(relay_id) - rcpu0) if relay_id else 0.0
            frames = capture.status().frames - frames0
            dropped = slot.stats().dropped
        finally:
            capture.stop(5.0)
    return CaptureBench(
        width=width,
        height=height,
        target_fps=fps,
        seconds=round(elapsed, 2),
        frames=frames,
        measured_fps=round(frames / elapsed, 2),
        process_cpu_percent=round(100.0 * cpu / elapsed, 1),
        capture_thread_cpu_percent=round(100.0 * tcpu / elapsed, 1),
        dropped=dropped,
        tls=tls,
        relay_thread_cpu_percent=round(100.0 * rcpu / elapsed, 2),
    )


def _relay_thread_id() -> int | None:
    for thread in threading.enumerate():
        if thread.name == RELAY_THREAD_NAME and thread.native_id is not None:
            return thread.native_id
    return None
