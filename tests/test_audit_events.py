"""Audit event model: UUIDv7, canonical encoding, field policy, schema file agreement."""

from __future__ import annotations

import contextlib
import json
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_gate.audit.events import (
    ALL_FIELDS,
    BASE_FIELDS,
    ELLIPSIS,
    MAX_EVENT_BYTES,
    MAX_TEXT_CHARS,
    SIGNATURE_FIELDS,
    EventFieldError,
    EventType,
    build_event,
    canonical_bytes,
    decode_event,
    encode_event,
    format_ts,
    shorten_text,
    uuid7,
)
from edge_gate.audit.signing import (
    EventSigner,
    VerifyOutcome,
    generate_signing_key,
    parse_signing_key,
    verify_event,
)

NOW_MS = 1_795_708_443_123


def _event(**kw: object) -> dict[str, object]:
    args: dict[str, object] = {
        "event_type": "access.granted",
        "seq": 7,
        "unix_ms": NOW_MS,
        "rand": bytes(range(10)),
        "gateway": "gw1",
        "door": "door-1",
        "subject": "u-7f3a",
        "reason": "match",
    }
    args.update(kw)
    return dict(build_event(**args).fields)  # type: ignore[arg-type]


@given(st.integers(0, (1 << 48) - 1), st.binary(min_size=10, max_size=10))
def test_uuid7_layout(unix_ms: int, rand: bytes) -> None:
    """UUIDv7: version 7, RFC variant, the millisecond timestamp in the top 48 bits."""
    u = uuid7(unix_ms, rand)
    hexdigits = u.replace("-", "")
    assert len(u) == 36
    assert len(hexdigits) == 32
    assert hexdigits[12] == "7"
    assert hexdigits[16] in "89ab"
    assert int(hexdigits[:12], 16) == unix_ms


def test_uuid7_sorts_by_time() -> None:
    """Later events get lexicographically larger ids (useful for desks' storage)."""
    ids = [uuid7(NOW_MS + i, bytes([255 - i] * 10)) for i in range(50)]
    assert ids == sorted(ids)


def test_timestamp_is_utc_with_milliseconds() -> None:
    """``ts`` is ISO 8601 UTC with exactly three fraction digits and a Z."""
    assert format_ts(0) == "1970-01-01T00:00:00.000Z"
    assert format_ts(NOW_MS).endswith(".123Z")


def test_canonical_encoding_sorted_compact_utf8_without_sig() -> None:
    """Sorted keys, no whitespace, raw UTF-8, ``sig`` excluded: the exact bytes that are signed."""
    fields = _event(extra={"detail": "Tür 3 — Süd"})
    fields["sig"] = "xx"
    data = canonical_bytes(fields)
    text = data.decode("utf-8")
    assert " " not in text.replace("Tür 3 — Süd", "")
    assert "\n" not in text
    assert "Tür 3 — Süd" in text  # not \u-escaped
    assert '"sig"' not in text
    keys = list(json.loads(data))
    assert keys == sorted(keys)


def test_measurements_are_rounded() -> None:
    """Scores leave the box rounded to 3 decimals, latency as an integer."""
    fields = _event(extra={"score": 0.8123456, "liveness": 0.97777, "latency_ms": 183.6})
    assert fields["score"] == 0.812
    assert fields["liveness"] == 0.978
    assert fields["latency_ms"] == 184


def test_names_images_embeddings_never_leak_by_default() -> None:
    """``name`` needs the opt-in; unknown keys (embedding, image) are dropped, not sent."""
    built = build_event(
        event_type="access.granted",
        seq=1,
        unix_ms=NOW_MS,
        rand=bytes(10),
        gateway="gw1",
        door="door-1",
        extra={"name": "Alice Example", "embedding": [0.1] * 4, "image": b"\xff\xd8", "score": 0.9},
    )
    assert "name" not in built.fields
    assert "embedding" not in built.fields
    assert "image" not in built.fields
    assert set(built.dropped_fields) == {"name", "embedding", "image"}
    opted = _event(include_names=True, extra={"name": "Alice Example"})
    assert opted["name"] == "Alice Example"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"event_type": "door.exploded"}, "type"),
        ({"seq": 0}, "seq"),
        ({"gateway": "gw 1"}, "gateway"),
        ({"door": "../etc"}, "door"),
        ({"subject": "Alice Example"}, "subject"),
        ({"subject": "u-1\n" + "x" * 300}, "subject"),
        ({"reason": 42}, "reason"),
        ({"extra": {"detail": b"bytes"}}, "detail"),
        ({"extra": {"score": float("nan")}}, "score"),
        ({"extra": {"frames": -1}}, "frames"),
    ],
)
def test_bad_base_fields_are_refused(override: dict[str, object], message: str) -> None:
    """Programming errors in the structured fields raise EventFieldError naming the field."""
    with pytest.raises(EventFieldError, match=message):
        _event(**override)


