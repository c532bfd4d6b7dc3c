"""The Secure Channel base key (SCBK, 16 bytes): load from a systemd credential or a 0600
file, generate with :mod:`secrets`, store atomically (0600) after an install-mode KEYSET.

File format: 16 raw bytes, or 32 hexadecimal characters with an optional trailing newline.
"""

from __future__ import annotations

import binascii
import secrets
from pathlib import Path

from edge_gate.errors import SecretFileError
from edge_gate.fsutil import atomic_write, read_secret

SCBK_BYTES = 16


def parse_scbk(data: bytes, source: str) -> bytes:
    if len(data) == SCBK_BYTES:
        return data
    text = data[:-1] if data.endswith(b"\n") else data
    if len(text) == 2 * SCBK_BYTES:
        try:
            return binascii.unhexlify(text)
        except (binascii.Error, ValueError) as e:
            raise SecretFileError(f"{source}: 32 characters but not hexadecimal") from e
    raise SecretFileError(
        f"{source}: expected 16 raw bytes or 32 hex characters, got {len(data)} bytes"
    )


def load_scbk(credential: str, path: Path) -> bytes:
    """The SCBK from ``$CREDENTIALS_DIRECTORY/<credential>`` or ``path`` (0600 required)."""
    data = read_secret(credential, path, max_bytes=2 * SCBK_BYTES + 1)
    return parse_scbk(data, str(path))


def store_scbk(path: Path, key: bytes) -> None:
    """Write ``key`` as hex, atomically, mode 0600 (replacing an older key on KEYSET)."""
    if len(key) != SCBK_BYTES:
        raise SecretFileError(f"{path}: an SCBK is {SCBK_BYTES} bytes")
    atomic_write(path, key.hex().encode() + b"\n")


def create_scbk(path: Path) -> bytes:
    """A fresh SCBK from :mod:`secrets`, written 0600; refuses to overwrite one."""
    if path.exists():
        raise SecretFileError(f"{path}: exists; refusing to overwrite an SCBK")
    key = secrets.token_bytes(SCBK_BYTES)
    store_scbk(path, key)
    return key
