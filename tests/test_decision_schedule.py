"""Weekly door-mode schedule: the pure pick, midnight and week wraps, config validation."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from edge_gate.config import validate_config_text
from edge_gate.decision.factors import DoorMode, ModeWindow, mode_at, overlaps

MON = datetime(2026, 12, 7)  # a Monday
FRI, SAT, SUN = (MON + timedelta(days=d) for d in (4, 5, 6))


def _at(day: datetime, hhmm: str) -> datetime:
    h, m = hhmm.split(":")
    return day.replace(hour=int(h), minute=int(m))


WORKDAYS = ModeWindow(frozenset(range(5)), 8 * 60, 18 * 60, DoorMode.FACE_OR_CARD)
FRI_NIGHT = ModeWindow(frozenset({4}), 22 * 60, 6 * 60, DoorMode.FACE_AND_CARD)
SUN_NIGHT = ModeWindow(frozenset({6}), 23 * 60, 1 * 60, DoorMode.FACE_AND_PIN)
WINDOWS = (WORKDAYS, FRI_NIGHT, SUN_NIGHT)


@pytest.mark.parametrize(
    ("when", "mode"),
    [
        (_at(MON, "07:59"), DoorMode.FACE),
        (_at(MON, "08:00"), DoorMode.FACE_OR_CARD),  # start inclusive
        (_at(MON, "17:59"), DoorMode.FACE_OR_CARD),
        (_at(MON, "18:00"), DoorMode.FACE),  # end exclusive
        (_at(SAT, "12:00"), DoorMode.FACE),  # not a workday
        (_at(FRI, "21:59"), DoorMode.FACE),
        (_at(FRI, "22:00"), DoorMode.FACE_AND_CARD),
        (_at(FRI, "23:59"), DoorMode.FACE_AND_CARD),
        (_at(SAT, "00:00"), DoorMode.FACE_AND_CARD),  # past midnight: still Friday's window
        (_at(SAT, "05:59"), DoorMode.FACE_AND_CARD),
        (_at(SAT, "06:00"), DoorMode.FACE),
        (_at(MON, "01:00"), DoorMode.FACE),  # Friday's window is not on Sunday night
        (_at(SUN, "23:30"), DoorMode.FACE_AND_PIN),
        (_at(MON, "00:30"), DoorMode.FACE_AND_PIN),  # Sunday → Monday: the week wraps too
    ],
)
def test_mode_at(when: datetime, mode: DoorMode) -> None:
    assert mode_at(WINDOWS, DoorMode.FACE, when) is mode


def test_start_equal_end_is_a_whole_day_and_no_windows_is_the_default() -> None:
    whole = ModeWindow(frozenset({2}), 12 * 60, 12 * 60, DoorMode.FACE_AND_PIN)
    wed = MON + timedelta(days=2)
    assert mode_at([whole], DoorMode.FACE, _at(wed, "12:00")) is DoorMode.FACE_AND_PIN
    assert mode_at([whole], DoorMode.FACE, wed + timedelta(days=1, hours=11, minutes=59)) is (
        DoorMode.FACE_AND_PIN
    )
    assert mode_at([whole], DoorMode.FACE, _at(wed, "11:59")) is DoorMode.FACE
    assert mode_at([], DoorMode.FACE_AND_CARD, _at(wed, "11:59")) is DoorMode.FACE_AND_CARD


def test_overlaps_sees_wraps() -> None:
    assert overlaps(WINDOWS) is None
    sat_early = ModeWindow(frozenset({5}), 5 * 60, 7 * 60, DoorMode.FACE_AND_PIN)
    assert overlaps([WORKDAYS, FRI_NIGHT, sat_early]) == (1, 2)
    mon_early = ModeWindow(frozenset({0}), 0, 30, DoorMode.FACE)
    assert overlaps([SUN_NIGHT, mon_early]) == (0, 1)
    touching = ModeWindow(frozenset({5}), 6 * 60, 7 * 60, DoorMode.FACE_AND_PIN)
    assert overlaps([FRI_NIGHT, touching]) is None  # end is exclusive


def test_window_refuses_bad_values() -> None:
    with pytest.raises(ValueError, match="days"):
        ModeWindow(frozenset(), 0, 60, DoorMode.FACE)
    with pytest.raises(ValueError, match="minute of day"):
        ModeWindow(frozenset({0}), 0, 1440, DoorMode.FACE)


OSDP_CP = "[osdp_cp]\nenabled = true\nport = '/dev/ttyUSB0'\n"  # card modes need a reader


def _policy_toml(*windows: str) -> str:
    return (
        OSDP_CP
        + "[policy]\nmode = 'face'\n"
        + "".join(f"[[policy.schedule]]\n{w}\n" for w in windows)
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("", "card/PIN modes with no reader: enable [osdp_cp]"),
        (
            "[osdp_pd]\nenabled = true\nport = '/dev/ttyUSB0'\n",
            "card/PIN modes as the panel's reader: the panel owns cards",
        ),
    ],
)
def test_a_card_or_pin_mode_needs_the_osdp_cp_path(extra: str, message: str) -> None:
    """`check-config` (not only the daemon's start) refuses a card/PIN mode, constant or on the
    schedule, without [osdp_cp] or with [osdp_pd]; face-only schedules need neither."""
    window = "days = ['fri']\nstart = '22:00'\nend = '06:00'\nmode = 'face_and_pin'"
    for text in (
        f"{extra}[policy]\nmode = 'face_or_card'\n",
        f"{extra}[policy]\nmode = 'face'\n[[policy.schedule]]\n{window}\n",
    ):
        cfg, problems = validate_config_text(text)
        assert cfg is None, message
        joined = " ".join(problems)
        assert ("enable [osdp_cp]" if not extra else "cards and PINs are the panel's") in joined
    face_only = "days = ['fri']\nstart = '22:00'\nend = '06:00'\nmode = 'face'"
    cfg, problems = validate_config_text(f"{extra}[[policy.schedule]]\n{face_only}\n")
    assert problems == []


def test_config_schedule_round_trip() -> None:
    cfg, problems = validate_config_text(
        _policy_toml(
            "days = ['fri']\nstart = '22:00'\nend = '06:00'\nmode = 'face_and_card'",
            "days = ['mon', 'tue']\nstart = '08:00'\nend = '18:00'\nmode = 'face_or_card'",
        )
    )
    assert problems == []
    assert cfg is not None
    windows = cfg.policy.mode_windows()
    assert windows[0] == FRI_NIGHT
    assert mode_at(windows, DoorMode(cfg.policy.mode), _at(SAT, "03:00")) is DoorMode.FACE_AND_CARD
    assert mode_at(windows, DoorMode(cfg.policy.mode), _at(MON, "09:00")) is DoorMode.FACE_OR_CARD


@pytest.mark.parametrize(
    ("window", "message"),
    [
        (
            "days = ['fri']\nstart = '24:00'\nend = '06:00'\nmode = 'face'",
            "policy.schedule.0.start",
        ),
        ("days = ['fri']\nstart = '8:00'\nend = '06:00'\nmode = 'face'", "policy.schedule.0.start"),
        ("days = ['fr']\nstart = '08:00'\nend = '06:00'\nmode = 'face'", "policy.schedule.0.days"),
        ("days = []\nstart = '08:00'\nend = '06:00'\nmode = 'face'", "policy.schedule.0.days"),
        (
            "days = ['mon', 'mon']\nstart = '08:00'\nend = '09:00'\nmode = 'face'",
            "a weekday is listed twice",
        ),
        ("days = ['fri']\nstart = '08:00'\nend = '09:00'\nmode = 'card'", "policy.schedule.0.mode"),
        (
            "days = ['fri']\nstart = '08:00'\nend = '09:00'",
            "policy.schedule.0.mode: Field required",
        ),
        (
            "days = ['fri']\nstart = '08:00'\nend = '09:00'\nmode = 'face'\nextra = 1",
            "policy.schedule.0.extra",
        ),
    ],
)
def test_config_schedule_errors_name_the_key(window: str, message: str) -> None:
    cfg, problems = validate_config_text(_policy_toml(window))
    assert cfg is None
    assert message in "\n".join(problems)


def test_config_refuses_overlapping_windows_and_names_them() -> None:
    cfg, problems = validate_config_text(
        _policy_toml(
            "days = ['fri']\nstart = '22:00'\nend = '06:00'\nmode = 'face_and_card'",
            "days = ['sat']\nstart = '05:00'\nend = '07:00'\nmode = 'face_and_pin'",
        )
    )
    assert cfg is None
    joined = "\n".join(problems)
    assert "schedule windows 0 (fri 22:00-06:00) and 1 (sat 05:00-07:00) overlap" in joined
