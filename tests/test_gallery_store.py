"""Encrypted gallery store: round trips, tamper/rollback detection, erasure, rotation, key files."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from edge_gate.errors import GalleryError, GalleryTamperedError, SecretFileError
from edge_gate.gallery.keyfile import (
    KeyRing,
    load_keyring,
    load_keyring_file,
    new_key,
    write_keyring,
)
from edge_gate.gallery.store import GalleryStore

DIM = 192


def _vecs(seed: int, n: int = 3) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    out: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    path = tmp_path / "gallery.key"
    write_keyring(path, KeyRing((new_key(),)))
    return path


@pytest.fixture
def store(tmp_path: Path, key_path: Path) -> GalleryStore:
    s = GalleryStore(tmp_path / "gallery.db", None, load_keyring_file(key_path))
    s.create()
    return s


def _sql(
    store: GalleryStore, sql: str, params: tuple[object, ...] = ()
) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(store.db_path)
    try:
        rows = conn.execute(sql, params).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


def _blob(store: GalleryStore, user_id: str) -> bytes:
    rows = _sql(store, "SELECT blob FROM records WHERE id = ?", (user_id,))
    value = rows[0][0]
    assert isinstance(value, bytes)
    return value


NAMES = [
    "Robert'); DROP TABLE users;--",
    "李小龍",
    "Ἀριστοτέλης",
    "محمد عبد الله",
    'Zoë "Q" O\'Neil; DELETE FROM records',
    "👩‍🔬 Marie",
]


def test_names_round_trip_including_sql_injection_and_non_latin(store: GalleryStore) -> None:
    """Names that look like SQL injection or use non-Latin scripts come back byte-exact."""
    ids = [store.enroll(name, "mobilefacenet-fp32", _vecs(i)) for i, name in enumerate(NAMES)]
    loaded = store.load()
    assert [loaded.get(u).name for u in ids] == NAMES  # type: ignore[union-attr]
    assert _sql(store, "SELECT count(*) FROM records") == [(len(NAMES),)]
    for i, u in enumerate(ids):
        rec = loaded.get(u)
        assert rec is not None
        assert np.allclose(rec.templates, _vecs(i), atol=1e-6)


def test_nothing_personal_in_plaintext(store: GalleryStore) -> None:
    """Neither the name nor any template bytes appear in the database file."""
    name = "Very Distinctive Name Ωμέγα"
    vecs = _vecs(7)
    store.enroll(name, "mobilefacenet-fp32", vecs)
    data = store.db_path.read_bytes()
    assert name.encode() not in data
    assert "Ωμέγα".encode() not in data
    assert vecs[0, :8].tobytes() not in data


def test_user_ids_are_pseudonymous(store: GalleryStore) -> None:
    """User ids are random ``u_`` + 12 base32 characters, unrelated to the name."""
    a = store.enroll("Alice", "m", _vecs(1))
    b = store.enroll("Alice", "m", _vecs(2))
    assert a != b
    for u in (a, b):
        assert len(u) == 14
        assert u.startswith("u_")
        assert "alice" not in u


def test_flipped_byte_in_record_detected(store: GalleryStore) -> None:
    """One flipped ciphertext bit in one record makes load fail closed."""
    u = store.enroll("A", "m", _vecs(1))
    blob = bytearray(_blob(store, u))
    blob[40] ^= 0x01
    _sql(store, "UPDATE records SET blob = ? WHERE id = ?", (bytes(blob), u))
    with pytest.raises(GalleryTamperedError, match="altered"):
        store.load()


def test_flipped_byte_in_file_detected(store: GalleryStore) -> None:
    """A byte flipped directly in the database file (inside a ciphertext) is detected."""
    u = store.enroll("A", "m", _vecs(1))
    blob = _blob(store, u)
    raw = bytearray(store.db_path.read_bytes())
    pos = raw.find(blob[100:140])
    assert pos > 0
    raw[pos + 5] ^= 0x80
    store.db_path.write_bytes(bytes(raw))
    with pytest.raises(GalleryTamperedError):
        store.load()


def test_swapped_records_detected(store: GalleryStore) -> None:
    """Swapping the ciphertexts of two people is detected (ids are bound to ciphertexts)."""
    a = store.enroll("A", "m", _vecs(1))
    b = store.enroll("B", "m", _vecs(2))
    blob_a, blob_b = _blob(store, a), _blob(store, b)
    _sql(store, "UPDATE records SET blob = ? WHERE id = ?", (blob_b, a))
    _sql(store, "UPDATE records SET blob = ? WHERE id = ?", (blob_a, b))
    with pytest.raises(GalleryTamperedError, match="swapped"):
        store.load()


def test_single_record_rollback_detected(store: GalleryStore) -> None:
    """Putting back an older version of one row (from before a rename) is detected."""
    a = store.enroll("Old name", "m", _vecs(1))
    old_blob = _blob(store, a)
    store.rename(a, "New name")
    _sql(store, "UPDATE records SET blob = ? WHERE id = ?", (old_blob, a))
    with pytest.raises(GalleryTamperedError, match="rolled back"):
        store.load()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "drop_table"])
def test_damaged_database_file_fails_closed(store: GalleryStore, damage: str) -> None:
    """A replaced, truncated, emptied or restructured database file is an integrity failure."""
    store.enroll("A", "m", _vecs(1))
    raw = store.db_path.read_bytes()
    if damage == "garbage":
        store.db_path.write_bytes(os.urandom(len(raw)))
    elif damage == "truncated":
        store.db_path.write_bytes(raw[: len(raw) // 2])
    elif damage == "empty":
        store.db_path.write_bytes(b"")
    else:
        _sql(store, "DROP TABLE records")
    with pytest.raises(GalleryTamperedError):
        store.load()


def test_deleted_record_detected(store: GalleryStore) -> None:
    """Deleting a row behind the store's back is detected."""
    a = store.enroll("A", "m", _vecs(1))
    store.enroll("B", "m", _vecs(2))
    _sql(store, "DELETE FROM records WHERE id = ?", (a,))
    with pytest.raises(GalleryTamperedError, match="deleted"):
        store.load()


