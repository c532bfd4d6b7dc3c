"""The per-relay 32-byte HMAC key: load (systemd credential ``relay.key`` or a 0600 file), create.

File format: exactly 32 raw bytes, or 64 hexadecimal characters with an optional trailing
newline (handy for provisioning firmware from a terminal). Anything else is refused.
"""

from __future__ import annotations

import binascii
import secrets
from pathlib import Path

from edge_gate.door.codec import KEY_BYTES
from edge_gate.errors import SecretFileError
from edge_gate.fsutil import atomic_write, read_secret

CREDENTIAL_NAME = "relay.key"


def parse_key(data: bytes, source: str = "relay key") -> bytes:
    """Raw 32 bytes, or 64 hex characters (+ optional newline) → the 32-byte key."""
    if len(data) == KEY_BYTES:
        return data
    text = data[:-1] if data.endswith(b"\n") else data
    if len(text) == 2 * KEY_BYTES:
        try:
            return binascii.unhexlify(text)
        except (binascii.Error, ValueError) as e:
            raise SecretFileError(f"{source}: 64 characters but not hexadecimal") from e
    raise SecretFileError(
        f"{source}: expected 32 raw bytes or 64 hex characters, got {len(data)} bytes"
    )


def load_relay_key(path: Path | None) -> bytes:
    """Read the key from ``$CREDENTIALS_DIRECTORY/relay.key`` or ``path`` (mode must be 0600)."""
    data = read_secret(CREDENTIAL_NAME, path, max_bytes=2 * KEY_BYTES + 1)
    return parse_key(data, str(path) if path is not None else CREDENTIAL_NAME)


def create_relay_key(path: Path, *, hex_format: bool = False) -> bytes:
    """Generate a fresh key with :mod:`secrets` and write it atomically with mode 0600."""
    if path.exists():
        raise SecretFileError(f"{path}: exists; refusing to overwrite a relay key")
    key = secrets.token_bytes(KEY_BYTES)
    atomic_write(path, key.hex().encode() + b"\n" if hex_format else key)
    return key
