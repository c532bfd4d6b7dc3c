"""Score fusion of several embedders (pure core: numpy + stdlib).

With ``k`` embedders, a face's *fused embedding* is the concatenation of each model's
L2-normalised embedding divided by ``sqrt(k)``: ``t = [u_1, …, u_k] / sqrt(k)``. It has unit
length, so everything that works on one embedder's vectors (gallery records, the 1:N matrix,
calibration) works on it unchanged, and the dot product of two fused embeddings is the **mean of
the per-model cosines**. Per-model weights ``w_i`` (normalised to sum 1) are applied on the
gallery side by scaling model ``i``'s columns by ``k * w_i`` (:func:`block_scale`), which gives

    score = sum_i w_i * cos_i          (sum_i w_i = 1)

a number in [-1, 1] that is 1 only when every model agrees perfectly: thresholds stay in
cosine-like units. With one embedder this is exactly that model's cosine.

A set of embedders is named by its model ids joined with ``+`` (manifest ids cannot contain
``+``), e.g. ``mobilefacenet-fp32+dlib-resnet-fp32``; a gallery records that name.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__layer__ = "core"

F32 = npt.NDArray[np.float32]

SEPARATOR = "+"


def set_id(model_ids: Sequence[str]) -> str:
    """The name of an embedder set (a single model's id for a set of one)."""
    return SEPARATOR.join(model_ids)


def split_set_id(name: str) -> tuple[str, ...]:
    return tuple(name.split(SEPARATOR))


def normalise_weights(weights: Sequence[float] | None, n: int) -> tuple[float, ...]:
    """Weights summing to 1 (equal when ``None``); each must be finite and > 0."""
    if weights is None:
        return tuple(1.0 / n for _ in range(n))
    if len(weights) != n:
        raise ValueError(f"{len(weights)} weights for {n} embedders")
    if not all(math.isfinite(w) and w > 0 for w in weights):
        raise ValueError("embedder weights must be finite and > 0")
    total = float(sum(weights))
    return tuple(float(w) / total for w in weights)


def fuse(unit_blocks: Sequence[F32]) -> F32:
    """Fused embeddings (N, sum D_i) from per-model L2-normalised blocks (N, D_i)."""
    if len(unit_blocks) == 1:
        return np.asarray(unit_blocks[0], dtype=np.float32)
    out: F32 = (np.concatenate(unit_blocks, axis=1) / math.sqrt(len(unit_blocks))).astype(
        np.float32
    )
    return out


def block_scale(dims: Sequence[int], weights: Sequence[float]) -> F32 | None:
    """Per-column gallery scale turning the fused dot product into ``sum w_i cos_i``.

    ``None`` when the weights are equal (the plain dot product already is the mean cosine).
    """
    k = len(dims)
    if len(weights) != k:
        raise ValueError(f"{len(weights)} weights for {k} embedders")
    if all(math.isclose(w, 1.0 / k, rel_tol=1e-9) for w in weights):
        return None
    return np.concatenate(
        [np.full(d, k * w, dtype=np.float32) for d, w in zip(dims, weights, strict=True)]
    )


def per_model(fused: F32, dims: Sequence[int]) -> list[F32]:
    """The per-model unit blocks of fused embeddings (inverse of :func:`fuse`)."""
    arr = np.asarray(fused, dtype=np.float32)
    if arr.shape[-1] != sum(dims):
        raise ValueError(f"fused width {arr.shape[-1]} ≠ sum of dims {sum(dims)}")
    bounds = np.cumsum([0, *dims])
    blocks = [arr[..., int(a) : int(b)] for a, b in itertools.pairwise(bounds)]
    return [
        (b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)).astype(np.float32)
        for b in blocks
    ]
