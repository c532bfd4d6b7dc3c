"""Cards and PINs in the encrypted gallery record: encoding, old records, the store's writes,
the CredentialDirectory, and the `users set-card|clear-card|set-pin|clear-pin` commands."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_gate.audit.events import decode_event
from edge_gate.audit.outbox import Outbox
from edge_gate.config import load_config
from edge_gate.decision.factors import DoorMode, FactorParams
from edge_gate.errors import CardInUseError
from edge_gate.gallery.credentials import CredentialDirectory
from edge_gate.gallery.keyfile import KeyRing, load_keyring_file, new_key, write_keyring
from edge_gate.gallery.loaded import new_user_id
from edge_gate.gallery.pin import hash_pin, validate_pin, verify_pin
from edge_gate.gallery.record import (
    MAGIC_V1,
    PersonRecord,
    PinHash,
    RecordFormatError,
    decode_record,
    encode_record,
)
from edge_gate.gallery.store import GalleryStore, store_from_config
from edge_gate.osdp.cards import CardCredential, CardFormat, encode_card
from edge_gate.osdp.messages import CardRead
from edge_gate.service.components import load_gallery
from edge_gate.service.second_factor import ReaderInbox, SecondFactorStage
from tests.cli_helpers import json_lines
from tests.cli_helpers import run as cli

DIM = 16
CARD = CardCredential(CardFormat.WIEGAND26, 42, 40123)
FAST = {"n": 2**10}  # scrypt parameters for tests that do not measure the hash cost


def _templates(seed: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    v = np.random.default_rng(seed).standard_normal((2, DIM)).astype(np.float32)
    out: np.ndarray[Any, np.dtype[np.float32]] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def _rec(**kw: Any) -> PersonRecord:
    return PersonRecord(new_user_id(), "Ada", "m", 1.0, _templates(1), **kw)


def _old_record(magic: bytes, header: dict[str, Any], body: bytes) -> bytes:
    """A record exactly as versions before cards/PINs wrote it (no ``card``/``pin`` keys)."""
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 256)
    return magic + struct.pack("<I", len(raw)) + raw + body


# -- record -----------------------------------------------------------------------------------


def test_card_and_pin_round_trip_through_the_record() -> None:
    pin = hash_pin("204816", **FAST)
    rec = _rec(card=CARD, pin=pin)
    back = decode_record(encode_record(rec))
    assert back.card == CARD
    assert back.pin == pin
    assert verify_pin(back.pin, "204816")
    assert not verify_pin(back.pin, "204817")
    assert "40123" not in repr(back)
    assert "204816" not in repr(back)


def test_records_of_older_versions_load_without_card_or_pin() -> None:
    """EGR2 and EGR1 records written before these fields existed still decode (card/pin
    None), and re-encoding them without credentials gives the same header keys as before."""
    t = _templates(2)
    uid = new_user_id()
    v2 = _old_record(
        b"EGR2",
        {"user_id": uid, "name": "Old", "created_at": 5.0, "n": 2,
         "parts": [{"model": "m", "dim": DIM}]},
        t.astype("<f4").tobytes(),
    )  # fmt: skip
    v1 = _old_record(
        MAGIC_V1,
        {"user_id": uid, "name": "Old", "created_at": 5.0, "n": 2, "model": "m", "dim": DIM},
        t.astype("<f4").tobytes(),
    )
    for data in (v2, v1):
        rec = decode_record(data)
        assert (rec.card, rec.pin, rec.name) == (None, None, "Old")
        assert np.array_equal(rec.templates, t)
    assert encode_record(decode_record(v2)) == v2


@pytest.mark.parametrize(
    "field",
    [
        {"card": {"format": "wiegand37", "facility": 1, "number": 2}},
        {"card": {"format": "wiegand26", "facility": 256, "number": 2}},
        {"card": [1, 2]},
        {"pin": {"alg": "md5", "salt": "00" * 16, "hash": "00" * 32, "n": 2, "r": 1, "p": 1}},
        {"pin": {"alg": "scrypt", "salt": "00" * 16, "hash": "00" * 32, "n": 2**30, "r": 8,
                 "p": 1}},
        {"pin": {"alg": "scrypt", "salt": "zz", "hash": "00" * 32, "n": 2, "r": 1, "p": 1}},
    ],
)  # fmt: skip
def test_malformed_credentials_in_a_record_are_format_errors(field: dict[str, Any]) -> None:
    header = {"user_id": new_user_id(), "name": "X", "created_at": 1.0, "n": 2,
              "parts": [{"model": "m", "dim": DIM}], **field}  # fmt: skip
    with pytest.raises(RecordFormatError):
        decode_record(_old_record(b"EGR2", header, _templates(3).astype("<f4").tobytes()))


def test_pin_rules_and_hash_parameters() -> None:
    for bad in ("123", "1234567890123", "12a4", " 1234", "\uff11\uff12\uff13\uff14"):
        with pytest.raises(ValueError, match="4 to 12 digits"):
            validate_pin(bad)
    a, b = hash_pin("1234", **FAST), hash_pin("1234", **FAST)
    assert a.salt != b.salt
    assert a.digest != b.digest
    default = hash_pin("1234")
    assert (default.n, default.r, default.p) == (2**14, 8, 1)
    assert PinHash.from_json(default.to_json()) == default
    assert "1234" not in json.dumps(default.to_json())


# -- directory --------------------------------------------------------------------------------


def test_directory_maps_cards_and_checks_pins() -> None:
    a = _rec(card=CARD, pin=hash_pin("4321", **FAST))
    b = _rec(card=CardCredential(CardFormat.WIEGAND26, 42, 1))
    c = _rec()
    d = CredentialDirectory([a, b, c])
    assert d.holder_of(CardCredential(CardFormat.WIEGAND26, 42, 40123)) == a.user_id
    assert d.holder_of(CardCredential(CardFormat.WIEGAND26, 43, 40123)) is None
    assert d.card_of(b.user_id) == b.card
    assert d.card_of(c.user_id) is None
    assert d.check_pin(a.user_id, "4321")
    assert not d.check_pin(a.user_id, "4322")
    assert not d.check_pin(c.user_id, "4321")  # no PIN
    assert not d.check_pin(new_user_id(), "4321")  # unknown


def test_a_card_held_by_two_people_names_nobody() -> None:
    a, b = _rec(card=CARD), _rec(card=CARD)
    d = CredentialDirectory([a, b])
    assert d.holder_of(CARD) is None
    assert d.shared_cards == 1
    assert d.card_of(a.user_id) == CARD


def test_unknown_user_spends_the_hash_time() -> None:
    """A PIN check for an unknown person costs about what a real one costs (no user oracle)."""
    a = _rec(pin=hash_pin("4321"))
    d = CredentialDirectory([a])

    def cost(user_id: str) -> float:
        t0 = time.perf_counter()
        for _ in range(3):
            d.check_pin(user_id, "9999")
        return time.perf_counter() - t0

    known, unknown = cost(a.user_id), cost(new_user_id())
    assert unknown > 0.5 * known > 0.003


def test_directory_rebuild_is_cheap() -> None:
    """Rebuilding for 10 000 people (as on every gallery reload) takes well under 100 ms."""
    people = [
        PersonRecord(new_user_id(), "p", "m", 1.0, _templates(0),
                     card=CardCredential(CardFormat.WIEGAND26, i >> 16, i & 0xFFFF))
        for i in range(10_000)
    ]  # fmt: skip
    t0 = time.perf_counter()
    d = CredentialDirectory(people)
    assert time.perf_counter() - t0 < 0.1
    assert d.holder_of(CardCredential(CardFormat.WIEGAND26, 0, 9999)) == people[9999].user_id


# -- store ------------------------------------------------------------------------------------


def _store(tmp: Path) -> GalleryStore:
    key = tmp / "gallery.key"
    write_keyring(key, KeyRing((new_key(),)))
    store = GalleryStore(tmp / "gallery.db", None, load_keyring_file(key))
    store.create()
    return store


def test_store_sets_and_clears_credentials_and_refuses_a_taken_card(tmp_path: Path) -> None:
    store = _store(tmp_path)
    a = store.enroll("A", "m", _templates(1))
    b = store.enroll("B", "m", _templates(2))
    gen = store.load().generation
    store.set_card(a, CARD)
    store.set_pin(a, hash_pin("5555", **FAST))
    with pytest.raises(CardInUseError):
        store.set_card(b, CardCredential(CardFormat.WIEGAND26, 42, 40123))
    store.set_card(a, CARD)  # the holder may set the same card again
    store.rename(a, "A renamed")  # keeps the credentials
    loaded = store.load()
    assert loaded.generation == gen + 4
    assert CredentialDirectory.from_gallery(loaded).holder_of(CARD) == a
    assert CredentialDirectory.from_gallery(loaded).check_pin(a, "5555")
    rec_a = loaded.get(a)
    assert rec_a is not None
    assert rec_a.name == "A renamed"
    store.migrate()  # re-encoding keeps them too
    assert CredentialDirectory.from_gallery(store.load()).card_of(a) == CARD
    store.set_card(a, None)
    store.set_pin(a, None)
    store.set_card(b, CARD)  # free again
    loaded = store.load()
    assert CredentialDirectory.from_gallery(loaded).holder_of(CARD) == b
    assert not CredentialDirectory.from_gallery(loaded).check_pin(a, "5555")
    with pytest.raises(KeyError):
        store.set_card(new_user_id(), CardCredential(CardFormat.WIEGAND26, 1, 1))


def test_card_bytes_are_not_in_the_database_file(tmp_path: Path) -> None:
    store = _store(tmp_path)
    a = store.enroll("A", "m", _templates(1))
    store.set_card(a, CARD)
    raw = (tmp_path / "gallery.db").read_bytes()
    assert b"40123" not in raw
    assert b"wiegand" not in raw


# -- CLI --------------------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> dict[str, Any]:
    assert cli("init", str(tmp_path)).exit_code == 0
    conf = str(tmp_path / "edge-gate.toml")
    store = store_from_config(load_config(Path(conf)).gallery)
    return {
        "dir": tmp_path,
        "conf": conf,
        "a": store.enroll("A", "m", _templates(1)),
        "b": store.enroll("B", "m", _templates(2)),
    }


def _events(site: dict[str, Any]) -> list[dict[str, Any]]:
    cfg = load_config(Path(site["conf"]))
    with Outbox(cfg.mqtt.outbox_file, cfg.mqtt.outbox_max_events) as box:
        return [decode_event(e.payload) for e in box.pending(limit=1000)]


def test_users_card_and_pin_commands(site: dict[str, Any]) -> None:
    conf, a, b = site["conf"], site["a"], site["b"]
    card = ["--format", "wiegand26", "--facility", "42", "--number", "40123"]
    r = cli("users", "set-card", a, *card, "--json", "--config", conf)
    assert r.exit_code == 0, r.output
    tag = json_lines(r.output)[-1]["card"]["tag"]
    taken = cli("users", "set-card", b, *card, "--config", conf)
    assert taken.exit_code == 1
    assert a in taken.output
    assert "already held" in taken.output
    r = _cli_input("users", "set-pin", a, "--pin-stdin", "--config", conf, stdin="20481632\n")
    assert r.exit_code == 0, r.output
    short = _cli_input("users", "set-pin", b, "--pin-stdin", "--config", conf, stdin="12\n")
    assert short.exit_code == 1
    assert "4 to 12 digits" in short.output
    shown = json_lines(cli("users", "show", a, "--json", "--config", conf).output)[-1]
    assert shown["card"] == {"format": "wiegand26", "tag": tag}
    assert shown["pin"] is True
    loaded = store_from_config(load_config(Path(conf)).gallery).load()
    assert CredentialDirectory.from_gallery(loaded).holder_of(CARD) == a
    assert CredentialDirectory.from_gallery(loaded).check_pin(a, "20481632")
    assert cli("users", "clear-card", a, "--config", conf).exit_code == 0
    assert cli("users", "clear-pin", a, "--config", conf).exit_code == 0
    assert cli("users", "set-card", b, *card, "--config", conf).exit_code == 0
    loaded = store_from_config(load_config(Path(conf)).gallery).load()
    assert CredentialDirectory.from_gallery(loaded).holder_of(CARD) == b
    assert not CredentialDirectory.from_gallery(loaded).has_pin(a)
    nobody = cli("users", "set-card", new_user_id(), *card, "--config", conf)
    assert nobody.exit_code == 1
    assert "no such user" in nobody.output
    changes = [e for e in _events(site) if e["type"] == "gallery.credential_changed"]
    assert [(e["subject"], e["reason"]) for e in changes] == [
        (a, "card_set"), (a, "pin_set"), (a, "card_cleared"), (a, "pin_cleared"), (b, "card_set")
    ]  # fmt: skip
    assert changes[0]["card"] == tag == changes[-1]["card"]
    outbox = Path(load_config(Path(conf)).mqtt.outbox_file).read_bytes()
    for secret in (b"40123", b"20481632"):
        assert secret not in outbox
        assert all(secret.decode() not in json.dumps(e) for e in changes)


def _cli_input(*args: str, stdin: str) -> Any:
    from click.testing import CliRunner

    from edge_gate.cli import cli as root

    return CliRunner().invoke(root, list(args), input=stdin)


def test_one_card_has_one_tag_at_the_cli_and_the_door(site: dict[str, Any]) -> None:
    """The tag `users set-card` prints and signs is the tag the door's events carry for that
    card: the reader path (SecondFactorStage) takes the loaded gallery's card-tag key, the same
    key the panel path (DoorActions.use_credentials) is given."""
    conf, a = site["conf"], site["a"]
    card = ["--format", "wiegand26", "--facility", "42", "--number", "40123"]
    r = cli("users", "set-card", a, *card, "--json", "--config", conf)
    assert r.exit_code == 0, r.output
    tag = json_lines(r.output)[-1]["card"]["tag"]
    matcher = load_gallery(load_config(Path(conf)), "m", DIM)
    assert matcher.credentials.holder_of(CARD) == a
    inbox = ReaderInbox(pin_timeout_s=1.0)
    params = FactorParams(mode=DoorMode.FACE_AND_CARD, timeout_s=1.0)
    stage = SecondFactorStage(params, inbox, matcher.credentials, tag_key=matcher.card_tag_key)
    other = CardCredential(CardFormat.WIEGAND26, 42, 40124)
    inbox.put(CardRead(1, 0, encode_card(other), other), 0.0)
    (unknown,) = stage.step(0.0)
    inbox.put(CardRead(1, 0, encode_card(CARD), CARD), 0.0)
    assert stage.step(0.0) == []  # a claim for the holder, until no face came
    (timed_out,) = stage.step(2.0)
    assert timed_out.card == tag != unknown.card
