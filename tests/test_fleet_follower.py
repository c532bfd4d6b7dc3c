"""The gateway follower applies good bundles and refuses bad ones with an event, keeping its
gallery (real stores, real cryptography, a real audit outbox; messages fed in-process — the
broker path is in test_fleet_mqtt.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edge_gate.audit.signing import EventSigner, generate_signing_key
from edge_gate.audit.trail import AuditTrail
from edge_gate.config.mqtt import MqttConfig
from edge_gate.fleet.admin import FleetState, Group, PublishPlan, plan_publish
from edge_gate.fleet.bundle import Refusal, Refused, SealedBundle
from edge_gate.fleet.follower import Applied, Follower
from edge_gate.fleet.keys import raw_public
from edge_gate.fleet.report import check_report
from edge_gate.fleet.topics import FleetTopics
from edge_gate.fsutil import atomic_write
from tests.fleet_helpers import Master, fleet_state, master_gallery, new_store, outbox_events

TOPICS = FleetTopics("edge-gate")
GW_KEY = X25519PrivateKey.generate()
ACK_KEY = Ed25519PrivateKey.generate()


class Gateway:
    def __init__(self, tmp: Path, master: Master, groups: tuple[str, ...] = ("lobby",)) -> None:
        atomic_write(tmp / "audit.key", generate_signing_key())
        self.outbox = tmp / "outbox.db"
        cfg = MqttConfig(
            gateway_id="gw-a", outbox_file=self.outbox, signing_key_file=tmp / "audit.key"
        )
        self.trail = AuditTrail.from_config(cfg)
        self.store = new_store(tmp / "gw")
        self.acks: list[tuple[str, bytes]] = []
        self.follower = Follower(
            gateway_id="gw-a",
            groups=groups,
            topics=TOPICS,
            fleet_key=master.signing_key.public_key(),
            gateway_key=GW_KEY,
            store=self.store,
            applied_path=tmp / "applied.json",
            emit=self.trail.emit,
            ack=lambda t, b: self.acks.append((t, b)),
            signer=EventSigner(ACK_KEY),
        )

    def feed_full(self, bundle: SealedBundle, group: str = "lobby") -> Applied | Refused | None:
        out = None
        for i, chunk in enumerate(bundle.chunks):
            out = self.follower.handle(TOPICS.chunk(group, i), chunk) or out
        return self.follower.handle(TOPICS.bundle(group), bundle.standalone()) or out

    def names(self) -> set[str]:
        return {p.name for p in self.store.load().people}

    def refusals(self) -> list[str]:
        return [
            str(e["reason"]) for e in outbox_events(self.outbox) if e["type"] == "fleet.refused"
        ]


def _plan(state: FleetState, master: Master, group: str = "lobby", **kw: object) -> PublishPlan:
    plan = plan_publish(
        state,
        group,
        master.store.load(),
        master.signing_key,
        created=1.0,
        chunk_bytes=512,
        **kw,  # type: ignore[arg-type]
    )
    assert plan is not None
    from edge_gate.fleet.admin import Published

    state.group(group).published = Published(plan.version, len(plan.full.chunks), plan.members)
    return plan


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Master, FleetState, Gateway]:
    master = master_gallery(tmp_path / "master", ["Ada", "Bo", "Cy"])
    state = fleet_state({"gw-a": GW_KEY}, list(master.people.values()))
    return master, state, Gateway(tmp_path, master)


def test_full_then_delta_revocation(setup: tuple[Master, FleetState, Gateway]) -> None:
    """A full bundle brings everyone (acknowledged); a revocation delta removes one person."""
    master, state, gw = setup
    v1 = _plan(state, master)
    assert len(v1.full.chunks) > 1
    out = gw.feed_full(v1.full)
    assert isinstance(out, Applied)
    assert gw.names() == {"Ada", "Bo", "Cy"}
    assert gw.acks[-1][0] == "edge-gate/gw-a/fleet/applied"
    ack = json.loads(gw.acks[-1][1])
    assert ack["groups"]["lobby"]["version"] == v1.version
    assert (
        check_report(ack, gateway="gw-a", key=ACK_KEY.public_key(), newest_ts_ms=None) == "trusted"
    )
    del state.group("lobby").members[master.people["Bo"]]
    v2 = _plan(state, master)
    assert v2.delta is not None
    out = gw.follower.handle(TOPICS.delta("lobby"), v2.delta.inline())
    assert isinstance(out, Applied)
    assert out.kind == "delta"
    assert gw.names() == {"Ada", "Cy"}
    assert gw.follower.handle(TOPICS.bundle("lobby"), v2.full.standalone()) is None  # same version
    assert gw.refusals() == []


def test_replayed_older_bundle_is_refused_and_the_gallery_kept(
    setup: tuple[Master, FleetState, Gateway],
) -> None:
    """Rollback: the v1 bundle replayed after v2 (which revoked Bo) does not bring Bo back."""
    master, state, gw = setup
    v1 = _plan(state, master)
    gw.feed_full(v1.full)
    del state.group("lobby").members[master.people["Bo"]]
    gw.feed_full(_plan(state, master).full)
    out = gw.feed_full(v1.full)
    assert isinstance(out, Refused)
    assert out.reason is Refusal.ROLLBACK
    assert gw.names() == {"Ada", "Cy"}
    assert gw.refusals() == ["rollback"]


def test_tampered_wrongly_signed_and_not_for_me_are_refused(
    setup: tuple[Master, FleetState, Gateway],
) -> None:
    """Each bad bundle leaves the applied gallery as it was and records one event."""
    master, state, gw = setup
    gw.feed_full(_plan(state, master).full)
    before = gw.store.load().generation
    del state.group("lobby").members[master.people["Cy"]]
    v2 = _plan(state, master)
    bad = bytearray(v2.full.chunks[0])
    bad[-1] ^= 0x40
    gw.follower.handle(TOPICS.chunk("lobby", 0), bytes(bad))
    for i, chunk in enumerate(v2.full.chunks[1:], start=1):
        gw.follower.handle(TOPICS.chunk("lobby", i), chunk)
    assert isinstance(gw.follower.handle(TOPICS.bundle("lobby"), v2.full.standalone()), Refused)

    rogue = Master(master.store, master.people, Ed25519PrivateKey.generate())
    forged = _plan(state, rogue, force=True)
    assert isinstance(gw.feed_full(forged.full), Refused)

    others = FleetState(
        {
            "lobby": Group(
                {"gw-b": raw_public(X25519PrivateKey.generate().public_key())},
                dict.fromkeys(master.people.values()),
            )
        }
    )
    others.group("lobby").published = state.group("lobby").published
    not_mine = _plan(others, master, force=True)
    assert isinstance(gw.feed_full(not_mine.full), Refused)

    assert gw.names() == {"Ada", "Bo", "Cy"}
    assert gw.store.load().generation == before
    assert gw.refusals() == ["bad_chunk", "bad_signature", "not_for_me"]
    # the genuine v2 still applies afterwards (retained messages arrive again on reconnect)
    assert isinstance(gw.feed_full(v2.full), Applied)
    assert gw.names() == {"Ada", "Bo"}


def test_a_delta_on_another_base_waits_for_the_full_bundle(
    setup: tuple[Master, FleetState, Gateway],
) -> None:
    """An offline gateway that missed v2 ignores delta v3 (base 2) and catches up from the
    retained full v3."""
    master, state, gw = setup
    gw.feed_full(_plan(state, master).full)
    del state.group("lobby").members[master.people["Ada"]]
    _plan(state, master)  # v2: missed
    del state.group("lobby").members[master.people["Bo"]]
    v3 = _plan(state, master)
    assert v3.delta is not None
    assert gw.follower.handle(TOPICS.delta("lobby"), v3.delta.inline()) is None
    assert gw.names() == {"Ada", "Bo", "Cy"}
    assert isinstance(gw.feed_full(v3.full), Applied)
    assert gw.names() == {"Cy"}


def test_a_person_in_two_groups_stays_until_both_drop_them(tmp_path: Path) -> None:
    """Leaving lobby does not erase someone lab still lists; local enrollments are untouched."""
    master = master_gallery(tmp_path / "master", ["Ada", "Bo"])
    ada, bo = master.people["Ada"], master.people["Bo"]
    pub = raw_public(GW_KEY.public_key())
    state = FleetState(
        {
            "lobby": Group({"gw-a": pub}, dict.fromkeys([ada, bo])),
            "lab": Group({"gw-a": pub}, {ada: None}),
        }
    )
    gw = Gateway(tmp_path, master, groups=("lobby", "lab"))
    from tests.fleet_helpers import templates

    gw.store.enroll("Local", "m", templates(50))
    gw.feed_full(_plan(state, master, "lobby").full, "lobby")
    gw.feed_full(_plan(state, master, "lab").full, "lab")
    del state.group("lobby").members[ada]
    del state.group("lobby").members[bo]
    gw.feed_full(_plan(state, master, "lobby").full, "lobby")
    assert gw.names() == {"Ada", "Local"}
