"""Door modes with a second factor: every outcome and every new denial reason."""

from __future__ import annotations

import hmac

import pytest

from edge_gate.decision.factors import (
    NO_TRACK,
    DoorMode,
    FaceCheck,
    FactorParams,
    SecondFactorPolicy,
)
from edge_gate.decision.policy import Deny, DenyReason, Grant, Pending, PendingReason

PINS = {"u_aaaaaaaaaaaa": "2468"}


def _pin_check(user_id: str, pin: str) -> bool:
    return hmac.compare_digest(PINS.get(user_id, "").encode(), pin.encode())


def _policy(mode: DoorMode) -> SecondFactorPolicy:
    params = FactorParams(mode=mode, card_threshold=0.6, k_frames=2, n_frames=3, timeout_s=5.0)
    return SecondFactorPolicy(params, _pin_check)


def _grant(user: str = "u_aaaaaaaaaaaa", track: int = 7) -> Grant:
    return Grant(track, user, 0.8, 0.2, 0.9, 3, 0.0, 1.0)


def _check(score: float, now_s: float, live: bool | None = True) -> FaceCheck:
    return FaceCheck(7, "u_aaaaaaaaaaaa", score, live, 0.9, now_s)


def _reason(d: object) -> DenyReason:
    assert isinstance(d, Deny), d
    return d.reason


def test_face_mode_passes_the_face_outcome_and_ignores_cards() -> None:
    p = _policy(DoorMode.FACE)
    g = _grant()
    assert p.on_face(g, 1.0) is g
    assert isinstance(p.on_card("u_aaaaaaaaaaaa", 1.0), Pending)
    assert isinstance(p.on_pin("2468", 1.0), Pending)


def test_face_or_card() -> None:
    """A face grant or a known card opens; an unknown card is card_unknown."""
    p = _policy(DoorMode.FACE_OR_CARD)
    assert isinstance(p.on_face(_grant(), 1.0), Grant)
    d = p.on_card("u_aaaaaaaaaaaa", 2.0)
    assert isinstance(d, Grant)
    assert (d.user_id, d.via, d.track_id) == ("u_aaaaaaaaaaaa", "card", NO_TRACK)
    assert _reason(p.on_card(None, 3.0)) is DenyReason.CARD_UNKNOWN


def test_face_and_card_grant_needs_k_live_frames_of_the_holder() -> None:
    p = _policy(DoorMode.FACE_AND_CARD)
    g = p.on_face(_grant(), 0.5)
    assert isinstance(g, Pending)
    assert g.waiting is PendingReason.AWAITING_CARD  # a face alone does not open
    assert p.on_card("u_aaaaaaaaaaaa", 1.0) == Pending(NO_TRACK, PendingReason.AWAITING_FACE)
    assert p.claimed_user == "u_aaaaaaaaaaaa"
    assert isinstance(p.on_face_check(_check(0.7, 1.1)), Pending)
    d = p.on_face_check(_check(0.65, 1.2))
    assert isinstance(d, Grant)
    assert (d.via, d.frames, d.score) == ("face+card", 2, 0.65)
    assert p.claimed_user is None


def test_face_and_card_unknown_card() -> None:
    assert _reason(_policy(DoorMode.FACE_AND_CARD).on_card(None, 1.0)) is DenyReason.CARD_UNKNOWN


def test_face_and_card_other_persons_face_is_mismatch() -> None:
    """The holder's card with another person's face: low 1:1 scores → card_face_mismatch."""
    p = _policy(DoorMode.FACE_AND_CARD)
    p.on_card("u_aaaaaaaaaaaa", 1.0)
    assert isinstance(p.on_face_check(_check(0.2, 1.1)), Pending)
    assert isinstance(p.on_face_check(_check(0.7, 1.2)), Pending)
    assert _reason(p.on_face_check(_check(0.3, 1.3))) is DenyReason.CARD_FACE_MISMATCH


