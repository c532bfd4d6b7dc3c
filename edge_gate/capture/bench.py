"""Benchmark: CPU the capture thread costs for a 640x480 @ 15 fps H.264 RTSP stream.

The stream comes from GStreamer's RTSP server (``deploy/rtsp_test_server.py``, run by the
system python) re-encoding a real clip to the requested size and rate, on a free local port.
CPU is measured for the whole process (capture thread plus FFmpeg's decoder threads; the
consumer only takes frames) and for the capture thread alone, in % of one core.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edge_gate.capture.frame import Frame
from edge_gate.capture.latest import LatestFrame
from edge_gate.capture.sources import SourceSpec, open_source
from edge_gate.capture.thread import CaptureThread
from edge_gate.capture.url import parse_source
from edge_gate.devpki import free_port
from edge_gate.errors import CaptureError

DEFAULT_SERVER_SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "rtsp_test_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"


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


@contextlib.contextmanager
def _server(script: Path, clip: Path, width: int, height: int, fps: int) -> Iterator[str]:
    port = free_port()
    argv = [SYSTEM_PYTHON, str(script), "--clip", str(clip), "--port", str(port)]
    argv += ["--width", str(width), "--height", str(height), "--fps", str(fps)]
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
        yield f"rtsp://127.0.0.1:{port}/cam"
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
) -> CaptureBench:
    """Stream ``clip`` at ``width``x``height`` @ ``fps`` over RTSP and measure capture CPU."""
    with _server(server_script, clip, width, height, fps) as url:
        spec = SourceSpec(location=parse_source(url), width=width, height=height, fps=fps)
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
            frames0 = capture.status().frames
            cpu0 = time.process_time()
            tcpu0 = _thread_cpu_s(native_id) if native_id else 0.0
            t0 = time.monotonic()
            while time.monotonic() - t0 < seconds:
                slot.get(0.2)
            elapsed = time.monotonic() - t0
            cpu = time.process_time() - cpu0
            tcpu = (_thread_cpu_s(native_id) - tcpu0) if native_id else 0.0
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
    )
