"""Put a planned version of a door group on the broker (``fleet status`` reads the answers:
:mod:`edge_gate.fleet.status`).

Order: the version is reserved in the state file first (a crash can never re-use a version
number for other content); then the delta (online gateways apply it at once), the chunks of
the full bundle, stale chunk topics of the previous version cleared, and last the full
bundle's header — all QoS 1, each waited for until the broker's PUBACK.
"""

from __future__ import annotations

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
