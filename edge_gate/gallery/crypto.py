"""Record encryption (AES-256-GCM) and the authenticated manifest of the gallery.

Two sub-keys are derived from each master key with HKDF-SHA256, one for records and one for
the manifest MAC, so the same bytes never serve two purposes.

* Record: ``nonce (12 random bytes) | AES-GCM(plaintext, AD)`` with
  ``AD = "edge-gate/gallery/v<schema>|<record id>|<key id>"``; moving a ciphertext to another
  record id or key id fails authentication.
* Manifest: the sorted list of ``(record id, key id, sha256(nonce | ciphertext))`` plus the
  gallery id and the generation counter, MAC'd with HMAC-SHA256. It detects deleted,
  re-inserted and rolled-back rows; the generation counter (also kept outside the database)
  detects a rollback of the whole file.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from edge_gate.gallery.keyfile import GalleryKey

SCHEMA_VERSION = 1
NONCE_BYTES = 12
MANIFEST_MAGIC = b"edge-gate-gallery-manifest\x00v1\x00"
_U16 = struct.Struct("<H")
_U64 = struct.Struct("<Q")


class RecordAuthError(Exception):
    """A record's ciphertext failed authentication (internal; the store reports tampering)."""


def _derive(master: bytes, purpose: bytes) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"edge-gate gallery " + purpose
    )
    return hkdf.derive(master)


@dataclass(frozen=True, slots=True)
class SealedRecord:
    record_id: str
    key_id: str
    blob: bytes
    """nonce | ciphertext-with-tag"""

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.blob).digest()


class GalleryCipher:
    """Seals and opens records and MACs manifests under one master key."""

    def __init__(self, key: GalleryKey) -> None:
        self.key_id = key.key_id
        self._aead = AESGCM(_derive(key.key, b"records v1"))
        self._mac_key = _derive(key.key, b"manifest v1")

    def _ad(self, record_id: str) -> bytes:
        return f"edge-gate/gallery/v{SCHEMA_VERSION}|{record_id}|{self.key_id}".encode()

    def seal(self, record_id: str, plaintext: bytes) -> SealedRecord:
        nonce = secrets.token_bytes(NONCE_BYTES)
        ct = self._aead.encrypt(nonce, plaintext, self._ad(record_id))
        return SealedRecord(record_id=record_id, key_id=self.key_id, blob=nonce + ct)

    def open(self, sealed: SealedRecord) -> bytes:
        if sealed.key_id != self.key_id or len(sealed.blob) < NONCE_BYTES + 16:
            raise RecordAuthError(sealed.record_id)
        nonce, ct = sealed.blob[:NONCE_BYTES], sealed.blob[NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, ct, self._ad(sealed.record_id))
        except InvalidTag as e:
            raise RecordAuthError(sealed.record_id) from e

    def manifest_mac(self, manifest: bytes) -> bytes:
        return hmac.new(self._mac_key, manifest, hashlib.sha256).digest()

    def manifest_ok(self, manifest: bytes, mac: bytes) -> bool:
        return hmac.compare_digest(self.manifest_mac(manifest), mac)


@dataclass(frozen=True, slots=True)
class Manifest:
    gallery_id: str
    generation: int
    key_id: str
    entries: tuple[tuple[str, str, bytes], ...]
    """sorted ``(record id, key id, sha256 digest)``"""


def _put_str(out: bytearray, s: str) -> None:
    raw = s.encode("utf-8")
    out += _U16.pack(len(raw)) + raw


def encode_manifest(m: Manifest) -> bytes:
    out = bytearray(MANIFEST_MAGIC)
    _put_str(out, m.gallery_id)
    out += _U64.pack(m.generation)
    _put_str(out, m.key_id)
    out += _U64.pack(len(m.entries))
    for record_id, key_id, digest in sorted(m.entries):
        _put_str(out, record_id)
        _put_str(out, key_id)
        out += digest
    return bytes(out)


def decode_manifest(data: bytes) -> Manifest:
    """Parse manifest bytes (only ever called after the MAC was verified)."""
    pos = len(MANIFEST_MAGIC)
    if data[:pos] != MANIFEST_MAGIC:
        raise ValueError("bad manifest magic")

    def get_str() -> str:
        nonlocal pos
        (n,) = _U16.unpack_from(data, pos)
        pos += 2
        s = data[pos : pos + n].decode("utf-8")
        pos += n
        return s

    def get_u64() -> int:
        nonlocal pos
        (v,) = _U64.unpack_from(data, pos)
        pos += 8
        return int(v)

    gallery_id = get_str()
    generation = get_u64()
    key_id = get_str()
    count = get_u64()
    entries = []
    for _ in range(count):
        rid, kid = get_str(), get_str()
        entries.append((rid, kid, data[pos : pos + 32]))
        pos += 32
    if pos != len(data):
        raise ValueError("trailing manifest bytes")
    return Manifest(gallery_id, generation, key_id, tuple(entries))
