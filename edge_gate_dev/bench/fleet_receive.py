"""The receiving gateway of the fleet MQTT benchmark: subscribe with the follower's own client
(:class:`~edge_gate.fleet.link.FleetLink`), say ``ready``, and report (JSON) when the bundle
header and every chunk of it have arrived: the wall-clock time of the last one, counts, bytes.

Usage: ``python -m edge_gate_dev.bench.fleet_receive SETTINGS_JSON`` (host, port, ca, cert, key,
gateway, prefix, group, chunks, timeout_s).
"""

from __future__ import annotations

import json
import queue
import sys
import time
from pathlib import Path

from edge_gate.config.mqtt import MqttConfig
from edge_gate.fleet.link import FleetLink
from edge_gate.fleet.topics import FleetTopics


def main(settings: dict[str, object]) -> None:
    d = Path(str(settings["dir"]))
    cfg = MqttConfig(
        host=str(settings["host"]),
        port=int(str(settings["port"])),
        ca_file=Path(str(settings["ca"])),
        cert_file=Path(str(settings["cert"])),
        key_file=Path(str(settings["key"])),
        gateway_id=str(settings["gateway"]),
        topic_prefix=str(settings["prefix"]),
        outbox_file=d / "outbox.db",
        signing_key_file=d / "audit.key",
    )
    topics = FleetTopics(cfg.topic_prefix)
    group, expected = str(settings["group"]), int(str(settings["chunks"]))
    link = FleetLink(cfg, role="bench", subscriptions=(topics.group_filter(group),))
    link.start()
    if not link.wait_ready(30.0):
        raise SystemExit("no connection to the broker")
    print("ready", flush=True)
    chunks: set[int] = set()
    header = False
    received = 0
    deadline = time.monotonic() + float(str(settings["timeout_s"]))
    last_at = 0.0
    while not (header and len(chunks) == expected):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: header {header}, {len(chunks)}/{expected} chunks")
        try:
            topic, payload = link.messages.get(timeout=0.5)
        except queue.Empty:
            continue
        last_at = time.time()
        where = topics.parse(topic)
        if where is None or not payload:
            continue
        received += len(payload)
        if where[1] == "chunk" and where[2] is not None:
            chunks.add(where[2])
        elif where[1] == "bundle":
            header = True
    link.stop()
    print(json.dumps({"last_at": last_at, "chunks": len(chunks), "bytes": received}), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
