"""Byte formats of the gallery: record plaintext, key file, manifest (hypothesis round trips)."""

from __future__ import annotations

import contextlib
import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_gate.errors import SecretFileError
from edge_gate.gallery.crypto import (
    GalleryCipher,
    Manifest,
    RecordAuthError,
    SealedRecord,
    decode_manifest,
    encode_manifest,
)
from edge_gate.gallery.keyfile import KeyRing, decode_keyring, encode_keyring, new_key
from edge_gate.gallery.loaded import new_user_id
from edge_gate.gallery.record import (
    HEADER_BLOCK,
    PersonRecord,
    RecordFormatError,
    decode_record,
    encode_record,
    validate_name,
)

names = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=200
).filter(lambda s: s.strip() == s and s != "")


@settings(max_examples=80, deadline=None)
@given(name=names, n=st.integers(1, 6), dim=st.integers(1, 64), seed=st.integers(0, 1000))
def test_record_round_trip(name: str, n: int, dim: int, seed: int) -> None:
    """Any printable name and template block survives encode → decode exactly."""
    t = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    rec = PersonRecord(new_user_id(), name, "mobilefacenet-fp32", 1.5e9, t)
    back = decode_record(encode_record(rec))
    assert back.name == name
    assert back.user_id == rec.user_id
    assert np.array_equal(back.templates, t)


def test_record_lengths_hide_name_length() -> None:
    """Short and long names give the same plaintext length (header padded to 256 bytes)."""
    t = np.zeros((3, 8), np.float32)
    a = encode_record(PersonRecord(new_user_id(), "Al", "m", 0.0, t))
    b = encode_record(PersonRecord(new_user_id(), "Alexandra Montgomery-Smith", "m", 0.0, t))
    assert len(a) == len(b)
    assert (len(a) - 8 - t.nbytes) % HEADER_BLOCK == 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_record_decoder_never_crashes(data: bytes) -> None:
    """Garbage plaintext is a RecordFormatError, never another exception."""
    with contextlib.suppress(RecordFormatError):
        decode_record(data)


@pytest.mark.parametrize("bad", ["", "  ", "a\nb", "x" * 201, "tab\there"])
def test_bad_names_refused(bad: str) -> None:
    """Empty, over-long and control-character names are refused."""
    with pytest.raises(ValueError, match="name"):
        encode_record(PersonRecord(new_user_id(), bad, "m", 0.0, np.zeros((1, 4), np.float32)))


@pytest.mark.parametrize(
    ("bad", "code_point"),
    [
        ("Sally\u202egnp.exe", "U+202E"),  # right-to-left override: spoofs what the admin reads
        ("Ann\u2028Lee", "U+2028"),  # line separator
        ("Ann\u2029Lee", "U+2029"),  # paragraph separator
        ("Ann\x85Lee", "U+0085"),  # next line (C1 control)
        ("Ann\u200bLee", "U+200B"),  # zero-width space
        ("Ann\ufeffLee", "U+FEFF"),  # zero-width no-break space / BOM
        ("Ann\u061cLee", "U+061C"),  # Arabic letter mark (bidi)
        ("Sal\udcff", "U+DCFF"),  # `--name $'Sal\xff'` from a non-UTF-8 terminal
        ("a\x7fb", "U+007F"),
        ("a\nb", "U+000A"),
    ],
)
def test_validate_name_refuses_invisible_and_control_characters(bad: str, code_point: str) -> None:
    """Controls, format characters (bidi overrides, zero-width), line separators and lone
    surrogates are refused, and the message names the code point."""
    with pytest.raises(ValueError, match=re.escape(code_point)):
        validate_name(bad)


