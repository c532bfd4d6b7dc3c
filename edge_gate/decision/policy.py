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
"""

from __future__ import annotations

import enum
from collections import Counter, deque
from dataclasses import dataclass, field

__layer__ = "core"


class Verdict(enum.Enum):
    GRANT = "grant"
    DENY = "deny"


class DenyReason(enum.StrEnum):
    UNKNOWN = "unknown"
    NOT_LIVE = "not_live"
    LOW_QUALITY = "low_quality"
    AMBIGUOUS = "ambiguous"  # matched, but too close to a second person (margin)
    INCONSISTENT = "inconsistent"  # frames matched different people
    RELAY_UNAVAILABLE = "relay_unavailable"
    ERROR = "error"


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    track_id: int
    user_id: str | None
    reason: str | None
    score: float
    margin: float
    liveness_score: float
    frames: int
    first_seen_s: float
    decided_s: float

    @property
    def latency_s(self) -> float:
        """From the track's first frame to this decision."""
        return self.decided_s - self.first_seen_s


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

    def observe(self, obs: Observation) -> Decision | None:
        """Add one frame's evidence; return a decision when one is due."""
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
            return None  # one unlock per track; the person is already through

        good = [o for o in tr.window if self._frame_matches(o)]
        by_user = Counter(o.user_id for o in good)
        if by_user:
            user, count = by_user.most_common(1)[0]
            if count >= p.k_frames and len(by_user) == 1:
                if p.require_live and obs.live is not True:
                    if obs.now_s - tr.first_seen_s < p.liveness_timeout_s:
                        return None  # identity settled; liveness still collecting evidence
                    return self._deny(tr, obs, DenyReason.NOT_LIVE)
                if self.in_cooldown(obs.now_s):
                    return None
                return self._grant(tr, obs, user, [o for o in good if o.user_id == user])

        if tr.seen < p.n_frames:
            return None  # too early to deny: let the person settle in front of the camera
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

    def _why_not(self, tr: _Track, by_user: Counter[str | None]) -> DenyReason:
        p = self._p
        window = list(tr.window)
        if len(by_user) > 1:
            return DenyReason.INCONSISTENT
        usable = [o for o in window if o.quality_ok]
        if len(usable) < p.k_frames:
            return DenyReason.LOW_QUALITY
        above = [o for o in usable if o.user_id is not None and o.score >= p.threshold]
        if len(above) >= p.k_frames:
            return DenyReason.AMBIGUOUS  # similar enough, but not clearly one person
        if by_user and p.require_live:
            return DenyReason.NOT_LIVE  # identity agreed but liveness never confirmed
        return DenyReason.UNKNOWN

    def _grant(
        self, tr: _Track, obs: Observation, user: str | None, frames: list[Observation]
    ) -> Decision:
        tr.granted = True
        self._cooldown_until_s = obs.now_s + self._p.cooldown_s
        return Decision(
            verdict=Verdict.GRANT,
            track_id=obs.track_id,
            user_id=user,
            reason=None,
            score=min(o.score for o in frames),
            margin=min(o.margin for o in frames),
            liveness_score=obs.liveness_score,
            frames=len(frames),
            first_seen_s=tr.first_seen_s,
            decided_s=obs.now_s,
        )

    def _deny(self, tr: _Track, obs: Observation, reason: DenyReason) -> Decision | None:
        if tr.last_denied_s is not None and obs.now_s - tr.last_denied_s < self._p.deny_repeat_s:
            return None
        tr.last_denied_s = obs.now_s
        return Decision(
            verdict=Verdict.DENY,
            track_id=obs.track_id,
            user_id=None,  # a denied face is never named, even when it resembled someone
            reason=reason.value,
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
