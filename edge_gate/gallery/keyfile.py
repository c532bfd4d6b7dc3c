"""The gallery key file: a small JSON key ring that supports rotation.

Format (UTF-8 JSON, mode 0600, at most a few hundred bytes)::

    {"format": "edge-gate-gallery-key", "version": 1,
     "keys": [{"id": "k_0123abcd", "key": "<base64 of 32 random bytes>"}, ...]}

Normally the ring holds one key. During ``edge-gate keys rotate`` it holds the old and the
new key for a moment, so whichever state the database is in after a crash can be opened.
The database records which key id it is encrypted under; the ring only has to contain it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from edge_gate.errors import SecretFileError
from edge_gate.fsutil import atomic_write, read_private_file, read_secret

KEY_FORMAT = "edge-gate-gallery-key"
KEY_VERSION = 1
KEY_BYTES = 32
CREDENTIAL_NAME = "gallery.key"
KEY_ID_RE = re.compile(r"^k_[0-9a-f]{8}$")


@dataclass(frozen=True, slots=True)
class GalleryKey:
    """One AES-256 master key and its public id (the id is stored next to ciphertexts)."""

    key_id: str
    key: bytes

    def __repr__(self) -> str:  # never print key material
        return f"GalleryKey(key_id={self.key_id!r})"


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The keys of one key file, newest last."""

    keys: tuple[GalleryKey, ...]

    def get(self, key_id: str) -> GalleryKey | None:
        return next((k for k in self.keys if k.key_id == key_id), None)

    @property
    def newest(self) -> GalleryKey:
        return self.keys[-1]

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(k.key_id for k in self.keys)


def new_key() -> GalleryKey:
    """A fresh random key with a fresh random id."""
    return GalleryKey(key_id="k_" + secrets.token_hex(4), key=secrets.token_bytes(KEY_BYTES))


def encode_keyring(ring: KeyRing) -> bytes:
    doc = {
        "format": KEY_FORMAT,
        "version": KEY_VERSION,
        "keys": [
            {"id": k.key_id, "key": base64.b64encode(k.key).decode("ascii")} for k in ring.keys
        ],
    }
    return (json.dumps(doc, indent=1) + "\n").encode("utf-8")


def decode_keyring(data: bytes, source: str) -> KeyRing:
    """Parse a key file; every problem becomes a :class:`SecretFileError` naming ``source``."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SecretFileError(f"{source}: not an edge-gate gallery key file (bad JSON)") from e
    if not isinstance(doc, dict) or doc.get("format") != KEY_FORMAT:
        raise SecretFileError(f"{source}: not an edge-gate gallery key file")
    if doc.get("version") != KEY_VERSION:
        raise SecretFileError(f"{source}: unsupported key file version {doc.get('version')!r}")
    entries = doc.get("keys")
    if not isinstance(entries, list) or not entries:
        raise SecretFileError(f"{source}: the key file holds no key")
    keys: list[GalleryKey] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise SecretFileError(f"{source}: bad key entry")
        key_id, b64 = entry.get("id"), entry.get("key")
        if not isinstance(key_id, str) or not KEY_ID_RE.match(key_id) or not isinstance(b64, str):
            raise SecretFileError(f"{source}: bad key entry")
        try:
            raw = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError) as e:
            raise SecretFileError(f"{source}: key {key_id} is not valid base64") from e
        if len(raw) != KEY_BYTES:
            raise SecretFileError(f"{source}: key {key_id} must be {KEY_BYTES} bytes")
        keys.append(GalleryKey(key_id=key_id, key=raw))
    if len({k.key_id for k in keys}) != len(keys):
        raise SecretFileError(f"{source}: duplicate key id")
    return KeyRing(tuple(keys))


def load_keyring(configured: Path | None) -> KeyRing:
    """Read the ring from ``$CREDENTIALS_DIRECTORY/gallery.key`` or the configured file."""
    data = read_secret(CREDENTIAL_NAME, configured, max_bytes=16384)
    return decode_keyring(data, CREDENTIAL_NAME if configured is None else str(configured))


def load_keyring_file(path: Path) -> KeyRing:
    """Read the ring from exactly ``path`` (used by rotation, which rewrites that file)."""
    return decode_keyring(read_private_file(path, max_bytes=16384), str(path))


def write_keyring(path: Path, ring: KeyRing) -> None:
    """Atomically replace the key file (mode 0600)."""
    atomic_write(Path(path), encode_keyring(ring), mode=0o600)
