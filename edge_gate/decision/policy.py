"""The decision policy (pure core): K-of-N agreeing frames, liveness, quality, margin, cooldown.

A door opens only when, within one face track, at least ``k_frames`` of the last ``n_frames``
observations (none older than ``window_s``) passed the quality gates and matched the *same*
person with similarity >= threshold and margin >= ``margin``, and the track's liveness verdict is
"live" on that same frame. Anything else is a wait or a denial with a reason. A liveness window
that says "not live" does not end the track (a real person may stand still for a moment); if no
live verdict arrives within ``liveness_timeout_s`` of the face appearing, the track is denied
``not_live``. This is the rule the liveness evaluation measures (an attack succeeds if any of its
windows is judged live), so the APCER figures apply to the door as configured. Every input is
a value; ``now_s`` is passed in, so the policy is deterministic and testable without clocks.

Every observation gives a :data:`Decision`: :class:`Grant`, :class:`Deny` (with a
:class:`DenyReason`) or :class:`Pending` (with why it waits). Dispatch on it with ``match`` and
``typing.assert_never`` so that a new outcome cannot be silently ignored.
"""

from __future__ import annotations

import enum
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TypeAlias

__layer__ = "core"


class DenyReason(enum.StrEnum):
    """Every reason a door may give for not opening (the ``reason`` of ``access.denied``)."""

    UNKNOWN = "unknown"  # no enrolled person matched in K of the last N frames
    NOT_LIVE = "not_live"  # identity settled, but liveness never confirmed in time
    LOW_QUALITY = "low_quality"  # too few frames passed the quality gates
    AMBIGUOUS = "ambiguous"  # matched, but too close to a second person (margin)
    INCONSISTENT = "inconsistent"  # frames matched different people
    ERROR = "error"  # the decision path itself failed (fail secure)
    # granted by the face, but the door did not open (the relay path; see relay_reason)
    RELAY_BUSY = "relay_busy"  # another unlock was still queued
    RELAY_UNAVAILABLE = "relay_unavailable"  # no answer, link down, or shutting down
    RELAY_STALE = "relay_stale"  # the grant expired before the relay could act on it
    RELAY_REFUSED = "relay_refused"  # the relay answered, but refused or could not be verified
    RELAY_COUNTER_ERROR = "relay_counter_error"  # the unlock counter could not be recorded first
    RELAY_UNCONFIRMED = "relay_unconfirmed"  # the relay went quiet after the UNLOCK
    # second factors (decision/factors.py): the door's [policy] mode asks for more than a face
    CARD_UNKNOWN = "card_unknown"  # a card no enrolled person holds
    CARD_FACE_MISMATCH = "card_face_mismatch"  # the live face is not the card holder's (1:1)
    SECOND_FACTOR_TIMEOUT = "second_factor_timeout"  # the other factor did not come in time
    PIN_WRONG = "pin_wrong"  # the PIN entered is not the granted person's
    # [osdp_pd]: granted by the face, but no card read could go to the panel
    NO_CARD = "no_card"  # the person has no card to report (`edge-gate users set-card`)
    PANEL_UNAVAILABLE = "panel_unavailable"  # no Secure Channel to the panel: nothing sent


class PendingReason(enum.StrEnum):
    """Why an observation produced no grant or denial yet."""

    SETTLING = "settling"  # too few frames to decide either way
    LIVENESS = "liveness"  # identity settled; liveness still collecting evidence
    COOLDOWN = "cooldown"  # identity and liveness agree, but the door just opened
    GRANTED = "granted"  # this track was already let through (one unlock per track)
    REPEAT = "repeat"  # denied recently; the denial is not repeated yet
    AWAITING_FACE = "awaiting_face"  # a card named a person; their live face must follow
    AWAITING_PIN = "awaiting_pin"  # the face was granted; the PIN must follow
    AWAITING_CARD = "awaiting_card"  # a face alone does not open this door