def test_reinserted_revoked_record_detected(store: GalleryStore) -> None:
    """Putting a revoked person's old row back is detected."""
    a = store.enroll("A", "m", _vecs(1))
    store.enroll("B", "m", _vecs(2))
    row = _sql(store, "SELECT id, key_id, blob FROM records WHERE id = ?", (a,))[0]
    store.revoke(a)
    _sql(store, "INSERT INTO records (id, key_id, blob) VALUES (?, ?, ?)", row)
    with pytest.raises(GalleryTamperedError, match="re-inserted"):
        store.load()


def test_rollback_of_whole_file_detected(store: GalleryStore, tmp_path: Path) -> None:
    """Restoring an older copy of gallery.db (after a revoke) is detected via the generation."""
    a = store.enroll("A", "m", _vecs(1))
    backup = tmp_path / "old.db"
    shutil.copy2(store.db_path, backup)
    store.revoke(a)
    shutil.copy2(backup, store.db_path)
    with pytest.raises(GalleryTamperedError, match="rollback"):
        store.load()


def test_missing_generation_file_detected(store: GalleryStore) -> None:
    """Deleting the external generation file of a used gallery refuses the load."""
    store.enroll("A", "m", _vecs(1))
    store.generation_path.unlink()
    with pytest.raises(GalleryTamperedError, match="generation file is missing"):
        store.load()


def test_forged_manifest_detected(store: GalleryStore) -> None:
    """Rewriting the manifest without the key (bad MAC) is detected."""
    store.enroll("A", "m", _vecs(1))
    _sql(store, "UPDATE meta SET value = ? WHERE name = 'manifest_mac'", (b"\0" * 32,))
    with pytest.raises(GalleryTamperedError, match="manifest fails authentication"):
        store.load()


def test_writes_refuse_a_tampered_gallery(store: GalleryStore) -> None:
    """A write never re-blesses a tampered gallery with a fresh MAC."""
    a = store.enroll("A", "m", _vecs(1))
    store.enroll("B", "m", _vecs(2))
    _sql(store, "DELETE FROM records WHERE id = ?", (a,))
    before = store.db_path.read_bytes()
    with pytest.raises(GalleryTamperedError):
        store.enroll("C", "m", _vecs(3))
    assert store.db_path.read_bytes() == before
    with pytest.raises(GalleryTamperedError):
        store.load()


def test_wrong_key_refused(store: GalleryStore) -> None:
    """A gallery opened with another key ring fails with a clear error naming the key id."""
    store.enroll("A", "m", _vecs(1))
    other = GalleryStore(store.db_path, None, KeyRing((new_key(),)))
    with pytest.raises(GalleryError, match="not in the key file"):
        other.load()


def test_revoke_makes_person_unknown_and_erases_ciphertext(store: GalleryStore) -> None:
    """After revoke the person is gone and no chunk of their ciphertext remains on disk."""
    a = store.enroll("A", "m", _vecs(1))
    b = store.enroll("B", "m", _vecs(2))
    blob = _blob(store, a)
    store.revoke(a)
    loaded = store.load()
    assert loaded.get(a) is None
    assert loaded.get(b) is not None
    r = loaded.matrix.identity_scores(_vecs(1)[0])
    assert loaded.matrix.user_ids == (b,)
    assert float(r.max()) < 0.5
    files = [p for p in store.db_path.parent.iterdir() if p.name.startswith("gallery.db")]
    data = b"".join(p.read_bytes() for p in files)
    for off in range(12, len(blob) - 32, 64):
        assert blob[off : off + 32] not in data, f"ciphertext chunk at {off} survived"


