"""The unit's process sandbox does not break the daemon's native stack.

Two of the unit's rules act inside the process and can be reproduced without systemd as PID 1:

* ``MemoryDenyWriteExecute=yes`` — Linux ≥ 6.3 offers the same rule as ``prctl(PR_SET_MDWE)``;
* ``SystemCallFilter=@system-service`` minus ``@privileged @resources`` with
  ``SystemCallErrorNumber=EPERM`` — rebuilt here with libseccomp from the groups
  ``systemd-analyze syscall-filter`` prints;
* ``RestrictAddressFamilies=`` — systemd also enforces it with seccomp on ``socket()``.

A child process turns both on and then runs what the daemon runs: numpy, OpenCV, every shipped
TFLite model (fp32, fp16, int8) through XNNPACK with threads, Ed25519, TLS, SQLite in WAL mode,
a pseudo-terminal, TCP and AF_UNIX sockets, sd_notify, atomic secret writes and a ctypes
callback (libffi trampolines).
"""

from __future__ import annotations

import ctypes.util
import functools
import json
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.test_systemd_unit import unit_settings

MODELS = Path(__file__).resolve().parent.parent / "models"
# Always allowed by systemd whatever the filter says (systemd.exec(5), SystemCallFilter=).
IMPLICIT = {"execve", "exit", "exit_group", "getrlimit", "rt_sigreturn", "sigreturn"}

CHILD = textwrap.dedent(
    """
    import ctypes, json, mmap, os, sys, tempfile
    from pathlib import Path

    models_dir, allowed_json, families_json, libseccomp = (
        Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4])
    libc = ctypes.CDLL(None, use_errno=True)

    # MemoryDenyWriteExecute=yes
    PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        print("SKIP kernel lacks PR_SET_MDWE (Linux < 6.3)")
        sys.exit(0)

    # SystemCallFilter= with SystemCallErrorNumber=EPERM (loading it sets NoNewPrivileges)
    sc = ctypes.CDLL(libseccomp)
    sc.seccomp_init.restype = ctypes.c_void_p
    sc.seccomp_init.argtypes = [ctypes.c_uint32]
    sc.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    sc.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    sc.seccomp_load.argtypes = [ctypes.c_void_p]

    class ArgCmp(ctypes.Structure):  # struct scmp_arg_cmp
        _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                    ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]

    sc.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                          ctypes.c_uint, ctypes.POINTER(ArgCmp)]
    SCMP_CMP_EQ = 4
    SCMP_ACT_ALLOW, SCMP_ACT_ERRNO_EPERM = 0x7FFF0000, 0x00050000 | 1
    ctx = sc.seccomp_init(SCMP_ACT_ERRNO_EPERM)
    assert ctx
    for name in json.loads(allowed_json):
        nr = sc.seccomp_syscall_resolve_name(name.encode())
        if nr >= 0 and name != "socket":
            assert sc.seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) == 0, name
    # RestrictAddressFamilies=: socket() only for the listed families
    socket_nr = sc.seccomp_syscall_resolve_name(b"socket")
    for family in json.loads(families_json):
        cmp = ArgCmp(0, SCMP_CMP_EQ, family, 0)
        assert sc.seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, socket_nr, 1, ctypes.byref(cmp)) == 0
    assert sc.seccomp_load(ctx) == 0

    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    wx = libc.mmap(None, 4096, mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC,
                   mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
    assert wx == ctypes.c_void_p(-1).value, "MDWE is not in force"
    try:
        os.sched_setaffinity(0, {0})
    except PermissionError:
        pass
    else:
        raise AssertionError("the syscall filter is not in force (@resources allowed)")
    import socket
    try:
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)
    except PermissionError:
        pass
    else:
        raise AssertionError("the address family filter is not in force")

    import numpy as np
    import cv2
    from ai_edge_litert.interpreter import Interpreter

    img = (np.random.default_rng(0).random((480, 640, 3)) * 255).astype(np.uint8)
    grey = cv2.cvtColor(cv2.resize(img, (320, 240)), cv2.COLOR_BGR2GRAY)
    ok, png = cv2.imencode(".png", grey)
    assert ok and cv2.imdecode(png, cv2.IMREAD_GRAYSCALE).shape == (240, 320)

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
        assert np.isfinite(interp.get_tensor(interp.get_output_details()[0]["index"])).all()
        ran.append(model_id)

    import socket, sqlite3, ssl, threading
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    import paho.mqtt.client
    import serial
    from edge_gate.fsutil import atomic_write, read_secret
    from edge_gate.service.notify import Notifier

    key = Ed25519PrivateKey.generate()
    key.public_key().verify(key.sign(b"event"), b"event")
    ssl.create_default_context()

    with tempfile.TemporaryDirectory() as d:
        db = sqlite3.connect(os.path.join(d, "outbox.db"))
        assert db.execute("pragma journal_mode=wal").fetchone()[0] == "wal"
        db.execute("create table t (x)")
        db.execute("insert into t values (1)")
        db.commit()
        db.close()
        atomic_write(Path(d) / "relay.counter", b"42")
        os.environ["CREDENTIALS_DIRECTORY"] = d
        assert read_secret("relay.counter", None) == b"42"

        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        receiver.bind(os.path.join(d, "notify"))
        receiver.settimeout(5)
        notifier = Notifier.from_env({"NOTIFY_SOCKET": os.path.join(d, "notify")})
        assert notifier.ready() and notifier.watchdog()
        assert receiver.recv(100) == b"READY=1\\n"

    # glibc asks netlink which families exist for AI_ADDRCONFIG; it must cope with the refusal.
    assert socket.getaddrinfo("localhost", 8883, flags=socket.AI_ADDRCONFIG)
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname(), timeout=5)
    conn, _ = server.accept()
    client.sendall(b"ping")
    assert conn.recv(4) == b"ping"

    controller, peer = os.openpty()
    port = serial.Serial(os.ttyname(peer), baudrate=115200, timeout=2)
    os.write(controller, b"ACK")
    assert port.read(3) == b"ACK"
    port.close()

    worker = threading.Thread(target=lambda: None)
    worker.start()
    worker.join(5)
    assert len(os.sched_getaffinity(0)) >= 1

    cmp_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int),
                                ctypes.POINTER(ctypes.c_int))
    arr = (ctypes.c_int * 4)(3, 1, 4, 2)
    libc.qsort(arr, 4, ctypes.sizeof(ctypes.c_int), cmp_type(lambda a, b: a[0] - b[0]))
    assert list(arr) == [1, 2, 3, 4]
    print("RAN", ",".join(ran))
    """
)


