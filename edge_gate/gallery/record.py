"""Plaintext of one gallery record and its byte encoding (pure core: numpy + stdlib).

Layout (everything is encrypted before it touches the disk)::

    b"EGR2" | u32 header_len | header (UTF-8 JSON, space-padded to a 256-byte multiple)
            | per model, in header order: float32 little-endian unit templates, n x dim_i

The header holds the user id, display name, creation time, the number of templates ``n`` and
``parts``: ``[{"model": id, "dim": d}, …]``, one entry per embedder of the set the person was
enrolled with. Each model's templates are stored on their own (model id → vectors); in memory
:attr:`PersonRecord.templates` is their fused form (:mod:`edge_gate.vision.fusion`), which for a
single model is just that model's templates.

Optional credentials (absent in records of older versions, which still load unchanged):
``card`` = ``{"format": "wiegand26", "facility": F, "number": N}`` (the person's access card) and
``pin`` = a salted scrypt hash with its parameters (:class:`edge_gate.gallery.pin.PinHash`; the
PIN itself is never stored). Both live in the encrypted header, never in plaintext.

Migration: records written before fusion (``b"EGR1"``, one model, header ``model``/``dim``,
body ``n x dim``) are still read, as a single part tagged with their model id; the store
writes ``EGR2`` whenever it (re-)encodes a record (``gallery migrate``, rename, keys rotate).

The padding keeps short and long names the same ciphertext length so the file does not leak
name lengths.
"""

from __future__ import annotations

import json
import re
import struct
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_gate.osdp.cards import CardCredential, CardFormat
from edge_gate.vision import fusion

__layer__ = "core"

FloatArray = npt.NDArray[np.float32]

MAGIC = b"EGR2"
MAGIC_V1 = b"EGR1"
MAX_PARTS = 8
HEADER_BLOCK = 256
MAX_NAME_CHARS = 200
MAX_TEMPLATES = 64
MAX_DIM = 4096
USER_ID_RE = re.compile(r"^u_[a-z2-7]{12}$")
# controls (Cc), invisible format characters such as bidi overrides (Cf), line/paragraph
# separators (Zl, Zp) and lone surrogates (Cs: undecodable bytes from a non-UTF-8 terminal)
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
# zero-width non-joiner / joiner: Cf, but part of correct spelling in Persian and Indic
# scripts and of emoji sequences such as 👩‍🔬
_ALLOWED_FORMAT_CHARS = frozenset({"\u200c", "\u200d"})
_LEN = struct.Struct("<I")


# -- PIN hashes (hashing and checking: edge_gate.gallery.pin) ---------------------------------
ALGORITHM = "scrypt"
DEFAULT_N = 2**14
DEFAULT_R = 8
DEFAULT_P = 1
HASH_BYTES = 32
# bounds a record may claim (a forged or corrupted record must not make a check take minutes)
MAX_N = 2**20
MAX_R = 32
MAX_P = 16


@dataclass(frozen=True, slots=True)
class PinHash:
    """A salted scrypt hash of a PIN and its parameters."""

    salt: bytes
    digest: bytes
    n: int = DEFAULT_N
    r: int = DEFAULT_R
    p: int = DEFAULT_P

    def __post_init__(self) -> None:
        n, r, p = self.n, self.r, self.p
        if not (2 <= n <= MAX_N and n & (n - 1) == 0 and 1 <= r <= MAX_R and 1 <= p <= MAX_P):
            raise ValueError("PIN hash parameters out of range")
        if len(self.salt) < 8 or len(self.digest) != HASH_BYTES:
            raise ValueError("PIN hash salt or digest has the wrong size")

    def __repr__(self) -> str:
        return f"PinHash(scrypt n={self.n} r={self.r} p={self.p}, <redacted>)"

    def to_json(self) -> dict[str, Any]:
        return {
            "alg": ALGORITHM,
            "n": self.n,
            "r": self.r,
            "p": self.p,
            "salt": self.salt.hex(),
            "hash": self.digest.hex(),
        }

    @classmethod
    def from_json(cls, obj: Any) -> PinHash:
        """Parse the record form; raise ``ValueError`` / ``KeyError`` / ``TypeError`` if bad."""
        if not isinstance(obj, dict) or obj.get("alg") != ALGORITHM:
            raise ValueError("unknown PIN hash algorithm")
        return cls(
            salt=bytes.fromhex(str(obj["salt"])),
            digest=bytes.fromhex(str(obj["hash"])),
            n=int(obj["n"]),
            r=int(obj["r"]),
            p=int(obj["p"]),
        )


