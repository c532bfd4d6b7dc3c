"""Audit event model and its canonical encoding (pure core: no I/O, no clock, no randomness).

An event is a flat JSON object. Schema version 1 (``edge_gate/schemas/event.schema.json``):

* ``v`` schema version, ``id`` UUIDv7, ``seq`` per-gateway monotonic counter (from the outbox),
  ``ts`` UTC with milliseconds (``2026-11-26T15:46:00.123Z``), ``gateway``, ``door`` (``null`` for
  gateway-wide events), ``type`` (one of :class:`EventType`), ``subject`` (pseudonymous user id or
  ``null``), ``reason`` (short machine-readable text or ``null``);
* optional measurements rounded before they leave the box (``score``, ``margin``, ``liveness``,
  ``quality`` to 3 decimals, ``latency_ms`` to an integer) and counters (``frames``, ``count``,
  ``dropped``, ``dropped_security``), ``detail`` (free text), ``name`` (only when the operator
  opted in with ``mqtt.include_names``);
* ``kid`` (signing key id) and ``sig`` (Ed25519, base64) added by :mod:`edge_gate.audit.signing`.

Anything else (images, embeddings, arbitrary keys) is refused by :func:`build_event`, so it can
never reach the broker. Fields with a strict format (``type``, ``seq``, ``gateway``, ``door``,
``subject``, numbers) are validated and refused when wrong: that is a programming error. Free text
(``reason``, ``detail``, ``name``) never costs an event: :func:`shorten_text` replaces
non-printable characters and cuts it to :data:`MAX_TEXT_CHARS` ending in ``…``.

The signature covers :func:`canonical_bytes` of every field except ``sig``: JSON with sorted
keys, no whitespace, UTF-8, no NaN/Infinity.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__layer__ = "core"

SCHEMA_VERSION = 1
MAX_TEXT_CHARS = 200
MAX_EVENT_BYTES = 4096
ELLIPSIS = "\u2026"  # ends free text that was shortened to MAX_TEXT_CHARS
_REPLACEMENT = "\ufffd"  # stands in for a non-printable character in free text
_WHITESPACE_CONTROLS = frozenset("\t\n\r\v\f")

_ID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_SUBJECT_RE = re.compile(r"^[A-Za-z0-9_\-.:]{1,64}$")
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


class EventType(enum.StrEnum):
    """Every event type a gateway may publish (the schema's ``type`` enum)."""

    ACCESS_GRANTED = "access.granted"
    ACCESS_DENIED = "access.denied"
    LIVENESS_FAILED = "liveness.failed"
    RELAY_ERROR = "relay.error"
    CAMERA_LOST = "camera.lost"
    CAMERA_RESTORED = "camera.restored"
    GALLERY_ENROLLED = "gallery.enrolled"
    GALLERY_RENAMED = "gallery.renamed"
    GALLERY_REVOKED = "gallery.revoked"
    GALLERY_KEYS_ROTATED = "gallery.keys_rotated"
    GALLERY_TAMPERED = "gallery.tampered"
    SERVICE_STARTED = "service.started"
    SERVICE_STOPPING = "service.stopping"
    SERVICE_DEGRADED = "service.degraded"
    AUDIT_DROPPED = "audit.dropped"
    FLEET_APPLIED = "fleet.applied"
    FLEET_REFUSED = "fleet.refused"
    GALLERY_CREDENTIAL_CHANGED = "gallery.credential_changed"
    OSDP_OFFLINE = "osdp.offline"  # the OSDP reader's link or Secure Channel went down
    OSDP_ONLINE = "osdp.online"  # it is back with a Secure Channel
    OSDP_PANEL_COMMAND = "osdp.panel_command"
    TEST = "test"


# Security events are what an auditor needs; the outbox drops them last (see outbox.py).
SECURITY_TYPES: frozenset[EventType] = frozenset(
    {
        EventType.ACCESS_GRANTED,
        EventType.ACCESS_DENIED,
        EventType.LIVENESS_FAILED,
        EventType.RELAY_ERROR,
        EventType.GALLERY_ENROLLED,
        EventType.GALLERY_RENAMED,
        EventType.GALLERY_REVOKED,
        EventType.GALLERY_KEYS_ROTATED,
        EventType.GALLERY_TAMPERED,
        EventType.AUDIT_DROPPED,
        EventType.FLEET_APPLIED,
        EventType.FLEET_REFUSED,
        EventType.GALLERY_CREDENTIAL_CHANGED,
        EventType.OSDP_OFFLINE,
        EventType.OSDP_ONLINE,
        EventType.OSDP_PANEL_COMMAND,
    }
)

ROUNDED_FIELDS: Mapping[str, int] = {"score": 3, "margin": 3, "liveness": 3, "quality": 3}
INT_FIELDS: frozenset[str] = frozenset(
    {"latency_ms", "frames", "count", "dropped", "dropped_security"}
)
TEXT_FIELDS: frozenset[str] = frozenset({"detail"})
# keyed, non-reversible tags of credentials (edge_gate.osdp.cards.card_hash): never the number
TAG_FIELDS: frozenset[str] = frozenset({"card"})
_TAG_RE = re.compile(r"^[0-9a-f]{16}$")
OPT_IN_FIELDS: frozenset[str] = frozenset({"name"})
BASE_FIELDS: tuple[str, ...] = (
    "v",
    "id",
    "seq",
    "ts",
    "gateway",
    "door",
    "type",
    "subject",
    "reason",
)
SIGNATURE_FIELDS: tuple[str, ...] = ("kid", "sig")
OPTIONAL_FIELDS: frozenset[str] = (
    frozenset(ROUNDED_FIELDS) | INT_FIELDS | TEXT_FIELDS | TAG_FIELDS | OPT_IN_FIELDS
)
ALL_FIELDS: frozenset[str] = frozenset(BASE_FIELDS) | OPTIONAL_FIELDS | frozenset(SIGNATURE_FIELDS)


class EventFieldError(ValueError):
    """An event field is unknown, of the wrong type or out of range (a programming error)."""


@dataclass(frozen=True)
class BuiltEvent:
    """An unsigned event ready for signing, plus what the outbox needs to index it."""

    fields: Mapping[str, Any]
    event_type: EventType
    door: str | None
    is_security: bool
    dropped_fields: tuple[str, ...]


def uuid7(unix_ms: int, rand: bytes) -> str:
    """RFC 9562 UUIDv7 from a millisecond timestamp and 10 random bytes (74 bits used)."""
    if len(rand) != 10:
        raise ValueError("uuid7 needs 10 random bytes")
    if not 0 <= unix_ms < 1 << 48:
        raise ValueError("uuid7 timestamp out of range")
    r = int.from_bytes(rand, "big")
    rand_a = r >> 68 & 0xFFF
    rand_b = r & ((1 << 62) - 1)
    value = unix_ms << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def format_ts(unix_ms: int) -> str:
    """UTC ISO 8601 with milliseconds and ``Z``."""
    t = dt.datetime.fromtimestamp(unix_ms / 1000, tz=dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{unix_ms % 1000:03d}Z"


def shorten_text(value: str, limit: int = MAX_TEXT_CHARS) -> str:
    """Free text made safe for an event: printable, at most ``limit`` characters.

    Line breaks and tabs become spaces, any other non-printable character (control, format,
    lone surrogate) becomes U+FFFD; text longer than ``limit`` is cut and ends with
    :data:`ELLIPSIS`, so a reader sees that it was shortened. The result always satisfies the
    schema's ``maxLength`` (counted in code points, like ``len``).
    """
    if limit < 1:
        raise ValueError("limit must be >= 1")
    cleaned = "".join(
        c if c.isprintable() else " " if c in _WHITESPACE_CONTROLS else _REPLACEMENT for c in value
    )
    if len(cleaned) <= limit:
        return cleaned
    return cleaned[: limit - len(ELLIPSIS)] + ELLIPSIS


def _clean_text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise EventFieldError(f"{field}: expected text")
    return shorten_text(value)


def _clean_optional(key: str, value: object) -> object:
    if key in ROUNDED_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise EventFieldError(f"{key}: expected a number")
        if not math.isfinite(value):
            raise EventFieldError(f"{key}: not finite")
        return round(float(value), ROUNDED_FIELDS[key])
    if key in INT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise EventFieldError(f"{key}: expected a number")
        if not math.isfinite(value) or value < 0:
            raise EventFieldError(f"{key}: must be finite and >= 0")
        return round(value)
    if key in TAG_FIELDS:
        if not isinstance(value, str) or not _TAG_RE.match(value):
            raise EventFieldError(f"{key}: expected a 16-hex-digit keyed tag")
        return value
    return _clean_text(value, key)


def build_event(
    *,
    event_type: EventType | str,
    seq: int,
    unix_ms: int,
    rand: bytes,
    gateway: str,
    door: str | None,
    subject: str | None = None,
    reason: str | None = None,
    include_names: bool = False,
    extra: Mapping[str, object] | None = None,
) -> BuiltEvent:
    """Validate and assemble an unsigned event.

    Unknown optional fields (and ``name`` without ``include_names``) are left out and listed in
    ``dropped_fields`` instead of failing, so an audit record is never lost to a stray keyword.
    Free text (``reason``, ``detail``, ``name``) is cleaned and shortened (:func:`shorten_text`),
    never refused for its content or length. Structured fields that are wrong (type, seq, ids,
    numbers, non-text where text is expected) raise :class:`EventFieldError`.
    """
    try:
        etype = EventType(event_type)
    except ValueError as e:
        raise EventFieldError(f"type: unknown event type {event_type!r}") from e
    if seq < 1:
        raise EventFieldError("seq: must be >= 1")
    if not _ID_RE.match(gateway):
        raise EventFieldError("gateway: 1-64 of [A-Za-z0-9_-]")
    if door is not None and not _ID_RE.match(door):
        raise EventFieldError("door: 1-64 of [A-Za-z0-9_-]")
    if subject is not None and not _SUBJECT_RE.match(subject):
        raise EventFieldError("subject: 1-64 of [A-Za-z0-9_-.:]")
    fields: dict[str, Any] = {
        "v": SCHEMA_VERSION,
        "id": uuid7(unix_ms, rand),
        "seq": seq,
        "ts": format_ts(unix_ms),
        "gateway": gateway,
        "door": door,
        "type": etype.value,
        "subject": subject,
        "reason": None if reason is None else _clean_text(reason, "reason"),
    }
    dropped: list[str] = []
    for key, value in sorted((extra or {}).items()):
        if value is None:
            continue
        if key not in OPTIONAL_FIELDS or (key in OPT_IN_FIELDS and not include_names):
            dropped.append(key)
            continue
        fields[key] = _clean_optional(key, value)
    return BuiltEvent(
        fields=fields,
        event_type=etype,
        door=door,
        is_security=etype in SECURITY_TYPES,
        dropped_fields=tuple(dropped),
    )


def canonical_bytes(fields: Mapping[str, Any]) -> bytes:
    """The signed form: JSON, sorted keys, no whitespace, UTF-8, ``sig`` excluded."""
    body = {k: v for k, v in fields.items() if k != "sig"}
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def encode_event(fields: Mapping[str, Any]) -> bytes:
    """The wire form (what is stored and published): canonical JSON including ``sig``."""
    return json.dumps(
        dict(fields), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def decode_event(data: bytes | str) -> dict[str, Any]:
    """Parse one wire event and check its shape (not its signature); raise EventFieldError."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > MAX_EVENT_BYTES:
        raise EventFieldError(f"event larger than {MAX_EVENT_BYTES} bytes")
    try:
        obj = json.loads(data, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as e:
        raise EventFieldError(f"not JSON: {e}") from e
    if not isinstance(obj, dict):
        raise EventFieldError("event is not a JSON object")
    unknown = set(obj) - ALL_FIELDS
    if unknown:
        raise EventFieldError(f"unknown fields: {sorted(unknown)}")
    missing = [k for k in (*BASE_FIELDS, *SIGNATURE_FIELDS) if k not in obj]
    if missing:
        raise EventFieldError(f"missing fields: {missing}")
    if obj["v"] != SCHEMA_VERSION:
        raise EventFieldError(f"unsupported schema version {obj['v']!r}")
    seq = obj["seq"]
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise EventFieldError("seq: must be an integer >= 1")
    if not isinstance(obj["id"], str) or not _UUID_RE.match(obj["id"]):
        raise EventFieldError("id: not a UUIDv7")
    if not isinstance(obj["ts"], str) or not _TS_RE.match(obj["ts"]):
        raise EventFieldError("ts: not a UTC millisecond timestamp")
    if not isinstance(obj["gateway"], str) or not _ID_RE.match(obj["gateway"]):
        raise EventFieldError("gateway: invalid")
    if obj["type"] not in {t.value for t in EventType}:
        raise EventFieldError(f"type: unknown {obj['type']!r}")
    if not isinstance(obj["sig"], str) or not isinstance(obj["kid"], str):
        raise EventFieldError("sig/kid: expected text")
    return obj


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")
