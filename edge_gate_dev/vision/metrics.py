"""Verification metrics over genuine/impostor similarity scores — pure core, numpy only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__layer__ = "core"

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Verification:
    """Summary of a genuine/impostor score set (higher score = more similar)."""

    n_genuine: int
    n_impostor: int
    auc: float
    tar_at_far_1e3: float
    threshold_at_far_1e3: float
    eer: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "n_genuine": self.n_genuine,
            "n_impostor": self.n_impostor,
            "auc": round(self.auc, 5),
            "tar_at_far_1e-3": round(self.tar_at_far_1e3, 4),
            "threshold_at_far_1e-3": round(self.threshold_at_far_1e3, 4),
            "eer": round(self.eer, 4),
        }


def pair_scores(labels: list[str], embeddings: npt.NDArray[np.float32]) -> tuple[F64, F64]:
    """Cosine similarities of all unordered pairs, split into (genuine, impostor)."""
    emb = embeddings.astype(np.float64)
    sims = emb @ emb.T
    iu = np.triu_indices(len(labels), k=1)
    lab = np.asarray(labels)
    same = lab[iu[0]] == lab[iu[1]]
    scores = sims[iu]
    return scores[same], scores[~same]


def auc(genuine: F64, impostor: F64) -> float:
    """Area under the ROC curve (Mann-Whitney U with tie-averaged ranks)."""
    if genuine.size == 0 or impostor.size == 0:
        raise ValueError("need genuine and impostor scores")
    scores = np.concatenate([genuine, impostor])
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(scores.size, dtype=np.float64)
    sorted_scores = scores[order]
    ranks[order] = np.arange(1, scores.size + 1, dtype=np.float64)
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    for start, count in zip(first, counts, strict=True):
        if count > 1:
            ranks[order[start : start + count]] = start + (count + 1) / 2.0
    u = ranks[: genuine.size].sum() - genuine.size * (genuine.size + 1) / 2.0
    return float(u / (genuine.size * impostor.size))


def tar_at_far(genuine: F64, impostor: F64, far: float) -> tuple[float, float]:
    """(TAR, threshold): accept when score > threshold, threshold set so that FAR <= ``far``."""
    imp = np.sort(impostor)[::-1]
    k = int(np.floor(far * imp.size))
    threshold = float(imp[min(k, imp.size - 1)])
    return float(np.mean(genuine > threshold)), threshold


def eer(genuine: F64, impostor: F64) -> float:
    """Equal error rate (where false accepts and false rejects balance)."""
    thresholds = np.unique(np.concatenate([genuine, impostor]))
    far = 1.0 - np.searchsorted(np.sort(impostor), thresholds, side="left") / impostor.size
    frr = np.searchsorted(np.sort(genuine), thresholds, side="left") / genuine.size
    i = int(np.argmin(np.abs(far - frr)))
    return float((far[i] + frr[i]) / 2.0)


def verification(genuine: F64, impostor: F64) -> Verification:
    tar, thr = tar_at_far(genuine, impostor, 1e-3)
    return Verification(
        n_genuine=int(genuine.size),
        n_impostor=int(impostor.size),
        auc=auc(genuine, impostor),
        tar_at_far_1e3=tar,
        threshold_at_far_1e3=thr,
        eer=eer(genuine, impostor),
    )
