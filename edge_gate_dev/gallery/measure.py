"""Open-set accuracy on real labelled photos (ORL + dlib johns) through the real pipeline.

Protocol (what the default threshold in ``[gallery]`` was chosen from):

* 45 identities (ORL s1..s40, 10 photos each; johns, 5 people x 11); the largest face of each
  photo is embedded by the configured pipeline (``min_face_px`` lowered to 20: ORL photos are
  92x112).
* Two disjoint splits: A enrolls the even-numbered ORL subjects and johns 1, 3, 5, and uses the
  other 22 identities as non-enrolled impostors; B is the reverse. Each enrolled person gets
  their first ``n_enroll`` photos as templates; their other photos are genuine probes.
* Pairwise figures: every cross-identity pair of photos (≈ 101k) as impostor scores and every
  same-identity pair as genuine scores, for the threshold-vs-FAR table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_gate.gallery.calibration import threshold_for_far
from edge_gate.vision.image_io import load_image
from edge_gate.vision.pipeline import FacePipeline
from edge_gate_dev.gallery.openset import open_set_eval

FloatArray = npt.NDArray[np.float32]


def identity_dirs(cache: Path) -> list[Path]:
    orl = sorted((cache / "orl").glob("s*"), key=lambda p: int(p.name[1:]))
    johns = sorted(p for p in (cache / "johns").iterdir() if p.is_dir())
    return [p for p in orl if p.is_dir()] + johns


def embed_labelled(pipe: FacePipeline, cache: Path) -> tuple[list[str], FloatArray, int]:
    """Labels and embeddings of every photo with a face; also the number of photos without."""
    labels: list[str] = []
    vecs: list[FloatArray] = []
    missed = 0
    for d in identity_dirs(cache):
        files = sorted(
            (f for f in d.iterdir() if f.suffix.lower() in {".pgm", ".jpg"}),
            key=lambda f: (len(f.stem), f.stem),
        )
        for f in files:
            faces = pipe.analyze(load_image(f), embed=True)
            if not faces or faces[0].embedding is None:
                missed += 1
                continue
            labels.append(f"{d.parent.name}/{d.name}")
            vecs.append(faces[0].embedding)
    return labels, np.stack(vecs).astype(np.float32), missed


def splits(labels: list[str]) -> dict[str, tuple[list[str], list[str]]]:
    ids = list(dict.fromkeys(labels))
    orl = [i for i in ids if i.startswith("orl/")]
    johns = [i for i in ids if i.startswith("johns/")]
    a = orl[1::2] + johns[0::2]  # s2, s4, ... (even subject numbers) + johns 1, 3, 5
    b = orl[0::2] + johns[1::2]
    return {"A": (a, b), "B": (b, a)}


def pair_table(labels: list[str], vecs: FloatArray, fars: tuple[float, ...]) -> dict[str, Any]:
    lab = np.asarray(labels)
    sims = vecs @ vecs.T
    iu = np.triu_indices(len(lab), 1)
    same = (lab[:, None] == lab[None, :])[iu]
    scores = sims[iu]
    impostor, genuine = scores[~same], scores[same]
    rows = []
    for far in fars:
        t = threshold_for_far(impostor, far)
        rows.append(
            {
                "far": far,
                "threshold": round(t, 4),
                "genuine_pair_accept": float(np.mean(genuine >= t)),
            }
        )
    return {
        "impostor_pairs": int(impostor.size),
        "genuine_pairs": int(genuine.size),
        "max_impostor": round(float(impostor.max()), 4),
        "rows": rows,
    }


def measure_open_set(
    pipe: FacePipeline, cache: Path, threshold: float, margin: float, n_enroll: int = 3
) -> dict[str, Any]:
    """Open-set figures for both splits at ``threshold``/``margin`` plus the pair table."""
    labels, vecs, missed = embed_labelled(pipe, cache)
    out: dict[str, Any] = {"embedder": pipe.embedder_id, "photos": len(labels), "no_face": missed}
    for name, (enrolled, _) in splits(labels).items():
        report = open_set_eval(labels, vecs, enrolled, n_enroll, threshold, margin)
        out[f"split_{name}"] = report.as_json()
    out["pairs"] = pair_table(labels, vecs, (1e-2, 1e-3, 1e-4, 1e-5))
    return out