def test_long_free_text_is_cleaned_shortened_signed_and_verifies() -> None:
    """A 5000-char detail with control characters never costs the event: it is cut to the
    schema's maxLength with a visible ellipsis, control characters are replaced, and the event
    signs, encodes within the size limit, decodes and verifies."""
    detail = ("rtsps://cam-7.example:322/live \x00\x1b[31m\tread timeout\r\n" * 100)[:5000]
    assert len(detail) == 5000
    built = build_event(
        event_type=EventType.CAMERA_LOST,
        seq=3,
        unix_ms=NOW_MS,
        rand=bytes(10),
        gateway="gw1",
        door="door-1",
        reason="stall\u200b" + "r" * 400,
        include_names=True,
        extra={"detail": detail, "name": "\U0001f600" * 300},
    )
    fields = built.fields
    for name in ("detail", "reason", "name"):
        text = fields[name]
        assert isinstance(text, str)
        assert len(text) == MAX_TEXT_CHARS, name
        assert text.endswith(ELLIPSIS), name
        assert text.isprintable(), name
    assert fields["detail"].startswith(
        "rtsps://cam-7.example:322/live \ufffd\ufffd[31m read timeout"
    )
    assert fields["reason"].startswith("stall\ufffdrrr")
    key = parse_signing_key(generate_signing_key())
    signed = EventSigner(key).sign(fields)
    wire = encode_event(signed)
    assert len(wire) <= MAX_EVENT_BYTES  # 4-byte characters in name: still within the limit
    decoded = decode_event(wire)
    assert decoded == signed
    assert verify_event(decoded, key.public_key()) is VerifyOutcome.VALID


@given(st.text(max_size=600))
def test_shorten_text_always_fits_the_schema(text: str) -> None:
    """Any text (controls, surrogates, emoji) comes out printable, UTF-8 encodable and within
    MAX_TEXT_CHARS; short printable text is kept unchanged."""
    out = shorten_text(text)
    assert len(out) <= MAX_TEXT_CHARS
    assert out.isprintable()
    out.encode("utf-8")
    if len(text) <= MAX_TEXT_CHARS and text.isprintable():
        assert out == text
    if len(text) > MAX_TEXT_CHARS:
        assert out.endswith(ELLIPSIS)


def test_security_classification() -> None:
    """Access decisions are security events; camera/service/test are not (overflow priority)."""
    assert build_event(
        event_type=EventType.ACCESS_DENIED,
        seq=1,
        unix_ms=NOW_MS,
        rand=bytes(10),
        gateway="g",
        door=None,
    ).is_security
    assert not build_event(
        event_type=EventType.CAMERA_LOST,
        seq=1,
        unix_ms=NOW_MS,
        rand=bytes(10),
        gateway="g",
        door=None,
    ).is_security


@given(
    seq=st.integers(1, 2**53),
    unix_ms=st.integers(0, 4_000_000_000_000),
    rand=st.binary(min_size=10, max_size=10),
    etype=st.sampled_from(list(EventType)),
    subject=st.none() | st.from_regex(r"[A-Za-z0-9_\-.:]{1,64}", fullmatch=True),
    detail=st.none()
    | st.text(st.characters(categories=["L", "N", "P"], include_characters=" "), max_size=200),
    score=st.none() | st.floats(-1, 1),
)
def test_encode_decode_roundtrip(
    seq: int,
    unix_ms: int,
    rand: bytes,
    etype: EventType,
    subject: str | None,
    detail: str | None,
    score: float | None,
) -> None:
    """Any valid event survives encode → decode unchanged and re-canonicalises to the same bytes."""
    fields = dict(
        build_event(
            event_type=etype,
            seq=seq,
            unix_ms=unix_ms,
            rand=rand,
            gateway="gw1",
            door="d1",
            subject=subject,
            extra={"detail": detail, "score": score},
        ).fields
    )
    fields["kid"] = "0" * 16
    fields["sig"] = "AA=="
    decoded = decode_event(encode_event(fields))
    assert decoded == fields
    assert canonical_bytes(decoded) == canonical_bytes(fields)


@given(st.binary(max_size=600))
def test_decode_rejects_garbage_with_one_error_type(data: bytes) -> None:
    """Arbitrary bytes never crash the decoder with anything but EventFieldError."""
    with contextlib.suppress(EventFieldError):
        decode_event(data)


def test_decode_rejects_unknown_fields_and_constants() -> None:
    """Extra keys (a smuggled embedding) and NaN are refused when reading events back."""
    fields = _event()
    fields.update(kid="0" * 16, sig="AA==")
    with pytest.raises(EventFieldError, match="unknown"):
        decode_event(json.dumps({**fields, "embedding": [1, 2]}))
    with pytest.raises(EventFieldError):
        decode_event(json.dumps(fields).replace('"seq": 7', '"seq": NaN'))


def test_schema_file_matches_the_model() -> None:
    """The shipped JSON schema (package data) lists exactly the fields, types and required keys."""
    text = resources.files("edge_gate").joinpath("schemas/event.schema.json").read_text()
    schema = json.loads(text)
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(ALL_FIELDS)
    assert set(schema["required"]) == set(BASE_FIELDS) | set(SIGNATURE_FIELDS)
    assert schema["properties"]["type"]["enum"] == [t.value for t in EventType]
    assert schema["properties"]["v"]["const"] == 1
    for key in ("reason", "detail", "name"):  # what shorten_text guarantees
        assert schema["properties"][key]["maxLength"] == MAX_TEXT_CHARS
