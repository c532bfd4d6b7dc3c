"""Camera credentials: read only when the config names them; systemd's copy wins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge_gate.capture.failure import CaptureFailure, CaptureOpenError
from edge_gate.capture.sources import Credentials, load_credentials
from edge_gate.fsutil import CREDENTIALS_ENV


def _private(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


@pytest.fixture
def cred_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What the unit gives the daemon: every camera.* credential, the unused ones empty."""
    d = tmp_path / "credentials"
    d.mkdir(mode=0o700)
    monkeypatch.setenv(CREDENTIALS_ENV, str(d))
    return d


def test_anonymous_camera_ignores_the_units_empty_credentials(cred_dir: Path) -> None:
    """Config names no credential file: anonymous, even though systemd passes empty files."""
    _private(cred_dir / "camera.username", "")
    _private(cred_dir / "camera.password", "")
    assert load_credentials(None, None) is None


def test_configured_credentials_come_from_systemd_first(cred_dir: Path, tmp_path: Path) -> None:
    """Config names the files: systemd's copy is read (the configured path is hidden by the
    sandbox); without it, the configured file."""
    user_file = _private(tmp_path / "u", "from-file")
    pass_file = _private(tmp_path / "p", "file-secret")
    _private(cred_dir / "camera.username", "door-cam\n")
    _private(cred_dir / "camera.password", "s3cret\n")
    assert load_credentials(user_file, pass_file) == Credentials("door-cam", "s3cret")
    for name in ("camera.username", "camera.password"):
        os.unlink(cred_dir / name)
    assert load_credentials(user_file, pass_file) == Credentials("from-file", "file-secret")


def test_a_named_but_empty_credential_is_a_clear_error(cred_dir: Path, tmp_path: Path) -> None:
    """The config asks for a user name but the credential is empty: refused, not anonymous."""
    _private(cred_dir / "camera.username", "")
    with pytest.raises(CaptureOpenError) as info:
        load_credentials(tmp_path / "u", None)
    assert info.value.failure is CaptureFailure.CREDENTIALS
    assert "empty" in str(info.value)
