"""Load and run every model in models/manifest.json with the deployment runtime (no TensorFlow).

    python models/convert/check_runtime.py            # ai_edge_litert, else tflite_runtime
    python models/convert/check_runtime.py --tflite-runtime

Checks sha256 and size against the manifest, resizes dynamic inputs, invokes on random input and
compares output names/shapes with the manifest. Exit 1 if any model fails.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

MODELS = Path(__file__).resolve().parent.parent


def interpreter_class(force_tflite_runtime: bool):
    if not force_tflite_runtime:
        try:
            from ai_edge_litert.interpreter import Interpreter

            return Interpreter, "ai_edge_litert"
        except ImportError:
            pass
    from tflite_runtime.interpreter import Interpreter

    return Interpreter, "tflite_runtime"


def main() -> int:
    Interpreter, runtime = interpreter_class("--tflite-runtime" in sys.argv)
    manifest = json.loads((MODELS / "manifest.json").read_text())
    failed = 0
    for mid, m in manifest["models"].items():
        path = MODELS / m["file"]
        try:
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() != m["sha256"] or len(data) != m["bytes"]:
                raise ValueError("sha256/size mismatch with manifest")
            it = Interpreter(model_path=str(path), num_threads=2)
            inp = it.get_input_details()[0]
            shape = [d if d > 0 else (96 if i in (1, 2) else 3) for i, d in enumerate(m["input"]["shape"])]
            it.resize_tensor_input(inp["index"], shape)
            it.allocate_tensors()
            it.set_tensor(inp["index"], np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32))
            it.invoke()
            outs = it.get_output_details()
            names = [o["name"] for o in outs]
            if names != m["output"]["names"]:
                raise ValueError(f"output names {names} != manifest {m['output']['names']}")
            got = {o["name"]: list(it.get_tensor(o["index"]).shape) for o in outs}
            if not all(np.isfinite(it.get_tensor(o["index"])).all() for o in outs):
                raise ValueError("non-finite output")
            print(f"OK   {runtime} {mid}: in {shape} out {got}")
        except Exception as e:  # report every model, then fail
            failed += 1
            print(f"FAIL {runtime} {mid}: {type(e).__name__}: {e}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
