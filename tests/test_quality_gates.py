"""Quality gates on real photos (dlib johns) made bad in a controlled way.

Each gate code is provoked by one defect on a photo that passes the enrollment gates as it is.
The padding case is the review bug: a face at the frame border aligns to a crop with black
padding whose step edge used to dominate the sharpness (a sigma=4 blurred face scored 395-645 on
these frames, above every gate; measured on the frame pixels alone it scores 5-7).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_gate.config.gallery import GalleryConfig
from edge_gate.config.vision import VisionConfig
from edge_gate.gallery.gates import DOOR_LIMITS, check_face
from edge_gate.gallery.images import limits_from_config
from edge_gate.vision import align, imgops, quality
from edge_gate.vision.image_io import load_image
from edge_gate.vision.pipeline import FacePipeline
from edge_gate.vision.types import Box, Face

U8 = npt.NDArray[np.uint8]
ENROLL_LIMITS = limits_from_config(GalleryConfig())

SALLEY = "John_Salley/000179_02159509.jpg"
SALLEY_2 = "John_Salley/000198_02159470.jpg"
SHIMKUS = "John_Shimkus/000394_02340150.jpg"


@pytest.fixture(scope="module")
def pipe() -> FacePipeline:
    """Default models; min face 20 px so that a downscaled face is still found (and gated)."""
    return FacePipeline.from_config(VisionConfig(min_face_px=20))


def _photo(testdata: Path, name: str) -> U8:
    return load_image(testdata / "johns" / name)


def _main_face(pipe: FacePipeline, image: U8) -> Face:
    faces = pipe.analyze(np.ascontiguousarray(image), embed=False)
    assert faces, "no face found"
    return faces[0]


def _blur(image: U8, sigma: float = 4.0) -> U8:
    return np.asarray(cv2.GaussianBlur(image, (0, 0), sigma), dtype=np.uint8)


def _downscale(image: U8) -> U8:
    h, w = image.shape[:2]
    return np.asarray(cv2.resize(image, (w // 3, h // 3), interpolation=cv2.INTER_AREA))


def _gamma(image: U8, g: float) -> U8:
    lut = np.round(255.0 * (np.arange(256) / 255.0) ** g).astype(np.uint8)
    return lut[image]


def _overexpose(image: U8) -> U8:
    return np.asarray(np.clip(image.astype(np.float32) * 1.3 + 100.0, 0, 255), dtype=np.uint8)


def _rotate(image: U8, degrees: float = 35.0) -> U8:
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    out = cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT_101)
    return np.asarray(out, dtype=np.uint8)


def _cut_left(image: U8, fraction: float = 0.25) -> U8:
    """The picture's left edge moved into the face: ``fraction`` of the face box is gone."""
    x1, width = 19, 117  # Shimkus's face box in the whole photo: x 19-136
    return np.ascontiguousarray(image[:, x1 + int(fraction * width) :])


# measured on these photos: face 37 px < 56; sharpness 10 < 40; brightness 19 < 40;
# brightness 229 > 220 (sharpness still 546); roll -34° beyond ±20°; a quarter of the face cut
# off: in_frame 0.74 < 0.8 (whole photo 0.99)
DEFECTS: list[tuple[str, str, Callable[[U8], U8]]] = [
    ("cut_off", SHIMKUS, _cut_left),
    ("too_small", SALLEY_2, _downscale),
    ("blurry", SALLEY, _blur),
    ("too_dark", SALLEY_2, lambda im: _gamma(im, 4.0)),
    ("too_bright", SHIMKUS, _overexpose),
    ("pose", SALLEY, _rotate),
]


@pytest.mark.parametrize(("code", "photo", "defect"), DEFECTS, ids=[d[0] for d in DEFECTS])
def test_each_enrollment_gate_rejects_its_defect(
    pipe: FacePipeline, testdata: Path, code: str, photo: str, defect: Callable[[U8], U8]
) -> None:
    """The photo passes as it is; with one defect it fails with exactly that gate's code."""
    image = _photo(testdata, photo)
    assert check_face(_main_face(pipe, image), ENROLL_LIMITS).ok
    result = check_face(_main_face(pipe, defect(image)), ENROLL_LIMITS)
    assert result.code == code, result.message


CUT_PX = 30
EDGES: dict[str, Callable[[U8], U8]] = {
    "left": lambda im: im[:, CUT_PX:],
    "right": lambda im: im[:, :-CUT_PX],
    "top": lambda im: im[CUT_PX:],
    "bottom": lambda im: im[:-CUT_PX],
}


@pytest.mark.parametrize("edge", sorted(EDGES))
def test_face_at_frame_border_blurred_is_rejected_as_blurry(
    pipe: FacePipeline, testdata: Path, edge: str
) -> None:
    """Face cut by one frame edge: the aligned crop is ~40 % padding. Sharp → accepted (door and
    enrollment); Gaussian sigma=4 → 'blurry' at both, and brightness is not darkened by the
    padding (the left/top edges use the exact geometry, right/bottom the inferred frame edge)."""
    frame = np.ascontiguousarray(EDGES[edge](_photo(testdata, SHIMKUS)))
    sharp = _main_face(pipe, frame)
    assert check_face(sharp, ENROLL_LIMITS).ok
    assert check_face(sharp, DOOR_LIMITS).ok

    blurred_frame = _blur(frame)
    blurred = _main_face(pipe, blurred_frame)
    crop = quality.grey(pipe.align(blurred_frame, blurred.detection))
    white = pipe.align(np.full_like(frame, 255), blurred.detection)
    padding = float((white < 255).any(axis=2).mean())
    assert padding > 0.25  # the case under test: much of the crop is black padding
    assert quality.laplacian_variance(crop) > 100  # what the whole crop used to score
    for limits in (ENROLL_LIMITS, DOOR_LIMITS):
        result = check_face(blurred, limits)
        assert result.code == "blurry", result.message
    # measured: 114-133 at the four edges vs 129 for the whole photo; the whole crop read 67-89
    whole = _main_face(pipe, _photo(testdata, SHIMKUS)).quality.brightness
    assert abs(sharp.quality.brightness - whole) < 20
    sharp_crop = quality.grey(pipe.align(frame, sharp.detection))
    assert sharp.quality.brightness > float(sharp_crop.mean()) + 25


