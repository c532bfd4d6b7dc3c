"""GalleryStore.apply_changes: the transactional upsert/remove a fleet bundle is applied with."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from edge_gate.errors import GalleryError
from edge_gate.gallery.keyfile import KeyRing, load_keyring_file, new_key, write_keyring
from edge_gate.gallery.loaded import new_user_id
from edge_gate.gallery.record import PersonRecord
from edge_gate.gallery.store import GalleryStore

DIM = 32
TRIALS = 40


def _rec(user_id: str, i: int, model: str = "m", name: str | None = None) -> PersonRecord:
    v = np.random.default_rng(i).standard_normal((2, DIM)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return PersonRecord(user_id, name or f"person {i}", model, 1.0, v)


def _store(tmp: Path) -> GalleryStore:
    key = tmp / "gallery.key"
    if not key.exists():
        write_keyring(key, KeyRing((new_key(),)))
    store = GalleryStore(tmp / "gallery.db", None, load_keyring_file(key))
    if not store.exists():
        store.create()
    return store


def test_upsert_adds_replaces_and_removes_in_one_generation(tmp_path: Path) -> None:
    """One call = one generation; unchanged people are counted, not rewritten; the removed
    person is gone; a local enrollment not named in the change stays."""
    store = _store(tmp_path)
    local = store.enroll("local person", "m", _rec(new_user_id(), 99).templates)
    a, b, c = new_user_id(), new_user_id(), new_user_id()
    first = store.apply_changes([_rec(a, 1), _rec(b, 2)])
    assert (first.added, first.updated, first.removed) == (2, 0, 0)
    gen = store.load().generation
    second = store.apply_changes([_rec(b, 2, name="renamed"), _rec(c, 3)], [a])
    assert (second.removed, second.updated, second.added) == (1, 1, 1)
    loaded = store.load()
    assert loaded.generation == gen + 1
    assert {p.user_id for p in loaded.people} == {local, b, c}
    person_b = loaded.get(b)
    assert person_b is not None
    assert person_b.name == "renamed"
    third = store.apply_changes([_rec(b, 2, name="renamed"), _rec(c, 3)])
    assert (third.unchanged, third.added, third.updated) == (2, 0, 0)


def test_upsert_refuses_a_mixed_embedder_set(tmp_path: Path) -> None:
    """A bundle of another embedder cannot be mixed in; the gallery is left as it was."""
    store = _store(tmp_path)
    a = new_user_id()
    store.apply_changes([_rec(a, 1)])
    gen = store.load().generation
    with pytest.raises(GalleryError, match="mix"):
        store.apply_changes([_rec(new_user_id(), 2, model="other")])
    assert store.load().generation == gen
    # replacing everybody by the other model at once is fine
    store.apply_changes([_rec(new_user_id(), 3, model="other")], [a])
    assert store.load().model == "other"


def test_a_removed_person_leaves_no_ciphertext_in_the_file(tmp_path: Path) -> None:
    """Removal erases like revoke: secure_delete + VACUUM."""
    store = _store(tmp_path)
    a = new_user_id()
    store.apply_changes([_rec(a, 1), _rec(new_user_id(), 2)])
    conn = sqlite3.connect(store.db_path)
    blob = bytes(conn.execute("SELECT blob FROM records WHERE id = ?", (a,)).fetchone()[0])
    conn.close()
    store.apply_changes([], [a])
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("gallery.db*"))
    assert blob[40:72] not in raw


SET_A = [new_user_id() for _ in range(4)]
SET_B = [new_user_id() for _ in range(3)]


def _child(tmp: Path, ready_w: int) -> None:
    """Forked: swap the gallery between SET_A and SET_B forever."""
    try:
        store = _store(tmp)
        os.write(ready_w, b"r")
        flip = False
        while True:
            keep, drop = (SET_A, SET_B) if flip else (SET_B, SET_A)
            store.apply_changes([_rec(u, i) for i, u in enumerate(keep)], drop)
            flip = not flip
    finally:
        os._exit(3)


def test_kill9_during_apply_leaves_one_whole_set(tmp_path: Path) -> None:
    """kill -9 at random instants: the gallery always loads and holds exactly one of the two
    people sets the child committed, never a mix."""
    store = _store(tmp_path)
    store.apply_changes([_rec(u, i) for i, u in enumerate(SET_A)])
    rng = random.Random(13)
    for _ in range(TRIALS):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            _child(tmp_path, w)
        os.close(w)
        try:
            assert os.read(r, 1) == b"r"
            time.sleep(rng.uniform(0.0, 0.05))
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            assert os.WIFSIGNALED(status)
        finally:
            os.close(r)
        ids = {p.user_id for p in _store(tmp_path).load().people}
        assert ids in (set(SET_A), set(SET_B))
