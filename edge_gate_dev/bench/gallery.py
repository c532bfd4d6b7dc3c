"""Gallery benchmarks for ``edge-gate bench``: 1:N search time and decrypt + load time.

* ``bench_match``: one probe against ``n_templates`` unit vectors (5 per person), the same
  :func:`match` the door runs (whole-gallery scan, per-identity max, top two, decision).
* ``bench_load``: a real encrypted gallery of ``n_people`` x 5 templates written to a temp
  directory, then :meth:`GalleryStore.load` (read, verify manifest + generation, decrypt and
  parse every record) plus building the template matrix, timed end to end.

Synthetic random unit vectors are fine here: the time does not depend on the values.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_gate.gallery.keyfile import KeyRing, new_key
from edge_gate.gallery.matching import TemplateMatrix, match
from edge_gate.gallery.store import GalleryStore

TEMPLATES_PER_PERSON = 5


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    v = rng.standard_normal((n, dim), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def _stats_ms(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    return {
        "median_ms": round(statistics.median(ms), 3),
        "p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 3),
        "min_ms": round(ms[0], 3),
    }


def bench_match(
    n_templates: int = 100_000, dim: int = 192, repeats: int = 50, seed: int = 0
) -> dict[str, Any]:
    """Median time of one open-set 1:N match over ``n_templates`` templates."""
    rng = np.random.default_rng(seed)
    n_people = n_templates // TEMPLATES_PER_PERSON
    templates = _unit(rng, n_people * TEMPLATES_PER_PERSON, dim)
    gallery = TemplateMatrix(
        [f"u_{i:012d}" for i in range(n_people)],
        list(templates.reshape(n_people, TEMPLATES_PER_PERSON, dim)),
        dim,
    )
    probes = _unit(rng, repeats + 5, dim)
    for p in probes[:5]:  # warm caches and BLAS threads
        match(gallery, p, 0.65, 0.05)
    times = []
    for p in probes[5:]:
        t0 = time.perf_counter()
        match(gallery, p, 0.65, 0.05)
        times.append(time.perf_counter() - t0)
    return {"templates": gallery.n_templates, "people": n_people, "dim": dim, **_stats_ms(times)}


def bench_load(
    n_people: int = 10_000, dim: int = 192, repeats: int = 3, workdir: Path | None = None
) -> dict[str, Any]:
    """Time to decrypt, verify and load a gallery of ``n_people`` (plus the matrix build)."""
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        store = GalleryStore(Path(tmp) / "gallery.db", None, KeyRing((new_key(),)))
        store.create()
        people = [(f"person {i}", _unit(rng, TEMPLATES_PER_PERSON, dim)) for i in range(n_people)]
        store.enroll_many(people, "bench")
        size = store.db_path.stat().st_size
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            loaded = store.load()
            _ = loaded.matrix
            times.append(time.perf_counter() - t0)
    return {
        "people": n_people,
        "templates": n_people * TEMPLATES_PER_PERSON,
        "dim": dim,
        "db_bytes": size,
        **_stats_ms(times),
    }


def run_gallery_bench(workdir: Path | None = None) -> dict[str, Any]:
    """Both figures the issue names, for the default (192-D) and the FaceNet (512-D) size."""
    return {
        "match_100k": bench_match(100_000, 192),
        "match_100k_512d": bench_match(100_000, 512),
        "load_10k_people": bench_load(10_000, 192, workdir=workdir),
        "targets": {"match_100k_median_ms": 5.0, "load_10k_people_s": 1.0},
    }
