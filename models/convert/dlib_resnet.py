"""dlib's face descriptor ResNet (face-recognition-models 0.3.0, CC0) -> TFLite fp32 / fp16.

The weights are read straight from dlib's serialisation (dlib_dat.py, numpy only) and the network of
dlib's examples/dnn_face_recognition_ex.cpp is rebuilt op by op in TensorFlow: 150x150 RGB input,
(x - mean_rgb) / 256 (the means are read from the file), conv 7x7/2 + max-pool 3x3/2, 14 residual
units (4 of them down-sampling: 3x3/2 conv without padding, skip = 2x2/2 average pool, the sum
zero-padded bottom/right and in channels to the larger operand, as dlib's tt::add does), global
average pool, 128x256 fully connected without bias. dlib's affine layers are folded into the
preceding convolutions.

Before anything is written, the fp32 TFLite output is checked against dlib itself (PyPI dlib-bin,
installed in the conversion venv only) on the real 150x150 chips of dlib's own ``johns`` set:
min cosine >= 0.9999 or nothing is written. The face chips dlib aligns with its 5-point shape
predictor are also used to derive the chip template for MTCNN's five landmarks (dlib_template.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

import common
import dlib_dat
import tfl

FRM = common.EXTRACT / "face_recognition_models-0.3.0" / "face_recognition_models" / "models"
DAT = FRM / "dlib_face_recognition_resnet_model_v1.dat"


def _hwio(w: np.ndarray) -> tf.Tensor:
    return tf.constant(np.transpose(w, (2, 3, 1, 0)), tf.float32)  # [O,I,kh,kw] -> [kh,kw,I,O]


def _conv(x: tf.Tensor, w: np.ndarray, b: np.ndarray, stride: int) -> tf.Tensor:
    pad = "VALID" if stride == 2 or w.shape[2] == 7 else "SAME"  # dlib: no padding when strided
    y = tf.nn.conv2d(x, _hwio(w), [1, stride, stride, 1], pad)
    return tf.nn.bias_add(y, tf.constant(b, tf.float32))


def _pad_to(x: tf.Tensor, h: int, w: int, c: int) -> tf.Tensor:
    _, xh, xw, xc = (int(d) for d in x.shape)
    if (xh, xw, xc) == (h, w, c):
        return x
    return tf.pad(x, [[0, 0], [0, h - xh], [0, w - xw], [0, c - xc]])


def forward(net: dlib_dat.ResNet, x: tf.Tensor) -> tf.Tensor:
    """x: [1,150,150,3] float32, already (rgb - mean) / 256."""
    y = tf.nn.relu(_conv(x, net.stem_w, net.stem_b, 2))
    y = tf.nn.max_pool2d(y, 3, 2, "VALID")
    for u in net.units:
        a = tf.nn.relu(_conv(y, u.w1, u.b1, 2 if u.down else 1))
        a = _conv(a, u.w2, u.b2, 1)
        skip = tf.nn.avg_pool2d(y, 2, 2, "VALID") if u.down else y
        h = max(int(a.shape[1]), int(skip.shape[1]))
        w = max(int(a.shape[2]), int(skip.shape[2]))
        c = max(int(a.shape[3]), int(skip.shape[3]))
        y = tf.nn.relu(_pad_to(a, h, w, c) + _pad_to(skip, h, w, c))
    y = tf.reduce_mean(y, axis=[1, 2])
    return tf.matmul(y, tf.constant(net.fc, tf.float32))


def concrete(net: dlib_dat.ResNet):
    @tf.function(input_signature=[tf.TensorSpec([1, 150, 150, 3], tf.float32, name="input")])
    def serve(image):
        return {"embeddings": forward(net, image)}

    return serve.get_concrete_function()


def normalise(chip_rgb: np.ndarray, mean: tuple[float, float, float]) -> np.ndarray:
    return ((chip_rgb.astype(np.float32) - np.asarray(mean, np.float32)) / 256.0).astype(np.float32)


def johns_chips() -> list[tuple[str, np.ndarray]]:
    """dlib's own 150x150 aligned chips (examples/johns), RGB uint8."""
    return [(p, im.astype(np.uint8)) for p, im in common.johns_images()]


def dlib_descriptors(chips: list[np.ndarray]) -> np.ndarray:
    import dlib  # dlib-bin, conversion venv only

    rec = dlib.face_recognition_model_v1(str(DAT))
    return np.asarray([np.asarray(rec.compute_face_descriptor(c)) for c in chips], np.float32)


def verify(data: bytes, net: dlib_dat.ResNet, chips: list[np.ndarray]) -> dict[str, float]:
    ref = dlib_descriptors(chips)
    ours = np.concatenate(
        [tfl.run_tflite(data, [normalise(c, net.mean_rgb)[None]])["embeddings"] for c in chips]
    )
    cos = common.cosine(ours, ref)
    res = {
        "n": len(chips),
        "min_cosine_vs_dlib": float(cos.min()),
        "mean_cosine_vs_dlib": float(cos.mean()),
        "max_abs_vs_dlib": float(np.max(np.abs(ours - ref))),
    }
    return res


def main() -> None:
    net = dlib_dat.parse(DAT)
    fn = tfl.freeze(concrete(net))

    def name(data: bytes) -> bytes:
        return tfl.name_outputs(data, {128: "embeddings"}, ["embeddings"])

    chips = [c for _, c in johns_chips()]
    fp32 = name(tfl.convert(fn, "fp32"))
    res = verify(fp32, net, chips)
    print("dlib-resnet fp32 TFLite vs dlib (johns chips):", res)
    if res["min_cosine_vs_dlib"] < 0.9999:
        sys.exit(f"rebuilt dlib ResNet differs from dlib: {res}")
    fp16 = name(tfl.convert(fn, "fp16"))
    res16 = verify(fp16, net, chips)
    print("dlib-resnet fp16 TFLite vs dlib (johns chips):", res16)
    if res16["min_cosine_vs_dlib"] < 0.9999:
        sys.exit(f"fp16 dlib ResNet differs from dlib: {res16}")
    common.write_json(common.WORK / "dlib_resnet_verify.json", {"fp32": res, "fp16": res16})
    measured = {}
    for variant, data in (("fp32", fp32), ("fp16", fp16)):
        path = common.MODELS_DIR / f"dlib-resnet-{variant}.tflite"
        tfl.write(path, data)
        check = res if variant == "fp32" else res16
        measured[f"dlib-resnet-{variant}"] = {
            **_speed(path),
            "cosine_to_dlib_min": round(check["min_cosine_vs_dlib"], 7),
            "cosine_crops": f"{check['n']} dlib johns chips (150x150, dlib's own alignment), dlib-bin 20.0.1",
        }
    common.write_json(common.WORK / "measured_dlib-resnet.json", measured)


def _speed(path: Path) -> dict[str, float]:
    """Median / p95 ms of one 150x150 face on ai_edge_litert with 2 threads (as the gateway runs)."""
    import time

    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=2)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    x = np.random.default_rng(0).random((1, 150, 150, 3), dtype=np.float32)
    times = []
    for i in range(60):
        t0 = time.perf_counter()
        it.set_tensor(inp, x)
        it.invoke()
        it.get_tensor(out)
        if i >= 10:
            times.append((time.perf_counter() - t0) * 1000.0)
    return {"median_ms_2threads": round(float(np.median(times)), 3),
            "p95_ms_2threads": round(float(np.percentile(times, 95)), 3)}


if __name__ == "__main__":
    if len(sys.argv) > 1:
        DAT = Path(sys.argv[1])
    main()
