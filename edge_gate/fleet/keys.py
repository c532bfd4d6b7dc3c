"""Key files of the fleet: the admin's Ed25519 signing key, each gateway's X25519 key (bundles
are sealed to it) and each gateway's Ed25519 ack key (signs what it reports back).

Private keys are PEM PKCS#8, written atomically with mode 0600 and read with the same strict
checks as every secret (:func:`edge_gate.fsutil.read_secret`; systemd credentials
``fleet-signing.key``, ``fleet-gateway.key`` and ``fleet-ack.key`` first). Public keys travel
as base64 of the raw 32 bytes (one line, easy to paste into ``fleet add-gateway``) or as PEM.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from edge_gate.audit.signing import load_public_key, parse_signing_key
from edge_gate.errors import SecretFileError
from edge_gate.fsutil import atomic_write, read_secret

SIGNING_CREDENTIAL = "fleet-signing.key"
GATEWAY_CREDENTIAL = "fleet-gateway.key"
ACK_CREDENTIAL = "fleet-ack.key"


def _pem(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def raw_public(key: Ed25519PublicKey | X25519PublicKey) -> str:
    """Base64 of the raw 32-byte public key."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def write_new_signing_key(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    atomic_write(path, _pem(key))
    return key


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    return parse_signing_key(read_secret(SIGNING_CREDENTIAL, path), str(path))


def load_ack_key(path: Path) -> Ed25519PrivateKey:
    """The gateway's own Ed25519 key for its acknowledgements and health messages."""
    return parse_signing_key(read_secret(ACK_CREDENTIAL, path), str(path))


def parse_ack_public(text: str) -> Ed25519PublicKey:
    """A gateway's ack public key from its base64 text (``fleet keygen`` prints it)."""
    return Ed25519PublicKey.from_public_bytes(_raw_32(text, "a gateway ack key"))


def load_fleet_public_key(path: Path) -> Ed25519PublicKey:
    """The fleet's public key (PEM or base64), as the gateways' ``fleet.public_key_file``."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise SecretFileError(f"{path}: cannot read the fleet public key: {e.strerror}") from e
    try:
        return load_public_key(data)
    except ValueError as e:
        raise SecretFileError(f"{path}: {e}") from e


def write_new_gateway_key(path: Path) -> X25519PrivateKey:
    key = X25519PrivateKey.generate()
    atomic_write(path, _pem(key))
    return key


def load_gateway_key(path: Path) -> X25519PrivateKey:
    data = read_secret(GATEWAY_CREDENTIAL, path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise SecretFileError(f"{path}: not an unencrypted PEM private key") from e
    if not isinstance(key, X25519PrivateKey):
        raise SecretFileError(f"{path}: not an X25519 key")
    return key


def parse_gateway_public(text: str) -> X25519PublicKey:
    """A gateway's public key from its base64 text (``fleet keygen`` prints it)."""
    return X25519PublicKey.from_public_bytes(_raw_32(text, "a gateway public key"))


def _raw_32(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except binascii.Error as e:
        raise ValueError(f"{what} is base64 of 32 bytes") from e
    if len(raw) != 32:
        raise ValueError(f"{what} is base64 of 32 bytes")
    return raw
