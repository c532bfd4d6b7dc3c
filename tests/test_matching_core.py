"""Open-set matching and calibration core, on synthetic unit vectors (pure core, no I/O)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from edge_gate.gallery.calibration import (
    calibrate,
    external_scores,
    leave_one_out,
    required_impostors,
    threshold_for_far,
)
from edge_gate.gallery.matching import (
    NO_SCORE,
    MatchDecision,
    TemplateMatrix,
    decide,
    match,
    top_two,
)

DIM = 16


def _unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    out: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def _basis(i: int, dim: int = DIM) -> NDArray[np.float32]:
    v = np.zeros(dim, np.float32)
    v[i] = 1.0
    return v


def test_best_template_per_identity_wins() -> None:
    """A person's score is the max over their templates; the probe matches the right person."""
    g = TemplateMatrix(
        ["u_a", "u_b"], [np.stack([_basis(0), _basis(1)]), np.stack([_basis(2)])], DIM
    )
    r = match(g, _basis(1), threshold=0.5, margin=0.1)
    assert r.decision is MatchDecision.MATCH
    assert r.user_id == "u_a"
    assert r.score == pytest.approx(1.0)
    assert r.second_score == pytest.approx(0.0)


def test_below_threshold_is_unknown_but_reports_best() -> None:
    """Below the threshold the decision is UNKNOWN, best_user_id still says who was closest."""
    g = TemplateMatrix(["u_a", "u_b"], [_basis(0)[None], _basis(1)[None]], DIM)
    probe = (_basis(0) * 0.5 + _basis(3) * 0.866).astype(np.float32)
    r = match(g, probe, threshold=0.6, margin=0.0)
    assert r.decision is MatchDecision.UNKNOWN
    assert r.user_id is None
    assert r.best_user_id == "u_a"


def test_margin_rejects_a_face_close_to_two_people() -> None:
    """Close to two identities at once (within the margin) → UNKNOWN even above threshold."""
    g = TemplateMatrix(["u_a", "u_b"], [_basis(0)[None], _basis(1)[None]], DIM)
    probe = (_basis(0) + _basis(1) * 0.95).astype(np.float32)
    r = match(g, probe, threshold=0.5, margin=0.05)
    assert r.score >= 0.5
    assert r.margin < 0.05
    assert r.decision is MatchDecision.UNKNOWN


def test_second_best_is_another_identity_not_another_template() -> None:
    """Two templates of the same person do not count as the runner-up."""
    g = TemplateMatrix(["u_a"], [np.stack([_basis(0), _basis(0) * 0.99 + _basis(1) * 0.1])], DIM)
    r = match(g, _basis(0), threshold=0.5, margin=0.5)
    assert r.second_score == NO_SCORE
    assert r.decision is MatchDecision.MATCH


def test_empty_gallery_is_unknown() -> None:
    """An empty gallery never matches."""
    g = TemplateMatrix([], [], DIM)
    r = match(g, _basis(0), threshold=-1.0, margin=0.0)
    assert r.decision is MatchDecision.UNKNOWN
    assert r.best_user_id is None


def test_bad_inputs_refused() -> None:
    """Wrong probe shape, zero vectors and duplicate ids are errors, not silent garbage."""
    g = TemplateMatrix(["u_a"], [_basis(0)[None]], DIM)
    with pytest.raises(ValueError, match="shape"):
        g.identity_scores(np.ones(DIM + 1, np.float32))
    with pytest.raises(ValueError, match="non-zero"):
        g.identity_scores(np.zeros(DIM, np.float32))
    with pytest.raises(ValueError, match="unique"):
        TemplateMatrix(["u_a", "u_a"], [_basis(0)[None], _basis(1)[None]], DIM)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    counts=st.lists(st.integers(1, 4), min_size=1, max_size=12),
    threshold=st.floats(-0.5, 0.9),
    margin=st.floats(0, 0.3),
)
def test_matches_brute_force(seed: int, counts: list[int], threshold: float, margin: float) -> None:
    """For random galleries the result equals a plain-Python whole-gallery scan."""
    rng = np.random.default_rng(seed)
    blocks = [_unit(rng, n) for n in counts]
    ids = [f"u_{i}" for i in range(len(counts))]
    g = TemplateMatrix(ids, blocks, DIM)
    probe = _unit(rng, 1)[0]
    per_id = [max(float(t @ probe) for t in b) for b in blocks]
    order = sorted(range(len(ids)), key=lambda i: -per_id[i])
    best = per_id[order[0]]
    second = per_id[order[1]] if len(ids) > 1 else NO_SCORE
    r = match(g, probe, threshold, margin)
    assert r.score == pytest.approx(best, abs=1e-5)
    assert r.second_score == pytest.approx(second, abs=1e-5)
    expected = best >= threshold and best - second >= margin
    if abs(best - threshold) > 1e-5 and abs(best - second - margin) > 1e-5:
        assert (r.decision is MatchDecision.MATCH) == expected


