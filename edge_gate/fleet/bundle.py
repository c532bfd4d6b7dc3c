"""Fleet bundles: seal a payload for many gateways, open it on one (no I/O, no clock).

Wire format of a bundle message (``<prefix>/fleet/<group>/bundle`` or ``…/delta``)::

    MAGIC | u32 len | header (canonical JSON) | u32 len | Ed25519 signature over all before it
          | u32 n_inline | n_inline x (u32 len | chunk)

and of a chunk (``<prefix>/fleet/<group>/chunk/<i>``, or inline in a delta)::

    CHUNK_MAGIC | u64 version | u32 index | AES-256-GCM ciphertext + tag

The header (``format``, ``group``, ``version`` — monotonic, ``created``, ``kind`` full|delta,
``base_version`` for deltas, ``signer`` key id, ``size`` of the plaintext, ``chunks``: the
sha256 of every chunk in order, ``recipients``: per gateway an ephemeral X25519 public key and
the wrapped data key) is signed, so the chunk hashes bind every byte of the payload.

Every bundle has a fresh random 32-byte data key. Chunk ``i`` is sealed with it, nonce
``b"EGFC" + u64 i`` (unique: one key per bundle) and associated data ``group|version|i``. The
data key is wrapped for each gateway: ephemeral X25519 with the gateway's key, HKDF-SHA256
(info binds group, version, gateway id and both public keys), AES-256-GCM.

:func:`open_bundle` returns what happened as a value: :class:`Opened` or :class:`Refused`
with a :class:`Refusal` reason; the gateway never applies anything but an ``Opened``.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import secrets
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from edge_gate.audit.signing import key_id

MAGIC = b"EGFB\x01"
CHUNK_MAGIC = b"EGFC\x01"
FORMAT = "edge-gate-fleet-bundle"
DEFAULT_CHUNK_BYTES = 1 << 20
MAX_HEADER_BYTES = 8 << 20
MAX_CHUNKS = 100_000
MAX_INLINE = 64
ED25519_SIG_BYTES = 64
_U32 = struct.Struct("<I")
_CHUNK_HEAD = struct.Struct("<QI")
_WRAP_NONCE = bytes(12)  # one fresh ephemeral key per wrap: the wrap key is never reused
KIND_FULL = "full"
KIND_DELTA = "delta"


class Refusal(enum.StrEnum):
    """Why a gateway did not apply a bundle (the ``reason`` of its ``fleet.refused`` event)."""

    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    WRONG_GROUP = "wrong_group"
    ROLLBACK = "rollback"
    NOT_FOR_ME = "not_for_me"
    BAD_KEY = "bad_key"
    BAD_CHUNK = "bad_chunk"


@dataclass(frozen=True)
class Header:
    group: str
    version: int
    created: float
    kind: str
    base_version: int | None
    signer: str
    size: int
    chunks: tuple[str, ...]
    recipients: Mapping[str, tuple[bytes, bytes]]  # gateway id -> (ephemeral pub, wrapped key)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "group": self.group,
            "version": self.version,
            "created": self.created,
            "kind": self.kind,
            "base_version": self.base_version,
            "signer": self.signer,
            "size": self.size,
            "chunks": list(self.chunks),
            "recipients": {
                gw: {"epk": _b64(epk), "key": _b64(wrapped)}
                for gw, (epk, wrapped) in sorted(self.recipients.items())
            },
        }


@dataclass(frozen=True)
class SealedBundle:
    """A sealed bundle: the signed message and its chunks (published separately or inline)."""

    header: Header
    message: bytes  # MAGIC … signature, no inline chunks
    chunks: tuple[bytes, ...]

    def standalone(self) -> bytes:
        """The message with no inline chunks (they go on the chunk topics)."""
        return self.message + _U32.pack(0)

    def inline(self) -> bytes:
        """The message carrying its chunks (a delta: one MQTT message)."""
        if len(self.chunks) > MAX_INLINE:
            raise ValueError(f"more than {MAX_INLINE} chunks cannot travel inline")
        return self.message + _U32.pack(len(self.chunks)) + _frames(self.chunks)


@dataclass(frozen=True)
class Parsed:
    """A message whose signature checked out (header fields validated)."""

    header: Header
    inline: tuple[bytes, ...]


@dataclass(frozen=True)
class Opened:
    header: Header
    plaintext: bytes


@dataclass(frozen=True)
class Refused:
    reason: Refusal
    detail: str
    version: int | None = None


# -- sealing (admin station) -------------------------------------------------------------------


def seal_bundle(
    payload: bytes,
    *,
    group: str,
    version: int,
    created: float,
    recipients: Mapping[str, X25519PublicKey],
    signing_key: Ed25519PrivateKey,
    kind: str = KIND_FULL,
    base_version: int | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> SealedBundle:
    """Encrypt ``payload`` under a fresh data key wrapped for every recipient, chunk and sign."""
    if kind not in (KIND_FULL, KIND_DELTA) or (kind == KIND_DELTA) != (base_version is not None):
        raise ValueError("a delta needs a base version, a full bundle none")
    if version < 1 or not recipients:
        raise ValueError("a bundle needs a positive version and at least one recipient")
    data_key = secrets.token_bytes(32)
    aead = AESGCM(data_key)
    pieces = [payload[i : i + chunk_bytes] for i in range(0, len(payload), chunk_bytes)] or [b""]
    chunks = tuple(
        CHUNK_MAGIC
        + _CHUNK_HEAD.pack(version, i)
        + aead.encrypt(_chunk_nonce(i), piece, _chunk_ad(group, version, i))
        for i, piece in enumerate(pieces)
    )
    header = Header(
        group=group,
        version=version,
        created=float(created),
        kind=kind,
        base_version=base_version,
        signer=key_id(signing_key),
        size=len(payload),
        chunks=tuple(hashlib.sha256(c).hexdigest() for c in chunks),
        recipients={
            gw: _wrap(data_key, pub, group=group, version=version, gateway=gw)
            for gw, pub in recipients.items()
        },
    )
    signed = _signed_part(header)
    message = signed + _U32.pack(ED25519_SIG_BYTES) + signing_key.sign(signed)
    return SealedBundle(header, message, chunks)


def _signed_part(header: Header) -> bytes:
    body = json.dumps(header.to_json(), sort_keys=True, separators=(",", ":")).encode("ascii")
    return MAGIC + _U32.pack(len(body)) + body


def _frames(items: Sequence[bytes]) -> bytes:
    return b"".join(_U32.pack(len(c)) + c for c in items)


def _chunk_nonce(index: int) -> bytes:
    return b"EGFC" + struct.pack("<Q", index)


def _chunk_ad(group: str, version: int, index: int) -> bytes:
    return f"edge-gate/fleet/v1|{group}|{version}|{index}".encode()


def _wrap_info(group: str, version: int, gateway: str, epk: bytes, gpk: bytes) -> bytes:
    return f"edge-gate/fleet/wrap/v1|{group}|{version}|{gateway}|".encode() + epk + gpk


def _raw(pub: X25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _wrap_key(shared: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


def _wrap(
    data_key: bytes, pub: X25519PublicKey, *, group: str, version: int, gateway: str
) -> tuple[bytes, bytes]:
    eph = X25519PrivateKey.generate()
    epk = _raw(eph.public_key())
    info = _wrap_info(group, version, gateway, epk, _raw(pub))
    wrapped = AESGCM(_wrap_key(eph.exchange(pub), info)).encrypt(_WRAP_NONCE, data_key, info)
    return epk, wrapped


# -- opening (gateway) -------------------------------------------------------------------------


def parse_message(data: bytes, fleet_key: Ed25519PublicKey) -> Parsed | Refused:
    """Split a bundle message, check its signature with the fleet key, validate the header."""
    if len(data) < len(MAGIC) + 4 or data[: len(MAGIC)] != MAGIC:
        return Refused(Refusal.MALFORMED, "not a fleet bundle")
    offset = len(MAGIC)
    (head_len,) = _U32.unpack_from(data, offset)
    offset += 4
    if head_len > MAX_HEADER_BYTES or offset + head_len + 4 > len(data):
        return Refused(Refusal.MALFORMED, "header overruns the message")
    signed = data[: offset + head_len]
    body = data[offset : offset + head_len]
    offset += head_len
    (sig_field_len,) = _U32.unpack_from(data, offset)
    offset += 4
    if sig_field_len != ED25519_SIG_BYTES or offset + ED25519_SIG_BYTES + 4 > len(data):
        return Refused(Refusal.MALFORMED, "bad signature field")
    signature = data[offset : offset + ED25519_SIG_BYTES]
    offset += ED25519_SIG_BYTES
    try:
        fleet_key.verify(signature, signed)
    except InvalidSignature:
        return Refused(Refusal.BAD_SIGNATURE, "not signed by this fleet's key")
    header = _parse_header(body)
    if isinstance(header, Refused):
        return header
    inline = _parse_inline(data, offset)
    if inline is None:
        return Refused(Refusal.MALFORMED, "bad inline chunk list", header.version)
    return Parsed(header, inline)


def _parse_inline(data: bytes, offset: int) -> tuple[bytes, ...] | None:
    (count,) = _U32.unpack_from(data, offset)
    offset += 4
    if count > MAX_INLINE:
        return None
    items = []
    for _ in range(count):
        if offset + 4 > len(data):
            return None
        (size,) = _U32.unpack_from(data, offset)
        offset += 4
        if offset + size > len(data):
            return None
        items.append(data[offset : offset + size])
        offset += size
    return tuple(items) if offset == len(data) else None


def _parse_header(body: bytes) -> Header | Refused:
    try:
        raw = json.loads(body.decode("ascii"))
        if raw["format"] != FORMAT:
            raise ValueError("format")
        recipients = {
            str(gw): (_unb64(r["epk"]), _unb64(r["key"])) for gw, r in raw["recipients"].items()
        }
        base = raw["base_version"]
        header = Header(
            group=str(raw["group"]),
            version=int(raw["version"]),
            created=float(raw["created"]),
            kind=str(raw["kind"]),
            base_version=None if base is None else int(base),
            signer=str(raw["signer"]),
            size=int(raw["size"]),
            chunks=tuple(str(h) for h in raw["chunks"]),
            recipients=recipients,
        )
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as e:
        return Refused(Refusal.MALFORMED, f"bad header: {type(e).__name__}")
    if (
        header.kind not in (KIND_FULL, KIND_DELTA)
        or (header.kind == KIND_DELTA) != (header.base_version is not None)
        or not (1 <= len(header.chunks) <= MAX_CHUNKS)
        or header.version < 1
        or header.size < 0
    ):
        return Refused(Refusal.MALFORMED, "inconsistent header", header.version)
    return header


def open_bundle(
    parsed: Parsed,
    chunks: Mapping[int, bytes],
    *,
    gateway_id: str,
    gateway_key: X25519PrivateKey,
) -> Opened | Refused:
    """Unwrap the data key for ``gateway_id`` and decrypt every chunk (hash, then tag)."""
    header = parsed.header
    entry = header.recipients.get(gateway_id)
    if entry is None:
        return Refused(Refusal.NOT_FOR_ME, "no key wrapped for this gateway", header.version)
    data_key = _unwrap(entry, header, gateway_id, gateway_key)
    if data_key is None:
        return Refused(Refusal.BAD_KEY, "the wrapped key does not open", header.version)
    aead = AESGCM(data_key)
    pieces = []
    for i, expected in enumerate(header.chunks):
        chunk = chunks.get(i)
        if chunk is None:
            return Refused(Refusal.BAD_CHUNK, f"chunk {i} missing", header.version)
        digest = hashlib.sha256(chunk).hexdigest()
        if not hmac.compare_digest(digest, expected):
            return Refused(Refusal.BAD_CHUNK, f"chunk {i} hash mismatch", header.version)
        head = len(CHUNK_MAGIC) + _CHUNK_HEAD.size
        if chunk[: len(CHUNK_MAGIC)] != CHUNK_MAGIC or _CHUNK_HEAD.unpack_from(
            chunk, len(CHUNK_MAGIC)
        ) != (header.version, i):
            return Refused(Refusal.BAD_CHUNK, f"chunk {i} is not this bundle's", header.version)
        try:
            pieces.append(
                aead.decrypt(
                    _chunk_nonce(i), chunk[head:], _chunk_ad(header.group, header.version, i)
                )
            )
        except InvalidTag:
            return Refused(Refusal.BAD_CHUNK, f"chunk {i} does not decrypt", header.version)
    plaintext = b"".join(pieces)
    if len(plaintext) != header.size:
        return Refused(Refusal.BAD_CHUNK, "payload size differs from the header", header.version)
    return Opened(header, plaintext)


def chunk_identity(chunk: bytes) -> tuple[int, int] | None:
    """``(version, index)`` a chunk claims (to file it before its header arrives)."""
    head = len(CHUNK_MAGIC) + _CHUNK_HEAD.size
    if len(chunk) < head or chunk[: len(CHUNK_MAGIC)] != CHUNK_MAGIC:
        return None
    version, index = _CHUNK_HEAD.unpack_from(chunk, len(CHUNK_MAGIC))
    return int(version), int(index)


def _unwrap(
    entry: tuple[bytes, bytes], header: Header, gateway_id: str, key: X25519PrivateKey
) -> bytes | None:
    epk, wrapped = entry
    try:
        eph = X25519PublicKey.from_public_bytes(epk)
        info = _wrap_info(header.group, header.version, gateway_id, epk, _raw(key.public_key()))
        shared = key.exchange(eph)
        data_key = AESGCM(_wrap_key(shared, info)).decrypt(_WRAP_NONCE, wrapped, info)
    except (ValueError, InvalidTag):
        return None
    return data_key if len(data_key) == 32 else None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise TypeError("expected base64 text")
    return base64.b64decode(text, validate=True)
