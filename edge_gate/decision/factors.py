"""Door modes with a second factor (pure core): face, face_or_card, face_and_card, face_and_pin.

:class:`SecondFactorPolicy` sits after the face policy (:mod:`edge_gate.decision.policy`): it
takes the face outcome, card reads (already looked up: the card's holder or None), 1:1 face
checks against a card holder, and PIN entries, and returns the same typed
:data:`~edge_gate.decision.policy.Decision`. ``now_s`` is passed in; nothing here does I/O.

- ``face``: the face outcome as it is; cards and PINs are ignored.
- ``face_or_card``: a face grant or a known card opens; an unknown card is ``card_unknown``.
- ``face_and_card``: the card names the person; that person's live face must then match 1:1
  (``k_frames`` of ``n_frames`` frames ≥ ``card_threshold``) within ``timeout_s``: else
  ``card_face_mismatch`` or ``second_factor_timeout``. A face alone waits for a card.
- ``face_and_pin``: a face grant waits for the granted person's PIN: ``pin_wrong`` or
  ``second_factor_timeout``.

Card numbers and PINs never enter an outcome: only the holder's pseudonymous id does.

The weekly schedule (:class:`ModeWindow`, :func:`mode_at`): a window names weekdays, a start
and an end (minutes after midnight) and a mode. A window whose end is not after its start wraps
past midnight: ``fri 22:00-06:00`` covers Friday 22:00 to Saturday 06:00 (the weekday is the
day the window starts). Outside every window the door is in its default mode. Windows never
overlap (:func:`overlaps` finds the first clash, the config refuses it), so their order does
not matter.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from edge_gate.decision.policy import Decision, Deny, DenyReason, Grant, Outcome, Pending
from edge_gate.decision.policy import PendingReason as Wait

__layer__ = "core"

NO_TRACK = -1  # outcomes started by a card or a keypad, not by a face track

PinCheck = Callable[[str, str], bool]  # (user_id, entered PIN) → matches, constant time


class DoorMode(enum.StrEnum):
    FACE = "face"
    FACE_OR_CARD = "face_or_card"
    FACE_AND_CARD = "face_and_card"
    FACE_AND_PIN = "face_and_pin"


@dataclass(frozen=True)
class FactorParams:
    mode: DoorMode = DoorMode.FACE
    card_threshold: float = 0.5  # 1:1 similarity the card holder's face must reach
    k_frames: int = 3
    n_frames: int = 5
    timeout_s: float = 10.0  # the second factor must follow the first within this
    require_live: bool = True


@dataclass(frozen=True, slots=True)
class FaceCheck:
    """One frame of a face track scored 1:1 against the claimed person's templates."""

    track_id: int
    user_id: str
    score: float
    live: bool | None
    liveness_score: float
    now_s: float


@dataclass
class _Claim:
    user_id: str
    opened_s: float
    grant: Grant | None = None  # face_and_pin: the face grant waiting for its PIN
    scores: list[float] = field(default_factory=list)


def _deny(reason: DenyReason, now_s: float, since_s: float, track_id: int = NO_TRACK) -> Deny:
    return Deny(track_id, reason, 0.0, 0.0, 0.0, 0, since_s, now_s)