class RecordFormatError(ValueError):
    """A decrypted record does not follow the layout (only possible with a forged key)."""


def validate_name(name: str) -> str:
    """Return the display name stripped, or raise ``ValueError`` with the reason."""
    stripped = name.strip()
    if not stripped:
        raise ValueError("the name is empty")
    if len(stripped) > MAX_NAME_CHARS:
        raise ValueError(f"the name is longer than {MAX_NAME_CHARS} characters")
    for c in stripped:
        category = unicodedata.category(c)
        if category in _REFUSED_CATEGORIES and c not in _ALLOWED_FORMAT_CHARS:
            raise ValueError(
                f"the name contains U+{ord(c):04X} ({_describe(c, category)}); control, "
                "invisible formatting and line separator characters are not allowed"
            )
    return stripped


def _storable_name(name: str) -> str:
    """The weaker check ``encode_record`` applies: what older versions accepted, UTF-8 encodable.

    New names pass :func:`validate_name` first (enroll, rename); re-encrypting a record written
    by an older version (``keys rotate``) must not fail on a name it then accepted.
    """
    if not name or name != name.strip() or len(name) > MAX_NAME_CHARS:
        raise ValueError("the name is empty, not stripped or too long")
    if any(ord(c) < 32 or ord(c) == 127 or unicodedata.category(c) == "Cs" for c in name):
        raise ValueError("the name contains control characters or lone surrogates")
    return name


def _describe(c: str, category: str) -> str:
    if category == "Cs":
        return "a lone surrogate: the name was not valid UTF-8 text"
    return unicodedata.name(c, "a control character" if category == "Cc" else category)


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """One enrolled person: pseudonymous id, display name and L2-normalised templates.

    ``model`` names the embedder set (:func:`edge_gate.vision.fusion.set_id`); ``templates`` are
    the fused templates, ``n x sum(dims)``; ``dims`` gives each model's width (default: one
    model, ``templates.shape[1]``). ``card`` and ``pin`` are the optional second factors.
    """

    user_id: str
    name: str
    model: str
    created_at: float
    templates: FloatArray = field(repr=False)
    dims: tuple[int, ...] = ()
    card: CardCredential | None = None
    pin: PinHash | None = None

    @property
    def n_templates(self) -> int:
        return int(self.templates.shape[0])

    @property
    def dim(self) -> int:
        return int(self.templates.shape[1])

    @property
    def models(self) -> tuple[str, ...]:
        return fusion.split_set_id(self.model)

    @property
    def part_dims(self) -> tuple[int, ...]:
        return self.dims or (self.dim,)

    def templates_by_model(self) -> dict[str, FloatArray]:
        """Each model's own unit templates (model id → ``n x dim_i``)."""
        if len(self.models) != len(self.part_dims):
            raise ValueError(f"{len(self.models)} models but {len(self.part_dims)} widths")
        if len(self.models) == 1:
            return {self.model: self.templates}
        blocks = fusion.per_model(self.templates, self.part_dims)
        return dict(zip(self.models, blocks, strict=True))


