"""Liveness scoring (pure core) with hand-made evidence: no motion, planar motion, life, moire."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_gate.liveness.scoring import ScoringParams, moire_peak, score_window
from edge_gate.liveness.types import FrameEvidence
from edge_gate_dev.liveness.metrics import (
    Presentation,
    apcer_by_species,
    bpcer,
    det_curve,
    threshold_for_bpcer,
)

FPS = 15.0


def _window(n: int, **kw: Any) -> list[FrameEvidence]:
    out = [FrameEvidence(0.0, measured=False)]
    out += [FrameEvidence(i / FPS, measured=True, face_px=120.0, **kw) for i in range(1, n)]
    return out


def test_too_few_frames_is_undecided() -> None:
    """Before early_frames frames the verdict is None (undecided), never live."""
    result = score_window(_textured(3, motion=0.02, nonrigid=0.02), 0.5)
    assert result.live is None
    assert result.reasons == ("too-few-frames",)


def _textured(n: int, *, lively: int | None = None, **kw: Any) -> list[FrameEvidence]:
    """``n`` frames with natural-texture spectra; the first ``lively`` measured frames carry
    ``kw`` (the rest are still), all of them when ``lively`` is None."""
    rng = np.random.default_rng(n)
    out = []
    for i in range(n):
        show = lively is None or 1 <= i <= lively
        motion = kw if show else {"motion": 0.0002, "nonrigid": 0.0003}
        out.append(
            FrameEvidence(i / FPS, i > 0, 120.0, spectrum=_grid_spectrum(rng, None), **motion)
        )
    return out


def test_a_face_that_already_shows_life_is_live_early() -> None:
    """Evidence counts from the first frame: with two lively frames of four and no screen
    pattern the track is live now, not after min_frames."""
    result = score_window(_textured(4, motion=0.02, nonrigid=0.02), 0.5)
    assert result.live is True
    assert "early" in result.reasons


def test_one_lively_frame_is_not_enough_early() -> None:
    """A single lively frame (it may be flow noise) gives no early verdict; the full window
    decides, as it would have before."""
    assert score_window(_textured(6, lively=1, motion=0.02, nonrigid=0.02), 0.5).live is None


def test_no_early_not_live_verdict() -> None:
    """A still or planar face early in the track is undecided (not live only after
    min_frames), so a person who holds still for a moment is not denied on three frames."""
    still = score_window(_textured(6, motion=0.0002, nonrigid=0.0003), 0.5)
    planar = score_window(_textured(6, motion=0.05, nonrigid=0.004), 0.5)
    assert still.live is None
    assert planar.live is None


def test_a_screen_pattern_vetoes_an_early_verdict() -> None:
    rng = np.random.default_rng(3)
    evidence = [
        FrameEvidence(i / FPS, i > 0, 120.0, 0.02, 0.02, spectrum=_grid_spectrum(rng, 2.5))
        for i in range(5)
    ]
    assert score_window(evidence, 0.5).live is None


def test_early_verdicts_can_be_switched_off() -> None:
    params = ScoringParams(early_frames=0)
    assert score_window(_textured(7, motion=0.02, nonrigid=0.02), 0.5, params).live is None


def test_an_early_live_verdict_implies_a_live_full_window() -> None:
    """What an early verdict accepts, the full window over the same frames accepts too (the
    APCER argument: early verdicts make the door faster, not more permissive)."""
    early_lives = 0
    for lively in range(0, 5):
        head = _textured(5, lively=lively, motion=0.02, nonrigid=0.02)
        early = score_window(head, 0.5)
        still = [
            FrameEvidence((5 + i) / FPS, True, 120.0, 0.0002, 0.0003, spectrum=head[1].spectrum)
            for i in range(3)
        ]
        full = score_window(head + still, 0.5)
        if early.live:
            early_lives += 1
            assert full.live is True
    assert early_lives == 3  # two, three and four lively frames of five


def test_perfectly_still_face_is_not_live() -> None:
    """No motion at all (a photo held perfectly steady) is no evidence of life: not live."""
    result = score_window(_window(12, motion=0.0002, nonrigid=0.0003), 0.5)
    assert result.live is False
    assert result.score == 0.0
    assert "no-motion" in result.reasons


def test_rigid_planar_motion_is_not_live() -> None:
    """A face that moves only as one plane (residual small against its motion) is not live."""
    result = score_window(_window(12, motion=0.05, nonrigid=0.004), 0.5)
    assert result.live is False
    assert "planar-motion" in result.reasons


def test_nonrigid_motion_is_live() -> None:
    """Residual motion well above noise and above the rigid part's share is evidence of life."""
    result = score_window(_window(12, motion=0.02, nonrigid=0.02), 0.5)
    assert result.live is True
    assert result.score == pytest.approx(1.0)
    assert "nonrigid-motion" in result.reasons