def test_revoke_unknown_user_raises_keyerror(store: GalleryStore) -> None:
    """Revoking an id that is not enrolled changes nothing."""
    store.enroll("A", "m", _vecs(1))
    gen = store.load().generation
    with pytest.raises(KeyError):
        store.revoke("u_aaaaaaaaaaaa")
    assert store.load().generation == gen


def test_rename_keeps_templates(store: GalleryStore) -> None:
    """Rename changes only the display name."""
    a = store.enroll("A", "m", _vecs(1))
    assert store.rename(a, "Ἀ new") == "A"
    rec = store.load().get(a)
    assert rec is not None
    assert rec.name == "Ἀ new"
    assert np.allclose(rec.templates, _vecs(1), atol=1e-6)


def test_rotate_reencrypts_under_new_key(store: GalleryStore, key_path: Path) -> None:
    """Rotation leaves one new key in the file, every record under it, old key useless."""
    ids = [store.enroll(f"P{i}", "m", _vecs(i)) for i in range(3)]
    old = load_keyring_file(key_path)
    old_id, new_id = store.rotate(key_path)
    ring = load_keyring_file(key_path)
    assert ring.key_ids == (new_id,)
    assert old.key_ids == (old_id,)
    assert {r[0] for r in _sql(store, "SELECT key_id FROM records")} == {new_id}
    fresh = GalleryStore(store.db_path, None, ring).load()
    assert fresh.key_id == new_id
    assert [p.user_id for p in fresh.people] == sorted(ids)
    with pytest.raises(GalleryError):
        GalleryStore(store.db_path, None, old).load()


def test_mixed_models_refused(store: GalleryStore) -> None:
    """Templates of a different embedder cannot be added to the gallery."""
    store.enroll("A", "mobilefacenet-fp32", _vecs(1))
    with pytest.raises(GalleryError, match="cannot add"):
        store.enroll("B", "facenet-int8", _vecs(2))


def test_create_refuses_existing(store: GalleryStore) -> None:
    """Creating over an existing gallery is refused."""
    with pytest.raises(GalleryError, match="already exists"):
        store.create()


def test_deleted_database_with_generation_detected(store: GalleryStore) -> None:
    """Deleting gallery.db of a used gallery is not silently replaced by an empty one."""
    store.enroll("A", "m", _vecs(1))
    store.db_path.unlink()
    with pytest.raises(GalleryTamperedError, match="missing"):
        store.enroll("B", "m", _vecs(2))


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_key_file_readable_by_others_refused(key_path: Path, mode: int) -> None:
    """A gallery key readable by group or others is refused with a chmod hint."""
    key_path.chmod(mode)
    with pytest.raises(SecretFileError, match="chmod 600"):
        load_keyring(key_path)


def test_key_file_not_regular_refused(tmp_path: Path) -> None:
    """A directory or a FIFO in place of the key file is refused."""
    d = tmp_path / "keydir"
    d.mkdir(mode=0o700)
    with pytest.raises(SecretFileError, match="not a regular file"):
        load_keyring(d)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(SecretFileError, match="not a regular file"):
        load_keyring(fifo)


def test_key_from_credentials_directory_first(
    tmp_path: Path, key_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With systemd's $CREDENTIALS_DIRECTORY set, gallery.key there wins over the config path."""
    creds = tmp_path / "creds"
    creds.mkdir(mode=0o700)
    ring = KeyRing((new_key(),))
    write_keyring(creds / "gallery.key", ring)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert load_keyring(key_path).key_ids == ring.key_ids


def test_key_file_written_0600(key_path: Path) -> None:
    """Key files are created with mode 0600."""
    assert key_path.stat().st_mode & 0o777 == 0o600


def test_load_10_people_matrix_shape(store: GalleryStore) -> None:
    """The loaded gallery exposes one contiguous float32 matrix of unit rows."""
    store.enroll_many([(f"P{i}", _vecs(i, 2)) for i in range(10)], "m")
    m = store.load().matrix
    assert m.matrix.shape == (20, DIM)
    assert m.matrix.dtype == np.float32
    assert np.allclose(np.linalg.norm(m.matrix, axis=1), 1.0, atol=1e-5)


def test_generation_file_write_failure_keeps_the_committed_change(
    store: GalleryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills between the commit and the generation file: the change stands (and
    loads), the store says plainly that rollback protection lags, and the next change catches
    the generation file up."""
    import errno

    from edge_gate.gallery import store as store_module
    from edge_gate.gallery.generation import write_generation as real_write

    def full_disk(*_args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module, "write_generation", full_disk)
    uid = store.enroll("Disk Full", "m", _vecs(7))
    assert store.generation_lag is not None
    assert "No space left on device" in store.generation_lag
    assert [p.user_id for p in store.load().people] == [uid]
    monkeypatch.setattr(store_module, "write_generation", real_write)
    store.enroll("Later", "m", _vecs(8))
    assert len(store.load().people) == 2
