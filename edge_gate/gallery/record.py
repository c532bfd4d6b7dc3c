"""Plaintext of one gallery record and its byte encoding (pure core: numpy + stdlib).

Layout (everything is encrypted before it touches the disk)::

    b"EGR1" | u32 header_len | header (UTF-8 JSON, space-padded to a 256-byte multiple)
            | float32 little-endian templates, n x dim

The header holds the user id, display name, embedder name, creation time and shape. The
padding keeps short and long names the same ciphertext length so the file does not leak
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

__layer__ = "core"

FloatArray = npt.NDArray[np.float32]

MAGIC = b"EGR1"
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
    """One enrolled person: pseudonymous id, display name and L2-normalised templates."""

    user_id: str
    name: str
    model: str
    created_at: float
    templates: FloatArray = field(repr=False)

    @property
    def n_templates(self) -> int:
        return int(self.templates.shape[0])

    @property
    def dim(self) -> int:
        return int(self.templates.shape[1])


def encode_record(rec: PersonRecord) -> bytes:
    """Serialise ``rec`` (validated) into the record plaintext."""
    if not USER_ID_RE.match(rec.user_id):
        raise ValueError(f"bad user id {rec.user_id!r}")
    templates = np.asarray(rec.templates, dtype="<f4")
    if templates.ndim != 2 or not (1 <= templates.shape[0] <= MAX_TEMPLATES):
        raise ValueError(f"a person has 1..{MAX_TEMPLATES} templates")
    if not (1 <= templates.shape[1] <= MAX_DIM):
        raise ValueError("bad template dimension")
    header: dict[str, Any] = {
        "user_id": rec.user_id,
        "name": _storable_name(rec.name),
        "model": rec.model,
        "created_at": float(rec.created_at),
        "n": int(templates.shape[0]),
        "dim": int(templates.shape[1]),
    }
    raw = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    padded = raw + b" " * (-len(raw) % HEADER_BLOCK)
    return MAGIC + _LEN.pack(len(padded)) + padded + templates.tobytes()


def decode_record(data: bytes) -> PersonRecord:
    """Parse a record plaintext; raise :class:`RecordFormatError` on any inconsistency."""
    if len(data) < 8 or data[:4] != MAGIC:
        raise RecordFormatError("bad record magic")
    (header_len,) = _LEN.unpack_from(data, 4)
    if header_len > len(data) - 8:
        raise RecordFormatError("record header overruns the record")
    try:
        header = json.loads(data[8 : 8 + header_len].decode("utf-8"))
        n, dim = int(header["n"]), int(header["dim"])
        user_id, name, model = str(header["user_id"]), str(header["name"]), str(header["model"])
        created_at = float(header["created_at"])
    except (ValueError, KeyError, TypeError) as e:
        raise RecordFormatError(f"bad record header: {e}") from e
    body = data[8 + header_len :]
    if not (1 <= n <= MAX_TEMPLATES and 1 <= dim <= MAX_DIM) or len(body) != n * dim * 4:
        raise RecordFormatError("record template block has the wrong size")
    templates = np.frombuffer(body, dtype="<f4").reshape(n, dim).astype(np.float32)
    return PersonRecord(
        user_id=user_id, name=name, model=model, created_at=created_at, templates=templates
    )
