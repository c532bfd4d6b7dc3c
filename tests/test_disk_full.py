"""A full disk gives a clear error, never a traceback (a real, tiny tmpfs; root only)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

EDGE_GATE = str(Path(sys.executable).parent / "edge-gate")


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "16k"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_init_on_a_full_disk_is_a_clear_error(tiny_disk: Path) -> None:
    """16 kB hold the keys but not the gallery: exit 1 with the reason, no traceback."""
    proc = subprocess.run(
        [EDGE_GATE, "init", str(tiny_disk / "site")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "disk is full" in proc.stderr or "No space left" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
