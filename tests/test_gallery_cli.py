"""Admin CLI end to end on real photos and the real TFLite models: init → enroll → identify →
users → keys rotate → revoke, audit events in the outbox, tampering fails closed (exit 65)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from edge_gate.audit.events import decode_event
from edge_gate.audit.outbox import Outbox
from edge_gate.config import load_config
from tests.cli_helpers import json_lines as _json_lines
from tests.cli_helpers import run as _run

S1_ENROLL = ["1.pgm", "2.pgm", "3.pgm"]
S1_PROBE = "10.pgm"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, testdata: Path) -> dict[str, Any]:
    """An initialised site with two enrolled ORL subjects."""
    d = tmp_path_factory.mktemp("site")
    assert _run("init", str(d)).exit_code == 0
    conf = str(d / "edge-gate.toml")
    orl = testdata / "orl"
    r1 = _run("enroll", "--config", conf, "--json", "--name", "Robert'); DROP TABLE users;--",
              *[str(orl / "s1" / f) for f in S1_ENROLL])  # fmt: skip
    assert r1.exit_code == 0, r1.output
    r2 = _run("enroll", "--config", conf, "--name", "Алёна 李", str(orl / "s2"))
    assert r2.exit_code == 0, r2.output
    return {
        "dir": d,
        "conf": conf,
        "orl": orl,
        "s1": _json_lines(r1.output)[-1]["user_id"],
        "s2": r2.output.strip().splitlines()[-1],
        "testdata": testdata,
    }


def test_enroll_reports_user_id_and_per_image_verdicts(site: dict[str, Any]) -> None:
    """Enrollment prints the pseudonymous id; JSON lists every image with accepted/reason."""
    assert site["s1"].startswith("u_")
    assert site["s2"].startswith("u_")
    listing = _json_lines(_run("users", "list", "--json", "--config", site["conf"]).output)
    names = {p["user_id"]: p["name"] for p in listing}
    assert names == {site["s1"]: "Robert'); DROP TABLE users;--", site["s2"]: "Алёна 李"}


def test_enroll_rejections_have_reasons(site: dict[str, Any], tmp_path: Path) -> None:
    """No face, several faces and unreadable files are each rejected with a clear reason."""
    bad = tmp_path / "not-an-image.jpg"
    bad.write_bytes(b"\xff\xd8 definitely not a jpeg")
    data = site["testdata"]
    r = _run(
        "enroll", "--config", site["conf"], "--json", "--name", "Nobody",
        str(data / "skimage" / "chelsea.png"), str(data / "dlib_faces" / "bald_guys.jpg"), str(bad),
    )  # fmt: skip
    assert r.exit_code == 1
    report = _json_lines(r.output)[-1]
    codes = [img["code"] for img in report["images"]]
    assert codes == ["no_face", "several_faces", "unreadable"]
    assert all(img["reason"] for img in report["images"])
    assert report["user_id"] is None


def test_photo_of_someone_else_in_batch_rejected(site: dict[str, Any]) -> None:
    """A stranger's photo mixed into a person's photos is rejected as inconsistent."""
    orl = site["orl"]
    r = _run(
        "enroll", "--config", site["conf"], "--json", "--name", "Five",
        *[str(orl / "s5" / f) for f in ("1.pgm", "2.pgm", "3.pgm")], str(orl / "s6" / "1.pgm"),
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    report = _json_lines(r.output)[-1]
    assert [img.get("code") for img in report["images"]] == [None, None, None, "inconsistent"]
    assert report["accepted"] == 3
    assert _run("users", "revoke", "--config", site["conf"], report["user_id"]).exit_code == 0


def test_duplicate_refused_unless_forced(site: dict[str, Any]) -> None:
    """The same face under another name is refused (names the match); --force overrides."""
    img = str(site["orl"] / "s1" / "8.pgm")
    r = _run("enroll", "--config", site["conf"], "--name", "Impostor", img)
    assert r.exit_code == 1
    assert site["s1"] in r.output
    r = _run("enroll", "--config", site["conf"], "--force", "--name", "Twin", img)
    assert r.exit_code == 0, r.output
    twin = r.output.strip().splitlines()[-1]
    assert _run("users", "revoke", "--config", site["conf"], twin).exit_code == 0


def test_identify_json_lines(site: dict[str, Any], tmp_path: Path) -> None:
    """identify --json: one object per image; enrolled → match, stranger → unknown, bad file →
    error and exit 1."""
    bad = tmp_path / "x.png"
    bad.write_bytes(b"nope")
    r = _run("identify", "--json", "--config", site["conf"], str(site["orl"] / "s1" / S1_PROBE),
             str(site["orl"] / "s30" / "1.pgm"), str(bad))  # fmt: skip
    assert r.exit_code == 1
    lines = _json_lines(r.output)
    assert [set(x) for x in lines] == [{"path", "faces", "error"}] * 3
    face = lines[0]["faces"][0]
    assert set(face) >= {"box", "user_id", "name", "score", "margin", "decision"}
    assert face["decision"] == "match"
    assert face["user_id"] == site["s1"]
    assert lines[1]["faces"][0]["decision"] == "unknown"
    assert lines[1]["faces"][0]["user_id"] is None
    assert lines[2]["error"]


def test_users_show_rename(site: dict[str, Any]) -> None:
    """show and rename work with odd names; rename of an unknown id fails."""
    r = _run("users", "rename", "--config", site["conf"], site["s2"], "محمد; DROP TABLE meta")
    assert r.exit_code == 0, r.output
    shown = json.loads(_run("users", "show", "--json", "--config", site["conf"], site["s2"]).output)
    assert shown["name"] == "محمد; DROP TABLE meta"
    assert shown["templates"] >= 3
    cfg = load_config(Path(site["conf"]))
    with Outbox(cfg.mqtt.outbox_file, cfg.mqtt.outbox_max_events) as outbox:
        events = [decode_event(e.payload) for e in outbox.pending(limit=1000)]
    # a rename is its own event type: a desk counting enrollments does not count renames
    assert [e["subject"] for e in events if e["type"] == "gallery.renamed"] == [site["s2"]]
    assert not [e for e in events if e["type"] == "gallery.enrolled" and e["reason"] == "renamed"]
    assert _run("users", "rename", "--config", site["conf"], "u_aaaaaaaaaaaa", "x").exit_code == 1
    r = _run("users", "revoke", "--json", "--config", site["conf"], "u_aaaaaaaaaaaa")
    assert r.exit_code == 1
    assert _json_lines(r.output) == [
        {"user_id": "u_aaaaaaaaaaaa", "revoked": False, "error": "no such user"}
    ]
    assert _run("users", "show", "--config", site["conf"], "'; --").exit_code == 1


def test_calibrate_json(site: dict[str, Any]) -> None:
    """calibrate prints a threshold and the expected genuine accept rate (FAR 1 % needs 300
    impostor scores: 34 non-enrolled ORL subjects, 340 faces)."""
    strangers = [str(site["orl"] / f"s{i}") for i in range(7, 41)]
    r = _run("calibrate", "--json", "--config", site["conf"], "--target-far", "0.01",
             *[a for d in strangers for a in ("--non-enrolled", d)])  # fmt: skip
    assert r.exit_code == 0, r.output
    out = _json_lines(r.output)[-1]
    assert out["sufficient"] is True
    assert out["non_enrolled_faces"] == 340
    assert -1 <= out["threshold"] <= 1
    assert 0 <= out["genuine_accept_rate"] <= 1


def test_rotate_then_revoke_then_unknown_with_audit(site: dict[str, Any]) -> None:
    """keys rotate keeps everyone; revoke makes the person unknown; events are in the outbox."""
    conf = site["conf"]
    r = _run("keys", "rotate", "--json", "--config", conf)
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["new_key_id"] != json.loads(r.output)["old_key_id"]
    assert _run("gallery", "verify", "--config", conf).exit_code == 0
    probe = str(site["orl"] / "s1" / S1_PROBE)
    before = _json_lines(_run("identify", "--json", "--config", conf, probe).output)[0]
    assert before["faces"][0]["user_id"] == site["s1"]
    assert _run("users", "revoke", "--config", conf, site["s1"]).exit_code == 0
    after = _json_lines(_run("identify", "--json", "--config", conf, probe).output)[0]
    assert after["faces"][0]["decision"] == "unknown"
    cfg = load_config(Path(conf))
    with Outbox(cfg.mqtt.outbox_file, cfg.mqtt.outbox_max_events) as outbox:
        events = [decode_event(e.payload) for e in outbox.pending(limit=100)]
    kinds = [(e["type"], e["subject"]) for e in events]
    assert ("gallery.enrolled", site["s1"]) in kinds
    assert ("gallery.revoked", site["s1"]) in kinds
    rotated = json.loads(r.output)
    assert [e["reason"] for e in events if e["type"] == "gallery.keys_rotated"] == [
        f"rotated:{rotated['old_key_id']}->{rotated['new_key_id']}"
    ]
    assert all("name" not in e for e in events)  # names stay local unless opted in
    assert all(e.get("sig") for e in events)


def test_tampering_fails_closed(site: dict[str, Any], tmp_path: Path) -> None:
    """A deleted row makes verify, identify and enroll exit 65 with a clear message and a
    gallery.tampered audit event."""
    cfg = load_config(Path(site["conf"]))
    db = cfg.gallery.db_file
    backup = tmp_path / "backup.db"
    backup.write_bytes(db.read_bytes())
    try:
        conn = sqlite3.connect(db)
        conn.execute("DELETE FROM records WHERE id = ?", (site["s2"],))
        conn.commit()
        conn.close()
        probe = str(site["orl"] / "s2" / "1.pgm")
        for args in (
            ["gallery", "verify"],
            ["identify", probe],
            ["users", "list"],
            ["enroll", "--name", "X", str(site["orl"] / "s9" / "1.pgm")],
        ):
            r = _run(*args, "--config", site["conf"])
            assert r.exit_code == 65, (args, r.output)
            assert "GALLERY INTEGRITY FAILURE" in r.output
            assert "deleted" in r.output
        with Outbox(cfg.mqtt.outbox_file, cfg.mqtt.outbox_max_events) as outbox:
            events = [decode_event(e.payload) for e in outbox.pending(limit=1000)]
        tampered = [e for e in events if e["type"] == "gallery.tampered"]
        assert len(tampered) >= 4
        assert "deleted" in tampered[-1]["detail"]
    finally:
        db.write_bytes(backup.read_bytes())
    assert _run("gallery", "verify", "--config", site["conf"]).exit_code == 0


@pytest.mark.parametrize(
    ("bad", "code_point"),
    [
        ("Sal\udcff", "U+DCFF"),
        ("Eve\u202egpj.exe", "U+202E"),
        ("Ann\u2028Lee", "U+2028"),
        ("Bo\u200bb", "U+200B"),
    ],
)
def test_enroll_refuses_bad_names_before_any_image_is_analysed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str, code_point: str
) -> None:
    """A lone surrogate (`--name $'Sal\\xff'` from a non-UTF-8 terminal) or an invisible
    character is refused up front with the code point named: no model is loaded, no image read."""
    import edge_gate.cli.enroll_cmd
    import edge_gate.gallery.images

    def boom(*_: object, **__: object) -> None:
        raise AssertionError("images analysed before the name was checked")

    monkeypatch.setattr(edge_gate.cli.enroll_cmd, "face_pipeline", boom)
    monkeypatch.setattr(edge_gate.gallery.images, "examine_for_enrollment", boom)
    assert _run("init", str(tmp_path)).exit_code == 0
    conf = str(tmp_path / "edge-gate.toml")
    r = _run("enroll", "--config", conf, "--name", bad, str(tmp_path / "photo.jpg"))
    assert r.exit_code == 1, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert "--name:" in r.output
    assert code_point in r.output


def test_users_rename_refuses_bad_names(site: dict[str, Any]) -> None:
    """rename applies the same rules; the stored name stays unchanged."""
    show = ("users", "show", "--json", "--config", site["conf"], site["s2"])  # s1 gets revoked
    before = json.loads(_run(*show).output)
    for bad in ("Sal\udcff", "Eve\u202egpj.exe", "Ann\u2029Lee"):
        r = _run("users", "rename", "--config", site["conf"], site["s2"], bad)
        assert r.exit_code == 1, r.output
        assert isinstance(r.exception, SystemExit), r.exception
        assert "new name:" in r.output
        assert "U+" in r.output
    after = json.loads(_run(*show).output)
    assert after["name"] == before["name"]


def test_no_gallery_change_without_a_working_audit_trail(
    site: dict[str, Any], tmp_path: Path
) -> None:
    """A damaged outbox: enroll, rename and revoke refuse up front (exit 1, clear message) and
    the gallery is exactly as before: no change goes unrecorded."""
    cfg = load_config(Path(site["conf"]))
    outbox = cfg.mqtt.outbox_file
    backup = tmp_path / "outbox.backup"
    backup.write_bytes(outbox.read_bytes())
    before = _run("users", "list", "--json", "--config", site["conf"]).output
    try:
        outbox.write_bytes(b"this is not an SQLite database" * 100)
        for args in (
            ["enroll", "--name", "Z", str(site["orl"] / "s9" / "1.pgm")],
            ["users", "rename", site["s1"], "Other"],
            ["users", "revoke", site["s2"]],
        ):
            r = _run(*args, "--config", site["conf"])
            assert r.exit_code == 1, (args, r.output)
            assert "outbox" in r.output, r.output
            assert "Traceback" not in r.output
    finally:
        outbox.write_bytes(backup.read_bytes())
    assert _run("users", "list", "--json", "--config", site["conf"]).output == before