def test_blink_or_speech_after_rigid_motion_removed_is_live() -> None:
    """An eye or mouth patch changing more than the cheeks (part change) counts as life."""
    result = score_window(_window(12, motion=0.05, nonrigid=0.002, part_change=0.4), 0.5)
    assert result.live is True
    assert "nonrigid-motion" in result.reasons


def test_unreliable_motion_is_not_live() -> None:
    """Too few frames with trustworthy flow (a waved, blurred photo) gives no evidence: not live."""
    evidence = [
        FrameEvidence(i / FPS, i < 3, face_px=120.0, motion=0.02, nonrigid=0.05) for i in range(12)
    ]
    result = score_window(evidence, 0.5)
    assert result.live is False
    assert "unreliable-motion" in result.reasons


def test_small_faces_are_no_evidence() -> None:
    """Faces narrower than min_face_px are too small to judge (tracking noise): not live."""
    evidence = [
        FrameEvidence(i / FPS, i > 0, face_px=40.0, motion=0.02, nonrigid=0.02, part_change=0.5)
        for i in range(12)
    ]
    result = score_window(evidence, 0.5)
    assert result.live is False
    assert "face-too-small" in result.reasons


def _grid_spectrum(rng: np.random.Generator, period_px: float | None) -> np.ndarray:
    n = 64
    img = rng.normal(0, 10, (n, n))
    if period_px is not None:
        x = np.arange(n)
        img += 25 * np.sin(2 * np.pi * x / period_px)[None, :]
    img *= np.outer(np.hanning(n), np.hanning(n))
    return (np.abs(np.fft.fft2(img)) ** 2).astype(np.float32)


def test_moire_peak_separates_a_pixel_grid_from_texture() -> None:
    """A periodic grid (screen) peaks far above the radial level; random texture does not."""
    rng = np.random.default_rng(0)
    grid = moire_peak([_grid_spectrum(rng, 2.5) for _ in range(8)])
    texture = moire_peak([_grid_spectrum(rng, None) for _ in range(8)])
    assert texture < ScoringParams().moire_peak < grid


def test_screen_pattern_vetoes_motion() -> None:
    """Moire on the face cuts a lively score below the threshold."""
    rng = np.random.default_rng(1)
    evidence = [
        FrameEvidence(i / FPS, i > 0, 120.0, 0.02, 0.02, spectrum=_grid_spectrum(rng, 2.5))
        for i in range(12)
    ]
    result = score_window(evidence, 0.5)
    assert result.live is False
    assert "screen-pattern" in result.reasons


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.floats(0, 0.2), st.floats(0, 0.2), st.floats(0, 2)),
        min_size=0,
        max_size=20,
    ),
    st.floats(0, 1),
)
def test_score_is_bounded(frames: list[tuple[bool, float, float, float]], threshold: float) -> None:
    """Any evidence gives a score in [0, 1] and live is consistent with the threshold."""
    evidence = [
        FrameEvidence(i / FPS, m, 120.0, mo, nr, part_change=pc)
        for i, (m, mo, nr, pc) in enumerate(frames)
    ]
    result = score_window(evidence, threshold)
    assert 0.0 <= result.score <= 1.0
    assert result.frames == len(evidence)
    if result.live is not None:
        assert result.live == (result.score >= threshold)


def test_iso_metrics_on_known_presentations() -> None:
    """APCER per species counts accepted attacks, BPCER rejected bona fides; None = rejected."""
    items = [
        Presentation("bona_fide", 0.9),
        Presentation("bona_fide", 0.7),
        Presentation("bona_fide", 0.2),
        Presentation("bona_fide", None),
        Presentation("print", 0.0),
        Presentation("print", 0.6),
        Presentation("replay", 0.1),
        Presentation("replay", None),
    ]
    assert bpcer(items, 0.5) == pytest.approx(0.5)
    assert apcer_by_species(items, 0.5) == {"print": 0.5, "replay": 0.0}
    _, apcers, bpcers = det_curve(items)
    assert bpcers == sorted(bpcers)
    assert apcers == sorted(apcers, reverse=True)
    assert threshold_for_bpcer(items, 0.25) <= 0.7
