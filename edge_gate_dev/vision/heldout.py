"""Held-out recognition figures per embedder and fused set, and the default threshold.

Protocol (``edge-gate bench --eval --section vision``):

* every real face of the cache (:mod:`edge_gate_dev.vision.corpus`), split by person into a
  tuning and a test side;
* enrolled templates are the photos as they are; probes are the same faces seen as a door camera
  would see them (*door views*): the face's surroundings scaled so the face is 64, 40 or 32 px
  wide (a person 1-3 m from a 640x480 camera, or a small web photo), a slight blur, a random
  gamma in [0.75, 1.3] (light), JPEG quality 45 (a camera stream), then detected again by MTCNN;
  the photo itself counts as a fourth view. Degradations are synthetic, re-framings of real faces;
* pairwise: every (template photo, probe view) pair of two different faces; genuine when the
  person is the same. AUC, TAR at FAR 1e-3 and 1e-4;
* open set, as at the door: on the test side every other labelled person is enrolled with their
  first 3 photos, in two folds (each labelled person enrolled in one, an impostor in the other);
  genuine probes are views of their other faces, impostor probes are views of
  every face of everyone else. DIR at FPIR 0 and 1 % (rank 1 and above the threshold that lets
  that share of impostor probes in);
* the default threshold of a set is the tuning side's pairwise FAR 1e-5 point, pooled over the four
  views; the test side is then run through the door's own :func:`~edge_gate.gallery.matching.match`
  at that threshold and the configured margin: identified / misidentified / impostors accepted.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge_gate.config.thresholds import calibrated_threshold
from edge_gate.gallery.matching import MatchDecision, TemplateMatrix, match
from edge_gate.vision import fusion
from edge_gate.vision.pipeline import FacePipeline
from edge_gate.vision.types import Detection
from edge_gate_dev.vision import metrics
from edge_gate_dev.vision.corpus import Face, sides

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]

VIEWS: tuple[int, ...] = (0, 64, 40, 32)
"""0 = the photo as it is; N = a door view with the face N px wide."""
N_ENROLL = 3
FOLDS: tuple[int, ...] = (0, 1)
"""Open set: fold 0 enrolls every other labelled person of the test side (sorted by name), fold
1 the rest; each fold's other people and all strangers are its impostors."""
TARGET_FAR = 1e-5  # the shipped defaults' point (edge_gate.config.thresholds)


def door_view(
    face: Face, face_px: int, rng: np.random.Generator, detector: FacePipeline
) -> tuple[U8, Detection] | None:
    """The face as a door camera would see it, re-detected; ``None`` when MTCNN loses it."""
    b = face.detection.box
    w, h = b.x2 - b.x1, b.y2 - b.y1
    img = face.image
    x1, y1 = int(max(0, b.x1 - w)), int(max(0, b.y1 - h))
    x2, y2 = int(min(img.shape[1], b.x2 + w)), int(min(img.shape[0], b.y2 + h))
    region = np.ascontiguousarray(img[y1:y2, x1:x2])
    scale = min(1.0, face_px / max(w, 1.0))
    if scale < 1.0:
        region = np.asarray(
            cv2.resize(region, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA),
            dtype=np.uint8,
        )
    region = np.asarray(cv2.GaussianBlur(region, (0, 0), 0.7), dtype=np.uint8)
    gamma = float(rng.uniform(0.75, 1.3))
    region = np.clip(255.0 * (region / 255.0) ** gamma, 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", region, [cv2.IMWRITE_JPEG_QUALITY, 45])
    if not ok:
        return None
    view = np.asarray(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), dtype=np.uint8)
    if min(view.shape[:2]) < 12:
        return None
    found = detector.detect(view)
    if not found:
        return None
    cx, cy = ((b.x1 + b.x2) / 2 - x1) * scale, ((b.y1 + b.y2) / 2 - y1) * scale
    best = min(
        found,
        key=lambda d: np.hypot((d.box.x1 + d.box.x2) / 2 - cx, (d.box.y1 + d.box.y2) / 2 - cy),
    )
    if (
        np.hypot((best.box.x1 + best.box.x2) / 2 - cx, (best.box.y1 + best.box.y2) / 2 - cy)
        > face_px
    ):
        return None
    return view, best


