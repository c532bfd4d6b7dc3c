"""Ed25519 event signing: key files, signatures, tamper detection."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from edge_gate.audit.events import build_event, decode_event, encode_event
from edge_gate.audit.signing import (
    EventSigner,
    VerifyOutcome,
    generate_signing_key,
    key_id,
    load_public_key,
    load_signing_key,
    public_key_pem,
    verify_event,
)
from edge_gate.errors import SecretFileError
from edge_gate.fsutil import atomic_write


def _key_file(tmp_path: Path, name: str = "audit.key") -> Path:
    path = tmp_path / name
    atomic_write(path, generate_signing_key())
    return path


def _signed(signer: EventSigner, **extra: object) -> dict[str, object]:
    built = build_event(
        event_type="access.denied",
        seq=42,
        unix_ms=1_795_708_443_000,
        rand=os.urandom(10),
        gateway="gw1",
        door="door-1",
        subject="u-1",
        reason="not_live",
        extra={"score": 0.71, "liveness": 0.12, **extra},
    )
    return signer.sign(built.fields)


def test_generated_key_is_unencrypted_pkcs8_pem_written_0600(tmp_path: Path) -> None:
    """``generate_signing_key`` gives PEM PKCS#8; atomic_write stores it 0600; it loads back."""
    path = _key_file(tmp_path)
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert path.stat().st_mode & 0o777 == 0o600
    key = load_signing_key(path)
    assert len(key_id(key)) == 16


def test_group_readable_key_is_refused(tmp_path: Path) -> None:
    """A signing key others can read is not trusted (fail closed)."""
    path = _key_file(tmp_path)
    path.chmod(0o640)
    with pytest.raises(SecretFileError, match="too open"):
        load_signing_key(path)


def test_non_ed25519_or_garbage_key_is_refused(tmp_path: Path) -> None:
    """Only an unencrypted Ed25519 private key is accepted."""
    bad = tmp_path / "bad.key"
    atomic_write(bad, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(SecretFileError):
        load_signing_key(bad)


def test_systemd_credential_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``$CREDENTIALS_DIRECTORY/audit.key`` present, that key is used, not the config path."""
    creds = tmp_path / "creds"
    cred_key = _key_file(creds)
    configured = _key_file(tmp_path, "other.key")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert key_id(load_signing_key(configured)) == key_id(load_signing_key(cred_key))


def test_sign_verify_and_every_kind_of_tampering(tmp_path: Path) -> None:
    """A signed event verifies; changing any field, or the signature, makes it fail."""
    signer = EventSigner(load_signing_key(_key_file(tmp_path)))
    pub = load_signing_key(tmp_path / "audit.key").public_key()
    event = decode_event(encode_event(_signed(signer)))
    assert verify_event(event, pub) is VerifyOutcome.VALID
    for field, value in [
        ("type", "access.granted"),
        ("subject", "u-2"),
        ("seq", 43),
        ("score", 0.99),
        ("door", "door-2"),
        ("ts", "2020-01-01T00:00:00.000Z"),
    ]:
        assert verify_event({**event, field: value}, pub) is VerifyOutcome.BAD_SIGNATURE, field
    sig = bytearray(base64.b64decode(str(event["sig"])))
    sig[0] ^= 1
    flipped = {**event, "sig": base64.b64encode(bytes(sig)).decode()}
    assert verify_event(flipped, pub) is VerifyOutcome.BAD_SIGNATURE
    assert verify_event({**event, "sig": "not base64!"}, pub) is VerifyOutcome.MALFORMED


def test_other_gateways_key_is_reported_as_wrong_key(tmp_path: Path) -> None:
    """An event signed by another key fails with WRONG_KEY (its kid differs)."""
    signer = EventSigner(load_signing_key(_key_file(tmp_path)))
    other = load_signing_key(_key_file(tmp_path, "other.key"))
    assert verify_event(_signed(signer), other.public_key()) is VerifyOutcome.WRONG_KEY


def test_public_key_formats(tmp_path: Path) -> None:
    """Desks may hand in the PEM from `audit pubkey` or the raw key as base64."""
    key = load_signing_key(_key_file(tmp_path))
    pem = public_key_pem(key)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    for form in (pem, base64.b64encode(raw), raw):
        assert key_id(load_public_key(form)) == key_id(key)
    with pytest.raises(ValueError, match="32 bytes"):
        load_public_key(base64.b64encode(b"short"))