class SecondFactorPolicy:
    def __init__(self, params: FactorParams, pin_check: PinCheck | None = None) -> None:
        if params.k_frames > params.n_frames:
            raise ValueError("k_frames must not exceed n_frames")
        if params.mode is DoorMode.FACE_AND_PIN and pin_check is None:
            raise ValueError("face_and_pin needs a PIN check")
        self._p = params
        self._pin_check = pin_check
        self._claim: _Claim | None = None

    @property
    def mode(self) -> DoorMode:
        return self._p.mode

    @property
    def claimed_user(self) -> str | None:
        """The person a card named (face_and_card): the face to check 1:1, else None."""
        claim = self._claim
        return claim.user_id if claim is not None and claim.grant is None else None

    def tick(self, now_s: float) -> Deny | None:
        """``second_factor_timeout`` once, when the open claim has run out."""
        claim = self._claim
        if claim is None or now_s - claim.opened_s <= self._p.timeout_s:
            return None
        self._claim = None
        track = claim.grant.track_id if claim.grant is not None else NO_TRACK
        return _deny(DenyReason.SECOND_FACTOR_TIMEOUT, now_s, claim.opened_s, track)

    def on_face(self, outcome: Outcome, now_s: float) -> Decision:
        """The face policy's grant or denial."""
        mode = self._p.mode
        if mode in (DoorMode.FACE, DoorMode.FACE_OR_CARD) or isinstance(outcome, Deny):
            return outcome
        if mode is DoorMode.FACE_AND_CARD:
            return Pending(outcome.track_id, Wait.AWAITING_CARD)
        self._claim = _Claim(outcome.user_id, now_s, grant=outcome)
        return Pending(outcome.track_id, Wait.AWAITING_PIN)

    def on_card(self, holder: str | None, now_s: float) -> Decision:
        """A card read; ``holder`` is the enrolled person holding it, None for an unknown card."""
        mode = self._p.mode
        if mode in (DoorMode.FACE, DoorMode.FACE_AND_PIN):
            return Pending(NO_TRACK, Wait.AWAITING_FACE)
        if holder is None:
            return _deny(DenyReason.CARD_UNKNOWN, now_s, now_s)
        if mode is DoorMode.FACE_OR_CARD:
            return Grant(NO_TRACK, holder, 0.0, 0.0, 0.0, 0, now_s, now_s, via="card")
        self._claim = _Claim(holder, now_s)
        return Pending(NO_TRACK, Wait.AWAITING_FACE)

    def on_face_check(self, check: FaceCheck) -> Decision:
        """One 1:1 frame against the card holder (face_and_card, while a card claim is open)."""
        claim = self._claim
        if claim is None or claim.grant is not None or check.user_id != claim.user_id:
            return Pending(check.track_id, Wait.AWAITING_CARD)
        if (expired := self.tick(check.now_s)) is not None:
            return expired
        p = self._p
        claim.scores.append(check.score)
        del claim.scores[: -p.n_frames]
        matched = [s for s in claim.scores if s >= p.card_threshold]
        if len(matched) >= p.k_frames:
            if p.require_live and check.live is not True:
                return Pending(check.track_id, Wait.LIVENESS)  # until the claim runs out
            self._claim = None
            return Grant(
                check.track_id,
                claim.user_id,
                min(matched),
                0.0,
                check.liveness_score,
                len(matched),
                claim.opened_s,
                check.now_s,
                via="face+card",
            )
        if len(claim.scores) >= p.n_frames:
            self._claim = None
            return Deny(
                check.track_id,
                DenyReason.CARD_FACE_MISMATCH,
                max(claim.scores),
                0.0,
                check.liveness_score,
                len(claim.scores),
                claim.opened_s,
                check.now_s,
            )
        return Pending(check.track_id, Wait.SETTLING)

    def on_pin(self, pin: str, now_s: float) -> Decision:
        """Keys entered at the reader (face_and_pin, after the face grant)."""
        claim = self._claim
        if self._p.mode is not DoorMode.FACE_AND_PIN or claim is None or claim.grant is None:
            return Pending(NO_TRACK, Wait.AWAITING_FACE)
        if (expired := self.tick(now_s)) is not None:
            return expired
        self._claim = None
        grant = claim.grant
        check = self._pin_check
        if check is None or not check(grant.user_id, pin):
            return _deny(DenyReason.PIN_WRONG, now_s, claim.opened_s, grant.track_id)
        return Grant(
            grant.track_id,
            grant.user_id,
            grant.score,
            grant.margin,
            grant.liveness_score,
            grant.frames,
            grant.first_seen_s,
            now_s,
            via="face+pin",
        )


# -- the weekly schedule of modes ---------------------------------------------------------
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order


@dataclass(frozen=True, slots=True)
class ModeWindow:
    days: frozenset[int]  # 0 = Monday … 6 = Sunday: the day the window starts
    start_min: int  # minutes after midnight, 0..1439
    end_min: int  # minutes after midnight, 0..1439; ≤ start_min wraps past midnight
    mode: DoorMode

    def __post_init__(self) -> None:
        if not self.days or any(not 0 <= d <= 6 for d in self.days):
            raise ValueError("days must be a non-empty set of 0..6 (Monday..Sunday)")
        for value in (self.start_min, self.end_min):
            if not 0 <= value < MINUTES_PER_DAY:
                raise ValueError(f"minute of day {value} outside 0..1439")

    @property
    def length_min(self) -> int:
        """Minutes covered from each start: ``start == end`` is a whole day."""
        return (self.end_min - self.start_min - 1) % MINUTES_PER_DAY + 1

    def spans(self) -> list[tuple[int, int]]:
        """Half-open ``[begin, end)`` minute-of-week ranges, a wrap past Sunday split in two."""
        out = []
        for day in sorted(self.days):
            begin = day * MINUTES_PER_DAY + self.start_min
            end = begin + self.length_min
            if end <= MINUTES_PER_WEEK:
                out.append((begin, end))
            else:
                out += [(begin, MINUTES_PER_WEEK), (0, end - MINUTES_PER_WEEK)]
        return out

    def covers(self, minute_of_week: int) -> bool:
        return any(b <= minute_of_week < e for b, e in self.spans())


def minute_of_week(when: datetime) -> int:
    """Monday 00:00 is 0; the wall-clock fields of ``when`` are used as they are."""
    return when.weekday() * MINUTES_PER_DAY + when.hour * 60 + when.minute


def mode_at(windows: Sequence[ModeWindow], default: DoorMode, when: datetime) -> DoorMode:
    """The door's mode at ``when``: the window covering it, else ``default``."""
    minute = minute_of_week(when)
    for window in windows:
        if window.covers(minute):
            return window.mode
    return default


def overlaps(windows: Sequence[ModeWindow]) -> tuple[int, int] | None:
    """Indexes ``(i, j)`` of the first two windows that share a minute, or None."""
    for i, a in enumerate(windows):
        for j in range(i + 1, len(windows)):
            b = windows[j]
            if any(ab < be and bb < ae for ab, ae in a.spans() for bb, be in b.spans()):
                return i, j
    return None