@dataclass(frozen=True, slots=True)
class Observation:
    """One frame's evidence about one face track."""

    track_id: int
    now_s: float
    quality_ok: bool
    user_id: str | None  # best identity, None when the gallery is empty
    score: float  # cosine similarity to the best identity
    margin: float  # best minus second-best identity similarity
    live: bool | None  # the track's liveness verdict so far (None: undecided)
    liveness_score: float


@dataclass(frozen=True, slots=True)
class Grant:
    """Open the door for ``user_id``: K of N frames agreed on them and the face is live."""

    track_id: int
    user_id: str
    score: float  # the weakest agreeing frame's similarity
    margin: float
    liveness_score: float
    frames: int
    first_seen_s: float
    decided_s: float
    via: str = "face"  # the factors that opened: face, card, face+card, face+pin

    @property
    def latency_s(self) -> float:
        """From the track's first frame to this decision."""
        return self.decided_s - self.first_seen_s


@dataclass(frozen=True, slots=True)
class Deny:
    """Keep the door shut, for ``reason``. A denied face is never named."""

    track_id: int
    reason: DenyReason
    score: float  # the best similarity seen in the window
    margin: float
    liveness_score: float
    frames: int
    first_seen_s: float
    decided_s: float

    @property
    def latency_s(self) -> float:
        return self.decided_s - self.first_seen_s


@dataclass(frozen=True, slots=True)
class Pending:
    """Nothing to do at the door for this observation."""

    track_id: int
    waiting: PendingReason


Decision: TypeAlias = Grant | Deny | Pending
Outcome: TypeAlias = Grant | Deny  # a decision the door acts on


def relay_reason(outcome_reason: str) -> DenyReason:
    """The denial for a grant the relay did not carry out (``UnlockOutcome.reason``)."""
    if outcome_reason in {"relay_unavailable", "timeout", "stopping"}:
        return DenyReason.RELAY_UNAVAILABLE
    if outcome_reason == "stale":
        return DenyReason.RELAY_STALE
    if outcome_reason == "counter_error":
        return DenyReason.RELAY_COUNTER_ERROR
    if outcome_reason == "unconfirmed":
        return DenyReason.RELAY_UNCONFIRMED
    return DenyReason.RELAY_REFUSED  # nack:*, bad_mac, bad_ack, bad_challenge, anything new


@dataclass(frozen=True)
class PolicyParams:
    threshold: float
    margin: float
    k_frames: int
    n_frames: int
    window_s: float
    cooldown_s: float
    require_live: bool = True
    deny_repeat_s: float = 10.0  # a track that keeps failing is reported at most this often
    track_ttl_s: float = 5.0  # forget tracks not seen for this long
    liveness_timeout_s: float = 3.0  # identity settled but no live verdict after this → not_live


@dataclass
class _Track:
    first_seen_s: float
    last_seen_s: float
    window: deque[Observation] = field(default_factory=deque)
    seen: int = 0
    granted: bool = False
    last_denied_s: float | None = None


