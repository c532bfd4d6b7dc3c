"""What a fleet bundle carries, as bytes (pure core: numpy + stdlib).

Layout (always encrypted before it leaves the admin station, see :mod:`edge_gate.fleet.bundle`)::

    b"EGFP" | u32 n_records | u32 n_removed | n_removed x 14-byte user id
            | n_records x (u32 header_len | header JSON | float32 LE templates, n x sum(dims))

A record header is ``{"id", "name", "model", "dims", "n"}`` plus ``"card"`` when the person has
an access-card number. A full bundle lists the group's people and no removals; a delta lists
the people added or changed and the ids removed since its base version.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

import numpy as np

from edge_gate.gallery.record import MAX_DIM, MAX_PARTS, MAX_TEMPLATES, USER_ID_RE, PersonRecord
from edge_gate.vision import fusion

__layer__ = "core"

MAGIC = b"EGFP"
USER_ID_BYTES = 14
MAX_RECORD_HEADER = 4096
MAX_CARD_CHARS = 64
_U32 = struct.Struct("<I")
_COUNTS = struct.Struct("<II")


class PayloadError(ValueError):
    """The decrypted payload does not follow the layout (only with a forged fleet key)."""


@dataclass(frozen=True)
class FleetPerson:
    """One person as the fleet distributes them: the gallery record and an optional card."""

    record: PersonRecord
    card: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Payload:
    people: tuple[FleetPerson, ...] = ()
    removed: tuple[str, ...] = ()


def encode_payload(payload: Payload) -> bytes:
    parts = [MAGIC, _COUNTS.pack(len(payload.people), len(payload.removed))]
    for user_id in payload.removed:
        if not USER_ID_RE.match(user_id):
            raise ValueError(f"bad user id {user_id!r}")
        parts.append(user_id.encode("ascii"))
    for person in payload.people:
        rec = person.record
        if not USER_ID_RE.match(rec.user_id):
            raise ValueError(f"bad user id {rec.user_id!r}")
        if person.card is not None and not (0 < len(person.card) <= MAX_CARD_CHARS):
            raise ValueError("bad card number length")
        head: dict[str, object] = {
            "id": rec.user_id,
            "name": rec.name,
            "model": rec.model,
            "dims": list(rec.part_dims),
            "n": rec.n_templates,
            "created": float(rec.created_at),
        }
        if person.card is not None:
            head["card"] = person.card
        raw = json.dumps(head, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        parts += [_U32.pack(len(raw)), raw, np.asarray(rec.templates, dtype="<f4").tobytes()]
    return b"".join(parts)


def decode_payload(data: bytes) -> Payload:
    """Parse a payload; raise :class:`PayloadError` on any inconsistency."""
    if len(data) < 12 or data[:4] != MAGIC:
        raise PayloadError("bad payload magic")
    n_records, n_removed = _COUNTS.unpack_from(data, 4)
    offset = 12
    end_removed = offset + n_removed * USER_ID_BYTES
    if end_removed > len(data):
        raise PayloadError("removal list overruns the payload")
    removed = []
    for i in range(n_removed):
        raw_id = data[offset + i * USER_ID_BYTES : offset + (i + 1) * USER_ID_BYTES]
        user_id = raw_id.decode("ascii", errors="replace")
        if not USER_ID_RE.match(user_id):
            raise PayloadError("bad user id in the removal list")
        removed.append(user_id)
    offset = end_removed
    people = []
    for _ in range(n_records):
        person, offset = _decode_person(data, offset)
        people.append(person)
    if offset != len(data):
        raise PayloadError("trailing bytes after the last record")
    return Payload(tuple(people), tuple(removed))


def _decode_person(data: bytes, offset: int) -> tuple[FleetPerson, int]:
    if offset + 4 > len(data):
        raise PayloadError("record overruns the payload")
    (head_len,) = _U32.unpack_from(data, offset)
    offset += 4
    if head_len > MAX_RECORD_HEADER or offset + head_len > len(data):
        raise PayloadError("record header overruns the payload")
    try:
        head = json.loads(data[offset : offset + head_len].decode("utf-8"))
        user_id, name, model = str(head["id"]), str(head["name"]), str(head["model"])
        dims = tuple(int(d) for d in head["dims"])
        n = int(head["n"])
        created = float(head["created"])
        card = head.get("card")
    except (ValueError, KeyError, TypeError) as e:
        raise PayloadError(f"bad record header: {e}") from e
    offset += head_len
    models = fusion.split_set_id(model) if model else ()
    if (
        not USER_ID_RE.match(user_id)
        or not (1 <= n <= MAX_TEMPLATES and 1 <= len(dims) <= MAX_PARTS)
        or any(not (1 <= d <= MAX_DIM) for d in dims)
        or len(models) != len(dims)
        or (card is not None and not (isinstance(card, str) and 0 < len(card) <= MAX_CARD_CHARS))
    ):
        raise PayloadError("bad record header values")
    size = n * sum(dims) * 4
    if offset + size > len(data):
        raise PayloadError("record templates overrun the payload")
    templates = np.frombuffer(data, dtype="<f4", count=n * sum(dims), offset=offset)
    offset += size
    record = PersonRecord(
        user_id=user_id,
        name=name,
        model=model,
        created_at=created,
        templates=templates.reshape(n, sum(dims)).astype(np.float32),
        dims=dims if len(dims) > 1 else (),
    )
    return FleetPerson(record, card), offset
