"""Capture benchmark: 640x480 @ 15 fps H.264 over RTSP costs little CPU and keeps the rate."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_gate_dev.bench.capture import bench_capture

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def test_capture_cpu_at_640x480_15fps(testdata: Path) -> None:
    """Decoding a real 640x480 @ 15 fps stream takes a small share of one core.

    The benchmark reports the real figure (1.4-1.8 % of one x86 core measured here); the
    assertion is loose because the test machine is a loaded 2-core box.
    """
    result = bench_capture(testdata / "pyfeat" / "WolfgangLanger_Pexels.mp4", seconds=4.0)
    assert (result.width, result.height) == (640, 480)
    assert result.measured_fps >= 12.0
    assert result.process_cpu_percent < 40.0
    assert 0.0 <= result.capture_thread_cpu_percent <= result.process_cpu_percent + 1.0


def test_rtsps_relay_costs_little(testdata: Path) -> None:
    """rtsps through the verified loopback relay keeps the rate; the relay thread itself takes
    a small share of a core (about 1 % measured here at 640x480 @ 15 fps)."""
    result = bench_capture(testdata / "pyfeat" / "WolfgangLanger_Pexels.mp4", seconds=4.0, tls=True)
    assert result.tls
    assert result.measured_fps >= 12.0
    assert 0.0 < result.relay_thread_cpu_percent < 10.0
    assert result.process_cpu_percent < 40.0