@dataclass
class Views:
    """Unit embeddings per model: the photo (``photo``) and each probe view (``probe[view]``,
    NaN rows where the view lost the face); people, sets and sides per face."""

    people: list[str]
    sources: list[str]
    labelled: list[bool]
    side: list[int]
    photo: dict[str, F32]
    probe: dict[int, dict[str, F32]]
    embed_ms: dict[str, list[float]]


def _unit(x: F32) -> F32:
    out: F32 = (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)
    return out


def embed_views(
    found: Sequence[Face],
    detector: FacePipeline,
    embedders: dict[str, FacePipeline],
    views: Sequence[int] = VIEWS,
    seed: int = 20261206,
) -> Views:
    rng = np.random.default_rng(seed)
    photo: dict[str, list[F32]] = {m: [] for m in embedders}
    probe: dict[int, dict[str, list[F32]]] = {v: {m: [] for m in embedders} for v in views}
    ms: dict[str, list[float]] = {m: [] for m in embedders}
    for face in found:
        for m, pipe in embedders.items():
            t0 = time.perf_counter()
            photo[m].append(pipe.embed(face.image, face.detection))
            ms[m].append((time.perf_counter() - t0) * 1000.0)
        for v in views:
            seen = (face.image, face.detection) if v == 0 else door_view(face, v, rng, detector)
            for m, pipe in embedders.items():
                if seen is None:
                    probe[v][m].append(np.full_like(photo[m][-1], np.nan))
                else:
                    probe[v][m].append(pipe.embed(seen[0], seen[1]))
    people = [f.person for f in found]
    sources = [f.source for f in found]
    return Views(
        people,
        sources,
        [f.labelled for f in found],
        sides(people, sources),
        {m: _unit(np.stack(v)) for m, v in photo.items()},
        {v: {m: _unit(np.stack(e)) for m, e in d.items()} for v, d in probe.items()},
        ms,
    )


def _fused(blocks: dict[str, F32], combo: Sequence[str]) -> F32:
    return fusion.fuse([blocks[m] for m in combo])


def _pairs(views: Views, combo: Sequence[str], view: int, side: int) -> tuple[F64, F64]:
    rows = np.array([i for i, s in enumerate(views.side) if s == side])
    a = _fused(views.photo, combo)[rows].astype(np.float64)
    b = _fused(views.probe[view], combo)[rows].astype(np.float64)
    keep = ~np.isnan(b).any(axis=1)
    sims = a @ b[keep].T
    people = np.asarray(views.people)[rows]
    same = people[:, None] == people[keep][None, :]
    other_face = rows[:, None] != rows[keep][None, :]
    return sims[same & other_face], sims[~same]


def _threshold_at(impostor: F64, far: float) -> float:
    """Accept at ``score >= threshold``: the smallest value above all but ``far`` of impostors."""
    imp = np.sort(impostor)[::-1]
    k = int(np.floor(far * imp.size))
    return float(np.nextafter(imp[min(k, imp.size - 1)], np.inf))


@dataclass(frozen=True)
class OpenSet:
    genuine_best: F64  # per genuine probe: best identity score (NaN when the view lost the face)
    genuine_right: npt.NDArray[np.bool_]  # rank 1 is the right person
    impostor_best: F64
    matrix: TemplateMatrix
    genuine_rows: list[int]
    impostor_rows: list[int]


def _open_set(views: Views, combo: Sequence[str], view: int, side: int, fold: int) -> OpenSet:
    rows = [i for i, s in enumerate(views.side) if s == side]
    labelled_people = sorted({views.people[i] for i in rows if views.labelled[i]})
    enrolled = labelled_people[fold::2]
    photo = _fused(views.photo, combo)
    probe = _fused(views.probe[view], combo)
    by_person: dict[str, list[int]] = {}
    for i in rows:
        by_person.setdefault(views.people[i], []).append(i)
    matrix = TemplateMatrix(
        enrolled, [photo[by_person[p][:N_ENROLL]] for p in enrolled], int(photo.shape[1])
    )
    genuine = [i for p in enrolled for i in by_person[p][N_ENROLL:] if not np.isnan(probe[i]).any()]
    impostor = [i for i in rows if views.people[i] not in enrolled and not np.isnan(probe[i]).any()]

    def best(i: int) -> tuple[float, str]:
        scores = matrix.identity_scores(probe[i])
        j = int(np.argmax(scores))
        return float(scores[j]), enrolled[j]

    g = [best(i) for i in genuine]
    return OpenSet(
        np.array([s for s, _ in g]),
        np.array([who == views.people[i] for (_, who), i in zip(g, genuine, strict=True)]),
        np.array([best(i)[0] for i in impostor]),
        matrix,
        genuine,
        impostor,
    )


