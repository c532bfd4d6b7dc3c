"""TFLite runtime adapter: manifest, integrity check, interpreters with float in / float out.

* The models directory is resolved as: config ``vision.models_dir`` → ``$EDGE_GATE_MODELS`` →
  ``/usr/share/edge-gate/models`` → the ``models/`` directory shipped next to the package.
* A model file is read once, its sha256 compared with the manifest, and the interpreter is
  built from those same bytes (no check-then-reopen window). A mismatch raises
  :class:`ModelIntegrityError` naming the file and the expected hash.
* ``ai_edge_litert`` is preferred; ``tflite_runtime`` is the fallback.
* Quantized (int8/uint8) inputs and outputs are (de)quantized here, so callers pass and get float32.

An interpreter is not thread-safe: each :class:`TFLiteModel` belongs to one thread.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_gate.errors import ModelIntegrityError, ModelRuntimeError

log = logging.getLogger(__name__)

MODELS_ENV = "EDGE_GATE_MODELS"
SYSTEM_MODELS_DIR = Path("/usr/share/edge-gate/models")
MANIFEST_NAME = "manifest.json"
MAX_MANIFEST_BYTES = 1_000_000
FAMILIES = ("mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet", "facenet", "mobilefacenet")

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One manifest entry (the fields the runtime uses; the rest stays in ``raw``)."""

    model_id: str
    file: str
    sha256: str
    family: str
    variant: str
    default: bool
    output_names: tuple[str, ...]
    embedding_size: int | None
    raw: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Manifest:
    """The parsed ``manifest.json`` of a models directory."""

    models_dir: Path
    models: Mapping[str, ModelSpec]

    def resolve(self, name: str, family: str | None = None) -> ModelSpec:
        """A model by id, or the default variant of a family (``"facenet"`` → its default)."""
        spec = self.models.get(name)
        if spec is not None:
            if family is not None and spec.family != family:
                raise ModelIntegrityError(f"model {name!r} is a {spec.family} model, not {family}")
            return spec
        defaults = [s for s in self.models.values() if s.family == name and s.default]
        if len(defaults) == 1 and (family is None or name == family):
            return defaults[0]
        known = ", ".join(sorted({*self.models, *(s.family for s in self.models.values())}))
        raise ModelIntegrityError(
            f"unknown model {name!r} in {self.models_dir / MANIFEST_NAME} (known: {known})"
        )

    def by_family(self, family: str) -> list[ModelSpec]:
        return [s for s in self.models.values() if s.family == family]


def _shipped_models_dir() -> Path:
    return Path(__file__).resolve().parent.parent.parent / "models"


def resolve_models_dir(configured: Path | None = None) -> Path:
    """Pick the models directory (see module docstring); the first with a manifest wins."""
    if configured is not None:
        return Path(configured)
    env = os.environ.get(MODELS_ENV)
    if env:
        return Path(env)
    for candidate in (
        SYSTEM_MODELS_DIR,
        Path(__file__).resolve().parent.parent / "models",
        _shipped_models_dir(),
    ):
        if (candidate / MANIFEST_NAME).is_file():
            return candidate
    return _shipped_models_dir()


