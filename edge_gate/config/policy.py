"""``[policy]``: when a door opens."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from edge_gate.config.base import Section
from edge_gate.decision.factors import WEEKDAYS, DoorMode, ModeWindow, overlaps

ModeName = Literal["face", "face_or_card", "face_and_card", "face_and_pin"]
_CLOCK = r"^([01][0-9]|2[0-3]):([0-5][0-9])$"  # HH:MM, 00:00..23:59


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")  # the field pattern checked the form
    return int(hours) * 60 + int(minutes)


class ScheduleWindow(Section):
    """One ``[[policy.schedule]]`` entry: a mode for some weekdays between two clock times."""

    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = Field(
        min_length=1, max_length=7, description="weekdays the window starts on"
    )
    start: str = Field(pattern=_CLOCK, description="local time HH:MM the window opens")
    end: str = Field(
        pattern=_CLOCK,
        description="local time HH:MM it closes; not after start: past midnight (equal: 24 h)",
    )
    mode: ModeName = Field(description="the door mode inside the window")

    @field_validator("days")
    @classmethod
    def _distinct(cls, days: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(days)) != len(days):
            raise ValueError("a weekday is listed twice")
        return days

    def window(self) -> ModeWindow:
        return ModeWindow(
            frozenset(WEEKDAYS.index(d) for d in self.days),
            _minutes(self.start),
            _minutes(self.end),
            DoorMode(self.mode),
        )


class PolicyConfig(Section):
    door_id: str = Field(
        "door-1",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_\-]+$",
        description="this door's id in topics and events",
    )
    k_frames: int = Field(3, ge=1, le=100, description="matching frames needed (K of N)")
    n_frames: int = Field(5, ge=1, le=200, description="window of recent frames considered (N)")
    window_s: float = Field(2.0, gt=0, le=30, description="frames older than this do not count")
    cooldown_s: float = Field(
        5.0, ge=0, le=3600, description="no second unlock for the same door within this"
    )
    liveness_timeout_s: float = Field(
        3.0, gt=0, le=60, description="identity settled but no live verdict after this → not_live"
    )
    max_fps: float = Field(15.0, gt=0, le=60, description="pipeline rate cap (flood protection)")
    max_faces: int = Field(
        3, ge=1, le=20, description="largest faces per frame analysed; the rest are ignored"
    )
    mode: ModeName = Field(
        "face",
        description="what opens the door: the face, or the face with a card or PIN "
        "(the default mode outside every schedule window)",
    )
    schedule: tuple[ScheduleWindow, ...] = Field(
        (), max_length=64, description="weekly windows with another mode (local time)"
    )
    card_threshold: float = Field(
        0.5, ge=0, le=1, description="face_and_card: 1:1 similarity to the card holder needed"
    )
    second_factor_timeout_s: float = Field(
        10.0, gt=0, le=120, description="the second factor must follow the first within this"
    )
    pin_timeout_s: float = Field(
        4.0, gt=0, le=30, description="face_and_pin: keys end a PIN at '#' or after this pause"
    )
    unlock_expiry_s: float = Field(
        1.0, gt=0, le=10, description="an unlock not sent to the relay within this is dropped"
    )

    @model_validator(mode="after")
    def _k_not_above_n(self) -> Self:
        if self.k_frames > self.n_frames:
            raise ValueError(
                f"k_frames ({self.k_frames}) must not exceed n_frames ({self.n_frames})"
            )
        return self

    @model_validator(mode="after")
    def _windows_apart(self) -> Self:
        clash = overlaps(self.mode_windows())
        if clash is not None:
            i, j = clash
            a, b = self.schedule[i], self.schedule[j]
            raise ValueError(
                f"schedule windows {i} ({','.join(a.days)} {a.start}-{a.end}) and "
                f"{j} ({','.join(b.days)} {b.start}-{b.end}) overlap"
            )
        return self

    def mode_windows(self) -> tuple[ModeWindow, ...]:
        return tuple(w.window() for w in self.schedule)

    def modes(self) -> frozenset[str]:
        """Every mode the door may be in (the default and each window's)."""
        return frozenset({self.mode, *(w.mode for w in self.schedule)})
