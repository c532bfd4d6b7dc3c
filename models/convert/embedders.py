"""Cosine-to-fp32 and speed of the FaceNet / MobileFaceNet variants (called by evaluate.py)."""

from __future__ import annotations

import numpy as np

import common

SIZE = {"facenet": 160, "mobilefacenet": 112}


def _embed(net, crops: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([net(common.normalise(x)[None])[0] for x in crops])


def _rank1(emb: np.ndarray, labels: list[str]) -> float:
    """Leave-one-out nearest-neighbour identification rate (cosine)."""
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    s = e @ e.T
    np.fill_diagonal(s, -2.0)
    lab = np.asarray(labels)
    return float(np.mean(lab[np.argmax(s, axis=1)] == lab))


def evaluate(fam: str, Net, timeit) -> dict[str, dict]:
    size = SIZE[fam]
    crops = common.face_crops(size)
    orl_labels = [p for p, _ in common.orl_images()]
    johns_labels = [p for p, _ in common.johns_images()]
    # held-out = not used for int8 calibration (ORL s21-s40, odd johns)
    held = crops["orl"][200:] + crops["johns"][1::2]
    allc = crops["orl"] + crops["johns"]
    ref_path = common.WORK / "facenet-fp32.tflite" if fam == "facenet" else common.MODELS_DIR / f"{fam}-fp32.tflite"
    shape = [1, size, size, 3]
    out: dict[str, dict] = {}
    ref_net = Net(ref_path, shape)
    ref_all = _embed(ref_net, allc)
    ref_held = _embed(ref_net, held)
    x = common.normalise(held[0])[None]
    base = timeit(lambda: ref_net(x), 30)
    print(fam, "fp32", base, flush=True)
    out[f"{fam}-fp32"] = {
        "median_ms_2threads": base["median_ms"],
        "p95_ms_2threads": base["p95_ms"],
        "cosine_to_fp32_median": 1.0,
        "orl_rank1": round(_rank1(ref_all[:400], orl_labels), 4),
        "johns_rank1": round(_rank1(ref_all[400:], johns_labels), 4),
    }
    if fam == "mobilefacenet":
        orig = Net(common.EXPO_ASSETS / "MobileFaceNet.tflite", [2, 112, 112, 3])
        x2 = np.concatenate([x, x])
        t2 = timeit(lambda: orig(x2), 30)
        out[f"{fam}-fp32"]["original_batch2_median_ms"] = t2["median_ms"]
    for variant in ("fp16", "int8"):
        path = common.MODELS_DIR / f"{fam}-{variant}.tflite"
        if not path.exists():
            path = common.WORK / f"{fam}-{variant}.tflite"  # measured, not committed
        if not path.exists():
            continue
        net = Net(path, shape)
        e_all = _embed(net, allc)
        e_held = _embed(net, held)
        c_all = common.cosine(e_all, ref_all)
        c_held = common.cosine(e_held, ref_held)
        t = timeit(lambda net=net: net(x), 30)
        out[f"{fam}-{variant}"] = {
            "median_ms_2threads": t["median_ms"],
            "p95_ms_2threads": t["p95_ms"],
            "cosine_to_fp32_median": round(float(np.median(c_all)), 5),
            "cosine_to_fp32_min": round(float(np.min(c_all)), 5),
            "cosine_to_fp32_median_heldout": round(float(np.median(c_held)), 5),
            "cosine_to_fp32_min_heldout": round(float(np.min(c_held)), 5),
            "cosine_crops": f"{len(allc)} real crops (400 ORL + 55 johns), {len(held)} held out of calibration",
            "orl_rank1": round(_rank1(e_all[:400], orl_labels), 4),
            "johns_rank1": round(_rank1(e_all[400:], johns_labels), 4),
        }
        print(fam, variant, out[f"{fam}-{variant}"], flush=True)
    return out