def _spec(model_id: str, entry: Mapping[str, Any]) -> ModelSpec:
    try:
        output = entry.get("output") or {}
        names = output.get("names") or []
        emb = entry.get("embedding_size")
        return ModelSpec(
            model_id=model_id,
            file=str(entry["file"]),
            sha256=str(entry["sha256"]).lower(),
            family=str(entry["family"]),
            variant=str(entry.get("variant", "")),
            default=bool(entry.get("default", False)),
            output_names=tuple(str(n) for n in names),
            embedding_size=int(emb) if emb is not None else None,
            raw=entry,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ModelIntegrityError(f"manifest entry {model_id!r} is invalid: {e}") from e


def load_manifest(models_dir: Path) -> Manifest:
    """Read and validate ``models_dir/manifest.json``."""
    path = Path(models_dir) / MANIFEST_NAME
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_MANIFEST_BYTES + 1)
    except OSError as e:
        raise ModelIntegrityError(f"{path}: cannot read model manifest: {e.strerror}") from e
    if len(data) > MAX_MANIFEST_BYTES:
        raise ModelIntegrityError(f"{path}: manifest larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelIntegrityError(f"{path}: manifest is not valid JSON: {e}") from e
    if (
        not isinstance(doc, dict)
        or doc.get("schema") != 1
        or not isinstance(doc.get("models"), dict)
    ):
        raise ModelIntegrityError(f"{path}: manifest must be {{'schema': 1, 'models': {{...}}}}")
    models = {str(k): _spec(str(k), v) for k, v in doc["models"].items() if isinstance(v, dict)}
    for spec in models.values():
        if "/" in spec.file or "\\" in spec.file or spec.file.startswith("."):
            raise ModelIntegrityError(
                f"{path}: model file name {spec.file!r} must be a plain file name"
            )
    return Manifest(models_dir=Path(models_dir), models=models)


def read_verified(models_dir: Path, spec: ModelSpec) -> bytes:
    """The model file's bytes, after checking them against the manifest sha256."""
    path = Path(models_dir) / spec.file
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as e:
        raise ModelIntegrityError(f"{path}: cannot read model file: {e.strerror}") from e
    digest = hashlib.sha256(data).hexdigest()
    if not hmac.compare_digest(digest, spec.sha256):
        raise ModelIntegrityError(
            f"{path}: sha256 mismatch, refusing to load (expected {spec.sha256}, got {digest})"
        )
    return data


def _interpreter_class() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError as e:
            raise ModelRuntimeError(
                "no TFLite runtime: install ai-edge-litert (or tflite-runtime)"
            ) from e
    return Interpreter


def _quantize(x: npt.NDArray[Any], detail: Mapping[str, Any]) -> npt.NDArray[Any]:
    dtype = detail["dtype"]
    if dtype == np.float32:
        return np.ascontiguousarray(x, dtype=np.float32)
    scale, zero = detail["quantization"]
    if scale == 0:
        return np.ascontiguousarray(x, dtype=dtype)
    info = np.iinfo(dtype)
    q = np.clip(np.round(x / scale + zero), info.min, info.max)
    return np.ascontiguousarray(q.astype(dtype))


def _dequantize(q: npt.NDArray[Any], detail: Mapping[str, Any]) -> F32:
    if q.dtype == np.float32:
        same: F32 = q
        return same
    scale, zero = (float(v) for v in detail["quantization"])
    out: F32 = q.astype(np.float32)
    if scale == 0:
        return out
    return ((out - np.float32(zero)) * np.float32(scale)).astype(np.float32)


class TFLiteModel:
    """One verified model with float32 in/out; input shapes may change per call (dynamic dims).

    Interpreters for up to ``shape_cache`` distinct input shapes are kept, so a fixed-size camera
    frame does not re-allocate P-Net tensors for each pyramid level on every frame.
    """

    def __init__(
        self, models_dir: Path, spec: ModelSpec, threads: int = 2, shape_cache: int = 16
    ) -> None:
        self.spec = spec
        self.threads = threads
        self._content = read_verified(models_dir, spec)
        self._cls = _interpreter_class()
        self._shape_cache = max(1, shape_cache)
        self._by_shape: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        probe = self._construct()
        detail = probe.get_input_details()[0]
        self.input_signature: tuple[int, ...] = tuple(
            int(v) for v in detail.get("shape_signature", detail["shape"])
        )
        self.output_signatures: dict[str, tuple[int, ...]] = {
            d["name"]: tuple(int(v) for v in d.get("shape_signature", d["shape"]))
            for d in probe.get_output_details()
        }
        log.debug("model.loaded", extra={"EG_MODEL": spec.model_id, "EG_THREADS": threads})

    def _construct(self) -> Any:
        try:
            return self._cls(model_content=self._content, num_threads=self.threads)
        except (ValueError, RuntimeError) as e:
            raise ModelRuntimeError(f"{self.spec.file}: TFLite cannot load the model: {e}") from e

    def _interpreter_for(self, shape: tuple[int, ...]) -> Any:
        interp = self._by_shape.get(shape)
        if interp is not None:
            self._by_shape.move_to_end(shape)
            return interp
        interp = self._construct()
        idx = interp.get_input_details()[0]["index"]
        try:
            interp.resize_tensor_input(idx, list(shape), strict=True)
            interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelRuntimeError(f"{self.spec.file}: cannot use input shape {shape}: {e}") from e
        self._by_shape[shape] = interp
        while len(self._by_shape) > self._shape_cache:
            self._by_shape.popitem(last=False)
        return interp

    @property
    def fixed_batch(self) -> int | None:
        """The batch size the model insists on, or ``None`` if the batch dimension is dynamic."""
        b = self.input_signature[0]
        return b if b > 0 else None

    def run(self, x: F32) -> dict[str, F32]:
        """Invoke on one float32 input; returns every output by name (manifest names if given).

        With a dynamic batch dimension the batch is padded up to a power of two (cut off again
        in the outputs), so a handful of cached interpreters serve every candidate count.
        """
        n = int(x.shape[0])
        if self.fixed_batch is None and n > 0:
            bucket = 1 << (n - 1).bit_length()
            if bucket != n:
                x = np.concatenate([x, np.zeros((bucket - n, *x.shape[1:]), dtype=x.dtype)])
        interp = self._interpreter_for(tuple(int(v) for v in x.shape))
        detail = interp.get_input_details()[0]
        try:
            interp.set_tensor(detail["index"], _quantize(x, detail))
            interp.invoke()
            outs = interp.get_output_details()
            results = {d["name"]: _dequantize(interp.get_tensor(d["index"]), d)[:n] for d in outs}
        except (ValueError, RuntimeError) as e:
            raise ModelRuntimeError(f"{self.spec.file}: inference failed: {e}") from e
        names = self.spec.output_names
        if names and not set(names) <= set(results):
            if len(names) != len(outs):
                raise ModelRuntimeError(
                    f"{self.spec.file}: outputs {sorted(results)} do not match manifest {names}"
                )
            results = {n: results[d["name"]] for n, d in zip(names, outs, strict=True)}
        return results

    def run_batched(self, x: F32, output: str) -> F32:
        """Run a batch through a model with a fixed batch size, padding the last chunk."""
        fixed = self.fixed_batch
        if fixed is None:
            return self.run(x)[output]
        parts: list[F32] = []
        for start in range(0, x.shape[0], fixed):
            chunk = x[start : start + fixed]
            n = chunk.shape[0]
            if n < fixed:
                pad = np.repeat(chunk[-1:], fixed - n, axis=0)
                chunk = np.concatenate([chunk, pad])
            parts.append(self.run(np.ascontiguousarray(chunk))[output][:n])
        return np.concatenate(parts) if parts else np.empty((0,), dtype=np.float32)


def load_model(
    models_dir: Path, manifest: Manifest, name: str, family: str | None = None, threads: int = 2
) -> TFLiteModel:
    """Resolve ``name`` in the manifest and load it verified."""
    return TFLiteModel(models_dir, manifest.resolve(name, family), threads=threads)
