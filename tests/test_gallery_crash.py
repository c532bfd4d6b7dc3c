"""kill -9 during enroll / revoke / key rotation never leaves a gallery that fails to load.

Each trial forks a child (cheap: the modules are already imported) that loops over store
operations on precomputed embeddings; the parent SIGKILLs it at a random instant, then loads
the gallery with whatever key file is on disk. The load must succeed and the content must be
a state the child actually committed (people only appear whole, never half).
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from edge_gate.gallery.keyfile import KeyRing, load_keyring_file, new_key, write_keyring
from edge_gate.gallery.store import GalleryStore

DIM = 128
FAST_TRIALS = 50  # per operation kind: 2 kinds → 100 kills in the normal suite
SLOW_TRIALS = 300


def _vec(i: int) -> np.ndarray:
    v = np.random.default_rng(i).standard_normal((2, DIM)).astype(np.float32)
    out: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def _child(db: Path, key: Path, op: str, ready_w: int) -> None:
    """Runs in the forked child: loop the operation forever; never returns."""
    try:
        store = GalleryStore(db, None, load_keyring_file(key))
        os.write(ready_w, b"r")
        i = 0
        while True:
            i += 1
            if op == "enroll":
                uid = store.enroll(f"person {os.getpid()} {i}", "m", _vec(i))
                if i % 3 == 0:
                    store.revoke(uid)
            else:
                store.rotate(key)
    finally:
        os._exit(3)


def _trial(tmp: Path, op: str, rng: random.Random, before: set[tuple[str, str]]) -> None:
    db, key = tmp / "gallery.db", tmp / "gallery.key"
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        _child(db, key, op, w)
    os.close(w)
    try:
        assert os.read(r, 1) == b"r"
        time.sleep(rng.uniform(0.0, 0.06))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status), "child ended before it was killed"
    finally:
        os.close(r)
    ring = load_keyring_file(key)  # whatever key file the crash left
    loaded = GalleryStore(db, None, ring).load()
    assert loaded.key_id in ring.key_ids
    for person in loaded.people:
        assert person.n_templates == 2
        assert person.name.startswith("person ")
    if op == "rotate":  # re-encryption never adds, loses or alters anybody
        assert {(p.user_id, p.name) for p in loaded.people} == before


def _setup(tmp: Path) -> None:
    write_keyring(tmp / "gallery.key", KeyRing((new_key(),)))
    store = GalleryStore(tmp / "gallery.db", None, load_keyring_file(tmp / "gallery.key"))
    store.create()
    store.enroll_many([(f"person seed {i}", _vec(1000 + i)) for i in range(20)], "m")


def _run(tmp_path: Path, op: str, trials: int, seed: int) -> None:
    rng = random.Random(seed)
    _setup(tmp_path)
    ring = load_keyring_file(tmp_path / "gallery.key")
    seeded = GalleryStore(tmp_path / "gallery.db", None, ring).load()
    before = {(p.user_id, p.name) for p in seeded.people}
    for _ in range(trials):
        _trial(tmp_path, op, rng, before)
    final = GalleryStore(
        tmp_path / "gallery.db", None, load_keyring_file(tmp_path / "gallery.key")
    ).load()
    assert len(final.people) >= 20


@pytest.mark.timeout(120)
def test_kill9_during_enroll_and_revoke(tmp_path: Path) -> None:
    """30 SIGKILLs at random instants of enroll/revoke loops: the gallery always loads."""
    _run(tmp_path, "enroll", FAST_TRIALS, seed=1)


@pytest.mark.timeout(120)
def test_kill9_during_key_rotation(tmp_path: Path) -> None:
    """30 SIGKILLs at random instants of key rotation: old or new state, always loadable."""
    _run(tmp_path, "rotate", FAST_TRIALS, seed=2)


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("op", ["enroll", "rotate"])
def test_kill9_soak(tmp_path: Path, op: str) -> None:
    """Many more SIGKILLs per operation kind (slow suite)."""
    _run(tmp_path, op, SLOW_TRIALS, seed=3)


@pytest.mark.timeout(60)
def test_reader_never_sees_false_tampering_during_writes(tmp_path: Path) -> None:
    """A daemon-style reader loading in a loop while a writer enrolls and revokes never gets
    a false integrity alarm (generation file read before the snapshot, see store.py)."""
    _setup(tmp_path)
    db, key = tmp_path / "gallery.db", tmp_path / "gallery.key"
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: writer
        os.close(r)
        _child(db, key, "enroll", w)
    os.close(w)
    loads = 0
    try:
        assert os.read(r, 1) == b"r"
        deadline = time.monotonic() + 1.5
        ring = load_keyring_file(key)
        while time.monotonic() < deadline:
            loaded = GalleryStore(db, None, ring).load()
            assert len(loaded.people) >= 20
            loads += 1
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(r)
    assert loads >= 5
