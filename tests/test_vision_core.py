"""Pure vision core with fakes: box maths, the cascade's plumbing, alignment, quality, metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_gate.vision import align, mtcnn, quality
from edge_gate.vision.types import Box, Detection
from edge_gate_dev.vision import metrics

F32 = np.float32


def test_nms_keeps_best_of_overlapping_boxes() -> None:
    """Two heavily overlapping boxes collapse to the higher score; a distant box survives."""
    boxes = np.array([[0, 0, 10, 10, 0.9], [1, 1, 11, 11, 0.95], [50, 50, 60, 60, 0.5]], dtype=F32)
    keep = mtcnn.nms(boxes, 0.5, "union")
    assert sorted(keep.tolist()) == [1, 2]
    assert mtcnn.nms(np.empty((0, 5), dtype=F32), 0.5).size == 0


def test_nms_min_suppresses_nested_box() -> None:
    """'min' overlap suppresses a small box inside a big one that 'union' keeps."""
    boxes = np.array([[0, 0, 99, 99, 0.9], [10, 10, 29, 29, 0.8]], dtype=F32)
    assert len(mtcnn.nms(boxes, 0.7, "union")) == 2
    assert mtcnn.nms(boxes, 0.7, "min").tolist() == [0]


def test_rerec_and_bbreg() -> None:
    """rerec squares a box around its centre; bbreg moves edges by fractions of the size."""
    sq = mtcnn.rerec(np.array([[10, 20, 30, 60, 1.0]], dtype=F32))
    assert sq[0, 2] - sq[0, 0] == pytest.approx(40)
    assert sq[0, 3] - sq[0, 1] == pytest.approx(40)
    assert (sq[0, 0] + sq[0, 2]) / 2 == pytest.approx(20)
    moved = mtcnn.bbreg(
        np.array([[0, 0, 9, 9, 1.0]], dtype=F32), np.array([[0.1, 0.2, -0.1, 0.0]], dtype=F32)
    )
    assert moved[0, :4].tolist() == pytest.approx([1.0, 2.0, 8.0, 9.0])


def test_pyramid_scales_cover_min_face_to_frame() -> None:
    """First scale maps min_face_px to 12 px; the last level is still ≥ 12 px."""
    scales = mtcnn.pyramid_scales(480, 640, 60, 0.709)
    assert scales[0] == pytest.approx(12 / 60)
    assert 480 * scales[-1] >= 12
    assert 480 * scales[-1] * 0.709 < 12
    with pytest.raises(ValueError, match="min_face_px"):
        mtcnn.pyramid_scales(480, 640, 8, 0.709)


def test_crop_padded_zero_fills_outside() -> None:
    """A box hanging over the frame edge is zero-padded, the inside copied."""
    image = np.full((10, 10, 3), 7, dtype=np.uint8)
    crop = mtcnn.crop_padded(image, np.array([-2, -2, 3, 3]))
    assert crop.shape == (6, 6, 3)
    assert crop[:2].max() == 0
    assert crop[2:, 2:].min() == 7


def _nearest(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    ys = (np.arange(h) * image.shape[0] / h).astype(int)
    xs = (np.arange(w) * image.shape[1] / w).astype(int)
    out: np.ndarray = image[ys][:, xs]
    return out


def test_cascade_with_fake_nets_finds_the_bright_square() -> None:
    """Fake nets that fire on bright pixels locate a bright square and place landmarks in it."""
    image = np.zeros((120, 160, 3), dtype=np.uint8)
    image[30:90, 50:110] = 255

    def pnet(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = batch[0, :, :, 0]
        h, w = math.ceil((x.shape[0] - 2) / 2) - 4, math.ceil((x.shape[1] - 2) / 2) - 4
        prob = np.zeros((h, w), dtype=F32)
        for r in range(h):
            for c in range(w):
                prob[r, c] = float((x[2 * r : 2 * r + 12, 2 * c : 2 * c + 12] > 0.9).mean())
        return prob, np.zeros((h, w, 4), dtype=F32)

    def rnet(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        prob = (batch[..., 0] > 0.9).mean(axis=(1, 2)).astype(F32)
        return prob, np.zeros((len(batch), 4), dtype=F32)

    def onet(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = len(batch)
        prob = (batch[..., 0] > 0.9).mean(axis=(1, 2)).astype(F32)
        pts = np.tile(
            np.array([0.3, 0.7, 0.5, 0.35, 0.65, 0.35, 0.35, 0.55, 0.75, 0.75], dtype=F32), (n, 1)
        )
        return prob, np.zeros((n, 4), dtype=F32), pts

    params = mtcnn.CascadeParams(min_face_px=40, thresholds=(0.95, 0.95, 0.95))
    dets = mtcnn.detect_faces(image, pnet, rnet, onet, _nearest, params)
    assert len(dets) >= 1
    best = dets[0]
    assert best.box.x1 >= 40
    assert best.box.x2 <= 120
    assert best.box.y1 >= 20
    assert best.box.y2 <= 100
    assert best.landmarks[0, 0] < best.landmarks[1, 0]
    assert best.landmarks[:2, 1].max() < best.landmarks[3:, 1].min()


def test_cascade_on_blank_and_tiny_frames_returns_nothing() -> None:
    """No candidate → empty list; frames smaller than a P-Net cell → empty list."""

    def pnet(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = math.ceil((batch.shape[1] - 2) / 2) - 4, math.ceil((batch.shape[2] - 2) / 2) - 4
        return np.zeros((h, w), dtype=F32), np.zeros((h, w, 4), dtype=F32)

    def never(batch: np.ndarray) -> tuple[np.ndarray, ...]:
        raise AssertionError("later stages must not run without candidates")

    blank = np.zeros((100, 100, 3), dtype=np.uint8)
    assert mtcnn.detect_faces(blank, pnet, never, never, _nearest) == []  # type: ignore[arg-type]
    assert mtcnn.detect_faces(np.zeros((8, 8, 3), np.uint8), pnet, never, never, _nearest) == []  # type: ignore[arg-type]


@settings(max_examples=50, deadline=None)
@given(
    st.floats(-math.pi, math.pi),
    st.floats(0.3, 4.0),
    st.floats(-200, 200),
    st.floats(-200, 200),
)
def test_umeyama_recovers_a_similarity(angle: float, scale: float, tx: float, ty: float) -> None:
    """Landmarks moved by a known similarity are mapped back onto the template exactly."""
    rot = scale * np.array(
        [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    )
    src = align.ARCFACE_TEMPLATE_112 @ rot.T + np.array([tx, ty])
    matrix = align.similarity_to_template(src.astype(F32), 112)
    back = align.apply_affine(matrix, src)
    assert np.abs(back - align.ARCFACE_TEMPLATE_112).max() < 1e-2


def test_margin_crop_box_clips_to_frame() -> None:
    """FaceNet crop grows the box by margin/2 per side and stays inside the frame."""
    assert align.margin_crop_box(Box(10, 10, 50, 60), 32, 640, 480) == (0, 0, 66, 76)
    assert align.margin_crop_box(Box(600, 400, 639, 479), 32, 640, 480) == (584, 384, 640, 480)


def test_pose_of_template_is_frontal_and_roll_follows_rotation() -> None:
    """Template landmarks give ~0 yaw/pitch/roll; rotating by 20° gives roll ≈ 20°."""
    pts = align.ARCFACE_TEMPLATE_112.astype(F32)
    yaw, pitch, roll = quality.pose_from_landmarks(pts)
    assert abs(yaw) < 3
    assert abs(pitch) < 7  # MTCNN nose sits lower than the template nose
    assert abs(roll) < 1
    a = math.radians(20)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    _, _, roll20 = quality.pose_from_landmarks((pts @ rot.T).astype(F32))
    assert roll20 == pytest.approx(20, abs=0.5)
    turned = pts.copy()
    turned[2, 0] += 12  # nose moves towards image-right: head turned
    assert quality.pose_from_landmarks(turned)[0] > 20


def test_sharpness_drops_with_blur_and_brightness_is_mean() -> None:
    """Variance of Laplacian is high for texture, ~0 for flat; brightness is the grey mean."""
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)
    flat = np.full((112, 112, 3), 100, dtype=np.uint8)
    assert quality.laplacian_variance(quality.grey(sharp)) > 1000
    assert quality.laplacian_variance(quality.grey(flat)) == pytest.approx(0)
    q = quality.measure(
        Box(0, 0, 80, 100), align.ARCFACE_TEMPLATE_112.astype(F32), flat, (112, 112)
    )
    assert q.brightness == pytest.approx(100, abs=0.5)
    assert q.face_px == 80
    assert q.contrast == pytest.approx(0, abs=1e-3)


def test_laplacian_variance_ignores_pixels_next_to_invalid_ones() -> None:
    """With a validity mask, a step edge into the invalid part does not count; no valid
    neighbourhood at all gives 0."""
    rng = np.random.default_rng(1)
    img = np.zeros((40, 40), dtype=np.float32)
    img[:, 20:] = rng.normal(120, 2, (40, 20))  # faint texture next to a black band
    valid = np.zeros((40, 40), dtype=bool)
    valid[:, 20:] = True
    assert quality.laplacian_variance(img) > 500  # the step edge dominates
    alone = quality.laplacian_variance(img[:, 20:])
    assert quality.laplacian_variance(img, valid) == pytest.approx(alone, rel=1e-5)
    assert quality.laplacian_variance(img, np.zeros_like(valid)) == 0.0


def test_detection_rejects_bad_landmark_shape() -> None:
    """Detection insists on (5, 2) landmarks."""
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        Detection(Box(0, 0, 1, 1), 1.0, np.zeros((10,), dtype=F32))


def test_verification_metrics_on_known_scores() -> None:
    """Perfectly separated scores give AUC 1 and TAR 1; identical ones give AUC 0.5."""
    gen = np.array([0.9, 0.8, 0.85])
    imp = np.linspace(0.0, 0.5, 2000)
    v = metrics.verification(gen, imp)
    assert v.auc == 1.0
    assert v.tar_at_far_1e3 == 1.0
    assert v.eer == 0.0
    same = np.full(10, 0.5)
    assert metrics.auc(same, same) == pytest.approx(0.5)
    labels = ["a", "a", "b"]
    emb = np.eye(3, dtype=F32)
    g, i = metrics.pair_scores(labels, emb)
    assert g.size == 1
    assert i.size == 2
