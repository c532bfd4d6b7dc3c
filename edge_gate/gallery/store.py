"""The encrypted gallery store: SQLite rows of AES-GCM records under an authenticated manifest.

Tables (nothing personal in plaintext: no name, no embedding)::

    meta(name TEXT PRIMARY KEY, value BLOB)      -- schema, manifest, manifest_mac
    records(id TEXT PRIMARY KEY, key_id TEXT, blob BLOB)

Every write verifies the whole gallery first (a tampered gallery is never re-blessed with a
fresh MAC), changes rows, writes the new manifest with generation + 1 in the same SQLite
transaction, commits, then moves the generation file forward. Readers read the generation
file *before* the database snapshot, so a concurrent writer can never look like a rollback.
``PRAGMA secure_delete=ON`` and a ``VACUUM`` after a revocation make erased ciphertexts leave
the file; the rollback journal (``journal_mode=DELETE``) is removed after each commit.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge_gate.config.gallery import GalleryConfig
from edge_gate.errors import CardInUseError, GalleryError, GalleryTamperedError
from edge_gate.fsutil import open_private
from edge_gate.gallery.crypto import SCHEMA_VERSION, GalleryCipher, Manifest, encode_manifest
from edge_gate.gallery.generation import GenerationMark, read_generation, write_generation
from edge_gate.gallery.keyfile import (
    KeyRing,
    load_keyring,
    load_keyring_file,
    new_key,
    write_keyring,
)
from edge_gate.gallery.loaded import LoadedGallery, new_gallery_id, new_user_id, verify_snapshot
from edge_gate.gallery.matching import l2_normalise
from edge_gate.gallery.record import PersonRecord, PinHash, encode_record, validate_name
from edge_gate.osdp.cards import CardCredential, cards_equal
from edge_gate.vision import fusion

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000
_SCHEMA_SQL = (
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL)",
    "CREATE TABLE records (id TEXT PRIMARY KEY, key_id TEXT NOT NULL, blob BLOB NOT NULL)",
)

Rows = list[tuple[str, str, bytes]]


@dataclass
class ChangeCount:
    """What :meth:`GalleryStore.apply_changes` did, person by person."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0


Mutation = Callable[[sqlite3.Connection, LoadedGallery, GalleryCipher, Rows], Rows]


def store_from_config(cfg: GalleryConfig) -> GalleryStore:
    """The store named by ``[gallery]``, its key ring read via :func:`load_keyring`."""
    return GalleryStore(cfg.db_file, cfg.generation_file, load_keyring(cfg.key_file))


def default_generation_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".gen")


def _db_error(path: Path, e: sqlite3.Error) -> GalleryError:
    """Busy/locked/unopenable is an operational problem; anything else means a damaged file."""
    text = str(e).lower()
    if isinstance(e, sqlite3.OperationalError) and any(
        w in text for w in ("locked", "busy", "unable to open", "readonly", "disk i/o")
    ):
        return GalleryError(f"{path}: gallery database unavailable: {e}")
    return GalleryTamperedError(f"{path}: the gallery database is damaged: {e}")


def _connect(path: Path) -> sqlite3.Connection:
    """Read-write connection to an existing database (rw, so a hot journal can be rolled back)."""
    if not path.is_file():
        raise GalleryError(
            f"{path}: no gallery database (run `edge-gate init` or `edge-gate enroll`)"
        )
    try:
        conn = sqlite3.connect(
            f"file:{path}?mode=rw", uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
        )
        conn.execute("PRAGMA secure_delete=ON")
        conn.execute("PRAGMA synchronous=FULL")
    except sqlite3.Error as e:
        raise _db_error(path, e) from e
    return conn


def _read_snapshot(conn: sqlite3.Connection, path: Path) -> tuple[bytes, bytes, Rows]:
    try:
        meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
        rows: Rows = conn.execute("SELECT id, key_id, blob FROM records ORDER BY id").fetchall()
    except sqlite3.Error as e:
        raise _db_error(path, e) from e
    schema = meta.get("schema")
    if schema is None or str(schema) != str(SCHEMA_VERSION):
        raise GalleryTamperedError(f"{path}: unknown gallery schema {schema!r}")
    manifest, mac = meta.get("manifest"), meta.get("manifest_mac")
    if not isinstance(manifest, bytes) or not isinstance(mac, bytes):
        raise GalleryTamperedError(f"{path}: the gallery manifest is missing")
    return manifest, mac, [(str(r[0]), str(r[1]), bytes(r[2])) for r in rows]


