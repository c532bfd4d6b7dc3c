"""Fleet bundles: what a gateway opens and what it refuses (real cryptography, no fakes)."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_gate.fleet.admission import Admission, admit
from edge_gate.fleet.bundle import (
    KIND_DELTA,
    Opened,
    Parsed,
    Refusal,
    Refused,
    SealedBundle,
    chunk_identity,
    open_bundle,
    parse_message,
    seal_bundle,
)
from edge_gate.fleet.payload import (
    FleetPerson,
    Payload,
    PayloadError,
    decode_payload,
    encode_payload,
)
from edge_gate.gallery.loaded import new_user_id
from edge_gate.gallery.record import PersonRecord

FLEET = Ed25519PrivateKey.generate()
GW_A, GW_B = X25519PrivateKey.generate(), X25519PrivateKey.generate()


def _person(i: int, card: str | None = None) -> FleetPerson:
    v = np.random.default_rng(i).standard_normal((2, 16)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return FleetPerson(PersonRecord(new_user_id(), f"Person {i}", "m", 1.0, v), card)


def _seal(payload: bytes, version: int = 2, **kw: object) -> SealedBundle:
    args: dict[str, object] = {
        "group": "lobby",
        "version": version,
        "created": 1.0,
        "recipients": {"gw-a": GW_A.public_key(), "gw-b": GW_B.public_key()},
        "signing_key": FLEET,
        "chunk_bytes": 64,
    }
    args.update(kw)
    return seal_bundle(payload, **args)  # type: ignore[arg-type]


def _open(message: bytes, chunks: dict[int, bytes], gw: str = "gw-a") -> Opened | Refused:
    parsed = parse_message(message, FLEET.public_key())
    if isinstance(parsed, Refused):
        return parsed
    all_chunks = dict(chunks) | dict(enumerate(parsed.inline))
    return open_bundle(
        parsed, all_chunks, gateway_id=gw, gateway_key=GW_A if gw == "gw-a" else GW_B
    )


def test_a_bundle_opens_for_each_recipient_and_round_trips_the_people() -> None:
    """Both gateways get the same people back (templates bit-exact, card kept)."""
    people = (_person(1, card="04A1B2C3"), _person(2))
    data = encode_payload(Payload(people))
    sealed = _seal(data)
    assert len(sealed.chunks) > 3  # small chunks: the chunking is exercised
    for gw in ("gw-a", "gw-b"):
        opened = _open(sealed.standalone(), dict(enumerate(sealed.chunks)), gw)
        assert isinstance(opened, Opened)
        back = decode_payload(opened.plaintext)
        assert [p.record.user_id for p in back.people] == [p.record.user_id for p in people]
        assert back.people[0].card == "04A1B2C3"
        assert np.array_equal(back.people[1].record.templates, people[1].record.templates)


def test_the_wire_carries_no_plaintext() -> None:
    """No name, card number or template bytes appear in the message or any chunk."""
    person = _person(3, card="9876543210")
    sealed = _seal(encode_payload(Payload((person,))), chunk_bytes=1 << 20)
    wire = sealed.standalone() + b"".join(sealed.chunks)
    assert b"Person 3" not in wire
    assert b"9876543210" not in wire
    assert person.record.templates.tobytes()[:16] not in wire


def test_a_flipped_byte_anywhere_in_a_chunk_is_refused() -> None:
    """Tampered chunk: the signed hash list catches it before decryption."""
    sealed = _seal(encode_payload(Payload((_person(4),))))
    chunks = dict(enumerate(sealed.chunks))
    bad = bytearray(chunks[1])
    bad[-3] ^= 1
    chunks[1] = bytes(bad)
    out = _open(sealed.standalone(), chunks)
    assert isinstance(out, Refused)
    assert out.reason is Refusal.BAD_CHUNK


def test_a_tampered_header_fails_the_signature() -> None:
    """A header edited on the broker (version bumped, a chunk hash swapped) is refused."""
    sealed = _seal(encode_payload(Payload((_person(5),))), version=7)
    forged = sealed.standalone().replace(b'"version":7', b'"version":9')
    assert forged != sealed.standalone()
    out = _open(forged, dict(enumerate(sealed.chunks)))
    assert isinstance(out, Refused)
    assert out.reason is Refusal.BAD_SIGNATURE


def test_a_bundle_signed_by_another_key_is_refused() -> None:
    """Wrongly signed: a well-formed bundle from another admin key never opens."""
    sealed = _seal(encode_payload(Payload((_person(6),))), signing_key=Ed25519PrivateKey.generate())
    out = _open(sealed.standalone(), dict(enumerate(sealed.chunks)))
    assert isinstance(out, Refused)
    assert out.reason is Refusal.BAD_SIGNATURE


def test_a_bundle_not_wrapped_for_me_is_refused() -> None:
    """Wrongly encrypted: a gateway not among the recipients, or a wrap made for another key
    under my id, cannot open it."""
    data = encode_payload(Payload((_person(7),)))
    only_b = _seal(data, recipients={"gw-b": GW_B.public_key()})
    out = _open(only_b.standalone(), dict(enumerate(only_b.chunks)), "gw-a")
    assert isinstance(out, Refused)
    assert out.reason is Refusal.NOT_FOR_ME
    other_key = _seal(data, recipients={"gw-a": X25519PrivateKey.generate().public_key()})
    out = _open(other_key.standalone(), dict(enumerate(other_key.chunks)), "gw-a")
    assert isinstance(out, Refused)
    assert out.reason is Refusal.BAD_KEY


def test_a_missing_or_truncated_chunk_is_refused() -> None:
    """Truncated chunk (cut on the wire) or one never received: nothing is applied."""
    sealed = _seal(encode_payload(Payload((_person(8), _person(9)))))
    chunks = dict(enumerate(sealed.chunks))
    chunks[2] = chunks[2][:-5]
    out = _open(sealed.standalone(), chunks)
    assert isinstance(out, Refused)
    assert out.reason is Refusal.BAD_CHUNK
    del chunks[2]
    out = _open(sealed.standalone(), chunks)
    assert isinstance(out, Refused)
    assert out.reason is Refusal.BAD_CHUNK


def test_a_chunk_of_another_version_does_not_complete_a_bundle() -> None:
    """Chunks of version 2 cannot stand in for those of version 3 (hash + identity)."""
    data = encode_payload(Payload((_person(10),)))
    old, new = _seal(data, version=2), _seal(data, version=3)
    assert chunk_identity(old.chunks[0]) == (2, 0)
    out = _open(new.standalone(), dict(enumerate(old.chunks)))
    assert isinstance(out, Refused)
    assert out.reason is Refusal.BAD_CHUNK


def test_a_truncated_message_is_malformed_not_a_crash() -> None:
    """Every prefix of a message is refused as a value, never an exception."""
    message = _seal(encode_payload(Payload((_person(11),)))).standalone()
    for cut in range(0, len(message), 37):
        out = parse_message(message[:cut], FLEET.public_key())
        assert isinstance(out, Refused)


def test_a_delta_carries_its_chunks_inline() -> None:
    """A delta is one MQTT message: removals and changed people, on top of a base version."""
    removed = new_user_id()
    sealed = _seal(
        encode_payload(Payload((_person(12),), (removed,))),
        version=5,
        kind=KIND_DELTA,
        base_version=4,
        chunk_bytes=1 << 20,
    )
    parsed = parse_message(sealed.inline(), FLEET.public_key())
    assert isinstance(parsed, Parsed)
    assert parsed.header.base_version == 4
    opened = _open(sealed.inline(), {})
    assert isinstance(opened, Opened)
    assert decode_payload(opened.plaintext).removed == (removed,)


def test_admission_refuses_rollback_and_ignores_repeats() -> None:
    """Replayed older: version < applied is a rollback; equal is a repeat (retained message);
    a delta not on my version waits for the full bundle; another group is refused."""

    def kw(group: str, version: int, base: int | None) -> Admission:
        return admit(
            group=group,
            version=version,
            base_version=base,
            expected_group="lobby",
            applied_version=5,
        )

    assert kw("lobby", 4, None) is Admission.ROLLBACK
    assert kw("lobby", 5, None) is Admission.ALREADY
    assert kw("lobby", 7, 6) is Admission.WAIT_FULL
    assert kw("lobby", 6, 5) is Admission.APPLY
    assert kw("lobby", 9, None) is Admission.APPLY
    assert kw("lab", 9, None) is Admission.WRONG_GROUP


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_payload_decoder_never_crashes(data: bytes) -> None:
    """Arbitrary bytes decode or raise PayloadError, nothing else."""
    with contextlib.suppress(PayloadError):
        decode_payload(b"EGFP" + data)


@pytest.mark.parametrize("cut", [1, 5, 40, 100])
def test_a_truncated_payload_is_refused(cut: int) -> None:
    data = encode_payload(Payload((_person(13),)))
    with pytest.raises(PayloadError):
        decode_payload(data[:-cut])
