"""The follower stand-in of the fleet benchmark: open one bundle, apply it, report (JSON)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from edge_gate.fleet.bundle import Opened, Refused, open_bundle, parse_message
from edge_gate.fleet.keys import load_fleet_public_key, load_gateway_key
from edge_gate.fleet.payload import decode_payload
from edge_gate.gallery.keyfile import KeyRing, new_key
from edge_gate.gallery.store import GalleryStore


def _chunks(data: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    offset = 0
    while offset < len(data):
        size = int.from_bytes(data[offset : offset + 4], "little")
        out[len(out)] = data[offset + 4 : offset + 4 + size]
        offset += 4 + size
    return out


def main(directory: Path) -> None:
    begun = time.perf_counter()
    parsed = parse_message(
        (directory / "bundle").read_bytes(), load_fleet_public_key(directory / "fleet.pub")
    )
    if isinstance(parsed, Refused):
        raise SystemExit(f"refused: {parsed}")
    opened = open_bundle(
        parsed,
        _chunks((directory / "chunks").read_bytes()),
        gateway_id="gw-1",
        gateway_key=load_gateway_key(directory / "gw.key"),
    )
    if not isinstance(opened, Opened):
        raise SystemExit(f"refused: {opened}")
    payload = decode_payload(opened.plaintext)
    del opened
    open_s = time.perf_counter() - begun
    store = GalleryStore(directory / "gallery.db", None, KeyRing((new_key(),)))
    store.create()
    begun = time.perf_counter()
    store.apply_changes([p.record for p in payload.people])
    apply_s = time.perf_counter() - begun
    # VmHWM belongs to this process image; ru_maxrss would carry the parent's peak over exec
    status = Path("/proc/self/status").read_text()
    rss_mb = int(next(x for x in status.splitlines() if x.startswith("VmHWM")).split()[1]) / 1024
    print(
        json.dumps(
            {
                "open_s": round(open_s, 2),
                "apply_s": round(apply_s, 2),
                "follower_max_rss_mb": round(rss_mb),
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