class DecisionPolicy:
    """Feed observations in; get at most one decision per observation out."""

    def __init__(self, params: PolicyParams) -> None:
        if params.k_frames > params.n_frames:
            raise ValueError("k_frames must not exceed n_frames")
        self._p = params
        self._tracks: dict[int, _Track] = {}
        self._cooldown_until_s = float("-inf")

    @property
    def params(self) -> PolicyParams:
        return self._p

    def in_cooldown(self, now_s: float) -> bool:
        return now_s < self._cooldown_until_s

    def observe(self, obs: Observation) -> Decision:
        """Add one frame's evidence; a :class:`Grant` or :class:`Deny` when one is due."""
        p = self._p
        self._expire(obs.now_s)
        tr = self._tracks.get(obs.track_id)
        if tr is None:
            tr = _Track(first_seen_s=obs.now_s, last_seen_s=obs.now_s)
            self._tracks[obs.track_id] = tr
        tr.last_seen_s = obs.now_s
        tr.seen += 1
        tr.window.append(obs)
        while len(tr.window) > p.n_frames:
            tr.window.popleft()
        while tr.window and obs.now_s - tr.window[0].now_s > p.window_s:
            tr.window.popleft()

        if tr.granted:
            return Pending(obs.track_id, PendingReason.GRANTED)

        good = [o for o in tr.window if self._frame_matches(o)]
        by_user = Counter(o.user_id for o in good if o.user_id is not None)
        if len(by_user) == 1:
            user, count = by_user.most_common(1)[0]
            if count >= p.k_frames:
                if p.require_live and obs.live is not True:
                    if obs.now_s - tr.first_seen_s < p.liveness_timeout_s:
                        return Pending(obs.track_id, PendingReason.LIVENESS)
                    return self._deny(tr, obs, DenyReason.NOT_LIVE)
                if self.in_cooldown(obs.now_s):
                    return Pending(obs.track_id, PendingReason.COOLDOWN)
                return self._grant(tr, obs, user, [o for o in good if o.user_id == user])

        if tr.seen < p.n_frames:
            return Pending(obs.track_id, PendingReason.SETTLING)
        return self._deny(tr, obs, self._why_not(tr, by_user))

    def forget(self, track_id: int) -> None:
        self._tracks.pop(track_id, None)

    def reset(self) -> None:
        """Forget every track (e.g. after the gallery was reloaded)."""
        self._tracks.clear()

    def _frame_matches(self, o: Observation) -> bool:
        p = self._p
        return (
            o.quality_ok
            and o.user_id is not None
            and o.score >= p.threshold
            and o.margin >= p.margin
        )

    def _why_not(self, tr: _Track, by_user: Counter[str]) -> DenyReason:
        """The first condition of a grant that the window does not meet.

        Identity comes before liveness: ``not_live`` is only ever given by :meth:`observe`,
        when K of N frames agreed on one person and no live verdict came in time. A face that
        matched in fewer than K frames was not recognised, whatever liveness said.
        """
        p = self._p
        if len(by_user) > 1:
            return DenyReason.INCONSISTENT
        usable = [o for o in tr.window if o.quality_ok]
        if len(usable) < p.k_frames:
            return DenyReason.LOW_QUALITY
        above = [o for o in usable if o.user_id is not None and o.score >= p.threshold]
        if len(above) >= p.k_frames:
            return DenyReason.AMBIGUOUS  # similar enough, but not clearly one person
        return DenyReason.UNKNOWN

    def _grant(self, tr: _Track, obs: Observation, user: str, frames: list[Observation]) -> Grant:
        tr.granted = True
        self._cooldown_until_s = obs.now_s + self._p.cooldown_s
        return Grant(
            track_id=obs.track_id,
            user_id=user,
            score=min(o.score for o in frames),
            margin=min(o.margin for o in frames),
            liveness_score=obs.liveness_score,
            frames=len(frames),
            first_seen_s=tr.first_seen_s,
            decided_s=obs.now_s,
        )

    def _deny(self, tr: _Track, obs: Observation, reason: DenyReason) -> Deny | Pending:
        if tr.last_denied_s is not None and obs.now_s - tr.last_denied_s < self._p.deny_repeat_s:
            return Pending(obs.track_id, PendingReason.REPEAT)
        tr.last_denied_s = obs.now_s
        return Deny(
            track_id=obs.track_id,
            reason=reason,
            score=max((o.score for o in tr.window), default=0.0),
            margin=max((o.margin for o in tr.window), default=0.0),
            liveness_score=obs.liveness_score,
            frames=len(tr.window),
            first_seen_s=tr.first_seen_s,
            decided_s=obs.now_s,
        )

    def _expire(self, now_s: float) -> None:
        ttl = self._p.track_ttl_s
        for tid in [t for t, tr in self._tracks.items() if now_s - tr.last_seen_s > ttl]:
            del self._tracks[tid]
