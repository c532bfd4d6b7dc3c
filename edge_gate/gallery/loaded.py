"""Verification of a gallery snapshot and the decrypted, in-memory gallery it yields."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

from edge_gate.config.thresholds import calibrated_threshold
from edge_gate.errors import GalleryError, GalleryTamperedError
from edge_gate.gallery.crypto import GalleryCipher, RecordAuthError, SealedRecord, decode_manifest
from edge_gate.gallery.generation import GenerationMark
from edge_gate.gallery.keyfile import KeyRing
from edge_gate.gallery.matching import TemplateMatrix
from edge_gate.gallery.record import FloatArray, PersonRecord, RecordFormatError, decode_record
from edge_gate.vision import fusion

_SHOW_IDS = 5


def new_user_id() -> str:
    """Pseudonymous user id: ``u_`` + 12 random base32 characters (60 bits)."""
    return "u_" + base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()[:12]


def new_gallery_id() -> str:
    return "g_" + secrets.token_hex(8)


@dataclass(frozen=True)
class LoadedGallery:
    """A verified, decrypted gallery, people sorted by user id."""

    gallery_id: str
    generation: int
    key_id: str
    people: tuple[PersonRecord, ...]
    scale: FloatArray | None = field(default=None, repr=False, compare=False)
    """Model weights for :attr:`matrix` (see :meth:`matching_with`); ``None``: equal."""
    _by_id: dict[str, PersonRecord] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {p.user_id: p for p in self.people})

    def get(self, user_id: str) -> PersonRecord | None:
        return self._by_id.get(user_id)

    @property
    def model(self) -> str | None:
        return self.people[0].model if self.people else None

    @property
    def dim(self) -> int | None:
        return self.people[0].dim if self.people else None

    @property
    def dims(self) -> tuple[int, ...] | None:
        """Each model's template width (one entry per embedder of the set)."""
        return self.people[0].part_dims if self.people else None

    def require_model(self, embedder_id: str) -> None:
        """Refuse embeddings of another embedder set than the gallery was enrolled with."""
        require_same_embedders(self.model, embedder_id)

    def matching_with(self, embedder_id: str, scale: FloatArray | None) -> LoadedGallery:
        """This gallery checked against the pipeline's embedder set, its :attr:`matrix`
        weighing the models by ``scale`` (``pipe.score_scale``)."""
        self.require_model(embedder_id)
        return replace(self, scale=scale)

    @cached_property
    def matrix(self) -> TemplateMatrix:
        """All templates in one matrix, models weighted by :attr:`scale` (built on first use)."""
        return TemplateMatrix(
            [p.user_id for p in self.people],
            [p.templates for p in self.people],
            self.dim or 1,
            self.scale if self.people else None,
        )


def require_same_embedders(enrolled: str | None, configured: str) -> None:
    """A gallery is matched only with the embedder set it was enrolled with: a clear error
    otherwise (a silent miss would lock everyone out without saying why)."""
    if enrolled is None or enrolled == configured:
        return
    names = list(fusion.split_set_id(enrolled))
    threshold = calibrated_threshold(names)
    hint = f" and gallery.threshold = {threshold}" if threshold is not None else ""
    raise GalleryError(
        f"the gallery was enrolled with embedder set {enrolled!r} but the pipeline embeds "
        f"with {configured!r}: its templates cannot be compared; set vision.embedders = "
        f"{names}{hint} (its calibrated default) to keep it, or re-enroll everyone"
    )


def _ids(ids: set[str] | list[str]) -> str:
    shown = sorted(ids)[:_SHOW_IDS]
    more = f" (+{len(ids) - _SHOW_IDS} more)" if len(ids) > _SHOW_IDS else ""
    return ", ".join(shown) + more


def verify_snapshot(
    path: Path,
    manifest_bytes: bytes,
    mac: bytes,
    rows: list[tuple[str, str, bytes]],
    keyring: KeyRing,
    mark: GenerationMark | None,
) -> tuple[LoadedGallery, GalleryCipher]:
    """Check a snapshot against its manifest, MAC and generation file, then decrypt it all."""
    try:
        manifest = decode_manifest(manifest_bytes)
    except (ValueError, struct.error, UnicodeDecodeError) as e:
        raise GalleryTamperedError(f"{path}: the gallery manifest is malformed") from e
    key = keyring.get(manifest.key_id)
    if key is None:
        raise GalleryError(
            f"{path}: the gallery is encrypted under key {manifest.key_id}, which is not in the "
            f"key file (it holds {', '.join(keyring.key_ids)}); wrong key file, or a service "
            "that still has the credential from before `edge-gate keys rotate` (restart it)"
        )
    cipher = GalleryCipher(key)
    if not cipher.manifest_ok(manifest_bytes, mac):
        raise GalleryTamperedError(
            f"{path}: the gallery manifest fails authentication: the database was tampered with"
        )
    if mark is None:
        if manifest.generation > 0:
            raise GalleryTamperedError(
                f"{path}: the generation file is missing but the gallery is at generation "
                f"{manifest.generation}: possible rollback, refusing to load"
            )
    elif mark.gallery_id != manifest.gallery_id:
        raise GalleryTamperedError(
            f"{path}: the generation file belongs to another gallery ({mark.gallery_id}, "
            f"database is {manifest.gallery_id}): database replaced?"
        )
    elif manifest.generation < mark.generation:
        raise GalleryTamperedError(
            f"{path}: rollback detected: database generation {manifest.generation} is older "
            f"than the last written generation {mark.generation}"
        )
    expected = {rid: (kid, digest) for rid, kid, digest in manifest.entries}
    actual = {rid: (kid, blob) for rid, kid, blob in rows}
    missing = set(expected) - set(actual)
    if missing:
        raise GalleryTamperedError(f"{path}: record(s) deleted from the gallery: {_ids(missing)}")
    extra = set(actual) - set(expected)
    if extra:
        raise GalleryTamperedError(
            f"{path}: record(s) not in the signed manifest (inserted or re-inserted): {_ids(extra)}"
        )
    changed = [
        rid
        for rid, (kid, blob) in actual.items()
        if kid != expected[rid][0]
        or not hmac.compare_digest(hashlib.sha256(blob).digest(), expected[rid][1])
    ]
    if changed:
        raise GalleryTamperedError(
            f"{path}: record(s) altered, swapped or rolled back: {_ids(changed)}"
        )
    people = []
    for rid, kid, blob in rows:
        try:
            rec = decode_record(cipher.open(SealedRecord(rid, kid, blob)))
        except (RecordAuthError, RecordFormatError) as e:
            raise GalleryTamperedError(f"{path}: record {rid} fails authentication") from e
        if rec.user_id != rid:
            raise GalleryTamperedError(f"{path}: record {rid} holds another user's data")
        people.append(rec)
    people.sort(key=lambda p: p.user_id)
    if len({(p.model, p.part_dims) for p in people}) > 1:
        raise GalleryError(f"{path}: the gallery mixes templates of different embedders")
    gallery = LoadedGallery(
        manifest.gallery_id, manifest.generation, manifest.key_id, tuple(people)
    )
    return gallery, cipher
