"""Grouped commands (`liveness eval|attacks|score`, `relay sim`, `gallery keys`) and the old
top-level spellings, which keep working but are no longer listed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_gate.cli import HIDDEN_ALIASES
from edge_gate.cli.support import EXIT_CONFIG, exit_code_for
from edge_gate.errors import ConfigError, EdgeGateError, GalleryTamperedError, ImageError
from tests.cli_helpers import json_lines, run


def test_top_level_help_lists_groups_not_old_names() -> None:
    """`edge-gate --help` shows liveness, relay, gallery and none of the hidden aliases."""
    r = run("--help")
    assert r.exit_code == 0
    listed = {
        line.split()[0] for line in r.output.split("Commands:")[1].splitlines() if line.strip()
    }
    assert {"liveness", "relay", "gallery", "enroll"} <= listed
    assert listed.isdisjoint(HIDDEN_ALIASES)


@pytest.mark.parametrize(
    ("group", "sub"),
    [("liveness", "eval"), ("liveness", "attacks"), ("liveness", "score"), ("relay", "sim"),
     ("gallery", "keys")],
)  # fmt: skip
def test_groups_list_their_commands(group: str, sub: str) -> None:
    """Each group's --help lists the grouped command."""
    r = run(group, "--help")
    assert r.exit_code == 0, r.output
    assert f"  {sub} " in r.output


@pytest.mark.parametrize(("old", "new"), list(HIDDEN_ALIASES.items()))
def test_old_and_new_spelling_have_the_same_options(old: str, new: str) -> None:
    """`edge-gate OLD --help` and `edge-gate NEW --help` describe the same command."""
    a, b = run(old, "--help"), run(*new.split(), "--help")
    assert a.exit_code == b.exit_code == 0
    options = [
        line.split()[0] for line in a.output.split("Options:")[1].splitlines() if line.strip()
    ]
    assert options == [line.split()[0] for line in b.output.split("Options:")[1].splitlines()
                       if line.strip()]  # fmt: skip


def test_relay_sim_both_spellings_fail_alike(tmp_path: Path) -> None:
    """`relay sim` and `relay-sim` run the same code: the same error for a missing key file."""
    key = str(tmp_path / "missing.key")
    a = run("relay-sim", "--port", "/dev/null", "--key-file", key)
    b = run("relay", "sim", "--port", "/dev/null", "--key-file", key)
    assert a.exit_code == b.exit_code == 1
    assert a.output == b.output
    assert "missing.key" in a.output


def test_gallery_keys_rotate_both_spellings(tmp_path: Path) -> None:
    """`gallery keys rotate` and `keys rotate` both re-encrypt the gallery under a fresh key."""
    assert run("init", str(tmp_path / "s")).exit_code == 0
    conf = str(tmp_path / "s" / "edge-gate.toml")
    first = json.loads(run("keys", "rotate", "--json", "--config", conf).output)
    second = json.loads(run("gallery", "keys", "rotate", "--json", "--config", conf).output)
    assert second["old_key_id"] == first["new_key_id"]
    assert second["new_key_id"] != first["new_key_id"]
    assert run("gallery", "verify", "--config", conf).exit_code == 0


def test_liveness_score_both_spellings(testdata: Path) -> None:
    """`liveness CLIP` (old) and `liveness score CLIP` give the same verdict line."""
    clip = str(testdata / "pyfeat" / "single_face.mp4")
    a = run("liveness", "--json", "--max-frames", "20", clip)
    b = run("liveness", "score", "--json", "--max-frames", "20", clip)
    assert a.exit_code == b.exit_code
    lines_a, lines_b = json_lines(a.output), json_lines(b.output)
    assert len(lines_a) == 1
    assert lines_a == lines_b


def test_error_tree_maps_to_exit_codes() -> None:
    """One map from the exception tree to exit codes: config 78, tampered gallery 65, else 1."""
    assert exit_code_for(ConfigError("x")) == EXIT_CONFIG
    assert exit_code_for(GalleryTamperedError("x")) == 65
    assert exit_code_for(ImageError("x")) == 1
    assert exit_code_for(EdgeGateError("x")) == 1


def test_exit_on_errors_prints_one_line_and_maps_the_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The context every command wraps its work in: one stderr line naming the command, the mapped
    exit code, and a command's own extra kinds first."""
    from edge_gate.cli.support import exit_on_errors
    from edge_gate.errors import SecretFileError

    with pytest.raises(SystemExit) as info, exit_on_errors("thing"):
        raise GalleryTamperedError("record 3 fails its MAC")
    assert info.value.code == 65
    assert capsys.readouterr().err == "edge-gate thing: record 3 fails its MAC\n"
    with pytest.raises(SystemExit) as info, exit_on_errors("thing"):
        raise SecretFileError("key file missing")
    assert info.value.code == 1
    with pytest.raises(SystemExit) as info, exit_on_errors(None, ((SecretFileError, 78),)):
        raise SecretFileError("key file missing")
    assert info.value.code == EXIT_CONFIG
    assert capsys.readouterr().err.endswith("\nedge-gate: key file missing\n")