def _dir_at_fpir(folds: Sequence[OpenSet], fpir: float) -> float:
    """Detection and identification rate, both folds pooled, above the score that lets
    ``fpir`` of the impostor probes in (FPIR 0: above the best impostor of all)."""
    best = np.concatenate([o.genuine_best for o in folds])
    right = np.concatenate([o.genuine_right for o in folds])
    imp = np.sort(np.concatenate([o.impostor_best for o in folds]))[::-1]
    k = int(np.floor(fpir * imp.size))
    thr = imp[k] if k < imp.size else -np.inf
    return float(np.mean((best > thr) & right)) if best.size else float("nan")


def calibrate(views: Views, combo: Sequence[str], far: float = TARGET_FAR) -> float:
    """The tuning side's pairwise FAR ``far`` threshold, pooled over the views."""
    impostor = np.concatenate([_pairs(views, combo, v, 0)[1] for v in views.probe])
    return _threshold_at(impostor, far)


def _at_threshold(
    views: Views, combo: Sequence[str], view: int, threshold: float, margin: float
) -> dict[str, Any]:
    g, i = _pairs(views, combo, view, 1)
    probe = _fused(views.probe[view], combo)
    genuine = identified = misidentified = impostors = accepted = 0
    for fold in FOLDS:
        o = _open_set(views, combo, view, 1, fold)
        for r in o.genuine_rows:
            res = match(o.matrix, probe[r], threshold, margin)
            if res.decision is MatchDecision.MATCH:
                identified += res.user_id == views.people[r]
                misidentified += res.user_id != views.people[r]
        for r in o.impostor_rows:
            accepted += match(o.matrix, probe[r], threshold, margin).decision is MatchDecision.MATCH
        genuine += len(o.genuine_rows)
        impostors += len(o.impostor_rows)
    return {
        "pairwise_tar": round(float(np.mean(g >= threshold)), 4),
        "pairwise_far": float(np.mean(i >= threshold)),
        "genuine_probes": genuine,
        "identified": identified,
        "identified_rate": round(identified / max(1, genuine), 4),
        "misidentified": misidentified,
        "impostor_probes": impostors,
        "impostors_accepted": accepted,
    }


def _figures(g: F64, i: F64, folds: Sequence[OpenSet]) -> dict[str, Any]:
    return {
        "genuine_pairs": int(g.size),
        "impostor_pairs": int(i.size),
        "auc": round(metrics.auc(g, i), 5),
        "tar_at_far_1e-3": round(metrics.tar_at_far(g, i, 1e-3)[0], 4),
        "tar_at_far_1e-4": round(metrics.tar_at_far(g, i, 1e-4)[0], 4),
        "dir_at_fpir_0": round(_dir_at_fpir(folds, 0.0), 4),
        "dir_at_fpir_1pct": round(_dir_at_fpir(folds, 0.01), 4),
    }


def _summed(doors: Sequence[dict[str, Any]]) -> dict[str, Any]:
    keys = (
        "genuine_probes",
        "identified",
        "misidentified",
        "impostor_probes",
        "impostors_accepted",
    )
    out: dict[str, Any] = {k: sum(int(d[k]) for d in doors) for k in keys}
    out["identified_rate"] = round(out["identified"] / max(1, out["genuine_probes"]), 4)
    return out


