"""deploy/install.sh and uninstall.sh against a scratch root: layout, modes, keys, idempotency."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from edge_gate.audit.signing import parse_signing_key, public_key_pem
from edge_gate.config import validate_config_text
from edge_gate.door.keys import parse_key
from edge_gate.gallery.keyfile import decode_keyring

REPO = Path(__file__).resolve().parent.parent
INSTALL = REPO / "deploy" / "install.sh"
UNINSTALL = REPO / "deploy" / "uninstall.sh"
KEYS = ("gallery.key", "relay.key", "audit.key")
OPTIONAL = ("mqtt.key", "mqtt.password", "camera.username", "camera.password")
IS_ROOT = os.geteuid() == 0

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed"),
]


def run(script: Path, root: Path, *args: str) -> str:
    proc = subprocess.run(
        ["bash", str(script), "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def install(root: Path) -> str:
    return run(INSTALL, root, "--no-venv", "--source", str(REPO))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def account(root: Path) -> tuple[int, int]:
    """uid and gid of edge-gate as written into the scratch root's passwd/group."""
    users = [line.split(":") for line in (root / "etc/passwd").read_text().splitlines()]
    groups = [line.split(":") for line in (root / "etc/group").read_text().splitlines()]
    entries = [u for u in users if u[0] == "edge-gate"]
    group_entries = [g for g in groups if g[0] == "edge-gate"]
    assert len(entries) == 1
    assert len(group_entries) == 1
    user = entries[0]
    assert user[5] == "/var/lib/edge-gate"
    assert user[6] == "/usr/sbin/nologin"
    assert user[3] == group_entries[0][2]
    uid, gid = int(user[2]), int(user[3])
    assert 100 <= uid < 1000  # a system account
    return uid, gid


def digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()}


def check_layout(root: Path) -> None:
    uid, gid = account(root)
    expected = {
        "etc/edge-gate": (0o750, 0, gid),
        "etc/edge-gate/credentials": (0o700, 0, 0),
        "var/lib/edge-gate": (0o700, uid, gid),
        "etc/edge-gate/edge-gate.toml": (0o640, 0, gid),
        "etc/edge-gate/audit.pub": (0o644, 0, 0),
        "etc/systemd/system/edge-gate.service": (0o644, 0, 0),
        "etc/udev/rules.d/99-edge-gate.rules": (0o644, 0, 0),
    }
    for name in (*KEYS, *OPTIONAL):
        expected[f"etc/edge-gate/credentials/{name}"] = (0o600, 0, 0)
    for rel, (want_mode, want_uid, want_gid) in expected.items():
        path = root / rel
        assert mode(path) == want_mode, f"{rel}: {mode(path):o}"
        if IS_ROOT:
            st = path.stat()
            assert (st.st_uid, st.st_gid) == (want_uid, want_gid), rel
    # Parents made on the way must stay traversable for the service user.
    for rel in ("etc", "var", "var/lib", "opt", "usr/share/edge-gate/models"):
        assert mode(root / rel) & 0o005 == 0o005, rel
    assert (root / "etc/systemd/system/edge-gate.service").read_bytes() == (
        REPO / "systemd/edge-gate.service"
    ).read_bytes()
    shipped_models = sorted(p.name for p in (REPO / "models").glob("*.tflite"))
    installed_models = sorted(
        p.name for p in (root / "usr/share/edge-gate/models").glob("*.tflite")
    )
    assert installed_models == shipped_models


def check_keys(root: Path) -> None:
    creds = root / "etc/edge-gate/credentials"
    ring = decode_keyring((creds / "gallery.key").read_bytes(), "gallery.key")
    assert len(ring.keys) == 1
    assert len(parse_key((creds / "relay.key").read_bytes())) == 32
    signing_key = parse_signing_key((creds / "audit.key").read_bytes())
    published = serialization.load_pem_public_key((root / "etc/edge-gate/audit.pub").read_bytes())
    assert public_key_pem(signing_key) == published.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for name in OPTIONAL:
        assert (creds / name).read_bytes() == b""


def test_install_twice_is_idempotent(tmp_path: Path) -> None:
    """A second run changes nothing: same account, same keys, modes re-applied, no duplicates."""
    root = tmp_path / "root"
    install(root)
    check_layout(root)
    check_keys(root)
    creds = root / "etc/edge-gate/credentials"
    first_keys = digests(creds)
    first_account = account(root)
    cfg, problems = validate_config_text((root / "etc/edge-gate/edge-gate.toml").read_text())
    assert problems == []
    assert cfg is not None

    (creds / "relay.key").chmod(0o644)  # an operator's slip; the next run tightens it again
    install(root)
    check_layout(root)
    assert digests(creds) == first_keys
    assert account(root) == first_account


