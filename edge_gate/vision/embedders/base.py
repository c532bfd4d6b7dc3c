"""What an embedder family is: how its input crop is cut, normalised, and run (adapter).

A family (``facenet``, ``mobilefacenet``, ``dlib-resnet`` …) is one module in this package that
defines a module-level ``FAMILY`` object following :class:`EmbedderFamily`; the registry finds it
by the manifest's ``family`` field. :class:`Embedder` pairs a family with one loaded model file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from edge_gate.vision import imgops
from edge_gate.vision.runtime import TFLiteModel
from edge_gate.vision.types import Detection

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]


class EmbedderFamily(Protocol):
    """One embedder family: the crop its network was trained on and the input scaling."""

    @property
    def family(self) -> str:
        """The manifest ``family`` name this module handles."""
        ...

    @property
    def arcface_aligned(self) -> bool:
        """True when :meth:`crop` is the 5-point ArcFace-template warp (reusable for quality)."""
        ...

    def crop(self, image_bgr: U8, detection: Detection, size_px: int, margin_px: int) -> U8:
        """The ``size_px`` square BGR crop of ``detection`` the network expects."""
        ...

    def normalise(self, crops_bgr: Sequence[U8]) -> F32:
        """A float32 NHWC batch of crops, scaled and channel-ordered as in training."""
        ...


def rgb_centred(crops_bgr: Sequence[U8], mean: float = 127.5, std: float = 128.0) -> F32:
    """RGB, ``(x - mean) / std``: the scaling FaceNet and MobileFaceNet were trained with."""
    batch = np.stack([imgops.bgr_to_rgb(c) for c in crops_bgr]).astype(np.float32)
    out: F32 = np.ascontiguousarray((batch - mean) / std, dtype=np.float32)
    return out


class Embedder:
    """One loaded embedder model with its family: crop, normalise, run, L2-normalise."""

    def __init__(self, model: TFLiteModel, family: EmbedderFamily, margin_px: int = 32) -> None:
        self.model = model
        self.family = family
        self.margin_px = margin_px
        self.model_id = model.spec.model_id
        self.size_px = int(model.input_signature[1])
        names = model.spec.output_names
        self._output = names[0] if names else "embeddings"
        out_sig = model.output_signatures.get(self._output) or next(
            iter(model.output_signatures.values())
        )
        self.embedding_size: int = int(model.spec.embedding_size or out_sig[-1])

    def crop(self, image_bgr: U8, detection: Detection) -> U8:
        return self.family.crop(image_bgr, detection, self.size_px, self.margin_px)

    def embed_crops(self, crops_bgr: Sequence[U8]) -> F32:
        """Embeddings (N, D) of crops made by :meth:`crop`, L2-normalised float32."""
        if not crops_bgr:
            return np.empty((0, self.embedding_size), dtype=np.float32)
        vecs = self.model.run_batched(self.family.normalise(crops_bgr), self._output)
        vecs = vecs.reshape(len(crops_bgr), -1).astype(np.float32)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        out: F32 = (vecs / np.maximum(norms, 1e-12)).astype(np.float32)
        return out
