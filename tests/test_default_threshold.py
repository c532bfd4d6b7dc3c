"""The shipped default: the fused embedder set and its held-out calibrated threshold.

A ``gallery.threshold`` left out of the config is the calibrated value of the embedder set in
use (:mod:`edge_gate.config.thresholds`); a set without a calibration must name one, so no
door runs on a number measured for another model.
"""

from __future__ import annotations

import pytest

from edge_gate.config import EdgeGateConfig, GalleryConfig, VisionConfig, validate_config_text
from edge_gate.config.thresholds import CALIBRATED_THRESHOLDS, calibrated_threshold
from edge_gate.errors import GalleryError
from edge_gate.gallery.loaded import require_same_embedders


def test_default_config_is_mobilefacenet_at_its_calibrated_threshold() -> None:
    cfg = EdgeGateConfig()
    assert cfg.vision.embedder_set == ("mobilefacenet",)
    assert cfg.gallery.threshold == 0.647
    assert GalleryConfig().threshold == cfg.gallery.threshold  # the section alone agrees


@pytest.mark.parametrize(
    ("vision", "threshold"),
    [
        ({"embedder": "mobilefacenet"}, 0.647),
        ({"embedder": "mobilefacenet-fp32"}, 0.647),  # the calibrated variant by its id
        ({"embedders": ["dlib-resnet"]}, 0.951),
        ({"embedder": "facenet"}, 0.585),
        ({"embedders": ["dlib-resnet", "mobilefacenet"]}, 0.789),  # order does not matter
        ({"embedders": ["mobilefacenet", "dlib-resnet"], "embedder_weights": [2, 2]}, 0.789),
        ({"embedders": ["mobilefacenet", "dlib-resnet", "facenet"]}, 0.716),
    ],
)
def test_threshold_follows_the_embedder_set(vision: dict[str, object], threshold: float) -> None:
    assert EdgeGateConfig.model_validate({"vision": vision}).gallery.threshold == threshold
    # the same through a TOML file, and a Python-built section
    text = "[vision]\n" + "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in vision.items())
    cfg, errors = validate_config_text(text)
    assert errors == [], errors
    assert cfg is not None
    assert cfg.gallery.threshold == threshold
    built = EdgeGateConfig(vision=VisionConfig.model_validate(vision), gallery=GalleryConfig())
    assert built.gallery.threshold == threshold


def test_an_explicit_threshold_is_kept() -> None:
    cfg, errors = validate_config_text(
        '[vision]\nembedder = "mobilefacenet"\n[gallery]\nthreshold = 0.7\n'
    )
    assert errors == []
    assert cfg is not None
    assert cfg.gallery.threshold == 0.7
    explicit = EdgeGateConfig(gallery=GalleryConfig(threshold=0.9))
    assert explicit.gallery.threshold == 0.9


@pytest.mark.parametrize(
    "vision",
    [
        'embedder = "mobilefacenet-fp16"',  # not the calibrated variant
        'embedders = ["mobilefacenet", "dlib-resnet"]\nembedder_weights = [3, 1]',
    ],
)
def test_an_uncalibrated_set_must_name_its_threshold(vision: str) -> None:
    cfg, errors = validate_config_text(f"[vision]\n{vision}\n")
    assert cfg is None
    assert len(errors) == 1
    assert "gallery.threshold" in errors[0]
    assert "edge-gate calibrate" in errors[0]
    cfg, errors = validate_config_text(f"[vision]\n{vision}\n[gallery]\nthreshold = 0.7\n")
    assert errors == []


def test_table_is_keyed_by_sorted_families() -> None:
    for key, value in CALIBRATED_THRESHOLDS.items():
        assert list(key) == sorted(key)
        assert 0 < value < 1
        assert calibrated_threshold(list(reversed(key))) == value
    assert calibrated_threshold(["mobilefacenet", "mobilefacenet"]) is None
    assert calibrated_threshold(["unknown-model"]) is None


def test_a_set_mismatch_says_how_to_keep_the_old_gallery() -> None:
    """A mobilefacenet gallery under a fused config: a clear way back."""
    with pytest.raises(GalleryError) as err:
        require_same_embedders("mobilefacenet-fp32", "mobilefacenet-fp32+dlib-resnet-fp16")
    msg = str(err.value)
    assert "vision.embedders = ['mobilefacenet-fp32']" in msg
    assert "gallery.threshold = 0.647" in msg
    assert "re-enroll" in msg
