"""Face pipeline (composition): MTCNN detect → align → quality → embed.

Stable API used by gallery, liveness, camera snapshot and the daemon::

    pipe = FacePipeline.from_config(cfg.vision)            # loads and verifies the models
    dets: list[Detection] = pipe.detect(image_bgr)         # largest box first
    vec: np.ndarray = pipe.embed(image_bgr, dets[0])       # float32 (D,), L2-normalised
    faces: list[Face] = pipe.analyze(image_bgr)            # box, score, landmarks, quality, vec
    crop = pipe.align(image_bgr, dets[0])                  # 112x112 BGR aligned crop
    pipe.embedding_size, pipe.embedder_id                  # e.g. 512, "facenet-int8"

``image_bgr`` is an (H, W, 3) uint8 BGR array (what cv2 and
:func:`edge_gate.vision.image_io.load_image` give); greyscale (H, W) arrays are accepted too.
Detection landmarks are (5, 2) float32 in frame pixels, order left eye, right eye, nose,
mouth left, mouth right (image-left first).

Threads: a ``FacePipeline`` owns TFLite interpreters, which are not thread-safe. Use one
pipeline per thread (the daemon's pipeline thread owns one; a CLI owns another); never share
one across threads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_gate.config.vision import VisionConfig
from edge_gate.errors import ModelRuntimeError
from edge_gate.vision import align, imgops, mtcnn, quality
from edge_gate.vision.runtime import Manifest, TFLiteModel, load_manifest, resolve_models_dir
from edge_gate.vision.types import Detection, Face

log = logging.getLogger(__name__)

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]

ALIGNED_PX = 112


@dataclass(frozen=True, slots=True)
class EmbedderPrep:
    """How an embedder wants its input: crop kind, size, normalisation, channel order."""

    crop: str  # "aligned" (5-point similarity to the ArcFace template) or "margin" (box + margin)
    size_px: int
    mean: float = 127.5
    std: float = 128.0
    rgb: bool = True
    margin_px: int = 32


def embedder_prep(model: TFLiteModel, margin_px: int) -> EmbedderPrep:
    """Embedder preprocessing from its family; a manifest ``preprocessing`` dict may override."""
    spec = model.spec
    size_px = int(model.input_signature[1])
    crop = "margin" if spec.family == "facenet" else "aligned"
    pre: Any = spec.raw.get("preprocessing")
    mean, std, rgb = 127.5, 128.0, True
    if isinstance(pre, dict):
        crop = str(pre.get("crop", crop))
        mean = float(pre.get("mean", mean))
        std = float(pre.get("std", std))
        rgb = str(pre.get("channels", pre.get("color", "RGB"))).upper() != "BGR"
    if crop not in ("aligned", "margin"):
        crop = "margin" if "margin" in crop or "box" in crop else "aligned"
    return EmbedderPrep(
        crop=crop, size_px=size_px, mean=mean, std=std, rgb=rgb, margin_px=margin_px
    )


def _as_bgr(image: U8) -> U8:
    if image.ndim == 2:
        return imgops.grey_to_bgr(image)
    if image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
        return image
    raise ValueError(
        f"expected a uint8 BGR (H, W, 3) or grey (H, W) image, got {image.dtype} {image.shape}"
    )


class FacePipeline:
    """MTCNN + embedder on TFLite. Not thread-safe: one instance per thread."""

    def __init__(
        self,
        pnet: TFLiteModel,
        rnet: TFLiteModel,
        onet: TFLiteModel,
        embedder: TFLiteModel,
        params: mtcnn.CascadeParams,
        margin_px: int = 32,
    ) -> None:
        self._pnet, self._rnet, self._onet, self._embedder = pnet, rnet, onet, embedder
        self.params = params
        self.prep = embedder_prep(embedder, margin_px)
        out = self._embedder_output()
        self.embedder_id = embedder.spec.model_id
        out_sig = embedder.output_signatures.get(out) or next(
            iter(embedder.output_signatures.values())
        )
        self.embedding_size: int = int(embedder.spec.embedding_size or out_sig[-1])
        self._embed_output = out
        self.detector_ids = {
            "pnet": pnet.spec.model_id,
            "rnet": rnet.spec.model_id,
            "onet": onet.spec.model_id,
        }
        self.threads = embedder.threads

    @classmethod
    def from_config(cls, config: VisionConfig, *, embedder: str | None = None) -> FacePipeline:
        """Load and verify every model named by ``config`` (``embedder`` overrides the config's)."""
        models_dir = resolve_models_dir(config.models_dir)
        manifest = load_manifest(models_dir)
        return cls.from_manifest(manifest, config, embedder=embedder)

    @classmethod
    def from_manifest(
        cls, manifest: Manifest, config: VisionConfig, *, embedder: str | None = None
    ) -> FacePipeline:
        d = manifest.models_dir
        t = config.threads

        def load(name: str, family: str) -> TFLiteModel:
            return TFLiteModel(d, manifest.resolve(name, family), threads=t)

        emb_name = embedder or config.embedder
        emb_spec = manifest.resolve(emb_name)
        if emb_spec.family not in ("facenet", "mobilefacenet"):
            raise ModelRuntimeError(
                f"model {emb_name!r} is not an embedder (family {emb_spec.family})"
            )
        params = mtcnn.CascadeParams(
            min_face_px=config.min_face_px,
            factor=config.pyramid_factor,
            thresholds=config.detect_thresholds,
        )
        pipe = cls(
            load(config.pnet_model, "mtcnn-pnet"),
            load(config.rnet_model, "mtcnn-rnet"),
            load(config.onet_model, "mtcnn-onet"),
            TFLiteModel(d, emb_spec, threads=t),
            params,
            margin_px=config.facenet_margin_px,
        )
        log.info("vision.pipeline_ready", extra={"EG_MODEL": pipe.embedder_id, "EG_THREADS": t})
        return pipe

    def _embedder_output(self) -> str:
        names = self._embedder.spec.output_names
        return names[0] if names else "embeddings"

    # --------------------------------------------------------------- nets as plain callables

    def _pnet_fn(self, batch: F32) -> tuple[F32, F32]:
        out = self._pnet.run(batch)
        return out["prob"][0, :, :, 1], out["reg"][0]

    def _rnet_fn(self, batch: F32) -> tuple[F32, F32]:
        out = self._rnet.run(batch)
        return out["prob"][:, 1], out["reg"]

    def _onet_fn(self, batch: F32) -> tuple[F32, F32, F32]:
        out = self._onet.run(batch)
        return out["prob"][:, 1], out["reg"], out["landmarks"]

    def nets(self) -> tuple[mtcnn.PNetFn, mtcnn.RNetFn, mtcnn.ONetFn]:
        """The three MTCNN nets as plain callables (for benchmarks and diagnostics)."""
        return self._pnet_fn, self._rnet_fn, self._onet_fn

    # --------------------------------------------------------------- public API

    def detect(self, image_bgr: U8) -> list[Detection]:
        """Faces in the frame, largest box first (empty list when there is none)."""
        rgb = imgops.bgr_to_rgb(_as_bgr(image_bgr))
        return mtcnn.detect_faces(
            rgb, self._pnet_fn, self._rnet_fn, self._onet_fn, imgops.resize_area, self.params
        )

    def align(self, image_bgr: U8, detection: Detection, size_px: int = ALIGNED_PX) -> U8:
        """The face warped onto the ArcFace template: a ``size_px`` square BGR crop."""
        matrix = align.similarity_to_template(detection.landmarks, size_px)
        return imgops.warp_affine(_as_bgr(image_bgr), matrix, size_px)

    def embedder_input(self, image_bgr: U8, detection: Detection) -> U8:
        """The BGR crop the embedder sees (aligned, or box + margin for FaceNet)."""
        bgr = _as_bgr(image_bgr)
        if self.prep.crop == "aligned":
            return self.align(bgr, detection, self.prep.size_px)
        h, w = bgr.shape[:2]
        box = align.margin_crop_box(detection.box, self.prep.margin_px, w, h)
        return imgops.crop_resize(bgr, box, self.prep.size_px)

    def embed_crops(self, crops_bgr: list[U8]) -> F32:
        """Embeddings (N, D) of crops made by :meth:`embedder_input`, L2-normalised float32."""
        if not crops_bgr:
            return np.empty((0, self.embedding_size), dtype=np.float32)
        batch = np.stack([imgops.bgr_to_rgb(c) if self.prep.rgb else c for c in crops_bgr]).astype(
            np.float32
        )
        batch = (batch - self.prep.mean) / self.prep.std
        vecs = self._embedder.run_batched(
            np.ascontiguousarray(batch, dtype=np.float32), self._embed_output
        )
        vecs = vecs.reshape(len(crops_bgr), -1).astype(np.float32)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        out: F32 = (vecs / np.maximum(norms, 1e-12)).astype(np.float32)
        return out

    def embed(self, image_bgr: U8, detection: Detection) -> F32:
        """The L2-normalised float32 embedding of one detected face."""
        result: F32 = self.embed_crops([self.embedder_input(image_bgr, detection)])[0]
        return result

    def analyze(self, image_bgr: U8, embed: bool = True) -> list[Face]:
        """Detect, measure quality and (optionally) embed every face; largest face first."""
        bgr = _as_bgr(image_bgr)
        dets = self.detect(bgr)
        if not dets:
            return []
        aligned = [self.align(bgr, d) for d in dets]
        vecs: F32 | None = None
        if embed:
            crops = (
                aligned if self.prep.crop == "aligned" and self.prep.size_px == ALIGNED_PX else None
            )
            vecs = self.embed_crops(crops or [self.embedder_input(bgr, d) for d in dets])
        return [
            Face(
                box=d.box,
                score=d.score,
                landmarks=d.landmarks,
                quality=quality.measure(d.box, d.landmarks, crop, (bgr.shape[0], bgr.shape[1])),
                embedding=None if vecs is None else vecs[i],
            )
            for i, (d, crop) in enumerate(zip(dets, aligned, strict=True))
        ]


def default_models_dir(config: VisionConfig) -> Path:
    """Where :meth:`FacePipeline.from_config` will look for models."""
    return resolve_models_dir(config.models_dir)
