"""Embedder families (one module each), the embedder-set config and fused embeddings.

The fusion check runs the two shipped embedders on real johns faces: the fused embedding has unit
length and the dot product of two fused embeddings is the mean of the per-model cosines computed
by two single-model pipelines (to float32 precision).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from edge_gate.config.vision import VisionConfig
from edge_gate.errors import ModelRuntimeError
from edge_gate.vision import fusion
from edge_gate.vision.embedders.registry import families, family
from edge_gate.vision.image_io import load_image
from edge_gate.vision.pipeline import FacePipeline
from edge_gate_dev.vision.evaluate import list_dataset


def test_registry_finds_one_module_per_family() -> None:
    found = families()
    assert {"facenet", "mobilefacenet"} <= set(found)
    assert found["mobilefacenet"].arcface_aligned
    assert not found["facenet"].arcface_aligned
    with pytest.raises(ModelRuntimeError, match="not an embedder family"):
        family("mtcnn-pnet")


def test_embedder_set_config() -> None:
    assert VisionConfig().embedder_set == ("mobilefacenet",)
    assert VisionConfig(embedder="mobilefacenet").embedder_set == ("mobilefacenet",)
    assert VisionConfig(embedder="facenet").embedder_set == ("facenet",)
    both = VisionConfig(embedders=["mobilefacenet", "facenet"], embedder_weights=[2, 1])
    assert both.embedder_set == ("mobilefacenet", "facenet")
    assert VisionConfig(embedder="facenet", embedders=["facenet"]).embedder_set == ("facenet",)
    with pytest.raises(ValidationError, match="disagree"):
        VisionConfig(embedder="facenet", embedders=["mobilefacenet", "facenet"])
    with pytest.raises(ValidationError, match="twice"):
        VisionConfig(embedders=["facenet", "facenet"])
    with pytest.raises(ValidationError, match="2 embedder"):
        VisionConfig(embedders=["mobilefacenet", "facenet"], embedder_weights=[1.0])
    with pytest.raises(ValidationError, match="> 0"):
        VisionConfig(embedders=["mobilefacenet", "facenet"], embedder_weights=[1.0, 0.0])


def test_fusion_maths() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal((3, 6)).astype(np.float32)
    ua = a / np.linalg.norm(a, axis=1, keepdims=True)
    ub = b / np.linalg.norm(b, axis=1, keepdims=True)
    fused = fusion.fuse([ua, ub])
    assert np.allclose(np.linalg.norm(fused, axis=1), 1.0, atol=1e-6)
    assert np.allclose(fused @ fused[0], ((ua @ ua[0]) + (ub @ ub[0])) / 2, atol=1e-6)
    weights = fusion.normalise_weights([3.0, 1.0], 2)
    scale = fusion.block_scale((4, 6), weights)
    assert scale is not None
    assert fusion.block_scale((4, 6), (0.5, 0.5)) is None
    assert np.allclose((fused * scale) @ fused[0], 0.75 * (ua @ ua[0]) + 0.25 * (ub @ ub[0]))
    back = fusion.per_model(fused, (4, 6))
    assert np.allclose(back[0], ua, atol=1e-6)
    assert np.allclose(back[1], ub, atol=1e-6)


def test_fused_pipeline_on_real_faces(testdata: Path) -> None:
    cfg = VisionConfig(min_face_px=20)
    fused_pipe = FacePipeline.from_config(cfg, embedder="mobilefacenet+facenet")
    singles = [FacePipeline.from_config(cfg, embedder=m) for m in ("mobilefacenet", "facenet")]
    assert fused_pipe.embedder_id == "+".join(p.embedder_id for p in singles)
    assert fused_pipe.embedding_size == sum(p.embedding_size for p in singles) == 192 + 512
    items = list_dataset(testdata, "johns")[:6]
    fused: list[np.ndarray] = []
    per: list[list[np.ndarray]] = [[], []]
    for _, path in items:
        image = load_image(path)
        det = fused_pipe.detect(image)[0]
        fused.append(fused_pipe.embed(image, det))
        for i, p in enumerate(singles):
            per[i].append(p.embed(image, det))
        (face,) = fused_pipe.analyze(image)[:1]
        assert face.embedding is not None
        assert float(face.embedding @ fused[-1]) > 0.9999  # analyze reuses the aligned crop
    f = np.stack(fused)
    assert np.allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5)
    mean_cos = (np.stack(per[0]) @ np.stack(per[0]).T + np.stack(per[1]) @ np.stack(per[1]).T) / 2
    assert np.allclose(f @ f.T, mean_cos, atol=1e-5)
    with pytest.raises(ModelRuntimeError, match="fuses several"):
        fused_pipe.embed_crops([])
