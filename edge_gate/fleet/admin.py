"""The admin station's fleet state: door groups, their gateways and members, published versions.

State file (JSON, 0600, atomic; on the admin station only)::

    {"format": "edge-gate-fleet-admin", "groups": {"lobby": {
        "gateways": {"gw-1": "<base64 X25519 public key>"},
        "members": {"u_…": {"card": "04A1…" | null}},
        "published": {"version": 3, "chunks": 2, "members": {"u_…": "<record fingerprint>"}}}},
     "ack_keys": {"gw-1": "<base64 Ed25519 public key>"}}

``ack_keys`` are the gateways' own signing keys: ``fleet status`` trusts an acknowledgement or
health message only when it verifies with the key registered here for that gateway.

People come from the master gallery (a normal encrypted gallery, enrolled with ``edge-gate
enroll`` on the admin station); a group lists who may pass its doors. :func:`plan_publish`
turns the state and the master gallery into the next version of a group: a full bundle
(always — offline gateways catch up from it) and, when a previous version exists, a delta
from it (added or changed people, removed ids) for the gateways that are online.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_gate.errors import EdgeGateError
from edge_gate.fleet.bundle import KIND_DELTA, SealedBundle, seal_bundle
from edge_gate.fleet.keys import parse_gateway_public
from edge_gate.fleet.payload import FleetPerson, Payload, encode_payload
from edge_gate.fsutil import atomic_write, read_private_file
from edge_gate.gallery.loaded import LoadedGallery
from edge_gate.gallery.record import PersonRecord, encode_record

FORMAT = "edge-gate-fleet-admin"
MAX_BYTES = 256 << 20


class FleetStateError(EdgeGateError):
    """The admin state file is missing, damaged, or a command names an unknown group/person."""


@dataclass
class Published:
    version: int = 0
    chunks: int = 0
    members: dict[str, str] = field(default_factory=dict)  # user id -> record fingerprint


@dataclass
class Group:
    gateways: dict[str, str] = field(default_factory=dict)
    members: dict[str, str | None] = field(default_factory=dict)  # user id -> card number
    published: Published = field(default_factory=Published)


@dataclass
class FleetState:
    groups: dict[str, Group] = field(default_factory=dict)
    ack_keys: dict[str, str] = field(default_factory=dict)  # gateway id -> Ed25519 public key

    def group(self, name: str) -> Group:
        found = self.groups.get(name)
        if found is None:
            raise FleetStateError(f"no door group {name!r} (add a gateway to it first)")
        return found


def load_state(path: Path) -> FleetState:
    if not Path(path).exists():
        raise FleetStateError(f"{path}: no fleet state (run `edge-gate fleet init`)")
    try:
        raw = json.loads(read_private_file(path, MAX_BYTES))
        if raw.get("format") != FORMAT:
            raise ValueError("format")
        groups = {}
        for name, g in raw["groups"].items():
            pub = g["published"]
            groups[str(name)] = Group(
                gateways={str(k): str(v) for k, v in g["gateways"].items()},
                members={str(k): (None if v is None else str(v)) for k, v in g["members"].items()},
                published=Published(
                    int(pub["version"]),
                    int(pub["chunks"]),
                    {str(k): str(v) for k, v in pub["members"].items()},
                ),
            )
        ack_keys = {str(k): str(v) for k, v in raw.get("ack_keys", {}).items()}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise FleetStateError(f"{path}: damaged fleet state ({type(e).__name__})") from e
    return FleetState(groups, ack_keys)


def save_state(path: Path, state: FleetState) -> None:
    data = {
        "format": FORMAT,
        "groups": {
            name: {
                "gateways": dict(sorted(g.gateways.items())),
                "members": dict(sorted(g.members.items())),
                "published": {
                    "version": g.published.version,
                    "chunks": g.published.chunks,
                    "members": dict(sorted(g.published.members.items())),
                },
            }
            for name, g in sorted(state.groups.items())
        },
        "ack_keys": dict(sorted(state.ack_keys.items())),
    }
    atomic_write(path, json.dumps(data, indent=1).encode("utf-8"))


def fingerprint(rec: PersonRecord, card: str | None) -> str:
    h = hashlib.sha256(encode_record(rec))
    h.update(b"\0" + (card or "").encode("utf-8"))
    return h.hexdigest()[:32]


@dataclass(frozen=True)
class PublishPlan:
    group: str
    version: int
    full: SealedBundle
    delta: SealedBundle | None
    members: dict[str, str]
    stale_chunks: range  # chunk topics of the previous version to clear


def plan_publish(
    state: FleetState,
    name: str,
    master: LoadedGallery,
    signing_key: Ed25519PrivateKey,
    *,
    created: float,
    chunk_bytes: int,
    force: bool = False,
) -> PublishPlan | None:
    """The next version of group ``name``; None when nothing changed (unless ``force``)."""
    group = state.group(name)
    if not group.gateways:
        raise FleetStateError(f"door group {name!r} has no gateway")
    people = []
    for user_id, card in sorted(group.members.items()):
        rec = master.get(user_id)
        if rec is not None:  # revoked from the master gallery: leaves every group
            people.append(FleetPerson(rec, card))
    members = {p.record.user_id: fingerprint(p.record, p.card) for p in people}
    before = group.published
    if members == before.members and before.version > 0 and not force:
        return None
    try:
        recipients = {gw: parse_gateway_public(pub) for gw, pub in group.gateways.items()}
    except ValueError as e:
        raise FleetStateError(f"door group {name!r}: {e}") from e
    version = before.version + 1
    full = seal_bundle(
        encode_payload(Payload(tuple(people))),
        group=name,
        version=version,
        created=created,
        recipients=recipients,
        signing_key=signing_key,
        chunk_bytes=chunk_bytes,
    )
    delta = None
    if before.version > 0:
        changed = tuple(
            p for p in people if before.members.get(p.record.user_id) != members[p.record.user_id]
        )
        removed = tuple(sorted(set(before.members) - set(members)))
        delta_payload = encode_payload(Payload(changed, removed))
        if len(delta_payload) <= 32 * chunk_bytes:
            delta = seal_bundle(
                delta_payload,
                group=name,
                version=version,
                created=created,
                recipients=recipients,
                signing_key=signing_key,
                kind=KIND_DELTA,
                base_version=before.version,
                chunk_bytes=chunk_bytes,
            )
    return PublishPlan(name, version, full, delta, members, range(len(full.chunks), before.chunks))
