"""OSDP pure parts and adapters without a peer: Wiegand-26 codec, keyed card hash, typed
commands/events from libosdp dicts, SCBK files, the [osdp_*] config sections."""

from __future__ import annotations

import os
from pathlib import Path

import osdp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_gate.config import validate_config_text
from edge_gate.errors import SecretFileError
from edge_gate.osdp.cards import (
    CardCredential,
    CardFormat,
    RawCard,
    card_hash,
    cards_equal,
    decode_wiegand26,
    encode_wiegand26,
)
from edge_gate.osdp.convert import card_event, keypad_event, panel_command, reader_event
from edge_gate.osdp.keys import create_scbk, load_scbk, parse_scbk
from edge_gate.osdp.messages import CardRead, KeypadEntry, OutputCommand, timer_count

cards = st.builds(
    CardCredential,
    st.just(CardFormat.WIEGAND26),
    st.integers(0, 255),
    st.integers(0, 65535),
)


def test_wiegand26_known_frame() -> None:
    """Facility 1, card 1: even parity 1, payload 0x010001, odd parity 0 → 0x2020002."""
    raw = encode_wiegand26(CardCredential(CardFormat.WIEGAND26, 1, 1))
    assert raw.bits == 26
    assert int.from_bytes(raw.data, "big") >> 6 == 0x2020002


@given(cards)
def test_wiegand26_round_trip(card: CardCredential) -> None:
    assert decode_wiegand26(encode_wiegand26(card)) == card


@given(cards, st.integers(0, 25))
def test_wiegand26_any_single_bit_error_is_refused_or_changes_parity(
    card: CardCredential, bit: int
) -> None:
    """One flipped bit breaks a parity: the frame is refused, never read as another card."""
    raw = encode_wiegand26(card)
    value = int.from_bytes(raw.data, "big") ^ (1 << (31 - bit))
    assert decode_wiegand26(RawCard(26, value.to_bytes(4, "big"))) is None


def test_wiegand26_wrong_length_refused() -> None:
    assert decode_wiegand26(RawCard(34, bytes(5))) is None
    assert decode_wiegand26(RawCard(26, bytes(2))) is None


def test_card_values_are_bounded_and_redacted() -> None:
    with pytest.raises(ValueError, match="facility"):
        CardCredential(CardFormat.WIEGAND26, 256, 1)
    with pytest.raises(ValueError, match="card number"):
        CardCredential(CardFormat.WIEGAND26, 1, 70000)
    card = CardCredential(CardFormat.WIEGAND26, 17, 40001)
    assert "40001" not in repr(card)
    assert "17" not in repr(card)


def test_card_hash_is_keyed() -> None:
    card = CardCredential(CardFormat.WIEGAND26, 17, 40001)
    other = CardCredential(CardFormat.WIEGAND26, 17, 40002)
    assert card_hash(b"k" * 32, card) != card_hash(b"j" * 32, card)
    assert card_hash(b"k" * 32, card) != card_hash(b"k" * 32, other)
    assert "40001" not in card_hash(b"k" * 32, card)
    assert cards_equal(card, CardCredential(CardFormat.WIEGAND26, 17, 40001))
    assert not cards_equal(card, other)


@given(cards)
def test_card_event_dict_round_trips_through_the_converter(card: CardCredential) -> None:
    typed = reader_event(3, card_event(card, reader_no=1))
    assert isinstance(typed, CardRead)
    assert (typed.address, typed.reader_no, typed.card) == (3, 1, card)


def test_keypad_and_other_events() -> None:
    entry = reader_event(1, keypad_event("12*#"))
    assert isinstance(entry, KeypadEntry)
    assert entry.keys == "12*#"
    assert reader_event(1, {"event": osdp.Event.Notification, "type": 0}) is None
    ascii_card = reader_event(1, {"event": osdp.Event.CardRead, "format": 2, "data": b"1234"})
    assert isinstance(ascii_card, CardRead)
    assert ascii_card.card is None  # not a format we decode: no credential


def test_output_command_and_timer_units() -> None:
    cmd = panel_command(
        {"command": osdp.Command.Output, "output_no": 0, "control_code": 5, "timer_count": 15}
    )
    assert cmd == OutputCommand(0, 5, 1500)
    assert isinstance(cmd, OutputCommand)
    assert cmd.energise
    assert timer_count(1) == 1
    assert timer_count(1500) == 15
    assert timer_count(1501) == 16
    with pytest.raises(ValueError, match="positive"):
        timer_count(0)


def test_scbk_file_formats_and_mode(tmp_path: Path) -> None:
    """16 raw bytes or 32 hex characters; a key readable by others is refused; create is 0600
    and never overwrites."""
    path = tmp_path / "k.scbk"
    key = create_scbk(path)
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert load_scbk("none", path) == key
    with pytest.raises(SecretFileError, match="exists"):
        create_scbk(path)
    os.chmod(path, 0o644)
    with pytest.raises(SecretFileError, match="too open"):
        load_scbk("none", path)
    assert parse_scbk(bytes(16), "x") == bytes(16)
    with pytest.raises(SecretFileError, match="16 raw bytes"):
        parse_scbk(b"short", "x")
    with pytest.raises(SecretFileError, match="hexadecimal"):
        parse_scbk(b"z" * 32, "x")


def test_osdp_config_sections() -> None:
    """Defaults are off and not in install mode; a bad baud rate names its key; both roles at
    once are refused."""
    cfg, problems = validate_config_text("")
    assert problems == []
    assert cfg is not None
    assert not cfg.osdp_cp.enabled
    assert not cfg.osdp_pd.enabled
    assert not cfg.osdp_cp.install_mode
    assert not cfg.osdp_pd.install_mode
    _, problems = validate_config_text("[osdp_cp]\nbaudrate = 1234\n")
    assert problems[0].startswith("osdp_cp.baudrate:")
    _, problems = validate_config_text("[osdp_pd]\naddress = 127\n")
    assert problems[0].startswith("osdp_pd.address:")
    _, problems = validate_config_text("[osdp_cp]\nenabled = true\n[osdp_pd]\nenabled = true\n")
    assert "a door uses one of them" in problems[0]
