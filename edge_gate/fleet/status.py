"""``fleet status``: read the gateways' retained reports and say, per gateway and door group,
what it applied, its lag, whether it is online, its last event and its camera and door state.

Inputs (all retained, read for ``wait_s`` seconds): ``<prefix>/+/fleet/applied`` (signed ack),
``<prefix>/+/fleet/follower`` and ``<prefix>/+/status`` (``online``/``offline``, last wills)
and ``<prefix>/+/health`` (signed health). An acknowledgement or health message that
:func:`~edge_gate.fleet.report.check_report` does not trust is shown with its trust verdict and
counts for nothing: the gateway is shown at version 0 (behind) and without camera/door state.
"""

from __future__ import annotations

import json
import queue
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge_gate.fleet.admin import FleetState
from edge_gate.fleet.keys import parse_ack_public
from edge_gate.fleet.link import FleetLink
from edge_gate.fleet.report import SeenState, Trust, check_report, report_ts_ms
from edge_gate.fleet.topics import FleetTopics

MAX_STATE_CHARS = 32


@dataclass
class GatewayReports:
    """The raw retained messages of one gateway (latest of each)."""

    gateway: str
    applied: dict[str, Any] | None = None
    health: dict[str, Any] | None = None
    follower: str | None = None
    daemon: str | None = None
    unreadable: set[str] = field(default_factory=set)


def _text(payload: bytes) -> str:
    return payload.decode("utf-8", errors="replace")[:16]


def _json_object(payload: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def collect_reports(
    link: FleetLink, topics: FleetTopics, wait_s: float
) -> dict[str, GatewayReports]:
    """Read retained reports for ``wait_s`` seconds (the link subscribes to :func:`filters`)."""
    out: dict[str, GatewayReports] = {}
    deadline = time.monotonic() + wait_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            topic, payload = link.messages.get(timeout=min(left, 0.2))
        except queue.Empty:
            continue
        gw = topics.gateway_of(topic)
        if gw is None or not payload:
            continue
        entry = out.setdefault(gw, GatewayReports(gw))
        if topic == topics.applied(gw):
            entry.applied = _json_object(payload)
            if entry.applied is None:
                entry.unreadable.add("applied")
        elif topic == topics.health(gw):
            entry.health = _json_object(payload)
            if entry.health is None:
                entry.unreadable.add("health")
        elif topic == topics.follower(gw):
            entry.follower = _text(payload)
        elif topic == topics.status(gw):
            entry.daemon = _text(payload)
    return out


def filters(topics: FleetTopics) -> tuple[str, ...]:
    return (topics.all_applied, topics.all_followers, topics.all_status, topics.all_health)


def _keys(state: FleetState) -> dict[str, Ed25519PublicKey]:
    keys = {}
    for gw, text in state.ack_keys.items():
        try:
            keys[gw] = parse_ack_public(text)
        except ValueError:
            continue  # no usable key: its reports show as no_key
    return keys


def _trust(
    body: dict[str, Any] | None,
    unreadable: bool,
    gw: str,
    kind: str,
    key: Ed25519PublicKey | None,
    seen: SeenState,
) -> Trust | None:
    if body is None:
        return Trust.MALFORMED if unreadable else None
    trust = check_report(body, gateway=gw, key=key, newest_ts_ms=seen.get(gw, kind))
    ts = report_ts_ms(body)
    if trust is Trust.TRUSTED and ts is not None:
        seen.note(gw, kind, ts)
    return trust


def _short(value: object) -> str | None:
    return value[:MAX_STATE_CHARS] if isinstance(value, str) else None


def _last_event(health: dict[str, Any]) -> dict[str, str] | None:
    ev = health.get("last_event")
    if not isinstance(ev, dict):
        return None
    kind, ts = _short(ev.get("type")), _short(ev.get("ts"))
    return {"type": kind, "ts": ts or ""} if kind else None


def status_rows(
    state: FleetState, reports: dict[str, GatewayReports], seen: SeenState
) -> list[dict[str, Any]]:
    """One row per (group, gateway); ``seen`` learns the newest trusted report times."""
    keys = _keys(state)
    verdicts: dict[str, tuple[Trust | None, Trust | None]] = {}
    for gw in sorted({g for group in state.groups.values() for g in group.gateways}):
        rep = reports.get(gw, GatewayReports(gw))
        key = keys.get(gw)
        verdicts[gw] = (
            _trust(rep.applied, "applied" in rep.unreadable, gw, "applied", key, seen),
            _trust(rep.health, "health" in rep.unreadable, gw, "health", key, seen),
        )
    rows = []
    for name, group in sorted(state.groups.items()):
        for gw in sorted(group.gateways):
            rep = reports.get(gw, GatewayReports(gw))
            ack_trust, health_trust = verdicts[gw]
            applied: dict[str, Any] = {}
            if ack_trust is Trust.TRUSTED and rep.applied is not None:
                groups = rep.applied.get("groups")
                got = groups.get(name) if isinstance(groups, dict) else None
                applied = got if isinstance(got, dict) else {}
            version = applied.get("version")
            version = version if isinstance(version, int) and version >= 0 else 0
            health = rep.health if health_trust is Trust.TRUSTED and rep.health else {}
            rows.append(
                {
                    "group": name,
                    "gateway": gw,
                    "published": group.published.version,
                    "applied": version,
                    "lag": group.published.version - version,
                    "applied_at": applied.get("applied_at"),
                    "ack": None if ack_trust is None else ack_trust.value,
                    "follower": rep.follower,
                    "daemon": rep.daemon,
                    "health": None if health_trust is None else health_trust.value,
                    "health_at_ms": report_ts_ms(health) if health else None,
                    "camera": _short(health.get("camera")),
                    "door": _short(health.get("door")),
                    "last_event": _last_event(health) if health else None,
                }
            )
    return rows


def untrusted(row: dict[str, Any]) -> bool:
    return any(row[k] not in (None, Trust.TRUSTED.value) for k in ("ack", "health"))


def format_row(row: dict[str, Any]) -> str:
    ev = row["last_event"]
    last = f"{ev['type']} {ev['ts']}" if ev else "?"
    flags = "".join(
        f"  {k} {row[k].upper()}" for k in ("ack", "health") if row[k] not in (None, "trusted")
    )
    return (
        f"{row['group']:12s} {row['gateway']:20s} v{row['applied']}/{row['published']} "
        f"lag {row['lag']}  follower {row['follower'] or '?'}  daemon {row['daemon'] or '?'}  "
        f"camera {row['camera'] or '?'}  door {row['door'] or '?'}  last {last}{flags}"
    )
