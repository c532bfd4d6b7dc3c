"""dlib's face descriptor on TFLite: the conversion is dlib's network, on real faces.

* Without TensorFlow or dlib: every committed ``dlib-resnet`` variant, run by the gateway's own
  runtime on dlib's real 150x150 ``johns`` chips, gives dlib's descriptor (committed reference
  outputs made once with dlib-bin, ``tests/vectors/dlib_resnet_reference.json``): cosine >= 0.999.
* With dlib-bin (a dev dependency, so in ``make test``): the same against dlib itself on all 55
  chips, and the committed reference is still what dlib computes.
* The weight reader (models/convert/dlib_dat.py, numpy only) refuses a damaged file.
* The chip template for MTCNN landmarks is what this MTCNN finds on dlib's own chips, and the
  MTCNN chip gives nearly dlib's descriptor of dlib's own chip on real photos.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_gate.config import VisionConfig
from edge_gate.vision.embedders.base import Embedder
from edge_gate.vision.embedders.dlib_resnet import DLIB_CHIP_TEMPLATE_150
from edge_gate.vision.embedders.registry import family
from edge_gate.vision.pipeline import FacePipeline
from edge_gate.vision.runtime import TFLiteModel, load_manifest, resolve_models_dir

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "tests" / "vectors" / "dlib_resnet_reference.json"
MIN_COSINE = 0.999
HAS_DLIB = importlib.util.find_spec("dlib") is not None


def _variants() -> list[Embedder]:
    manifest = load_manifest(resolve_models_dir(None))
    specs = [s for s in manifest.models.values() if s.family == "dlib-resnet"]
    assert {s.variant for s in specs} == {"fp32", "fp16"}
    return [
        Embedder(TFLiteModel(manifest.models_dir, s, threads=2), family(s.family)) for s in specs
    ]


def _chip(testdata: Path, rel: str) -> np.ndarray:
    img = cv2.imread(str(testdata / rel))
    assert img is not None, rel
    assert img.shape == (150, 150, 3), rel
    return np.asarray(img, dtype=np.uint8)


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.asarray(np.sum(a * b, axis=-1))


def test_tflite_gives_dlibs_descriptor_committed_reference(testdata: Path) -> None:
    ref = json.loads(REFERENCE.read_text())
    chips = []
    for item in ref["chips"]:
        path = testdata / item["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == item["sha256"], item["file"]
        chips.append(_chip(testdata, item["file"]))
    want = np.asarray([c["descriptor"] for c in ref["chips"]], dtype=np.float32)
    assert len(chips) >= 15
    for emb in _variants():
        got = emb.embed_crops(chips)
        cos = _cos(got, want)
        print(f"{emb.model_id}: cosine to dlib min {cos.min():.7f} over {len(cos)} chips")
        assert cos.min() >= MIN_COSINE, (emb.model_id, float(cos.min()))
    # and a different face is not "equivalent": the check can fail
    assert _cos(want[0], want[-1]) < 0.95


@pytest.mark.skipif(not HAS_DLIB, reason="dlib-bin not installed (it is a dev dependency)")
def test_tflite_gives_dlibs_descriptor_live(testdata: Path) -> None:
    import dlib  # type: ignore[import-untyped,import-not-found,unused-ignore]

    rec = dlib.face_recognition_model_v1(
        str(testdata / "dlib_models" / "dlib_face_recognition_resnet_model_v1.dat")
    )
    files = sorted((testdata / "johns").glob("*/*.jpg"))
    assert len(files) == 55
    chips = [_chip(testdata, str(f.relative_to(testdata))) for f in files]
    live = np.asarray(
        [rec.compute_face_descriptor(np.ascontiguousarray(c[:, :, ::-1])) for c in chips],
        dtype=np.float32,
    )
    for emb in _variants():
        cos = _cos(emb.embed_crops(chips), live)
        print(f"{emb.model_id}: cosine to live dlib min {cos.min():.7f} over {len(cos)} chips")
        assert cos.min() >= MIN_COSINE
    ref = json.loads(REFERENCE.read_text())
    by_file = {str(f.relative_to(testdata)): v for f, v in zip(files, live, strict=True)}
    for item in ref["chips"]:  # the committed reference is still dlib's own output
        assert _cos(np.asarray(item["descriptor"]), by_file[item["file"]]) > 0.99999


def _dlib_dat() -> object:
    sys.path.insert(0, str(REPO / "models" / "convert"))
    try:
        import dlib_dat  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    return dlib_dat


def test_weight_reader_reads_the_network_and_refuses_damage(testdata: Path, tmp_path: Path) -> None:
    dd = _dlib_dat()
    dat = testdata / "dlib_models" / "dlib_face_recognition_resnet_model_v1.dat"
    net = dd.parse(dat)  # type: ignore[attr-defined]
    assert net.size == 150
    assert net.fc.shape == (256, 128)
    assert [u.down for u in net.units].count(True) == 4
    assert len(net.units) == 14
    assert np.allclose(net.mean_rgb, (122.782, 117.001, 104.298), atol=1e-3)
    data = dat.read_bytes()
    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(dd.DatError):  # type: ignore[attr-defined]
        dd.parse(truncated)  # type: ignore[attr-defined]
    renamed = tmp_path / "other-layer.dat"  # a 3x3 conv record claiming to be 5x5
    pos = data.index(b"\x01\x05con_4", data.index(b"max_pool_2"))
    start = pos + 7  # params tensor header follows; patch the nr field after it
    reader = dd._Reader(data, start)  # type: ignore[attr-defined]
    reader.tensor()
    reader.int()
    nr_at = reader.pos
    assert data[nr_at : nr_at + 2] == b"\x01\x03"
    renamed.write_bytes(data[:nr_at] + b"\x01\x05" + data[nr_at + 2 :])
    with pytest.raises(dd.DatError, match="con"):  # type: ignore[attr-defined]
        dd.parse(renamed)  # type: ignore[attr-defined]
    not_dlib = tmp_path / "random.dat"
    not_dlib.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(dd.DatError):  # type: ignore[attr-defined]
        dd.parse(not_dlib)  # type: ignore[attr-defined]


def test_chip_template_is_mtcnn_on_dlibs_own_chips(testdata: Path) -> None:
    pipe = FacePipeline.from_config(VisionConfig(min_face_px=20))
    points = []
    for f in sorted((testdata / "johns").glob("*/*.jpg")):
        chip = cv2.imread(str(f))
        assert chip is not None
        framed = cv2.copyMakeBorder(chip, 75, 75, 75, 75, cv2.BORDER_CONSTANT, value=0)
        dets = pipe.detect(np.asarray(framed, dtype=np.uint8))
        assert dets, f
        best = max(dets, key=lambda d: d.score)
        points.append(np.asarray(best.landmarks, dtype=np.float64) - 75.0)
    mean = np.mean(points, axis=0)
    assert np.max(np.abs(mean - DLIB_CHIP_TEMPLATE_150)) < 1.0, np.round(mean, 2)


@pytest.mark.skipif(not HAS_DLIB, reason="dlib-bin not installed (it is a dev dependency)")
def test_mtcnn_chip_costs_little_against_dlibs_own_alignment(testdata: Path) -> None:
    """dlib's detector + 5-point predictor + get_face_chip vs MTCNN + the template, same
    descriptor, on dlib's multi-face scenes (68 faces): median cosine 0.995 measured."""
    from edge_gate_dev.vision.dlib_alignment import compare

    pipe = FacePipeline.from_config(VisionConfig(min_face_px=20, embedders=["dlib-resnet"]))
    (emb,) = pipe.embedders
    images = [
        (f.name, np.asarray(cv2.imread(str(f)), dtype=np.uint8))
        for f in sorted((testdata / "dlib_faces").glob("*.jpg"))
        if f.name != "dogs.jpg"
    ]
    pairs = compare(
        images, pipe.detect, emb, testdata / "dlib_models" / "shape_predictor_5_face_landmarks.dat"
    )
    cos = np.array([p.cosine for p in pairs])
    print(f"alignment: {len(cos)} faces, cosine median {np.median(cos):.4f} min {cos.min():.4f}")
    assert len(cos) >= 40
    assert np.median(cos) >= 0.98
    assert np.percentile(cos, 5) >= 0.95
