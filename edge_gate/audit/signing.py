"""Ed25519 signatures over audit events.

Key file: PEM, PKCS#8, unencrypted, mode 0600 (or the systemd credential ``audit.key``).
``edge-gate init`` writes one made by :func:`generate_signing_key`; security desks get the public
half from ``edge-gate audit pubkey`` and check events with ``edge-gate audit verify``.

``kid`` in every event is the first 16 hex digits of SHA-256 over the raw 32-byte public key, so a
desk holding several gateways' keys can tell which one to use.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge_gate.audit.events import canonical_bytes
from edge_gate.errors import SecretFileError
from edge_gate.fsutil import read_secret

CREDENTIAL_NAME = "audit.key"


class VerifyOutcome(enum.Enum):
    """Result of checking one event's signature."""

    VALID = "valid"
    BAD_SIGNATURE = "bad_signature"
    WRONG_KEY = "wrong_key"
    MALFORMED = "malformed"


def generate_signing_key() -> bytes:
    """A fresh Ed25519 private key as PEM PKCS#8 (write it with ``atomic_write(..., 0o600)``)."""
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def parse_signing_key(pem: bytes, source: str = "audit key") -> Ed25519PrivateKey:
    """Parse PEM PKCS#8 bytes; anything but an unencrypted Ed25519 key is a SecretFileError."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as e:
        raise SecretFileError(f"{source}: not an unencrypted PEM private key") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise SecretFileError(f"{source}: not an Ed25519 key")
    return key


def load_signing_key(path: Path | None) -> Ed25519PrivateKey:
    """Load the gateway's signing key (systemd credential ``audit.key`` first, else ``path``)."""
    return parse_signing_key(read_secret(CREDENTIAL_NAME, path), str(path))


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM of the public half."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """Short stable id of a key pair (16 hex digits)."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """Accept a PEM public key, a PEM private key (its public half) or raw/base64 32 bytes."""
    if len(data) == 32:
        return Ed25519PublicKey.from_public_bytes(data)
    text = data.strip()
    if text.startswith(b"-----BEGIN PUBLIC KEY-----"):
        try:
            pub = serialization.load_pem_public_key(text)
        except ValueError as e:
            raise ValueError("not a PEM public key") from e
        if not isinstance(pub, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return pub
    if text.startswith(b"-----BEGIN PRIVATE KEY-----"):
        return parse_signing_key(text).public_key()
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as e:
        raise ValueError("public key is neither PEM nor base64") from e
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


class EventSigner:
    """Adds ``kid`` and ``sig`` to events. Thread-safe (the key is immutable)."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.kid = key_id(key)

    def sign(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Return a copy of ``fields`` with ``kid`` and ``sig`` set."""
        signed = {k: v for k, v in fields.items() if k not in ("kid", "sig")}
        signed["kid"] = self.kid
        sig = self._key.sign(canonical_bytes(signed))
        signed["sig"] = base64.b64encode(sig).decode("ascii")
        return signed


def verify_event(fields: Mapping[str, Any], public_key: Ed25519PublicKey) -> VerifyOutcome:
    """Check one decoded event's signature against ``public_key``."""
    sig_text = fields.get("sig")
    if not isinstance(sig_text, str):
        return VerifyOutcome.MALFORMED
    try:
        sig = base64.b64decode(sig_text, validate=True)
    except binascii.Error:
        return VerifyOutcome.MALFORMED
    if len(sig) != 64:
        return VerifyOutcome.MALFORMED
    try:
        message = canonical_bytes(fields)
    except ValueError:
        return VerifyOutcome.MALFORMED
    try:
        public_key.verify(sig, message)
    except InvalidSignature:
        if fields.get("kid") != key_id(public_key):
            return VerifyOutcome.WRONG_KEY
        return VerifyOutcome.BAD_SIGNATURE
    return VerifyOutcome.VALID