@functools.cache
def syscall_group(name: str) -> frozenset[str]:
    """A systemd syscall group, nested groups expanded."""
    out = subprocess.run(
        ["systemd-analyze", "syscall-filter", "--no-pager", name],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    calls: set[str] = set()
    for line in out.splitlines()[1:]:
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        calls |= syscall_group(item) if item.startswith("@") else {item}
    return frozenset(calls)


def unit_address_families() -> list[int]:
    """RestrictAddressFamilies= of the unit as numbers."""
    (value,) = unit_settings()[("Service", "RestrictAddressFamilies")]
    return [int(getattr(socket, name)) for name in value.split()]


def unit_allow_list() -> set[str]:
    """The syscalls edge-gate.service permits, from its SystemCallFilter= lines in order."""
    allowed: set[str] = set()
    for value in unit_settings()[("Service", "SystemCallFilter")]:
        deny = value.startswith("~")
        names: set[str] = set()
        for item in value.removeprefix("~").split():
            names |= syscall_group(item) if item.startswith("@") else {item}
        if deny:
            allowed -= names
        else:
            allowed |= names
    return allowed | IMPLICIT


@pytest.mark.timeout(180)
@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_native_stack_runs_inside_the_units_sandbox() -> None:
    """Models, OpenCV, crypto, SQLite, serial, sockets work under MDWE + the syscall filter."""
    libseccomp = ctypes.util.find_library("seccomp")
    if libseccomp is None:
        pytest.skip("libseccomp not installed")
    if not (MODELS / "manifest.json").is_file():
        pytest.skip("models/manifest.json not present")
    allowed = unit_allow_list()
    assert "sched_setaffinity" not in allowed  # ~@resources took effect
    assert "openat" in allowed
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(MODELS),
            json.dumps(sorted(allowed)),
            json.dumps(unit_address_families()),
            libseccomp,
        ],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    if proc.stdout.startswith("SKIP"):
        pytest.skip(proc.stdout.strip())
    ran = set(proc.stdout.strip().removeprefix("RAN ").split(","))
    manifest = json.loads((MODELS / "manifest.json").read_text(encoding="utf-8"))
    assert ran == set(manifest["models"]), proc.stdout
