"""LivenessEstimator on real MTCNN detections: still and waved prints denied, timely verdicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_gate.config import EdgeGateConfig
from edge_gate.config.liveness import LivenessConfig
from edge_gate.liveness.estimator import LivenessEstimator
from edge_gate.vision.pipeline import FacePipeline
from edge_gate.vision.types import Box, Detection
from edge_gate_dev.liveness.attacks import Material, bona_fide, print_attack
from edge_gate_dev.liveness.evaluate import run_frames

TEST_SEED = 20261126  # tuning used other seeds
N_FRAMES = 20


@pytest.fixture(scope="module")
def material(testdata: Path) -> Material:
    return Material.from_cache(testdata)


@pytest.fixture(scope="module")
def pipe() -> FacePipeline:
    return FacePipeline.from_config(EdgeGateConfig().vision)


@pytest.mark.parametrize("index", [0, 4, 8])
def test_photo_held_perfectly_steady_is_denied(
    material: Material, pipe: FacePipeline, index: int
) -> None:
    """A print that does not move at all is never live: no motion is no evidence of life."""
    clip = print_attack(material, index, TEST_SEED, N_FRAMES)
    assert clip.variant == "still"
    out = run_frames(clip.frames, clip.fps, pipe.detect, LivenessConfig())
    assert out.result.live is not True
    assert out.score is None or out.score < LivenessConfig().threshold


@pytest.mark.parametrize("index", [3, 7, 11])
def test_waved_photo_is_denied(material: Material, pipe: FacePipeline, index: int) -> None:
    """A print waved around (planar motion with motion blur) is never live."""
    clip = print_attack(material, index, TEST_SEED, N_FRAMES)
    assert clip.variant == "waved"
    out = run_frames(clip.frames, clip.fps, pipe.detect, LivenessConfig())
    assert out.result.live is not True


def test_verdict_within_one_second_of_a_face_appearing(
    material: Material, pipe: FacePipeline
) -> None:
    """At 15 fps a real face gets a verdict (live or not, never still undecided) within 1 s."""
    clip = bona_fide(material, 1, TEST_SEED, N_FRAMES)
    out = run_frames(clip.frames, clip.fps, pipe.detect, LivenessConfig())
    assert out.first_verdict_s is not None
    assert out.first_verdict_s <= 1.0


def _det(x: float) -> Detection:
    lm = np.array(
        [[x + 30, 140], [x + 70, 140], [x + 50, 160], [x + 35, 180], [x + 65, 180]], np.float32
    )
    return Detection(Box(x, 100, x + 100, 220), 0.99, lm)


def test_estimator_state_is_bounded_and_forgettable() -> None:
    """The window keeps at most window_frames; forget() and idle tracks drop state."""
    est = LivenessEstimator(window_frames=5, window_s=10.0)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    for i in range(9):
        est.update(7, frame, _det(100 + i), i / 15)
    result = est.verdict(7)
    assert result.frames == 5
    assert result.live is not True  # random texture shifting rigidly: no life
    est.forget(7)
    assert est.verdict(7).reasons == ("unknown-track",)
    est.update(1, frame, _det(100), 0.0)
    est.update(2, frame, _det(300), 5.0)  # track 1 idle for 5 s: dropped
    assert est.verdict(1).live is None
    assert est.verdict(1).frames == 0
