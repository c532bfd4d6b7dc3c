"""Publish throughput over TLS on loopback (issue figure: ≥ 500 events/s sustained)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_gate_dev.bench.audit import TARGET_EVENTS_PER_S, bench_local


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_outbox_drain_rate_over_mutual_tls(tmp_path: Path) -> None:
    """Drain 3000 signed events from the SQLite outbox to mosquitto over mTLS; every one PUBACKed
    and deleted. Asserts the issue's 500 events/s target: a 2-core dev box measures ~12-17k/s, so
    this stays loose for a loaded CI runner while still catching a large regression; the benchmark
    prints the real figure."""
    result = bench_local(tmp_path, events=3000)
    print(f"audit publish: {result.events_per_s} events/s ({result.events} in {result.seconds} s)")
    assert result.tls
    assert result.events_per_s >= TARGET_EVENTS_PER_S
