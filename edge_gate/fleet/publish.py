"""Put a planned version of a door group on the broker, and read back the gateways' answers.

Order: the version is reserved in the state file first (a crash can never re-use a version
number for other content); then the delta (online gateways apply it at once), the chunks of
the full bundle, stale chunk topics of the previous version cleared, and last the full
bundle's header — all QoS 1, each waited for until the broker's PUBACK.
"""

from __future__ import annotations

import json
import queue
import time
from dataclasses import dataclass
from pathlib import Path

from edge_gate.fleet.admin import FleetState, Published, PublishPlan, save_state
from edge_gate.fleet.link import FleetLink
from edge_gate.fleet.topics import FleetTopics


@dataclass(frozen=True)
class PublishReport:
    group: str
    version: int
    chunks: int
    bytes_full: int
    bytes_delta: int
    seconds: float


def publish_plan(
    link: FleetLink,
    topics: FleetTopics,
    state: FleetState,
    state_path: Path,
    plan: PublishPlan,
    *,
    timeout_s: float,
) -> PublishReport:
    begun = time.monotonic()
    group = state.group(plan.group)
    group.published = Published(plan.version, len(plan.full.chunks), dict(plan.members))
    save_state(state_path, state)
    delta_bytes = 0
    if plan.delta is not None:
        inline = plan.delta.inline()
        delta_bytes = len(inline)
        link.publish(topics.delta(plan.group), inline, retain=False, timeout_s=timeout_s)
    for i, chunk in enumerate(plan.full.chunks):
        link.publish(topics.chunk(plan.group, i), chunk, retain=True, timeout_s=timeout_s)
    for i in plan.stale_chunks:
        link.publish(topics.chunk(plan.group, i), b"", retain=True, timeout_s=timeout_s)
    header = plan.full.standalone()
    link.publish(topics.bundle(plan.group), header, retain=True, timeout_s=timeout_s)
    return PublishReport(
        plan.group,
        plan.version,
        len(plan.full.chunks),
        len(header) + sum(len(c) for c in plan.full.chunks),
        delta_bytes,
        time.monotonic() - begun,
    )


@dataclass
class GatewayStatus:
    gateway: str
    groups: dict[str, dict[str, float | int | None]]
    follower: str | None = None
    daemon: str | None = None


def collect_status(link: FleetLink, topics: FleetTopics, wait_s: float) -> dict[str, GatewayStatus]:
    """Read the retained acknowledgements and online/offline states for ``wait_s`` seconds."""
    out: dict[str, GatewayStatus] = {}
    deadline = time.monotonic() + wait_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            topic, payload = link.messages.get(timeout=min(left, 0.2))
        except queue.Empty:
            continue
        gw = topics.gateway_of(topic)
        if gw is None or not payload:
            continue
        entry = out.setdefault(gw, GatewayStatus(gw, {}))
        if topic == topics.applied(gw):
            try:
                body = json.loads(payload)
                entry.groups = {str(g): dict(v) for g, v in body["groups"].items()}
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
        elif topic == topics.follower(gw):
            entry.follower = payload.decode("utf-8", errors="replace")[:16]
        elif topic.endswith("/status"):
            entry.daemon = payload.decode("utf-8", errors="replace")[:16]
    return out