def _synthetic_face(
    frame: U8, cx: float, cy: float, angle_deg: float, crop_per_frame_px: float
) -> tuple[npt.NDArray[np.float32], U8, U8]:
    """Landmarks of a template face centred at ``(cx, cy)``; its aligned crop and validity truth.

    The truth is the same warp of an all-white frame: 255 exactly where every bilinear tap was
    inside the frame.
    """
    a = np.radians(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) / crop_per_frame_px
    tpl = align.ARCFACE_TEMPLATE_112 - 56.0
    landmarks = (tpl @ rot.T + [cx, cy]).astype(np.float32)
    matrix = align.similarity_to_template(landmarks, 112)
    crop = imgops.warp_affine(frame, matrix, 112)
    white = imgops.warp_affine(np.full_like(frame, 255), matrix, 112)
    return landmarks, crop, white


@settings(max_examples=80, deadline=None)
@given(
    cx=st.floats(0, 160),
    cy=st.floats(0, 120),
    angle=st.floats(-40, 40),
    zoom=st.floats(0.4, 3.0),
    seed=st.integers(0, 2**16),
)
def test_frame_mask_never_counts_padding(
    cx: float, cy: float, angle: float, zoom: float, seed: int
) -> None:
    """Wherever the face sits (even half outside the frame), no pixel of the mask took a
    bilinear tap from the black border; a crop wholly inside the frame keeps all its pixels, so
    the measure keeps its old scale there."""
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    landmarks, crop, white = _synthetic_face(frame, cx, cy, angle, zoom)
    g = quality.grey(crop)
    truth = (white == 255).all(axis=2)
    exact = quality.frame_mask(landmarks, g, (120, 160))
    assert not (exact & ~truth).any()
    # the mask keeps EDGE_MARGIN_PX (0.5 px) clear of the frame edge: a crop whose every tap is
    # at least 1 px inside the frame must be kept whole (a crop grazing the edge may lose a rim)
    inner = np.zeros_like(frame)
    inner[1:-1, 1:-1] = 255
    matrix = align.similarity_to_template(landmarks, 112)
    if (imgops.warp_affine(inner, matrix, 112) == 255).all():
        assert truth.all()
        assert exact.all()
        q = quality.measure(Box(0, 0, 1, 1), landmarks, crop, (120, 160))
        assert q.sharpness == pytest.approx(quality.laplacian_variance(g))


def test_padding_neither_sharpens_nor_darkens_a_flat_face() -> None:
    """A flat grey frame, face across the bottom-right corner: half the crop is padding, yet
    sharpness is 0 and brightness the frame's grey (the whole crop read 95 and < 60)."""
    frame = np.full((120, 160, 3), 90, dtype=np.uint8)
    landmarks, crop, white = _synthetic_face(frame, 150, 110, 10, 1.0)
    assert (white < 255).any(axis=2).mean() > 0.4
    whole = quality.grey(crop)
    assert quality.laplacian_variance(whole) > 40  # the old reading: above the enrollment gate
    assert whole.mean() < 60
    q = quality.measure(Box(0, 0, 100, 100), landmarks, crop, (120, 160))
    assert q.sharpness == pytest.approx(0, abs=1e-6)
    assert q.brightness == pytest.approx(90, abs=0.01)
    assert q.contrast == pytest.approx(0, abs=1e-3)


def test_face_wholly_outside_the_frame_measures_zero() -> None:
    """No crop pixel from the frame: sharpness, brightness and contrast are 0, not NaN."""
    frame = np.full((120, 160, 3), 90, dtype=np.uint8)
    landmarks, crop, _ = _synthetic_face(frame, 500, 500, 0, 1.0)
    q = quality.measure(Box(0, 0, 100, 100), landmarks, crop, (120, 160))
    assert (q.sharpness, q.brightness, q.contrast) == (0.0, 0.0, 0.0)


def test_door_waits_for_a_face_that_is_half_out_of_the_picture(
    pipe: FacePipeline, testdata: Path
) -> None:
    """At the door a face with a quarter cut off still counts (the K-of-N policy sees it walk
    in); with 40 % cut off an eye lies outside the picture and the frame is not used."""
    image = _photo(testdata, SHIMKUS)
    quarter = _main_face(pipe, _cut_left(image, 0.25))
    assert check_face(quarter, DOOR_LIMITS).ok
    half = _main_face(pipe, _cut_left(image, 0.4))
    assert half.quality.in_frame == 0.0  # a landmark outside the picture
    result = check_face(half, DOOR_LIMITS)
    assert result.code == "cut_off", result.message
