"""Decision policy (pure core): K-of-N, liveness, quality, margin, cooldown, one unlock/track."""

from __future__ import annotations

import pytest

from edge_gate.decision.policy import (
    DecisionPolicy,
    Deny,
    DenyReason,
    Grant,
    Observation,
    Outcome,
    Pending,
    PendingReason,
    PolicyParams,
    relay_reason,
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


def feed(policy: DecisionPolicy, observations: list[Observation]) -> list[Outcome]:
    """The grants and denials among the decisions (one decision per observation)."""
    return [d for o in observations if not isinstance(d := policy.observe(o), Pending)]


def kinds(decisions: list[Outcome]) -> list[str]:
    return ["grant" if isinstance(d, Grant) else f"deny:{d.reason}" for d in decisions]


def test_grant_after_k_matching_live_frames() -> None:
    """An enrolled, live person is granted exactly once, on the K-th matching frame."""
    policy = DecisionPolicy(P)
    decisions = feed(policy, [obs(i) for i in range(10)])
    assert len(decisions) == 1
    d = decisions[0]
    assert isinstance(d, Grant)
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
    assert kinds(decisions) == ["deny:not_live"]


def test_not_live_windows_deny_after_the_liveness_timeout() -> None:
    """A matching face judged not live is never granted and is denied not_live after the timeout."""
    policy = DecisionPolicy(P)
    decisions = feed(policy, [obs(i, live=False) for i in range(60)])  # 4 s at 15 fps
    assert kinds(decisions) == ["deny:not_live"]
    assert decisions[0].decided_s - 100.0 >= P.liveness_timeout_s


def test_a_still_moment_does_not_lock_out_a_live_person() -> None:
    """One 'not live' window (the person held still) followed by live frames still grants."""
    policy = DecisionPolicy(P)
    frames = [obs(i, live=False) for i in range(4)] + [obs(i, live=True) for i in range(4, 8)]
    decisions = feed(policy, frames)
    assert kinds(decisions) == ["grant"]


def test_unknown_person_denied_without_name() -> None:
    """A stranger below the threshold is denied as unknown and never named."""
    policy = DecisionPolicy(P)
    decisions = feed(policy, [obs(i, score=0.3) for i in range(6)])
    assert kinds(decisions) == ["deny:unknown"]
    assert not hasattr(decisions[0], "user_id")  # a denial has no field that could name anyone


def test_small_margin_is_ambiguous() -> None:
    """Similar to an enrolled person but too close to a second one: denied, not granted."""
    policy = DecisionPolicy(P)
    decisions = feed(policy, [obs(i, margin=0.01) for i in range(6)])
    assert kinds(decisions) == ["deny:ambiguous"]


def test_low_quality_frames_do_not_count() -> None:
    """Blurry/small/turned faces are not evidence; the denial says low_quality."""
    policy = DecisionPolicy(P)
    decisions = feed(policy, [obs(i, quality=False) for i in range(6)])
    assert kinds(decisions) == ["deny:low_quality"]


def test_frames_of_different_people_do_not_combine() -> None:
    """K matches split across two identities never open the door."""
    policy = DecisionPolicy(P)
    users = ["u_alice", "u_bob"] * 5
    decisions = feed(policy, [obs(i, user=u) for i, u in enumerate(users)])
    assert decisions
    assert set(kinds(decisions)) == {"deny:inconsistent"}


def test_old_frames_fall_out_of_the_time_window() -> None:
    """Matches spread over more than window_s do not add up to K."""
    policy = DecisionPolicy(P)
    spaced = [obs(0, t0=0.0), obs(0, t0=3.0), obs(0, t0=6.0)]
    assert "grant" not in kinds(feed(policy, spaced))


def test_one_grant_per_track_and_cooldown_across_tracks() -> None:
    """After a grant the same track never unlocks again; another track waits for the cooldown."""
    policy = DecisionPolicy(P)
    first = feed(policy, [obs(i) for i in range(5)])
    assert kinds(first) == ["grant"]
    assert feed(policy, [obs(i, track=2) for i in range(5, 10)]) == []
    later = feed(policy, [obs(i, track=3, t0=110.0) for i in range(5)])
    assert kinds(later) == ["grant"]


def test_denials_are_rate_limited_per_track() -> None:
    """A lingering stranger is reported once per deny_repeat_s, not once per frame."""
    policy = DecisionPolicy(P)
    decisions = feed(policy, [obs(i, score=0.1) for i in range(15 * 12)])  # 12 s at 15 fps
    assert len(decisions) == 2


def test_k_greater_than_n_is_refused() -> None:
    """An impossible policy is a configuration error, not a door that never opens silently."""
    with pytest.raises(ValueError, match="k_frames"):
        DecisionPolicy(PolicyParams(0.6, 0.05, k_frames=6, n_frames=5, window_s=2, cooldown_s=1))


# -- one test per denial reason, from the frames that lead to it -------------------------------


def test_a_live_face_matching_in_two_of_five_frames_is_unknown_not_not_live() -> None:
    """The reported bug: a live person recognised in only 2 of 5 frames was denied not_live,
    and the daemon published a liveness.failed security event for a real person. The identity
    never settled, so the reason is unknown; liveness said live all along."""
    policy = DecisionPolicy(P)
    scores = [0.8, 0.3, 0.8, 0.3, 0.3]  # matches in frames 0 and 2 only (K = 3)
    decisions = feed(policy, [obs(i, score=s, live=True) for i, s in enumerate(scores)])
    assert kinds(decisions) == ["deny:unknown"]


def test_a_print_matching_in_two_of_five_frames_is_unknown_too() -> None:
    """Identity is judged before liveness: fewer than K matches is unknown whatever liveness
    says; not_live is for a settled identity that never showed a live verdict."""
    policy = DecisionPolicy(P)
    scores = [0.8, 0.3, 0.8, 0.3, 0.3]
    decisions = feed(policy, [obs(i, score=s, live=False) for i, s in enumerate(scores)])
    assert kinds(decisions) == ["deny:unknown"]


def test_a_gallery_that_names_nobody_is_unknown() -> None:
    """An empty gallery gives no user at all: unknown, never an exception or a grant."""
    policy = DecisionPolicy(P)
    decisions = feed(policy, [obs(i, user=None, score=-1.0, margin=-1.0) for i in range(5)])
    assert kinds(decisions) == ["deny:unknown"]


def test_low_quality_wins_over_unknown_when_too_few_frames_were_usable() -> None:
    """Two usable frames of five (K = 3): the door could not have decided; say low_quality."""
    policy = DecisionPolicy(P)
    frames = [obs(i, quality=i < 2, score=0.3) for i in range(5)]
    assert kinds(feed(policy, frames)) == ["deny:low_quality"]


def test_inconsistent_comes_first_when_two_people_matched() -> None:
    """Three frames of alice and two of bob: never a grant for alice, denied inconsistent."""
    policy = DecisionPolicy(P)
    users = ["u_alice", "u_bob", "u_alice", "u_bob", "u_alice"]
    assert kinds(feed(policy, [obs(i, user=u) for i, u in enumerate(users)])) == [
        "deny:inconsistent"
    ]


def test_every_wait_says_why() -> None:
    """Pending carries its reason: settling, liveness, cooldown, granted, repeat."""
    policy = DecisionPolicy(P)
    first = policy.observe(obs(0))
    assert first == Pending(1, PendingReason.SETTLING)
    waits = [policy.observe(obs(i, live=None)) for i in range(1, 4)]
    assert waits[-1] == Pending(1, PendingReason.LIVENESS)
    assert isinstance(policy.observe(obs(4)), Grant)
    assert policy.observe(obs(5)) == Pending(1, PendingReason.GRANTED)
    assert policy.observe(obs(6, track=2)) == Pending(2, PendingReason.SETTLING)
    for i in range(7, 9):
        policy.observe(obs(i, track=2))
    assert policy.observe(obs(9, track=2)) == Pending(2, PendingReason.COOLDOWN)
    stranger = [policy.observe(obs(i, track=3, score=0.1)) for i in range(10, 17)]
    assert isinstance(stranger[4], Deny)
    assert stranger[5] == Pending(3, PendingReason.REPEAT)


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        ("relay_unavailable", DenyReason.RELAY_UNAVAILABLE),
        ("timeout", DenyReason.RELAY_UNAVAILABLE),
        ("stopping", DenyReason.RELAY_UNAVAILABLE),
        ("stale", DenyReason.RELAY_STALE),
        ("counter_error", DenyReason.RELAY_COUNTER_ERROR),
        ("unconfirmed", DenyReason.RELAY_UNCONFIRMED),
        ("nack:expired", DenyReason.RELAY_REFUSED),
        ("bad_mac", DenyReason.RELAY_REFUSED),
        ("bad_challenge", DenyReason.RELAY_REFUSED),
        ("internal_error", DenyReason.RELAY_REFUSED),
    ],
)
def test_every_relay_failure_maps_to_a_reason_of_the_enum(outcome: str, reason: DenyReason) -> None:
    """The daemon no longer invents reasons (relay_<x>): each relay outcome has an enum member."""
    assert relay_reason(outcome) is reason


def test_outcomes_are_a_closed_set() -> None:
    """Grant, Deny and Pending are frozen values; a denial cannot carry an unenumerated reason."""
    policy = DecisionPolicy(P)
    d = feed(policy, [obs(i, score=0.1) for i in range(5)])[0]
    assert isinstance(d, Deny)
    assert isinstance(d.reason, DenyReason)
    with pytest.raises(AttributeError):
        d.reason = DenyReason.ERROR  # type: ignore[misc]