@pytest.mark.parametrize(
    "good",
    [
        "李小龍",
        "محمد عبد الله",
        "Ἀριστοτέλης",
        "Алёна",
        "Zoë",
        "Zoe\u0308 Jose\u0301",  # combining accents
        "👩\u200d🔬 Marie",  # emoji ZWJ sequence
        "❤\ufe0f Ana",  # variation selector
        "می\u200cخواهم",  # noqa: RUF001  (Persian with a zero-width non-joiner)
        "Dr. Jean-Luc O'Neil",
        "  padded  ",
    ],
)
def test_validate_name_accepts_real_names_in_any_script(good: str) -> None:
    assert validate_name(good) == good.strip()


def test_encode_record_refuses_lone_surrogates_with_value_error() -> None:
    """Never a UnicodeEncodeError from deep inside the store."""
    rec = PersonRecord(new_user_id(), "Sal\udcff", "m", 0.0, np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match="surrogate") as info:
        encode_record(rec)
    assert not isinstance(info.value, UnicodeError)


def test_encode_record_keeps_names_older_versions_accepted() -> None:
    """`keys rotate` re-encodes every record: a name stored before the stricter rules (here a
    zero-width space) must still be re-encodable."""
    rec = PersonRecord(new_user_id(), "Ann\u200bLee", "m", 0.0, np.zeros((1, 4), np.float32))
    assert decode_record(encode_record(rec)).name == "Ann\u200bLee"


def test_keyring_round_trip_and_repr_hides_key() -> None:
    """A key ring survives its JSON file format; repr never shows key bytes."""
    ring = KeyRing((new_key(), new_key()))
    back = decode_keyring(encode_keyring(ring), "test")
    assert back == ring
    assert ring.keys[0].key.hex() not in repr(ring)


@pytest.mark.parametrize(
    "doc",
    [
        b"not json",
        b"[]",
        json.dumps({"format": "other", "version": 1, "keys": []}).encode(),
        json.dumps({"format": "edge-gate-gallery-key", "version": 2, "keys": []}).encode(),
        json.dumps({"format": "edge-gate-gallery-key", "version": 1, "keys": []}).encode(),
        json.dumps(
            {"format": "edge-gate-gallery-key", "version": 1, "keys": [{"id": "k_1", "key": "x"}]}
        ).encode(),
        json.dumps(
            {
                "format": "edge-gate-gallery-key",
                "version": 1,
                "keys": [{"id": "k_0123abcd", "key": "c2hvcnQ="}],
            }
        ).encode(),
    ],
)
def test_bad_key_files_refused(doc: bytes) -> None:
    """Malformed key files, unknown versions, bad ids and short keys are SecretFileErrors."""
    with pytest.raises(SecretFileError):
        decode_keyring(doc, "test")


@settings(max_examples=50, deadline=None)
@given(
    gen=st.integers(0, 2**40),
    ids=st.lists(st.from_regex(r"u_[a-z2-7]{12}", fullmatch=True), max_size=8, unique=True),
)
def test_manifest_round_trip(gen: int, ids: list[str]) -> None:
    """Manifest bytes decode to the same sorted entries, generation and ids."""
    m = Manifest(
        "g_0011223344556677", gen, "k_0123abcd", tuple((i, "k_0123abcd", bytes(32)) for i in ids)
    )
    back = decode_manifest(encode_manifest(m))
    assert back.generation == gen
    assert back.entries == tuple(sorted(m.entries))


def test_ciphertext_bound_to_record_id_and_key() -> None:
    """A sealed record opens only under its own record id and key id (associated data)."""
    key = new_key()
    c = GalleryCipher(key)
    sealed = c.seal("u_aaaaaaaaaaaa", b"secret")
    assert c.open(sealed) == b"secret"
    with pytest.raises(RecordAuthError):
        c.open(SealedRecord("u_bbbbbbbbbbbb", sealed.key_id, sealed.blob))
    with pytest.raises(RecordAuthError):
        GalleryCipher(new_key()).open(sealed)
    assert sealed.blob[:12] != c.seal("u_aaaaaaaaaaaa", b"secret").blob[:12]  # fresh nonces
