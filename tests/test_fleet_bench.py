"""The fleet benchmark section runs end to end on a small group, through a real mosquitto
(the 100k run is manual: `edge-gate bench --json --section fleet`)."""

from __future__ import annotations

from edge_gate_dev.bench.fleet import run_fleet_bench
from edge_gate_dev.bench.sections import SECTIONS


def test_fleet_bench_reports_every_figure() -> None:
    """Seal, size, open, apply, follower RSS and the MQTT publish/transfer are measured; the
    child really applied; the receiving gateway got every byte of header and chunks."""
    assert "fleet" in SECTIONS
    out = run_fleet_bench(n_people=500, chunk_kib=64)
    assert out["people"] == 500
    assert out["chunks"] >= 2
    assert out["bytes"] > 500 * 192 * 4
    for key in ("seal_s", "open_s", "apply_s"):
        assert out[key] >= 0
    assert 20 < out["follower_max_rss_mb"] < 1000
    assert out["mqtt_received_bytes"] == out["bytes"]
    assert out["mqtt_publish_s"] > 0
    assert out["mqtt_transfer_s"] > 0
