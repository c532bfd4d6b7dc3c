"""Open-set 1:N matching over an in-memory template matrix (pure core: numpy + stdlib).

Every probe is scored against every template of every person (one matrix-vector product,
no early exit), so the time taken does not depend on who is enrolled or who is looking.
A person may have several templates; their identity score is the best of them. The
decision needs both a similarity threshold and a margin between the best and the
second-best *identity*, so a face that is merely close to two people is not let in.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__layer__ = "core"

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

GEMV_BLOCK_ELEMENTS = 2048 * 192
NO_SCORE = -1.0
"""Score reported for a missing best/second-best identity (cosine similarity is ≥ -1)."""


class MatchDecision(enum.Enum):
    """Outcome of one open-set comparison."""

    MATCH = "match"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class MatchResult:
    """Best and second-best identity for one probe and the open-set decision.

    ``best_user_id`` is filled even when the decision is ``UNKNOWN`` (for calibration and
    diagnostics); only ``user_id`` says who was recognised.
    """

    decision: MatchDecision
    user_id: str | None
    best_user_id: str | None
    score: float
    second_score: float

    @property
    def margin(self) -> float:
        return self.score - self.second_score


def l2_normalise(vectors: FloatArray) -> FloatArray:
    """Return float32 rows of unit length; zero rows are refused (they carry no identity)."""
    arr = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(arr, axis=-1, keepdims=True)
    if np.any(norms <= 1e-12) or not np.all(np.isfinite(arr)):
        raise ValueError("template vectors must be finite and non-zero")
    out: FloatArray = (arr / norms).astype(np.float32)
    return out


class TemplateMatrix:
    """All templates of a gallery in one contiguous float32 matrix, grouped by person.

    Templates of one person are stored next to each other; ``_starts`` holds the first row
    of each person so a per-identity maximum is one ``np.maximum.reduceat``.

    ``scale`` (per column, from :func:`edge_gate.vision.fusion.block_scale`) weighs the models
    of a fused embedding: it multiplies the unit probe before the dot products (:meth:`weigh`).
    """

    def __init__(
        self,
        user_ids: Sequence[str],
        templates: Sequence[FloatArray],
        dim: int,
        scale: FloatArray | None = None,
    ) -> None:
        if len(user_ids) != len(templates):
            raise ValueError("one template block per user id")
        if len(set(user_ids)) != len(user_ids):
            raise ValueError("user ids must be unique")
        blocks: list[FloatArray] = []
        starts: list[int] = []
        row = 0
        for block in templates:
            arr = np.asarray(block, dtype=np.float32)
            if arr.ndim != 2 or arr.shape[1] != dim or arr.shape[0] == 0:
                raise ValueError(f"each person needs ≥ 1 template of dimension {dim}")
            starts.append(row)
            row += arr.shape[0]
            blocks.append(arr)
        self.dim = dim
        if scale is not None and np.asarray(scale).shape != (dim,):
            raise ValueError(f"scale must have shape ({dim},)")
        self.scale: FloatArray | None = (
            None if scale is None else np.asarray(scale, dtype=np.float32)
        )
        self.user_ids: tuple[str, ...] = tuple(user_ids)
        self._starts: IntArray = np.asarray(starts, dtype=np.int64)
        matrix = np.concatenate(blocks, axis=0) if blocks else np.zeros((0, dim), np.float32)
        self.matrix: FloatArray = np.ascontiguousarray(
            l2_normalise(matrix) if len(matrix) else matrix
        )
        counts = [len(b) for b in blocks]
        self.owner: IntArray = np.repeat(np.arange(len(blocks), dtype=np.int64), counts)
        self._index = {u: i for i, u in enumerate(self.user_ids)}

    @property
    def n_people(self) -> int:
        return len(self.user_ids)

    @property
    def n_templates(self) -> int:
        return int(self.matrix.shape[0])

    def weigh(self, unit_probes: FloatArray) -> FloatArray:
        """Unit probe row(s) with the model weights applied (unchanged without ``scale``)."""
        if self.scale is None:
            return unit_probes
        out: FloatArray = (unit_probes * self.scale).astype(np.float32)
        return out

    def identity_scores(self, probe: FloatArray) -> FloatArray:
        """Cosine similarity of ``probe`` to each person (max over that person's templates)."""
        if self.n_people == 0:
            return np.zeros(0, dtype=np.float32)  # nobody enrolled: nothing to compare
        if probe.shape != (self.dim,):
            raise ValueError(f"probe must have shape ({self.dim},), got {probe.shape}")
        unit = self.weigh(l2_normalise(probe[None, :])[0])
        per_template: FloatArray = np.empty(self.n_templates, dtype=np.float32)
        # Row blocks small enough that BLAS stays single-threaded: on a 2-4 core gateway that
        # also runs TFLite, a threaded gemv contends and is slower (measured 3.3 vs 8 ms median
        # for 100k x 192 on a loaded 2-core box); every row is still scored, every time.
        block = max(64, GEMV_BLOCK_ELEMENTS // self.dim)
        for lo in range(0, self.n_templates, block):
            hi = lo + block
            np.dot(self.matrix[lo:hi], unit, out=per_template[lo:hi])
        per_identity: FloatArray = np.maximum.reduceat(per_template, self._starts)
        return per_identity

    def identity_score(self, probe: FloatArray, user_id: str) -> float:
        """1:1: cosine similarity of ``probe`` to ``user_id`` (best of their templates);
        :data:`NO_SCORE` for someone not in this gallery."""
        index = self._index.get(user_id)
        if index is None:
            return NO_SCORE
        if probe.shape != (self.dim,):
            raise ValueError(f"probe must have shape ({self.dim},), got {probe.shape}")
        unit = self.weigh(l2_normalise(probe[None, :])[0])
        return float(np.max(self.templates_of(index) @ unit))

    def templates_of(self, index: int) -> FloatArray:
        start = int(self._starts[index])
        end = int(self._starts[index + 1]) if index + 1 < self.n_people else self.n_templates
        return self.matrix[start:end]


def top_two(scores: FloatArray) -> tuple[int, float, float]:
    """Index of the best score, the best score and the second-best score (NO_SCORE if absent)."""
    n = int(scores.shape[0])
    if n == 0:
        return -1, NO_SCORE, NO_SCORE
    if n == 1:
        return 0, float(scores[0]), NO_SCORE
    part = np.argpartition(scores, n - 2)[n - 2 :]
    a, b = int(part[0]), int(part[1])
    if scores[a] < scores[b] or (scores[a] == scores[b] and a > b):
        a, b = b, a
    return a, float(scores[a]), float(scores[b])


def decide(
    user_ids: Sequence[str], scores: FloatArray, threshold: float, margin: float
) -> MatchResult:
    """Open-set decision from per-identity scores: match only if ≥ threshold and clear by margin."""
    best, best_score, second_score = top_two(scores)
    best_id = user_ids[best] if best >= 0 else None
    ok = best_id is not None and best_score >= threshold and best_score - second_score >= margin
    return MatchResult(
        decision=MatchDecision.MATCH if ok else MatchDecision.UNKNOWN,
        user_id=best_id if ok else None,
        best_user_id=best_id,
        score=best_score,
        second_score=second_score,
    )


def match(
    gallery: TemplateMatrix, probe: FloatArray, threshold: float, margin: float
) -> MatchResult:
    """Score ``probe`` against the whole gallery and decide (open set)."""
    return decide(gallery.user_ids, gallery.identity_scores(probe), threshold, margin)
