"""Decision policy (pure core): K-of-N, liveness, quality, margin, cooldown, one unlock/track."""

from __future__ import annotations

import pytest

from edge_gate.decision.policy import (
    Decision,
    DecisionPolicy,
    DenyReason,
    Observation,
    PolicyParams,
    Verdict,
)

P = PolicyParams(threshold=0.6, margin=0.05, k_frames=3, n_frames=5, window_s=2.0, cooldown_s=5.0)
DT = 1 / 15


def obs(
    i: int,
    *,
    track: int = 1,
    user: str | None = "u_alice",
    score: float = 0.8,
    margin: float = 0.3,
    live: bool | None = True,
    quality: bool = True,
    t0: float = 100.0,
) -> Observation:
    return Observation(
        track_id=track,
        now_s=t0 + i * DT,
        quality_ok=quality,
        user_id=user,
        score=score,
        margin=margin,
        live=live,
        liveness_score=0.9 if live else 0.1,
    )


def feed(policy: DecisionPolicy, observations: list[Observation]) -> list[Decision]:
    return [d for o in observations if (d := policy.observe(o)) is not None]


def test_grant_after_k_matching_live_frames() -> None:
    """An enrolled, live person is granted exactly once, on the K-th matching frame."""
    policy = DecisionPolicy(P)
    decisions = feed(policy, [obs(i) for i in range(10)])
    assert len(decisions) == 1
    d = decisions[0]
    assert d.verdict is Verdict.GRANT
    assert d.user_id == "u_alice"
    assert d.frames == 3
    assert d.latency_s == pytest.approx(2 * DT)


def test_no_grant_before_k_frames() -> None:
    """K-1 matching frames are not enough."""
    policy = DecisionPolicy(P)
    assert feed(policy, [obs(i) for i in range(2)]) == []


def test_undecided_liveness_waits_then_denies_not_live() -> None:
    """A matching face whose liveness never confirms is never granted; it is denied not_live."""
    policy = DecisionPolicy(P)
    early = feed(policy, [obs(i, live=None) for i in range(30)])  # 2 s: still waiting
    assert early == []
    decisions = feed(policy, [obs(i, live=None) for i in range(30, 60)])
    assert [d.verdict for d in decisions] == [Verdict.DENY]
    assert decisions[0].reason == DenyReason.NOT_LIVE


def test_not_live_windows_deny_after_the_liveness_timeout() -> None:
    """A matching face judged not live is never granted and is denied not_live after the timeout."""
    policy = DecisionPolicy(P)
    decisions = feed(policy, [obs(i, live=False) for i in range(60)])  # 4 s at 15 fps
    assert [d.verdict for d in decisions] == [Verdict.DENY]
    assert decisions[0].reason == "not_live"
    assert decisions[0].decided_s - 100.0 >= P.liveness_timeout_s


def test_a_still_moment_does_not_lock_out_a_live_person() -> None:
    """One 'not live' window (the person held still) followed by live frames still grants."""
    policy = DecisionPolicy(P)
    frames = [obs(i, live=False) for i in range(4)] + [obs(i, live=True) for i in range(4, 8)]
    decisions = feed(policy, frames)
    assert [d.verdict for d in decisions] == [Verdict.GRANT]


def test_unknown_person_denied_without_name() -> None:
    """A stranger below the threshold is denied as unknown and never named."""
    policy = DecisionPolicy(P)
    decisions = feed(policy, [obs(i, score=0.3) for i in range(6)])
    assert len(decisions) == 1
    assert decisions[0].verdict is Verdict.DENY
    assert decisions[0].reason == "unknown"
    assert decisions[0].user_id is None


def test_small_margin_is_ambiguous() -> None:
    """Similar to an enrolled person but too close to a second one: denied, not granted."""
    policy = DecisionPolicy(P)
    decisions = feed(policy, [obs(i, margin=0.01) for i in range(6)])
    assert [d.reason for d in decisions] == ["ambiguous"]


def test_low_quality_frames_do_not_count() -> None:
    """Blurry/small/turned faces are not evidence; the denial says low_quality."""
    policy = DecisionPolicy(P)
    decisions = feed(policy, [obs(i, quality=False) for i in range(6)])
    assert [d.reason for d in decisions] == ["low_quality"]


def test_frames_of_different_people_do_not_combine() -> None:
    """K matches split across two identities never open the door."""
    policy = DecisionPolicy(P)
    users = ["u_alice", "u_bob"] * 5
    decisions = feed(policy, [obs(i, user=u) for i, u in enumerate(users)])
    assert decisions
    assert all(d.verdict is Verdict.DENY for d in decisions)
    assert decisions[0].reason == "inconsistent"


def test_old_frames_fall_out_of_the_time_window() -> None:
    """Matches spread over more than window_s do not add up to K."""
    policy = DecisionPolicy(P)
    spaced = [obs(0, t0=0.0), obs(0, t0=3.0), obs(0, t0=6.0)]
    assert all(d.verdict is not Verdict.GRANT for d in feed(policy, spaced))


def test_one_grant_per_track_and_cooldown_across_tracks() -> None:
    """After a grant the same track never unlocks again; another track waits for the cooldown."""
    policy = DecisionPolicy(P)
    first = feed(policy, [obs(i) for i in range(5)])
    assert [d.verdict for d in first] == [Verdict.GRANT]
    assert feed(policy, [obs(i, track=2) for i in range(5, 10)]) == []
    later = feed(policy, [obs(i, track=3, t0=110.0) for i in range(5)])
    assert [d.verdict for d in later] == [Verdict.GRANT]


def test_denials_are_rate_limited_per_track() -> None:
    """A lingering stranger is reported once per deny_repeat_s, not once per frame."""
    policy = DecisionPolicy(P)
    decisions = feed(policy, [obs(i, score=0.1) for i in range(15 * 12)])  # 12 s at 15 fps
    assert len(decisions) == 2


def test_k_greater_than_n_is_refused() -> None:
    """An impossible policy is a configuration error, not a door that never opens silently."""
    with pytest.raises(ValueError, match="k_frames"):
        DecisionPolicy(PolicyParams(0.6, 0.05, k_frames=6, n_frames=5, window_s=2, cooldown_s=1))
