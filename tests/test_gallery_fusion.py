"""Per-model templates in gallery records, the pre-fusion record layout, and embedder-set checks.

Real models on real faces: johns people enrolled with the fused mobilefacenet + facenet pipeline
are matched by the daemon's matcher with the weighted mean of the per-model cosines, and a
gallery enrolled with one embedder set is refused, with a clear message, by a pipeline with
another.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from edge_gate.config import EdgeGateConfig
from edge_gate.config.gallery import GalleryConfig
from edge_gate.config.vision import VisionConfig
from edge_gate.errors import ConfigError, GalleryError
from edge_gate.gallery.keyfile import KeyRing, new_key, write_keyring
from edge_gate.gallery.loaded import new_user_id
from edge_gate.gallery.record import PersonRecord, decode_record, encode_record
from edge_gate.gallery.store import GalleryStore, store_from_config
from edge_gate.service.components import load_gallery
from edge_gate.vision import fusion
from edge_gate.vision.image_io import load_image
from edge_gate.vision.pipeline import FacePipeline
from edge_gate_dev.vision.evaluate import list_dataset


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.standard_normal((n, d)).astype(np.float32)
    out: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def _legacy_record(user_id: str, model: str, templates: np.ndarray) -> bytes:
    """A record as edge-gate wrote it before fusion (``EGR1``: one model, ``n x dim``)."""
    header = {
        "user_id": user_id,
        "name": "Old Timer",
        "model": model,
        "created_at": 1.0,
        "n": templates.shape[0],
        "dim": templates.shape[1],
    }
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 256)
    return b"EGR1" + struct.pack("<I", len(raw)) + raw + templates.astype("<f4").tobytes()


def test_fused_record_stores_each_model() -> None:
    rng = np.random.default_rng(3)
    a, b = _unit(rng, 3, 192), _unit(rng, 3, 128)
    rec = PersonRecord(new_user_id(), "Ada", "m-a+m-b", 2.0, fusion.fuse([a, b]), (192, 128))
    data = encode_record(rec)
    assert data[:4] == b"EGR2"
    back = decode_record(data)
    assert back.model == "m-a+m-b"
    assert back.part_dims == (192, 128)
    per = back.templates_by_model()
    assert np.allclose(per["m-a"], a, atol=1e-6)
    assert np.allclose(per["m-b"], b, atol=1e-6)
    body = data[-(3 * 320 * 4) :]  # each model's vectors on their own, unscaled
    assert np.allclose(np.frombuffer(body[: 3 * 192 * 4], "<f4").reshape(3, 192), a, atol=1e-6)
    with pytest.raises(ValueError, match="widths"):
        encode_record(PersonRecord(new_user_id(), "Ada", "m-a+m-b", 2.0, a))


def test_pre_fusion_records_load_and_migrate(tmp_path: Path) -> None:
    """An ``EGR1`` gallery loads as single-model records tagged with their model id; migrate
    rewrites them as ``EGR2`` with the same templates, one generation later."""
    store = GalleryStore(tmp_path / "g.db", None, KeyRing((new_key(),)))
    store.create()
    rng = np.random.default_rng(4)
    old = {new_user_id(): _unit(rng, 2, 192) for _ in range(3)}

    def write_legacy(conn, before, cipher, rows):  # type: ignore[no-untyped-def]
        out = list(rows)
        for uid, t in old.items():
            sealed = cipher.seal(uid, _legacy_record(uid, "mobilefacenet-fp32", t))
            conn.execute("INSERT INTO records VALUES (?, ?, ?)", (uid, sealed.key_id, sealed.blob))
            out.append((uid, sealed.key_id, sealed.blob))
        return out

    store._write(write_legacy)  # what the previous version's enroll left on disk
    loaded = store.load()
    assert loaded.model == "mobilefacenet-fp32"
    assert loaded.dims == (192,)
    for p in loaded.people:
        assert np.allclose(p.templates_by_model()["mobilefacenet-fp32"], old[p.user_id])
    assert store.migrate() == 3
    again = store.load()
    assert again.generation == loaded.generation + 1
    for p in again.people:
        assert np.array_equal(p.templates, loaded.get(p.user_id).templates)  # type: ignore[union-attr]
    uid = next(iter(old))
    store.enroll("New Comer", "mobilefacenet-fp32", _unit(rng, 2, 192))
    with pytest.raises(GalleryError, match="cannot add"):
        store.enroll(
            "Fused", "mobilefacenet-fp32+facenet-int8", _unit(rng, 2, 704), dims=(192, 512)
        )
    assert store.load().get(uid) is not None


@pytest.fixture(scope="module")
def pipes() -> dict[str, FacePipeline]:
    cfg = VisionConfig(min_face_px=20)
    return {
        "fused": FacePipeline.from_config(cfg, embedder="mobilefacenet+facenet"),
        "mobilefacenet": FacePipeline.from_config(cfg, embedder="mobilefacenet"),
        "facenet": FacePipeline.from_config(cfg, embedder="facenet"),
    }


def _config(tmp_path: Path, **vision: object) -> EdgeGateConfig:
    key = tmp_path / "gallery.key"
    if not key.exists():
        write_keyring(key, KeyRing((new_key(),)))
    return EdgeGateConfig(
        # unequal weights have no calibrated default threshold: this test names one
        gallery=GalleryConfig(db_file=tmp_path / "gallery.db", key_file=key, threshold=0.6),
        vision=VisionConfig(min_face_px=20, **vision),
    )


def test_fused_gallery_on_real_faces(
    tmp_path: Path, testdata: Path, pipes: dict[str, FacePipeline]
) -> None:
    """Enroll 3 johns people (2 photos each) with the fused pipeline; the daemon's matcher
    scores a third photo with sum w_i cos_i, the weights taken from the config."""
    by_person: dict[str, list[Path]] = {}
    for label, path in list_dataset(testdata, "johns"):
        by_person.setdefault(label, []).append(path)
    people = [(k, v) for k, v in sorted(by_person.items()) if len(v) >= 3][:3]
    assert len(people) == 3
    fused = pipes["fused"]

    def emb(pipe: FacePipeline, path: Path) -> np.ndarray:
        image = load_image(path)
        return pipe.embed(image, fused.detect(image)[0])

    cfg = _config(tmp_path, embedders=["mobilefacenet", "facenet"], embedder_weights=[3, 1])
    store = store_from_config(cfg.gallery)
    store.enroll_many(
        [(label, np.stack([emb(fused, p) for p in paths[:2]])) for label, paths in people],
        fused.embedder_id,
        dims=fused.dims,
    )
    rec = store.load().people[0]
    assert set(rec.templates_by_model()) == {"mobilefacenet-fp32", "facenet-int8"}
    matcher = load_gallery(cfg, fused.embedder_id, fused.embedding_size)
    label, paths = people[1]
    probe = emb(fused, paths[2])
    result = matcher.match(probe)
    assert result.user_id is not None
    assert store.load().get(result.user_id).name == label  # type: ignore[union-attr]
    cos = {
        m: max(float(emb(pipes[m], paths[2]) @ emb(pipes[m], p)) for p in paths[:2])
        for m in ("mobilefacenet", "facenet")
    }
    per_template = [
        0.75 * float(emb(pipes["mobilefacenet"], paths[2]) @ emb(pipes["mobilefacenet"], p))
        + 0.25 * float(emb(pipes["facenet"], paths[2]) @ emb(pipes["facenet"], p))
        for p in paths[:2]
    ]
    assert result.score == pytest.approx(max(per_template), abs=1e-4)
    assert min(cos.values()) - 1e-4 <= result.score <= max(cos.values()) + 1e-4
    # the same gallery with another embedder set: refused with the reason, not a silent miss
    single = pipes["mobilefacenet"]
    with pytest.raises(ConfigError, match="enrolled with embedder set"):
        load_gallery(_config(tmp_path), single.embedder_id, single.embedding_size)
