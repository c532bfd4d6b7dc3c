"""Face pipeline (composition): MTCNN detect → align → quality → embed.

Stable API used by gallery, liveness, camera snapshot and the daemon::

    pipe = FacePipeline.from_config(cfg.vision)            # loads and verifies the models
    dets: list[Detection] = pipe.detect(image_bgr)         # largest box first
    vec: np.ndarray = pipe.embed(image_bgr, dets[0])       # float32 (D,), L2-normalised
    faces: list[Face] = pipe.analyze(image_bgr)            # box, score, landmarks, quality, vec
    crop = pipe.align(image_bgr, dets[0])                  # 112x112 BGR aligned crop
    pipe.embedding_size, pipe.embedder_id                  # e.g. 512, "facenet-int8"

With several embedders (``vision.embedders``) ``embed`` returns the fused embedding of
:mod:`edge_gate.vision.fusion` (unit length; dot product = mean of the per-model cosines) and
``embedder_id`` names the set (``"mobilefacenet-fp32+dlib-resnet-fp32"``). Each embedder's crop
and input scaling come from its family module in :mod:`edge_gate.vision.embedders`.

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
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge_gate.config.vision import VisionConfig
from edge_gate.errors import ModelRuntimeError
from edge_gate.vision import align, fusion, imgops, mtcnn, quality
from edge_gate.vision.embedders.base import Embedder
from edge_gate.vision.embedders.registry import family, is_embedder_family
from edge_gate.vision.runtime import Manifest, TFLiteModel, load_manifest, resolve_models_dir
from edge_gate.vision.types import Detection, Face

log = logging.getLogger(__name__)

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]

ALIGNED_PX = 112


def _as_bgr(image: U8) -> U8:
    if image.ndim == 2:
        return imgops.grey_to_bgr(image)
    if image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
        return image
    raise ValueError(
        f"expected a uint8 BGR (H, W, 3) or grey (H, W) image, got {image.dtype} {image.shape}"
    )


class FacePipeline:
    """MTCNN + one or more embedders on TFLite. Not thread-safe: one instance per thread."""

    def __init__(
        self,
        pnet: TFLiteModel,
        rnet: TFLiteModel,
        onet: TFLiteModel,
        embedders: Sequence[Embedder],
        params: mtcnn.CascadeParams,
        weights: Sequence[float] | None = None,
    ) -> None:
        if not embedders:
            raise ModelRuntimeError("a face pipeline needs at least one embedder")
        self._pnet, self._rnet, self._onet = pnet, rnet, onet
        self.embedders: tuple[Embedder, ...] = tuple(embedders)
        self.params = params
        self.model_ids = tuple(e.model_id for e in self.embedders)
        self.embedder_id = fusion.set_id(self.model_ids)
        self.dims = tuple(e.embedding_size for e in self.embedders)
        self.embedding_size: int = sum(self.dims)
        self.weights = fusion.normalise_weights(weights, len(self.embedders))
        self.detector_ids = {
            "pnet": pnet.spec.model_id,
            "rnet": rnet.spec.model_id,
            "onet": onet.spec.model_id,
        }
        self.threads = self.embedders[0].model.threads

    @property
    def score_scale(self) -> F32 | None:
        """Gallery column scale for the configured weights (``None``: equal weights)."""
        return fusion.block_scale(self.dims, self.weights)

    @classmethod
    def from_config(cls, config: VisionConfig, *, embedder: str | None = None) -> FacePipeline:
        """Load and verify every model named by ``config`` (``embedder`` overrides the config's:
        one manifest id or family, or several joined with ``+``)."""
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

        names = fusion.split_set_id(embedder) if embedder else config.embedder_set
        weights = None if embedder else config.embedder_weights
        specs = [manifest.resolve(name) for name in names]
        for name, spec in zip(names, specs, strict=True):
            if not is_embedder_family(spec.family):
                raise ModelRuntimeError(f"model {name!r} is not an embedder (family {spec.family})")
        if len({s.model_id for s in specs}) != len(specs):
            raise ModelRuntimeError(f"embedder set {list(names)} names a model twice")
        params = mtcnn.CascadeParams(
            min_face_px=config.min_face_px,
            factor=config.pyramid_factor,
            thresholds=config.detect_thresholds,
        )
        pipe = cls(
            load(config.pnet_model, "mtcnn-pnet"),
            load(config.rnet_model, "mtcnn-rnet"),
            load(config.onet_model, "mtcnn-onet"),
            [
                Embedder(TFLiteModel(d, s, threads=t), family(s.family), config.facenet_margin_px)
                for s in specs
            ],
            params,
            weights=weights,
        )
        log.info("vision.pipeline_ready", extra={"EG_MODEL": pipe.embedder_id, "EG_THREADS": t})
        return pipe

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

    def embedder_inputs(self, image_bgr: U8, detection: Detection) -> tuple[U8, ...]:
        """The BGR crop each embedder sees, in embedder order."""
        bgr = _as_bgr(image_bgr)
        return tuple(e.crop(bgr, detection) for e in self.embedders)

    def embed_inputs(self, inputs: Sequence[Sequence[U8]]) -> F32:
        """Fused embeddings (N, D) of faces given as :meth:`embedder_inputs` tuples."""
        if not inputs:
            return np.empty((0, self.embedding_size), dtype=np.float32)
        blocks = [e.embed_crops([x[i] for x in inputs]) for i, e in enumerate(self.embedders)]
        return fusion.fuse(blocks)

    def _single(self) -> Embedder:
        if len(self.embedders) != 1:
            raise ModelRuntimeError(
                f"{self.embedder_id} fuses several embedders: use embedder_inputs/embed_inputs"
            )
        return self.embedders[0]

    def embedder_input(self, image_bgr: U8, detection: Detection) -> U8:
        """The BGR crop a single-embedder pipeline's embedder sees."""
        return self._single().crop(_as_bgr(image_bgr), detection)

    def embed_crops(self, crops_bgr: list[U8]) -> F32:
        """Embeddings (N, D) of :meth:`embedder_input` crops (single embedder), L2-normalised."""
        return self._single().embed_crops(crops_bgr)

    def embed(self, image_bgr: U8, detection: Detection) -> F32:
        """The L2-normalised float32 (fused) embedding of one detected face."""
        result: F32 = self.embed_inputs([self.embedder_inputs(image_bgr, detection)])[0]
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
            inputs = [
                tuple(
                    crop if e.family.arcface_aligned and e.size_px == ALIGNED_PX else e.crop(bgr, d)
                    for e in self.embedders
                )
                for d, crop in zip(dets, aligned, strict=True)
            ]
            vecs = self.embed_inputs(inputs)
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
