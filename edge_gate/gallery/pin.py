"""PIN hashing for the gallery record (stdlib ``hashlib.scrypt``).

A PIN is stored only as ``scrypt(pin, salt, n, r, p)``; the parameters and the 16-byte salt
travel with the hash in the record, so they can be raised later without breaking old records.
A PIN is 4 to 12 ASCII digits. :func:`verify_pin` compares in constant time, and
:func:`spend_pin_time` lets a caller spend the same work for an unknown person.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from edge_gate.gallery.record import DEFAULT_N, DEFAULT_P, DEFAULT_R, HASH_BYTES, PinHash

PIN_RE = re.compile(r"^[0-9]{4,12}$")
SALT_BYTES = 16
_MAXMEM = 256 * 1024 * 1024


def validate_pin(pin: str) -> str:
    """Return ``pin`` when it is 4 to 12 ASCII digits, else raise ``ValueError``."""
    if not PIN_RE.match(pin):
        raise ValueError("a PIN is 4 to 12 digits (0-9)")
    return pin


def _scrypt(pin: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        pin.encode("ascii", "replace"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=HASH_BYTES
    )


def hash_pin(pin: str, *, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P) -> PinHash:
    """Hash a (validated) PIN under a fresh random salt."""
    validate_pin(pin)
    salt = secrets.token_bytes(SALT_BYTES)
    return PinHash(salt, _scrypt(pin, salt, n, r, p), n, r, p)


def verify_pin(stored: PinHash, pin: str) -> bool:
    """True when ``pin`` hashes to ``stored``; always spends the hash time, compares in
    constant time."""
    candidate = _scrypt(pin, stored.salt, stored.n, stored.r, stored.p)
    return hmac.compare_digest(candidate, stored.digest) and PIN_RE.match(pin) is not None


_DUMMY_SALT = b"edge-gate: nobody"  # its result is thrown away; only the work counts


def spend_pin_time(pin: str) -> None:
    """Do the work of one :func:`verify_pin` at the default parameters, for an unknown person."""
    hmac.compare_digest(_scrypt(pin, _DUMMY_SALT, DEFAULT_N, DEFAULT_R, DEFAULT_P), bytes(32))