def test_operator_edits_survive_reinstall(tmp_path: Path) -> None:
    """An edited config, edited udev ids and replaced secrets are never overwritten."""
    root = tmp_path / "root"
    install(root)
    config = root / "etc/edge-gate/edge-gate.toml"
    config.write_text('[policy]\ndoor_id = "lobby"\n')
    rules = root / "etc/udev/rules.d/99-edge-gate.rules"
    rules.write_text(rules.read_text().replace('"0403"', '"10c4"'))
    password = root / "etc/edge-gate/credentials/camera.password"
    password.write_bytes(b"s3cret")

    out = install(root)
    assert config.read_text() == '[policy]\ndoor_id = "lobby"\n'
    assert (root / "etc/edge-gate/edge-gate.toml.example").read_bytes() == (
        REPO / "deploy/edge-gate.toml"
    ).read_bytes()
    assert '"10c4"' in rules.read_text()
    assert (rules.parent / "99-edge-gate.rules.dist").read_bytes() == (
        REPO / "udev/99-edge-gate.rules"
    ).read_bytes()
    assert "kept your /etc/udev/rules.d/99-edge-gate.rules" in out
    assert password.read_bytes() == b"s3cret"
    assert mode(password) == 0o600


def test_uninstall_keeps_data_and_purge_removes_it(tmp_path: Path) -> None:
    """Uninstall removes the software but keeps config, keys and state; --purge removes all."""
    root = tmp_path / "root"
    install(root)
    state = root / "var/lib/edge-gate/gallery.db"
    state.write_bytes(b"gallery")
    keys_before = digests(root / "etc/edge-gate/credentials")

    run(UNINSTALL, root)
    for rel in (
        "etc/systemd/system/edge-gate.service",
        "etc/udev/rules.d/99-edge-gate.rules",
        "opt/edge-gate",
        "usr/share/edge-gate",
    ):
        assert not (root / rel).exists(), rel
    assert state.read_bytes() == b"gallery"
    assert (root / "etc/edge-gate/edge-gate.toml").exists()
    account(root)

    install(root)  # a reinstall picks up the old keys and gallery
    assert digests(root / "etc/edge-gate/credentials") == keys_before
    assert state.read_bytes() == b"gallery"

    run(UNINSTALL, root, "--purge")
    assert not (root / "etc/edge-gate").exists()
    assert not (root / "var/lib/edge-gate").exists()
    assert "edge-gate:" not in (root / "etc/passwd").read_text()
    assert "edge-gate:" not in (root / "etc/group").read_text()
    run(UNINSTALL, root, "--purge")  # nothing left to remove is not an error


def test_existing_accounts_are_respected(tmp_path: Path) -> None:
    """In a root whose passwd already uses 999, edge-gate gets another free system id."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nsvc:x:999:999::/:/bin/false\n")
    (root / "etc/group").write_text("root:x:0:\nsvc:x:999:\n")
    install(root)
    uid, gid = account(root)
    assert uid != 999
    assert gid != 999
    assert "svc:x:999:999" in (root / "etc/passwd").read_text()


def test_unknown_option_is_refused(tmp_path: Path) -> None:
    """A typo in an option stops the script before it touches anything."""
    proc = subprocess.run(
        ["bash", str(INSTALL), "--root", str(tmp_path / "r"), "--no-venvv"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode != 0
    assert "unknown option" in proc.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_install_with_venv_runs_check_config(tmp_path: Path) -> None:
    """The full install builds /opt/edge-gate/venv whose edge-gate accepts the installed config."""
    root = tmp_path / "root"
    proc = subprocess.run(
        ["bash", str(INSTALL), "--root", str(root), "--source", str(REPO)],
        capture_output=True,
        text=True,
        timeout=850,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    venv = root / "opt/edge-gate/venv"
    assert mode(venv / "bin/edge-gate") & 0o005 == 0o005  # the service user can run it
    check = subprocess.run(
        [
            str(venv / "bin/edge-gate"),
            "check-config",
            "--syntax-only",  # the keys are made on the box (first start), not under --root
            "--config",
            str(root / "etc/edge-gate/edge-gate.toml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    # the gateway install carries no development tools: a dev command says so in one line
    clean_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    bench = subprocess.run(
        [str(venv / "bin/edge-gate"), "bench", "--section", "relay"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env=clean_env,
    )
    assert bench.returncode == 69, bench.stdout + bench.stderr
    assert "edge_gate_dev" in bench.stderr
    site = subprocess.run(
        [str(venv / "bin/python"), "-c", "import edge_gate, sys; print(edge_gate.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=tmp_path,
        env=clean_env,
    ).stdout.strip()
    assert not (Path(site).parent.parent / "edge_gate_dev").exists()


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_scripts_pass_shellcheck() -> None:
    """install.sh and uninstall.sh are free of shellcheck findings (quoting, globbing, set -e)."""
    proc = subprocess.run(
        ["shellcheck", "--severity=style", str(INSTALL), str(UNINSTALL)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
