"""The daemon's second-factor stage without hardware: :class:`ReaderInbox` (the panel thread's
card reads and keys → PINs) and :class:`SecondFactorStage` (the door mode, its weekly schedule,
the gallery's credentials and card-tag key), on a fake clock and a fake credential directory."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from edge_gate.decision.factors import DoorMode, FaceCheck, FactorParams, ModeWindow
from edge_gate.decision.policy import Deny, DenyReason, Grant, Pending
from edge_gate.gallery.credentials import card_tag_key
from edge_gate.osdp.cards import CardCredential, CardFormat, card_hash, encode_card
from edge_gate.osdp.messages import CardRead, KeypadEntry
from edge_gate.service.second_factor import (
    MAX_PIN_KEYS,
    CardInput,
    FactorOutcome,
    NoCredentials,
    PinInput,
    ReaderInbox,
    SecondFactorStage,
)

ALICE = "u_aliceaaaaaaa"
CARD = CardCredential(CardFormat.WIEGAND26, 12, 3456)
OTHER = CardCredential(CardFormat.WIEGAND26, 99, 777)
TAG_KEY = card_tag_key(b"k" * 32)


def _card(card: CardCredential | None) -> CardRead:
    raw = encode_card(card if card is not None else CARD)
    return CardRead(address=1, reader_no=0, raw=raw, card=card)


def _keys(keys: str) -> KeypadEntry:
    return KeypadEntry(address=1, reader_no=0, keys=keys)


class Cards:
    """Alice holds CARD and PIN 2468."""

    def holder_of(self, card: CardCredential) -> str | None:
        return ALICE if card == CARD else None

    def card_of(self, user_id: str) -> CardCredential | None:
        return CARD if user_id == ALICE else None

    def check_pin(self, user_id: str, pin: str) -> bool:
        return user_id == ALICE and pin == "2468"


# -- ReaderInbox ----------------------------------------------------------------------------


def test_a_pin_ends_at_hash_and_star_clears() -> None:
    inbox = ReaderInbox(pin_timeout_s=3.0)
    inbox.put(_keys("99*12"), 0.0)
    inbox.put(_keys("34#"), 0.5)
    assert inbox.drain(0.6) == [PinInput("1234", 0.5)]
    inbox.put(_keys("#"), 1.0)  # nothing typed: no PIN
    assert inbox.drain(1.1) == []


def test_a_pin_ends_after_the_pause_and_not_before() -> None:
    inbox = ReaderInbox(pin_timeout_s=2.0)
    inbox.put(_keys("13"), 10.0)
    inbox.put(_keys("57"), 11.5)  # the pause counts from the last key
    assert inbox.drain(13.4) == []
    assert inbox.drain(13.5) == [PinInput("1357", 13.5)]
    assert inbox.drain(20.0) == []  # ended once


def test_pin_length_is_bounded_and_a_flood_drops_the_oldest() -> None:
    inbox = ReaderInbox(pin_timeout_s=1.0, max_items=4)
    inbox.put(_keys("1" * (MAX_PIN_KEYS + 10) + "#"), 0.0)
    (pin,) = inbox.drain(0.1)
    assert isinstance(pin, PinInput)
    assert pin.pin == "1" * MAX_PIN_KEYS
    for i in range(10):
        inbox.put(_card(CARD), float(i))
    items = inbox.drain(10.0)
    assert [i.now_s for i in items] == [6.0, 7.0, 8.0, 9.0]
    assert inbox.dropped == 6
    assert all(isinstance(i, CardInput) and i.card == CARD for i in items)


def test_pin_input_repr_hides_the_pin() -> None:
    assert "2468" not in repr(PinInput("2468", 1.0))
    assert "2468" not in repr(_keys("2468#"))


# -- SecondFactorStage ----------------------------------------------------------------------


class Clock:
    def __init__(self, when: datetime) -> None:
        self.when = when

    def __call__(self) -> datetime:
        return self.when


# 2026-12-07 is a Monday: face_and_card 18:00-07:00 every day, plain face otherwise
MONDAY_NOON = datetime(2026, 12, 7, 12, 0)
NIGHT = (ModeWindow(frozenset(range(7)), 18 * 60, 7 * 60, DoorMode.FACE_AND_CARD),)


def _stage(
    mode: DoorMode = DoorMode.FACE_AND_CARD,
    clock: Clock | None = None,
    tag_key: bytes = TAG_KEY,
    timeout_s: float = 5.0,
) -> tuple[SecondFactorStage, ReaderInbox]:
    inbox = ReaderInbox(pin_timeout_s=2.0)
    params = FactorParams(mode=mode, card_threshold=0.5, k_frames=2, n_frames=3,
                          timeout_s=timeout_s)  # fmt: skip
    stage = SecondFactorStage(
        params,
        inbox,
        Cards(),
        tag_key=tag_key,
        schedule=NIGHT if clock is not None else (),
        wall_clock=clock or Clock(MONDAY_NOON),
    )
    return stage, inbox


def _check(score: float, now_s: float, live: bool | None = True) -> FaceCheck:
    return FaceCheck(track_id=1, user_id=ALICE, score=score, live=live, liveness_score=0.9,
                     now_s=now_s)  # fmt: skip


def test_card_then_matching_live_face_grants_with_the_cards_tag() -> None:
    stage, inbox = _stage()
    inbox.put(_card(CARD), 1.0)
    assert stage.step(1.0) == []
    assert stage.claimed_user == ALICE
    assert stage.on_face_check(_check(0.8, 1.2)) is None  # one frame is not K
    done = stage.on_face_check(_check(0.7, 1.4))
    assert done is not None
    assert isinstance(done.outcome, Grant)
    assert (done.outcome.user_id, done.outcome.via) == (ALICE, "face+card")
    assert done.card == card_hash(TAG_KEY, CARD)
    assert done.detail() == f"via face+card card {card_hash(TAG_KEY, CARD)}"
    assert stage.claimed_user is None


def test_unknown_card_is_denied_at_once_and_an_undecoded_card_carries_no_tag() -> None:
    stage, inbox = _stage()
    inbox.put(_card(OTHER), 1.0)
    inbox.put(_card(None), 1.1)
    out = stage.step(1.2)
    assert [(o.outcome.reason, o.card) for o in out if isinstance(o.outcome, Deny)] == [
        (DenyReason.CARD_UNKNOWN, card_hash(TAG_KEY, OTHER)),
        (DenyReason.CARD_UNKNOWN, None),
    ]


def test_a_gallery_without_a_key_tags_no_card() -> None:
    """No usable gallery (the `nobody` matcher has no tag key): a tag under an empty key would be
    a plain hash of a 24-bit number, so none is given."""
    stage, inbox = _stage(tag_key=b"")
    stage.set_credentials(NoCredentials(), b"")
    inbox.put(_card(CARD), 1.0)
    (out,) = stage.step(1.0)
    assert isinstance(out.outcome, Deny)
    assert out.outcome.reason is DenyReason.CARD_UNKNOWN
    assert out.card is None
    assert out.detail() is None


def test_the_claim_times_out_once_and_a_liveless_face_never_grants() -> None:
    stage, inbox = _stage(timeout_s=5.0)
    inbox.put(_card(CARD), 1.0)
    stage.step(1.0)
    for t in (1.5, 2.0, 2.5):
        assert stage.on_face_check(_check(0.9, t, live=False)) is None
    assert stage.step(5.9) == []
    (out,) = stage.step(6.1)
    assert isinstance(out.outcome, Deny)
    assert out.outcome.reason is DenyReason.SECOND_FACTOR_TIMEOUT
    assert out.card == card_hash(TAG_KEY, CARD)  # the claim's card
    assert stage.step(7.0) == []


def test_face_and_pin_pin_ended_by_the_pause() -> None:
    stage, inbox = _stage(DoorMode.FACE_AND_PIN)
    grant = Grant(1, ALICE, 0.8, 0.2, 0.9, 3, 0.0, 1.0)
    assert isinstance(stage.on_face(grant, 1.0), Pending)
    inbox.put(_keys("24"), 1.5)
    inbox.put(_keys("68"), 2.0)
    assert stage.step(3.9) == []  # 1.9 s since the last key: still typing
    (out,) = stage.step(4.0)
    assert isinstance(out.outcome, Grant)
    assert out.outcome.via == "face+pin"
    assert isinstance(stage.on_face(grant, 5.0), Pending)
    inbox.put(_keys("1111#"), 5.5)
    (wrong,) = stage.step(5.6)
    assert isinstance(wrong.outcome, Deny)
    assert wrong.outcome.reason is DenyReason.PIN_WRONG


def test_the_schedule_changes_the_mode_of_a_running_stage_and_drops_the_open_claim() -> None:
    clock = Clock(MONDAY_NOON.replace(hour=17, minute=59))
    stage, inbox = _stage(DoorMode.FACE, clock)
    grant = Grant(1, ALICE, 0.8, 0.2, 0.9, 3, 0.0, 1.0)
    modes = [stage.mode]
    assert stage.on_face(grant, 1.0) is grant  # by day the face opens
    clock.when += timedelta(minutes=1)  # 18:00: the night window
    stage.step(2.0)
    modes.append(stage.mode)
    assert isinstance(stage.on_face(grant, 2.1), Pending)  # the face alone no longer opens
    inbox.put(_card(CARD), 2.2)
    stage.step(2.2)
    assert stage.claimed_user == ALICE
    clock.when = MONDAY_NOON.replace(hour=7, minute=0) + timedelta(days=1)  # Tuesday 07:00
    assert stage.step(2.3) == []  # the claim is dropped, not decided
    modes.append(stage.mode)
    assert modes == [DoorMode.FACE, DoorMode.FACE_AND_CARD, DoorMode.FACE]
    assert stage.claimed_user is None
    assert stage.on_face(grant, 2.4) is grant


def test_a_gallery_reload_drops_the_claim_and_brings_the_new_tag_key() -> None:
    stage, inbox = _stage()
    inbox.put(_card(CARD), 1.0)
    stage.step(1.0)
    assert stage.claimed_user == ALICE
    rotated = card_tag_key(b"r" * 32)  # `keys rotate`: a new gallery key, a new tag
    stage.set_credentials(Cards(), rotated)
    assert stage.claimed_user is None
    inbox.put(_card(OTHER), 2.0)
    (out,) = stage.step(2.0)
    assert out.card == card_hash(rotated, OTHER) != card_hash(TAG_KEY, OTHER)


@pytest.mark.parametrize("mode", [DoorMode.FACE, DoorMode.FACE_AND_PIN])
def test_cards_are_ignored_where_the_mode_takes_none(mode: DoorMode) -> None:
    stage, inbox = _stage(mode)
    inbox.put(_card(CARD), 1.0)
    inbox.put(_card(OTHER), 1.0)
    assert stage.step(1.0) == []
    assert stage.claimed_user is None


def test_face_or_card_a_known_card_alone_opens() -> None:
    stage, inbox = _stage(DoorMode.FACE_OR_CARD)
    inbox.put(_card(CARD), 1.0)
    (out,) = stage.step(1.0)
    assert isinstance(out, FactorOutcome)
    assert isinstance(out.outcome, Grant)
    assert (out.outcome.user_id, out.outcome.via) == (ALICE, "card")