def evaluate(
    views: Views,
    combos: Sequence[Sequence[str]],
    *,
    margin: float = 0.05,
    thresholds: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """One report per embedder set: figures per view on the test side, the calibrated
    threshold, and the door's outcome at it (or at ``thresholds[name]`` when given)."""
    out: list[dict[str, Any]] = []
    for combo in combos:
        name = "+".join(combo)
        calibrated = calibrate(views, combo)
        used = (thresholds or {}).get(name, calibrated)
        per_view: dict[str, Any] = {}
        pooled: dict[str, list[Any]] = {"g": [], "i": [], "o": [], "door": []}
        for v in views.probe:
            g, i = _pairs(views, combo, v, 1)
            o = [_open_set(views, combo, v, 1, fold) for fold in FOLDS]
            door = _at_threshold(views, combo, v, used, margin)
            per_view["photo" if v == 0 else f"{v}px"] = _figures(g, i, o) | {"at_threshold": door}
            pooled["g"].append(g)
            pooled["i"].append(i)
            pooled["o"].extend(o)
            pooled["door"].append(door)
        per_view["all"] = _figures(
            np.concatenate(pooled["g"]), np.concatenate(pooled["i"]), pooled["o"]
        ) | {"at_threshold": _summed(pooled["door"])}
        ms = [sum(t) for t in zip(*(views.embed_ms[m] for m in combo), strict=True)]
        out.append(
            {
                "embedders": name,
                "calibrated_threshold_far_1e-4": round(calibrate(views, combo, 1e-4), 4),
                "calibrated_threshold_far_1e-5": round(calibrated, 4),
                "threshold_used": round(used, 4),
                "margin": margin,
                "ms_per_face_median": round(statistics.median(ms), 2),
                "views": per_view,
            }
        )
    return out


def summary(views: Views) -> dict[str, Any]:
    rows = range(len(views.people))
    return {
        side_name: {
            "faces": sum(1 for i in rows if views.side[i] == s),
            "people": len({views.people[i] for i in rows if views.side[i] == s}),
            "by_set": {
                src: len(
                    {
                        views.people[i]
                        for i in rows
                        if views.side[i] == s and views.sources[i] == src
                    }
                )
                for src in sorted(set(views.sources))
            },
        }
        for side_name, s in (("tuning", 0), ("test", 1))
    }


def markdown(reports: Sequence[dict[str, Any]], view: str) -> str:
    lines = [
        f"| embedders ({view}) | AUC | TAR@FAR 1e-3 | TAR@FAR 1e-4 | DIR@FPIR 0 "
        "| DIR@FPIR 1 % | ms/face |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        f = r["views"][view]
        lines.append(
            f"| {r['embedders']} | {f['auc']:.4f} | {f['tar_at_far_1e-3']:.3f} "
            f"| {f['tar_at_far_1e-4']:.3f} | {f['dir_at_fpir_0']:.3f} "
            f"| {f['dir_at_fpir_1pct']:.3f} | {r['ms_per_face_median']:.1f} |"
        )
    return "\n".join(lines)


COMBOS: tuple[tuple[str, ...], ...] = (
    ("mobilefacenet",),
    ("dlib-resnet",),
    ("facenet",),
    ("mobilefacenet", "dlib-resnet"),
    ("mobilefacenet", "dlib-resnet", "facenet"),
)


def shipped_thresholds(combos: Sequence[Sequence[str]] = COMBOS) -> dict[str, float]:
    """The defaults edge-gate ships (:mod:`edge_gate.config.thresholds`) by set name."""
    out = {}
    for combo in combos:
        if (t := calibrated_threshold(combo)) is not None:
            out["+".join(combo)] = t
    return out


def run(cache: Path) -> dict[str, Any]:
    """Every set of :data:`COMBOS` on the cache's faces (about a minute), the door's outcome
    at the shipped default thresholds; markdown tables per view."""
    from edge_gate.config import VisionConfig
    from edge_gate_dev.vision.corpus import faces

    one = ["mobilefacenet"]  # detection only: the embedder of these two is not used
    detector = FacePipeline.from_config(VisionConfig(min_face_px=12, embedders=one))
    embedders = {
        m: FacePipeline.from_config(VisionConfig(min_face_px=12, embedders=[m]))
        for m in ("mobilefacenet", "dlib-resnet", "facenet")
    }
    found = faces(cache, FacePipeline.from_config(VisionConfig(min_face_px=20, embedders=one)))
    views = embed_views(found, detector, embedders)
    reports = evaluate(views, COMBOS, thresholds=shipped_thresholds())
    return {
        "summary": summary(views),
        "sets": reports,
        "markdown": {v: markdown(reports, v) for v in ("photo", "64px", "40px", "32px", "all")},
    }


def main() -> None:
    """``python -m edge_gate_dev.vision.heldout [CACHE]``: print the tables (about a minute)."""
    import sys

    cache = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.home() / ".cache/edge-gate"
    result = run(cache)
    print(result["summary"])
    for table in result["markdown"].values():
        print(table, end="\n\n")
    for r in result["sets"]:
        door = r["views"]["all"]["at_threshold"]
        print(
            r["embedders"],
            "calibrated",
            r["calibrated_threshold_far_1e-5"],
            "shipped",
            r["threshold_used"],
            door,
        )


if __name__ == "__main__":
    main()
