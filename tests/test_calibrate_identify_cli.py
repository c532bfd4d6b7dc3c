"""`calibrate` refuses to recommend a threshold it cannot back (recursive --non-enrolled
search, empty folders, rule of three) and `identify` says *why* a face is not a match; real ORL
photos and the real TFLite models."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge_gate.audit.events import decode_event
from edge_gate.audit.outbox import Outbox
from edge_gate.config import load_config
from tests.cli_helpers import json_lines as _json_lines
from tests.cli_helpers import run as _run


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, testdata: Path) -> dict[str, Any]:
    """Two enrolled ORL subjects (s1, s2) and a folder of strangers s3..s40 laid out the way
    the operator had it: one subfolder per person, plus noise that must be ignored."""
    d = tmp_path_factory.mktemp("site")
    assert _run("init", str(d)).exit_code == 0
    conf = str(d / "edge-gate.toml")
    orl = testdata / "orl"
    for who in ("s1", "s2"):
        r = _run("enroll", "--config", conf, "--name", who, str(orl / who))
        assert r.exit_code == 0, r.output
    strangers = d / "strangers"
    for i in range(3, 41):  # nested one level deeper for half of them
        dest = strangers / f"s{i}" if i % 2 else strangers / "more" / f"s{i}"
        shutil.copytree(orl / f"s{i}", dest)
    (strangers / "README.txt").write_text("not a photo")
    shutil.copytree(orl / "s1", strangers / ".hidden")  # an enrolled face: must not be read
    empty = d / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "notes.txt").write_text("no photos here")
    return {"conf": conf, "orl": orl, "strangers": strangers, "empty": empty}


def test_calibrate_reads_subfolders_and_recommends(site: dict[str, Any]) -> None:
    """A folder of per-person subfolders is searched recursively: 38 strangers x 10 photos;
    FAR 1 % needs 300 impostor scores, so a threshold is recommended and no stranger reaches it."""
    r = _run("calibrate", "--json", "--config", site["conf"], "--target-far", "0.01",
             "--non-enrolled", str(site["strangers"]))  # fmt: skip
    assert r.exit_code == 0, r.output
    out = _json_lines(r.output)[-1]
    assert out["non_enrolled_faces"] == 380  # .hidden (s1) and README.txt skipped
    assert out["sufficient"] is True
    assert out["n_impostor"] >= out["n_impostor_required"] == 300
    assert out["threshold"] > out["max_impostor"] or out["measured_far"] <= 0.01
    assert out["max_impostor"] < 0.9  # s1's own photos were not taken as strangers
    assert 0 <= out["genuine_accept_rate"] <= 1
    text = _run("calibrate", "--config", site["conf"], "--target-far", "0.01",
                "--non-enrolled", str(site["strangers"]))  # fmt: skip
    assert text.exit_code == 0, text.output
    assert "380 from non-enrolled faces" in text.output
    assert "set in the config: [gallery] threshold = " in text.output


def test_calibrate_too_few_impostors_refuses(site: dict[str, Any]) -> None:
    """The operator's case: FAR 1e-3 needs 3000 impostor scores; ~400 are not enough, so no
    threshold is recommended, the count is stated, and the exit code is 1."""
    args = ["--config", site["conf"], "--target-far", "1e-3",
            "--non-enrolled", str(site["strangers"])]  # fmt: skip
    r = _run("calibrate", "--json", *args)
    assert r.exit_code == 1, r.output
    out = _json_lines(r.output)[-1]
    assert out["sufficient"] is False
    assert out["threshold"] is None
    assert out["n_impostor_required"] == 3000
    assert out["non_enrolled_faces"] == 380
    assert {"margin", "target_far", "n_impostor", "n_genuine", "max_impostor", "current"} <= set(
        out
    )
    r = _run("calibrate", *args)
    assert r.exit_code == 1
    assert f"have {out['n_impostor']}, need at least 3000" in r.output
    assert "no threshold recommended" in r.output
    assert "set in the config" not in r.output
    # gallery scores alone (the 20 cross-identity scores that gave 0.193) never suffice
    r = _run("calibrate", "--json", "--config", site["conf"], "--target-far", "1e-3")
    assert r.exit_code == 1
    assert _json_lines(r.output)[-1]["sufficient"] is False


def test_calibrate_folder_without_images_is_exit_2(site: dict[str, Any]) -> None:
    """A --non-enrolled folder with no image anywhere below it is an error, not 0 faces."""
    r = _run("calibrate", "--config", site["conf"], "--non-enrolled", str(site["empty"]))
    assert r.exit_code == 2
    assert "no image files found" in r.output
    assert str(site["empty"]) in r.output


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory, testdata: Path) -> dict[str, Any]:
    """The same s1 photos enrolled twice under two names (--force, the duplicate enrollment an
    operator can make) and s2 once: another s1 photo scores the same, well above the threshold,
    for both s1 entries, so the margin rule fails."""
    d = tmp_path_factory.mktemp("twins")
    assert _run("init", str(d)).exit_code == 0
    conf = str(d / "edge-gate.toml")
    s1 = testdata / "orl" / "s1"
    for name in ("One", "Two"):
        r = _run("enroll", "--config", conf, "--force", "--name", name,
                 *[str(s1 / f"{p}.pgm") for p in ("1", "2", "3")])  # fmt: skip
        assert r.exit_code == 0, r.output
        # the second enrollment overrides the duplicate check: the admin is told what follows
        assert ("looks like u_" in r.output) == (name == "Two")
    cfg = load_config(d / "edge-gate.toml")
    with Outbox(cfg.mqtt.outbox_file, cfg.mqtt.outbox_max_events) as outbox:
        reasons = [decode_event(e.payload)["reason"] for e in outbox.pending(limit=100)]
    assert reasons[0] == "enrolled"
    assert reasons[1].startswith("enrolled_despite_duplicate:u_")
    r = _run("enroll", "--config", conf, "--name", "s2", str(testdata / "orl" / "s2"))
    assert r.exit_code == 0, r.output
    grey = cv2.imread(str(s1 / "10.pgm"), cv2.IMREAD_GRAYSCALE)
    assert grey is not None
    blurred = d / "blurred.png"
    cv2.imwrite(str(blurred), np.asarray(cv2.GaussianBlur(grey, (0, 0), 4.0), dtype=np.uint8))
    return {"conf": conf, "orl": testdata / "orl", "blurred": blurred}


def test_identify_reason_per_face(twins: dict[str, Any]) -> None:
    """match → reason null; the s1 photo (score ≥ threshold, margin failed) → unknown with
    reason ambiguous; a stranger → below_threshold; a blurred photo → rejected_quality, blurry."""
    orl = twins["orl"]
    photos = [orl / "s2" / "10.pgm", orl / "s1" / "10.pgm", orl / "s30" / "1.pgm", twins["blurred"]]
    r = _run("identify", "--json", "--config", twins["conf"], *map(str, photos))
    assert r.exit_code == 0, r.output
    faces = [line["faces"][0] for line in _json_lines(r.output)]
    assert all("reason" in f for f in faces)
    match, ambiguous, stranger, blurry = faces
    threshold = load_config(Path(twins["conf"])).gallery.threshold
    assert (match["decision"], match["reason"]) == ("match", None)
    assert (ambiguous["decision"], ambiguous["reason"]) == ("unknown", "ambiguous")
    assert ambiguous["score"] >= threshold
    assert ambiguous["margin"] < 0.05
    assert ambiguous["user_id"] is None
    assert (stranger["decision"], stranger["reason"]) == ("unknown", "below_threshold")
    assert stranger["score"] < threshold
    assert (blurry["decision"], blurry["reason"]) == ("rejected_quality", "blurry")
    assert "sharp" in blurry["detail"]


def test_identify_text_shows_reason(twins: dict[str, Any]) -> None:
    """The plain output names the reason too."""
    orl = twins["orl"]
    r = _run("identify", "--config", twins["conf"], str(orl / "s1" / "10.pgm"),
             str(orl / "s30" / "1.pgm"), str(twins["blurred"]))  # fmt: skip
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert "unknown (ambiguous) score" in lines[0]
    assert "margin" in lines[0]
    assert "unknown (below_threshold) score" in lines[1]
    assert "rejected_quality (blurry)" in lines[2]


def test_identify_takes_folders(twins: dict[str, Any], tmp_path: Path) -> None:
    """A folder stands for its images (sorted), as for enroll; an empty folder is one error
    line (exit 1), not silence."""
    r = _run("identify", "--json", "--config", twins["conf"], str(twins["orl"] / "s2"))
    assert r.exit_code == 0, r.output
    lines = _json_lines(r.output)
    assert [Path(line["path"]).name for line in lines] == sorted(
        p.name for p in (twins["orl"] / "s2").glob("*.pgm")
    )
    assert sum(line["faces"][0]["decision"] == "match" for line in lines) >= 9
    empty = tmp_path / "empty"
    empty.mkdir()
    r = _run("identify", "--json", "--config", twins["conf"], str(empty))
    assert r.exit_code == 1
    assert _json_lines(r.output) == [
        {
            "path": str(empty),
            "faces": [],
            "error": "no image files in this folder (subfolders are not searched)",
        }
    ]