def test_top_two_ties_are_deterministic() -> None:
    """Equal scores resolve to the lower index first."""
    idx, best, second = top_two(np.array([0.3, 0.7, 0.7], np.float32))
    assert idx == 1
    assert best == pytest.approx(0.7)
    assert second == pytest.approx(0.7)
    assert decide(["a", "b", "c"], np.array([0.3, 0.7, 0.7], np.float32), 0.5, 0.01).user_id is None


def test_threshold_for_far_bounds_the_rate() -> None:
    """The threshold lets through at most target FAR of the impostor scores, and no fewer
    thresholds would."""
    rng = np.random.default_rng(0)
    imp = rng.normal(0.2, 0.1, 10_000).astype(np.float32)
    for far in (0.0, 1e-3, 1e-2, 0.1):
        t = threshold_for_far(imp, far)
        assert np.mean(imp >= t) <= far
        lower = np.nextafter(np.float32(t), np.float32(-np.inf))
        assert np.mean(imp >= lower) > far  # the threshold is the smallest that works
    assert threshold_for_far(imp, 0.0) > imp.max()


def test_calibrate_separated_identities() -> None:
    """Tight identities far apart: a high genuine accept rate at a threshold above impostors."""
    rng = np.random.default_rng(1)
    centres = _unit(rng, 20, 64)
    blocks = []
    for c in centres:
        noisy = c + 0.15 * rng.standard_normal((4, 64)).astype(np.float32) / 8
        blocks.append(noisy / np.linalg.norm(noisy, axis=1, keepdims=True))
    g = TemplateMatrix([f"u_{i}" for i in range(20)], blocks, 64)
    others = _unit(rng, 250, 64)
    cal = calibrate(g, others, target_far=0.01, margin=0.05)
    assert cal.n_impostor == 80 + 250
    assert cal.sufficient
    assert cal.n_required == 300
    assert cal.as_json()["sufficient"] is True
    assert cal.n_genuine == 80
    assert cal.measured_far <= 0.01
    assert cal.threshold > cal.max_impostor - 1e-6 or cal.measured_far > 0
    assert cal.genuine_accept_rate > 0.95


def test_required_impostors_rule_of_three() -> None:
    """ceil(3 / FAR) scores, without float noise (3 / 1e-3 is 3000.0000000000005)."""
    assert required_impostors(1e-3) == 3000
    assert required_impostors(1e-2) == 300
    assert required_impostors(3e-3) == 1000
    assert required_impostors(0.07) == 43
    with pytest.raises(ValueError, match="target FAR"):
        required_impostors(0.0)


def test_calibrate_too_few_impostors_recommends_nothing() -> None:
    """Below ceil(3 / FAR) impostor scores the result is insufficient and its JSON has no
    threshold (nor the rates measured at it)."""
    rng = np.random.default_rng(2)
    g = TemplateMatrix([f"u_{i}" for i in range(5)], [_unit(rng, 4) for _ in range(5)], DIM)
    cal = calibrate(g, _unit(rng, 10), target_far=1e-3, margin=0.05)
    assert cal.n_impostor == 20 + 10
    assert not cal.sufficient
    out = cal.as_json()
    assert out["sufficient"] is False
    assert out["threshold"] is None
    assert out["measured_far"] is None
    assert out["genuine_accept_rate"] is None
    assert out["n_impostor"] == 30
    assert out["n_impostor_required"] == 3000


def test_leave_one_out_excludes_self_and_owner() -> None:
    """Own score comes from the other templates only; 'other' never includes the owner."""
    g = TemplateMatrix(
        ["u_a", "u_b"],
        [np.stack([_basis(0), _basis(0)]), np.stack([_basis(1)])],
        DIM,
    )
    loo = leave_one_out(g)
    assert loo.own[0] == pytest.approx(1.0)
    assert np.isnan(loo.own[2])  # u_b has one template
    assert loo.other_best[0] == pytest.approx(0.0)
    assert loo.other_best[2] == pytest.approx(0.0)
    ext = external_scores(g, np.stack([_basis(1), _basis(5)]))
    assert ext.tolist() == pytest.approx([1.0, 0.0])
