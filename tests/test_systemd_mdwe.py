"""MemoryDenyWriteExecute=yes in the unit does not break the daemon's native code.

systemd enforces it with seccomp (no W+X mappings, no making writable memory executable).
Linux ≥ 6.3 offers the same rule per process as ``prctl(PR_SET_MDWE)``, so a child process
turns it on and then runs what the daemon runs: numpy, OpenCV, every shipped TFLite model
(fp32, fp16, int8) through XNNPACK, Ed25519, TLS, SQLite and a ctypes callback (libffi trampolines).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

MODELS = Path(__file__).resolve().parent.parent / "models"

CHILD = textwrap.dedent(
    """
    import ctypes, json, mmap, sys
    from pathlib import Path

    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        print("NO_MDWE", ctypes.get_errno())
        sys.exit(0)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    wx = libc.mmap(None, 4096, mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC,
                   mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
    assert wx == ctypes.c_void_p(-1).value, "MDWE is not in force"

    import numpy as np
    import cv2
    from ai_edge_litert.interpreter import Interpreter

    img = (np.random.default_rng(0).random((480, 640, 3)) * 255).astype(np.uint8)
    grey = cv2.cvtColor(cv2.resize(img, (320, 240)), cv2.COLOR_BGR2GRAY)
    assert cv2.imencode(".png", grey)[0]

    models_dir = Path(sys.argv[1])
    manifest = json.loads((models_dir / "manifest.json").read_text())
    ran = []
    for model_id, entry in manifest["models"].items():
        interp = Interpreter(model_path=str(models_dir / entry["file"]), num_threads=2)
        inp = interp.get_input_details()[0]
        shape = [d if d > 0 else 96 for d in entry["input"]["shape"]]
        interp.resize_tensor_input(inp["index"], shape)
        interp.allocate_tensors()
        interp.set_tensor(inp["index"], np.zeros(shape, dtype=inp["dtype"]))
        interp.invoke()
        out = interp.get_tensor(interp.get_output_details()[0]["index"])
        assert np.isfinite(out).all()
        ran.append(model_id)

    import sqlite3, ssl
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    import paho.mqtt.client

    key = Ed25519PrivateKey.generate()
    key.public_key().verify(key.sign(b"event"), b"event")
    ssl.create_default_context()
    db = sqlite3.connect(":memory:")
    db.execute("create table t (x)")

    cmp_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int),
                                ctypes.POINTER(ctypes.c_int))
    arr = (ctypes.c_int * 4)(3, 1, 4, 2)
    libc.qsort(arr, 4, ctypes.sizeof(ctypes.c_int), cmp_type(lambda a, b: a[0] - b[0]))
    assert list(arr) == [1, 2, 3, 4]
    print("RAN", ",".join(ran))
    """
)


@pytest.mark.timeout(120)
def test_native_stack_runs_without_write_execute_memory() -> None:
    """numpy, OpenCV, every shipped TFLite model, crypto and ctypes work with W+X memory refused."""
    if not (MODELS / "manifest.json").is_file():
        pytest.skip("models/manifest.json not present")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(MODELS)],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    if proc.stdout.startswith("NO_MDWE"):
        pytest.skip(f"kernel lacks PR_SET_MDWE (Linux < 6.3): {proc.stdout.strip()}")
    ran = set(proc.stdout.strip().removeprefix("RAN ").split(","))
    manifest = json.loads((MODELS / "manifest.json").read_text(encoding="utf-8"))
    assert ran == set(manifest["models"]), proc.stdout
    assert "mtcnn-pnet-fp32" in ran
