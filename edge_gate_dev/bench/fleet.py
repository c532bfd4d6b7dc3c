"""Fleet bundle benchmark for ``edge-gate bench --section fleet``: a door group of 100k people.

Measured on this box, no broker (the MQTT transfer of the chunks is not in these figures):
``seal_s`` — the admin's publish work (payload encoding, AES-GCM of every chunk, key wrap,
signing); ``bytes`` — what goes on the broker (header + chunks); in a fresh child process that
stands for the gateway follower: ``open_s`` (signature, hashes, decryption, payload parsing),
``apply_s`` (one transaction into an empty local gallery, re-encrypted with its own key) and
``follower_max_rss_mb`` (peak resident memory of that child, Python included).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edge_gate.fleet.admin import FleetState, Group, plan_publish
from edge_gate.fleet.keys import raw_public
from edge_gate.fsutil import atomic_write
from edge_gate.gallery.loaded import LoadedGallery, new_user_id
from edge_gate.gallery.record import PersonRecord


def write_gateway_key(path: Path, key: X25519PrivateKey) -> None:
    from cryptography.hazmat.primitives import serialization

    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    atomic_write(path, pem)


def _people(n: int, dim: int, per_person: int) -> tuple[PersonRecord, ...]:
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        v = rng.standard_normal((per_person, dim), dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out.append(PersonRecord(new_user_id(), f"Person {i}", "mobilefacenet-fp32", 1.0, v))
    return tuple(sorted(out, key=lambda p: p.user_id))


def run_fleet_bench(
    n_people: int = 100_000, dim: int = 192, per_person: int = 1, chunk_kib: int = 1024
) -> dict[str, Any]:
    people = _people(n_people, dim, per_person)
    master = LoadedGallery("g_bench", 1, "k_bench", people)
    gw_key = X25519PrivateKey.generate()
    state = FleetState(
        {"lobby": Group({"gw-1": raw_public(gw_key.public_key())}, dict.fromkeys(master._by_id))}
    )
    signing_key = Ed25519PrivateKey.generate()
    begun = time.perf_counter()
    plan = plan_publish(
        state, "lobby", master, signing_key, created=time.time(), chunk_bytes=chunk_kib * 1024
    )
    seal_s = time.perf_counter() - begun
    if plan is None:
        raise RuntimeError("nothing to publish")
    message = plan.full.standalone()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "bundle").write_bytes(message)
        (d / "chunks").write_bytes(
            b"".join(len(c).to_bytes(4, "little") + c for c in plan.full.chunks)
        )
        (d / "fleet.pub").write_text(raw_public(signing_key.public_key()))
        write_gateway_key(d / "gw.key", gw_key)
        proc = subprocess.run(  # noqa: S603 (our interpreter, a fresh follower-like process)
            [sys.executable, "-m", "edge_gate_dev.bench.fleet_child", str(d)],
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"the follower stand-in failed: {proc.stderr[-2000:]}")
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "people": n_people,
        "dim": dim,
        "templates_per_person": per_person,
        "chunks": len(plan.full.chunks),
        "bytes": len(message) + sum(len(c) for c in plan.full.chunks),
        "seal_s": round(seal_s, 2),
        **child,
    }