class GalleryStore:
    """One gallery database, its generation file and the key ring that opens it."""

    def __init__(self, db_path: Path, generation_path: Path | None, keyring: KeyRing) -> None:
        self.db_path = Path(db_path)
        self.generation_path = (
            Path(generation_path) if generation_path else default_generation_path(self.db_path)
        )
        self.keyring = keyring
        self.generation_lag: str | None = None
        """Set when a committed change could not update the generation file (see ``_write``)."""

    # -- creation ---------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.db_path.exists()

    def create(self, *, force: bool = False) -> str:
        """Create an empty gallery (generation 0) atomically; return its gallery id."""
        with self._lock():
            return self._create_locked(force=force)

    def _create_locked(self, *, force: bool = False) -> str:
        mark = read_generation(self.generation_path)
        if self.db_path.exists() and not force:
            raise GalleryError(f"{self.db_path}: a gallery already exists")
        if mark is not None and mark.generation > 0 and not force:
            raise GalleryTamperedError(
                f"{self.db_path}: the database is missing but {self.generation_path} says "
                f"generation {mark.generation} was written: deleted gallery? "
                "(re-create it with --force only if you mean to start empty)"
            )
        gallery_id = new_gallery_id()
        key = self.keyring.newest
        cipher = GalleryCipher(key)
        manifest = encode_manifest(Manifest(gallery_id, 0, key.key_id, ()))
        # generation file first: a crash after it leaves generation 0 and no database,
        # which the next create accepts
        write_generation(self.generation_path, GenerationMark(gallery_id, 0))
        tmp = self.db_path.with_name(f".{self.db_path.name}.{os.getpid()}.new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.close(open_private(tmp, os.O_EXCL | os.O_WRONLY))
        try:
            conn = sqlite3.connect(tmp, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=DELETE")
                conn.execute("BEGIN IMMEDIATE")
                for sql in _SCHEMA_SQL:
                    conn.execute(sql)
                conn.executemany(
                    "INSERT INTO meta (name, value) VALUES (?, ?)",
                    [
                        ("schema", str(SCHEMA_VERSION)),
                        ("manifest", manifest),
                        ("manifest_mac", cipher.manifest_mac(manifest)),
                    ],
                )
                conn.execute("COMMIT")
            finally:
                conn.close()
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, self.db_path)
        except BaseException as e:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            if isinstance(e, sqlite3.Error):  # e.g. a full disk while writing the schema
                raise GalleryError(f"{self.db_path}: cannot create the gallery: {e}") from e
            raise
        log.info("gallery.created", extra={"EG_GENERATION": 0})
        return gallery_id

    # -- reading ----------------------------------------------------------------------------

    def load(self) -> LoadedGallery:
        """Open, verify and decrypt the whole gallery; raise on any integrity failure."""
        mark = read_generation(self.generation_path)  # before the snapshot, see module doc
        if mark is not None and mark.generation > 0 and not self.db_path.exists():
            raise GalleryTamperedError(
                f"{self.db_path}: the database is missing but {self.generation_path} says "
                f"generation {mark.generation} was written: deleted gallery?"
            )
        conn = _connect(self.db_path)
        try:
            conn.execute("BEGIN")
            manifest, mac, rows = _read_snapshot(conn, self.db_path)
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            raise _db_error(self.db_path, e) from e
        finally:
            conn.close()
        gallery, _ = verify_snapshot(self.db_path, manifest, mac, rows, self.keyring, mark)
        return gallery

    # -- writing ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        lock_path = self.db_path.with_name(self.db_path.name + ".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = open_private(lock_path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write(
        self,
        mutate: Mutation,
        *,
        keyring: KeyRing | None = None,
        manifest_cipher: GalleryCipher | None = None,
    ) -> LoadedGallery:
        """Verify, mutate rows, write manifest generation + 1, commit, advance generation file."""
        ring = keyring if keyring is not None else self.keyring
        if not self.db_path.exists():
            self._create_locked()  # refuses when the generation file says it was used
        mark = read_generation(self.generation_path)
        conn = _connect(self.db_path)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                manifest, mac, rows = _read_snapshot(conn, self.db_path)
                before, cipher = verify_snapshot(self.db_path, manifest, mac, rows, ring, mark)
                new_rows = mutate(conn, before, cipher, rows)
                signer = manifest_cipher if manifest_cipher is not None else cipher
                generation = before.generation + 1
                new_manifest = encode_manifest(
                    Manifest(
                        before.gallery_id,
                        generation,
                        signer.key_id,
                        tuple((rid, kid, _digest(blob)) for rid, kid, blob in new_rows),
                    )
                )
                conn.executemany(
                    "UPDATE meta SET value = ? WHERE name = ?",
                    [
                        (new_manifest, "manifest"),
                        (signer.manifest_mac(new_manifest), "manifest_mac"),
                    ],
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            raise GalleryError(f"{self.db_path}: gallery write failed: {e}") from e
        finally:
            conn.close()
        try:
            write_generation(self.generation_path, GenerationMark(before.gallery_id, generation))
        except OSError as e:  # e.g. a full disk: the change itself is committed and loads fine
            self.generation_lag = (
                f"{self.generation_path} could not be updated to generation {generation} "
                f"({e.strerror or type(e).__name__}): the change is saved, but rollback "
                "protection lags until the next successful change"
            )
            log.error("gallery.generation_write_failed", extra={"EG_GENERATION": generation})
        log.info("gallery.written", extra={"EG_GENERATION": generation})
        return before

    def _vacuum(self) -> None:
        conn = _connect(self.db_path)
        try:
            conn.execute("VACUUM")
        except sqlite3.Error as e:
            raise GalleryError(f"{self.db_path}: VACUUM failed: {e}") from e
        finally:
            conn.close()

    def enroll(
        self,
        name: str,
        model: str,
        templates: npt.ArrayLike,
        now: float | None = None,
        *,
        dims: Sequence[int] = (),
    ) -> str:
        """Add a new person; return the new pseudonymous user id."""
        return self.enroll_many([(name, templates)], model, now, dims=dims)[0]

    def enroll_many(
        self,
        people: Sequence[tuple[str, npt.ArrayLike]],
        model: str,
        now: float | None = None,
        *,
        dims: Sequence[int] = (),
    ) -> list[str]:
        """Add several people in one transaction (one new generation); return their ids.

        ``model`` names the embedder set; for a fused set (``a+b``) ``dims`` gives each model's
        width and the templates are fused embeddings (:mod:`edge_gate.vision.fusion`)."""
        created_at = time.time() if now is None else now
        part_dims = tuple(int(d) for d in dims) if len(dims) > 1 else ()
        if len(fusion.split_set_id(model)) != max(1, len(dims)):
            raise ValueError(f"embedder set {model!r} needs one width per model, got {dims}")
        prepared = [
            (new_user_id(), validate_name(name), l2_normalise(np.asarray(t, dtype=np.float32)))
            for name, t in people
        ]
        dims_seen = {arr.shape[-1] for _, _, arr in prepared}
        if part_dims and dims_seen - {sum(part_dims)}:
            raise GalleryError(f"template width {sorted(dims_seen)} ≠ sum of {list(part_dims)}")

        def mutate(
            conn: sqlite3.Connection, before: LoadedGallery, cipher: GalleryCipher, rows: Rows
        ) -> Rows:
            if before.model is not None and before.model != model:
                raise GalleryError(
                    f"the gallery holds {before.model!r} templates; cannot add {model!r} ones"
                )
            if len(dims_seen) > 1 or (before.dim is not None and dims_seen != {before.dim}):
                raise GalleryError(
                    f"template dimension {sorted(dims_seen)} ≠ gallery's {before.dim}"
                )
            out = list(rows)
            for user_id, clean, arr in prepared:
                rec = PersonRecord(user_id, clean, model, created_at, arr, part_dims)
                sealed = cipher.seal(user_id, encode_record(rec))
                conn.execute(
                    "INSERT INTO records (id, key_id, blob) VALUES (?, ?, ?)",
                    (user_id, sealed.key_id, sealed.blob),
                )
                out.append((user_id, sealed.key_id, sealed.blob))
            return out

        with self._lock():
            self._write(mutate)
        return [user_id for user_id, _, _ in prepared]

    def revoke(self, user_id: str) -> None:
        """Erase a person: delete the row (secure_delete), new manifest, then VACUUM."""

        def mutate(
            conn: sqlite3.Connection, before: LoadedGallery, cipher: GalleryCipher, rows: Rows
        ) -> Rows:
            if before.get(user_id) is None:
                raise KeyError(user_id)
            conn.execute("DELETE FROM records WHERE id = ?", (user_id,))
            return [r for r in rows if r[0] != user_id]

        with self._lock():
            self._write(mutate)
            self._vacuum()

    def apply_changes(
        self, upserts: Sequence[PersonRecord], removes: Sequence[str] = ()
    ) -> ChangeCount:
        """Insert or replace ``upserts`` (by user id) and erase ``removes`` in one transaction
        (one new generation), re-encrypting under the local key; a person whose record is
        unchanged is left as it is. A crash leaves the gallery before or after, never between.

        This is how a fleet bundle reaches the local gallery (:mod:`edge_gate.fleet.apply`).
        An unknown id in ``removes`` is not an error (it was never here or is gone already).
        """
        drop = set(removes)
        incoming = {rec.user_id: rec for rec in upserts}
        if drop & set(incoming):
            raise GalleryError("a person cannot be both added and removed in one change")
        counts = ChangeCount()

        def mutate(
            conn: sqlite3.Connection, before: LoadedGallery, cipher: GalleryCipher, rows: Rows
        ) -> Rows:
            kept_models = {p.model for p in before.people if p.user_id not in drop}
            models = kept_models | {rec.model for rec in incoming.values()}
            dims = {p.dim for p in before.people if p.user_id not in drop} | {
                rec.dim for rec in incoming.values()
            }
            if len(models) > 1 or len(dims) > 1:
                raise GalleryError(
                    f"the change would mix embedder sets {sorted(models)} / widths "
                    f"{sorted(dims)} in one gallery"
                )
            by_id = {r[0]: r for r in rows}
            for user_id in sorted(drop & set(by_id)):
                conn.execute("DELETE FROM records WHERE id = ?", (user_id,))
                del by_id[user_id]
                counts.removed += 1
            for user_id, rec in incoming.items():
                old = before.get(user_id)
                if old is not None and _same_record(old, rec):
                    counts.unchanged += 1
                    continue
                sealed = cipher.seal(user_id, encode_record(rec))
                conn.execute(
                    "INSERT OR REPLACE INTO records (id, key_id, blob) VALUES (?, ?, ?)",
                    (user_id, sealed.key_id, sealed.blob),
                )
                by_id[user_id] = (user_id, sealed.key_id, sealed.blob)
                if old is None:
                    counts.added += 1
                else:
                    counts.updated += 1
            return [by_id[k] for k in sorted(by_id)]

        with self._lock():
            self._write(mutate)
            if counts.removed:
                self._vacuum()
        return counts

    def rename(self, user_id: str, name: str) -> str:
        """Change a display name; return the old one."""
        clean = validate_name(name)
        return self._update_person(user_id, lambda rec, _: replace(rec, name=clean)).name

    def set_card(self, user_id: str, card: CardCredential | None) -> PersonRecord:
        """Give a person their access card (``None``: take it away); return the old record.

        Raises :class:`CardInUseError` when another person already holds ``card`` (checked
        under the write lock, so two concurrent assignments cannot both succeed)."""

        def change(rec: PersonRecord, before: LoadedGallery) -> PersonRecord:
            if card is not None:
                for other in before.people:
                    if (
                        other.user_id != user_id
                        and other.card is not None
                        and cards_equal(other.card, card)
                    ):
                        raise CardInUseError(f"that card is already held by {other.user_id}")
            return replace(rec, card=card)

        return self._update_person(user_id, change)

    def set_pin(self, user_id: str, pin: PinHash | None) -> PersonRecord:
        """Store a person's PIN hash (``None``: remove it); return the old record."""
        return self._update_person(user_id, lambda rec, _: replace(rec, pin=pin))

    def _update_person(
        self,
        user_id: str,
        change: Callable[[PersonRecord, LoadedGallery], PersonRecord],
    ) -> PersonRecord:
        """Re-seal one person's record as ``change`` makes it; return the record before.
        Raises ``KeyError`` for an unknown user id."""
        old: list[PersonRecord] = []

        def mutate(
            conn: sqlite3.Connection, before: LoadedGallery, cipher: GalleryCipher, rows: Rows
        ) -> Rows:
            rec = before.get(user_id)
            if rec is None:
                raise KeyError(user_id)
            old.append(rec)
            new = change(rec, before)
            sealed = cipher.seal(user_id, encode_record(new))
            conn.execute(
                "UPDATE records SET key_id = ?, blob = ? WHERE id = ?",
                (sealed.key_id, sealed.blob, user_id),
            )
            return [(r[0], sealed.key_id, sealed.blob) if r[0] == user_id else r for r in rows]

        with self._lock():
            self._write(mutate)
        return old[0]

    def migrate(self) -> int:
        """Re-encode every record in the current record layout (one new generation); return
        how many people were rewritten. Older records load without it (see ``record``)."""

        def mutate(
            conn: sqlite3.Connection, before: LoadedGallery, cipher: GalleryCipher, rows: Rows
        ) -> Rows:
            return _reseal_all(conn, before, cipher)

        with self._lock():
            before = self._write(mutate)
        return len(before.people)

    def rotate(self, key_path: Path) -> tuple[str, str]:
        """Re-encrypt everything under a fresh key; return ``(old key id, new key id)``.

        Order (each step leaves a loadable state): (1) key file = {current, new}; (2) one
        transaction re-seals every record and the manifest under the new key; (3) key
        file = {new}. A crash after (1) or (2) leaves both keys in the file, and the
        database names the one it needs.
        """
        with self._lock():
            ring = load_keyring_file(key_path)
            current_id = self.load_with(ring).key_id
            current = ring.get(current_id)
            if current is None:  # cannot happen: load_with succeeded with this ring
                raise GalleryError(f"{key_path}: key {current_id} vanished")
            fresh = new_key()
            write_keyring(key_path, KeyRing((current, fresh)))
            new_cipher = GalleryCipher(fresh)

            def mutate(
                conn: sqlite3.Connection, before: LoadedGallery, cipher: GalleryCipher, rows: Rows
            ) -> Rows:
                return _reseal_all(conn, before, new_cipher)

            self._write(mutate, keyring=KeyRing((current, fresh)), manifest_cipher=new_cipher)
            write_keyring(key_path, KeyRing((fresh,)))
            self.keyring = KeyRing((fresh,))
            self._vacuum()
        return current_id, fresh.key_id

    def load_with(self, ring: KeyRing) -> LoadedGallery:
        saved = self.keyring
        self.keyring = ring
        try:
            return self.load()
        finally:
            self.keyring = saved


def _reseal_all(conn: sqlite3.Connection, before: LoadedGallery, cipher: GalleryCipher) -> Rows:
    """Encode and seal every record again (current layout, ``cipher``'s key)."""
    out: Rows = []
    for rec in before.people:
        sealed = cipher.seal(rec.user_id, encode_record(rec))
        conn.execute(
            "UPDATE records SET key_id = ?, blob = ? WHERE id = ?",
            (sealed.key_id, sealed.blob, rec.user_id),
        )
        out.append((rec.user_id, sealed.key_id, sealed.blob))
    return out


def _same_record(a: PersonRecord, b: PersonRecord) -> bool:
    return (
        a.name == b.name
        and a.model == b.model
        and a.part_dims == b.part_dims
        and a.templates.shape == b.templates.shape
        and bool(np.array_equal(a.templates, b.templates))
        and a.card == b.card
        and a.pin == b.pin
    )


def _digest(blob: bytes) -> bytes:
    return hashlib.sha256(blob).digest()
