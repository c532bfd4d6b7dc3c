"""TFLite runtime adapter: manifest, sha256 refusal of tampered models, models-dir resolution."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_gate.errors import ModelIntegrityError
from edge_gate.vision import runtime
from edge_gate.vision.runtime import TFLiteModel, load_manifest, resolve_models_dir


@pytest.fixture(scope="module")
def models_dir() -> Path:
    """The committed models directory (repo ``models/`` unless $EDGE_GATE_MODELS says otherwise)."""
    return resolve_models_dir(None)


def _copy_model(models_dir: Path, dest: Path, model_id: str) -> Path:
    manifest = json.loads((models_dir / "manifest.json").read_text())
    entry = manifest["models"][model_id]
    shutil.copy(models_dir / entry["file"], dest / entry["file"])
    (dest / "manifest.json").write_text(json.dumps({"schema": 1, "models": {model_id: entry}}))
    return dest / str(entry["file"])


def test_manifest_lists_every_family_with_one_default(models_dir: Path) -> None:
    """Every model family has exactly one default; the files named exist."""
    manifest = load_manifest(models_dir)
    for family in ("mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet", "facenet", "mobilefacenet"):
        specs = manifest.by_family(family)
        assert specs, family
        assert sum(s.default for s in specs) == 1, family
        assert manifest.resolve(family).family == family
    for spec in manifest.models.values():
        assert (models_dir / spec.file).is_file()


def test_verified_model_loads_and_runs(models_dir: Path, tmp_path: Path) -> None:
    """An intact copy loads; P-Net accepts two different input sizes (dynamic shape)."""
    _copy_model(models_dir, tmp_path, "mtcnn-pnet-fp32")
    manifest = load_manifest(tmp_path)
    model = TFLiteModel(tmp_path, manifest.resolve("mtcnn-pnet"), threads=1)
    for h, w in ((24, 32), (60, 40)):
        out = model.run(np.zeros((1, h, w, 3), dtype=np.float32))
        assert out["prob"].shape == (1, (h - 2 + 1) // 2 - 4, (w - 2 + 1) // 2 - 4, 2)
        assert out["reg"].shape[-1] == 4


def test_tampered_model_is_refused(models_dir: Path, tmp_path: Path) -> None:
    """One flipped byte in a model file → ModelIntegrityError naming the file and expected hash."""
    path = _copy_model(models_dir, tmp_path, "mtcnn-rnet-fp32")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    manifest = load_manifest(tmp_path)
    spec = manifest.resolve("mtcnn-rnet-fp32")
    with pytest.raises(ModelIntegrityError) as info:
        TFLiteModel(tmp_path, spec)
    assert path.name in str(info.value)
    assert spec.sha256 in str(info.value)
    assert "refusing to load" in str(info.value)


def test_missing_model_and_bad_manifest_are_integrity_errors(tmp_path: Path) -> None:
    """No manifest, invalid JSON, a path in 'file', unknown names → ModelIntegrityError."""
    with pytest.raises(ModelIntegrityError, match="cannot read model manifest"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ModelIntegrityError, match="not valid JSON"):
        load_manifest(tmp_path)
    entry = {"file": "../evil.tflite", "sha256": "0" * 64, "family": "facenet", "default": True}
    (tmp_path / "manifest.json").write_text(json.dumps({"schema": 1, "models": {"x": entry}}))
    with pytest.raises(ModelIntegrityError, match="plain file name"):
        load_manifest(tmp_path)
    entry["file"] = "x.tflite"
    (tmp_path / "manifest.json").write_text(json.dumps({"schema": 1, "models": {"x": entry}}))
    manifest = load_manifest(tmp_path)
    with pytest.raises(ModelIntegrityError, match="unknown model 'nope'"):
        manifest.resolve("nope")
    with pytest.raises(ModelIntegrityError, match="cannot read model file"):
        TFLiteModel(tmp_path, manifest.resolve("facenet"))


def test_models_dir_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Configured dir wins over $EDGE_GATE_MODELS, which wins over the built-in locations."""
    monkeypatch.setenv(runtime.MODELS_ENV, str(tmp_path / "env"))
    assert resolve_models_dir(tmp_path / "cfg") == tmp_path / "cfg"
    assert resolve_models_dir(None) == tmp_path / "env"
    monkeypatch.delenv(runtime.MODELS_ENV)
    found = resolve_models_dir(None)
    assert (found / "manifest.json").is_file()


def test_quantized_io_round_trip() -> None:
    """int8 (de)quantisation with scale/zero-point maps floats and back within one step."""
    detail = {"dtype": np.int8, "quantization": (0.05, -3)}
    x = np.linspace(-5, 5, 41, dtype=np.float32)
    q = runtime._quantize(x, detail)
    assert q.dtype == np.int8
    back = runtime._dequantize(q, detail)
    assert np.abs(back - x).max() <= 0.05 / 2 + 1e-6
    big = runtime._quantize(np.array([1e6], dtype=np.float32), detail)
    assert big[0] == 127


def test_embed_command_refuses_tampered_models(
    models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`edge-gate embed` with a tampered model exits 1 naming the file; nothing is embedded."""
    from click.testing import CliRunner

    from edge_gate.cli.embed_cmd import embed

    shutil.copytree(models_dir, tmp_path / "models", ignore=shutil.ignore_patterns("convert"))
    onet = tmp_path / "models" / load_manifest(models_dir).resolve("mtcnn-onet").file
    data = bytearray(onet.read_bytes())
    data[100] ^= 0xFF
    onet.write_bytes(bytes(data))
    monkeypatch.setenv(runtime.MODELS_ENV, str(tmp_path / "models"))
    image = tmp_path / "x.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n")
    result = CliRunner().invoke(embed, ["--json", "--config", "/dev/null", str(image)])
    assert result.exit_code == 1
    assert onet.name in result.output
    assert "sha256 mismatch" in result.output


def test_model_of_wrong_family_is_refused(models_dir: Path) -> None:
    """Configuring an embedder file as the P-Net is refused before anything runs."""
    from edge_gate.config.vision import VisionConfig
    from edge_gate.vision.pipeline import FacePipeline

    with pytest.raises(ModelIntegrityError, match="not mtcnn-pnet"):
        FacePipeline.from_config(VisionConfig(pnet_model="mobilefacenet-fp32"))
