"""Embedder evaluation on real identity-labelled data (ORL, dlib johns) — composition.

Used to choose the default embedder (``edge-gate bench --eval``) and by the tests that hold the
figures to a floor. Every image goes through the real pipeline: load → detect (largest face) →
crop/align → embed; a pair's score is the cosine similarity of the two embeddings. All
unordered pairs within a dataset are scored; "pooled" joins the pairs of all datasets.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_gate.vision.image_io import load_image
from edge_gate.vision.pipeline import FacePipeline
from edge_gate_dev.vision import metrics

F32 = npt.NDArray[np.float32]

DATASETS: dict[str, str] = {"orl": "s*/*.pgm", "johns": "*/*.jpg"}


@dataclass
class DatasetEmbeddings:
    """Embeddings of the images of one dataset in which a face was found."""

    name: str
    labels: list[str]
    embeddings: F32
    paths: list[Path]
    n_images: int
    missed: list[Path] = field(default_factory=list)
    embed_ms: list[float] = field(default_factory=list)

    @property
    def detection_rate(self) -> float:
        return (self.n_images - len(self.missed)) / self.n_images if self.n_images else 0.0


def list_dataset(
    cache: Path, name: str, *, identities: int | None = None, per_identity: int | None = None
) -> list[tuple[str, Path]]:
    """``(identity, path)`` pairs of a cached dataset, optionally a deterministic subset."""
    root = Path(cache) / name
    by_id: dict[str, list[Path]] = {}
    for path in sorted(root.glob(DATASETS[name])):
        by_id.setdefault(path.parent.name, []).append(path)
    ids = sorted(by_id)[:identities] if identities else sorted(by_id)
    return [(i, p) for i in ids for p in by_id[i][:per_identity]]


def embed_dataset(
    pipe: FacePipeline, name: str, items: Sequence[tuple[str, Path]]
) -> DatasetEmbeddings:
    labels: list[str] = []
    vecs: list[F32] = []
    paths: list[Path] = []
    missed: list[Path] = []
    embed_ms: list[float] = []
    for label, path in items:
        image = load_image(path)
        dets = pipe.detect(image)
        if not dets:
            missed.append(path)
            continue
        t0 = time.perf_counter()
        vec = pipe.embed(image, dets[0])
        embed_ms.append((time.perf_counter() - t0) * 1000.0)
        labels.append(label)
        vecs.append(vec)
        paths.append(path)
    emb = np.stack(vecs) if vecs else np.empty((0, 0), dtype=np.float32)
    return DatasetEmbeddings(
        name, labels, emb.astype(np.float32), paths, len(items), missed, embed_ms
    )


@dataclass(frozen=True)
class EmbedderReport:
    """Figures of one embedder over the datasets."""

    model_id: str
    embedding_size: int
    per_dataset: dict[str, metrics.Verification]
    pooled: metrics.Verification
    detection_rate: dict[str, float]
    embed_ms_median: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_id,
            "embedding_size": self.embedding_size,
            "pooled": self.pooled.as_dict(),
            "datasets": {k: v.as_dict() for k, v in self.per_dataset.items()},
            "detection_rate": {k: round(v, 4) for k, v in self.detection_rate.items()},
            "embed_ms_median": round(self.embed_ms_median, 2),
        }


def evaluate_embedder(
    pipe: FacePipeline,
    cache: Path,
    datasets: Sequence[str] = ("orl", "johns"),
    *,
    identities: int | None = None,
    per_identity: int | None = None,
) -> EmbedderReport:
    """Verification figures of ``pipe``'s embedder on the cached datasets."""
    per: dict[str, metrics.Verification] = {}
    det: dict[str, float] = {}
    gen_all: list[npt.NDArray[np.float64]] = []
    imp_all: list[npt.NDArray[np.float64]] = []
    times: list[float] = []
    size = 0
    for name in datasets:
        items = list_dataset(cache, name, identities=identities, per_identity=per_identity)
        emb = embed_dataset(pipe, name, items)
        det[name] = emb.detection_rate
        genuine, impostor = metrics.pair_scores(emb.labels, emb.embeddings)
        per[name] = metrics.verification(genuine, impostor)
        gen_all.append(genuine)
        imp_all.append(impostor)
        times.extend(emb.embed_ms)
        size = int(emb.embeddings.shape[1])
    pooled = metrics.verification(np.concatenate(gen_all), np.concatenate(imp_all))
    return EmbedderReport(
        model_id=pipe.embedder_id,
        embedding_size=size,
        per_dataset=per,
        pooled=pooled,
        detection_rate=det,
        embed_ms_median=statistics.median(times) if times else float("nan"),
    )


def markdown_table(reports: Sequence[EmbedderReport]) -> str:
    """README table: one row per embedder."""
    lines = [
        "| embedder | dim | AUC pooled | TAR@FAR1e-3 pooled | EER pooled "
        "| AUC ORL | AUC johns | embed ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        orl = r.per_dataset.get("orl")
        johns = r.per_dataset.get("johns")
        lines.append(
            f"| {r.model_id} | {r.embedding_size} | {r.pooled.auc:.5f} "
            f"| {r.pooled.tar_at_far_1e3:.3f} | "
            f"{r.pooled.eer:.3f} | {orl.auc if orl else float('nan'):.5f} | "
            f"{johns.auc if johns else float('nan'):.5f} | {r.embed_ms_median:.1f} |"
        )
    return "\n".join(lines)