def encode_record(rec: PersonRecord) -> bytes:
    """Serialise ``rec`` (validated) into the record plaintext (``EGR2``)."""
    if not USER_ID_RE.match(rec.user_id):
        raise ValueError(f"bad user id {rec.user_id!r}")
    templates = np.asarray(rec.templates, dtype="<f4")
    if templates.ndim != 2 or not (1 <= templates.shape[0] <= MAX_TEMPLATES):
        raise ValueError(f"a person has 1..{MAX_TEMPLATES} templates")
    dims = rec.dims or (int(templates.shape[1]),)
    if not (1 <= len(dims) <= MAX_PARTS) or any(not (1 <= d <= MAX_DIM) for d in dims):
        raise ValueError("bad template dimension")
    if sum(dims) != templates.shape[1] or len(rec.models) != len(dims):
        raise ValueError(f"{rec.model!r} with widths {list(dims)} ≠ templates {templates.shape}")
    blocks = rec.templates_by_model()
    header: dict[str, Any] = {
        "user_id": rec.user_id,
        "name": _storable_name(rec.name),
        "created_at": float(rec.created_at),
        "n": int(templates.shape[0]),
        "parts": [{"model": m, "dim": int(d)} for m, d in zip(rec.models, dims, strict=True)],
    }
    if rec.card is not None:
        header["card"] = {
            "format": rec.card.format.value,
            "facility": rec.card.facility,
            "number": rec.card.number,
        }
    if rec.pin is not None:
        header["pin"] = rec.pin.to_json()
    raw = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    padded = raw + b" " * (-len(raw) % HEADER_BLOCK)
    body = b"".join(np.asarray(blocks[m], dtype="<f4").tobytes() for m in rec.models)
    return MAGIC + _LEN.pack(len(padded)) + padded + body


def decode_record(data: bytes) -> PersonRecord:
    """Parse a record plaintext (``EGR2``, or the single-model ``EGR1``); raise
    :class:`RecordFormatError` on any inconsistency."""
    if len(data) < 8 or data[:4] not in (MAGIC, MAGIC_V1):
        raise RecordFormatError("bad record magic")
    (header_len,) = _LEN.unpack_from(data, 4)
    if header_len > len(data) - 8:
        raise RecordFormatError("record header overruns the record")
    try:
        header = json.loads(data[8 : 8 + header_len].decode("utf-8"))
        n = int(header["n"])
        user_id, name = str(header["user_id"]), str(header["name"])
        created_at = float(header["created_at"])
        if data[:4] == MAGIC_V1:
            parts = [(str(header["model"]), int(header["dim"]))]
        else:
            parts = [(str(p["model"]), int(p["dim"])) for p in header["parts"]]
        card = _decode_card(header.get("card"))
        pin = None if header.get("pin") is None else PinHash.from_json(header["pin"])
    except (ValueError, KeyError, TypeError) as e:
        raise RecordFormatError(f"bad record header: {e}") from e
    dims = [d for _, d in parts]
    models = [m for m, _ in parts]
    body = data[8 + header_len :]
    if (
        not (1 <= n <= MAX_TEMPLATES and 1 <= len(parts) <= MAX_PARTS)
        or any(not (1 <= d <= MAX_DIM) for d in dims)
        or any(not m or fusion.SEPARATOR in m for m in models)
        or len(body) != n * sum(dims) * 4
    ):
        raise RecordFormatError("record template block has the wrong size")
    blocks, offset = [], 0
    for d in dims:
        size = n * d * 4
        blocks.append(
            np.frombuffer(body[offset : offset + size], dtype="<f4")
            .reshape(n, d)
            .astype(np.float32)
        )
        offset += size
    return PersonRecord(
        user_id=user_id,
        name=name,
        model=fusion.set_id(models),
        created_at=created_at,
        templates=fusion.fuse(blocks),
        dims=tuple(dims) if len(dims) > 1 else (),
        card=card,
        pin=pin,
    )


def _decode_card(obj: Any) -> CardCredential | None:
    if obj is None:
        return None
    if not isinstance(obj, dict):
        raise TypeError("card is not an object")
    return CardCredential(CardFormat(str(obj["format"])), int(obj["facility"]), int(obj["number"]))