def test_face_and_card_checks_against_another_user_are_ignored() -> None:
    p = _policy(DoorMode.FACE_AND_CARD)
    p.on_card("u_aaaaaaaaaaaa", 1.0)
    other = FaceCheck(7, "u_bbbbbbbbbbbb", 0.99, True, 0.9, 1.1)
    assert isinstance(p.on_face_check(other), Pending)
    assert p.claimed_user == "u_aaaaaaaaaaaa"


def test_face_and_card_still_requires_liveness() -> None:
    """Matching 1:1 but not live (a print): waits, then the claim times out — no grant."""
    p = _policy(DoorMode.FACE_AND_CARD)
    p.on_card("u_aaaaaaaaaaaa", 1.0)
    for i in range(5):
        d = p.on_face_check(_check(0.9, 1.1 + i * 0.1, live=False))
        assert not isinstance(d, Grant)
    assert _reason(p.tick(6.5)) is DenyReason.SECOND_FACTOR_TIMEOUT
    assert p.tick(7.0) is None  # reported once


def test_face_and_card_card_without_face_times_out() -> None:
    p = _policy(DoorMode.FACE_AND_CARD)
    p.on_card("u_aaaaaaaaaaaa", 1.0)
    assert p.tick(5.9) is None
    assert _reason(p.tick(6.1)) is DenyReason.SECOND_FACTOR_TIMEOUT


def test_face_and_card_late_face_is_timeout() -> None:
    p = _policy(DoorMode.FACE_AND_CARD)
    p.on_card("u_aaaaaaaaaaaa", 1.0)
    assert _reason(p.on_face_check(_check(0.9, 9.0))) is DenyReason.SECOND_FACTOR_TIMEOUT


def test_face_and_pin() -> None:
    """Face grant, then the right PIN: granted face+pin; a wrong PIN: pin_wrong; no PIN:
    second_factor_timeout."""
    p = _policy(DoorMode.FACE_AND_PIN)
    assert isinstance(p.on_pin("2468", 0.5), Pending)  # a PIN before any face does nothing
    assert p.on_face(_grant(), 1.0) == Pending(7, PendingReason.AWAITING_PIN)
    d = p.on_pin("2468", 2.0)
    assert isinstance(d, Grant)
    assert d.via == "face+pin"
    p.on_face(_grant(), 3.0)
    assert _reason(p.on_pin("1111", 4.0)) is DenyReason.PIN_WRONG
    assert isinstance(p.on_pin("2468", 4.5), Pending)  # one try per face grant
    p.on_face(_grant(), 5.0)
    assert _reason(p.tick(10.5)) is DenyReason.SECOND_FACTOR_TIMEOUT
    p.on_face(_grant(), 20.0)
    assert _reason(p.on_pin("2468", 26.0)) is DenyReason.SECOND_FACTOR_TIMEOUT


def test_face_denials_pass_through_every_mode() -> None:
    deny = Deny(7, DenyReason.UNKNOWN, 0.1, 0.0, 0.9, 5, 0.0, 1.0)
    for mode in DoorMode:
        assert _policy(mode).on_face(deny, 1.0) is deny


def test_pin_mode_needs_a_check() -> None:
    with pytest.raises(ValueError, match="PIN check"):
        SecondFactorPolicy(FactorParams(mode=DoorMode.FACE_AND_PIN))


def test_policy_mode_config() -> None:
    """[policy] mode defaults to face; an unknown mode names its key."""
    from edge_gate.config import validate_config_text

    cfg, problems = validate_config_text("")
    assert cfg is not None
    assert cfg.policy.mode == "face"
    assert DoorMode(cfg.policy.mode) is DoorMode.FACE
    reader = "[osdp_cp]\nenabled = true\nport = '/dev/ttyUSB0'\n"  # card modes need one
    cfg, _ = validate_config_text(reader + '[policy]\nmode = "face_and_card"\n')
    assert cfg is not None
    assert DoorMode(cfg.policy.mode) is DoorMode.FACE_AND_CARD
    _, problems = validate_config_text('[policy]\nmode = "card"\n')
    assert problems[0].startswith("policy.mode:")
