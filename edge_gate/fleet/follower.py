"""The gateway side: verify, decrypt and apply fleet bundles to the local gallery.

:class:`Follower` gets MQTT messages one at a time (``handle(topic, payload)``, from one
thread) and keeps, per followed group, the chunks seen so far and the newest verified header.
When a full bundle is complete (or a delta arrives), it is opened for this gateway, applied
with :meth:`GalleryStore.apply_changes` (one transaction, re-encrypted with the local key),
the applied version is saved and acknowledged. Anything refused — not signed by the fleet key,
older than what was applied (rollback), not wrapped for this gateway, a chunk whose hash or tag
does not verify, a payload that does not parse, a gallery that refuses the change — leaves the
gallery as it was and records a signed ``fleet.refused`` audit event. The daemon notices the
new gallery generation by itself (``service.gallery_poll_s``) and reloads without stopping.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edge_gate.audit.events import EventType, encode_event
from edge_gate.audit.signing import EventSigner
from edge_gate.errors import EdgeGateError
from edge_gate.fleet.admission import Admission, admit
from edge_gate.fleet.applied import AppliedState, load_applied, save_applied
from edge_gate.fleet.bundle import (
    KIND_DELTA,
    Opened,
    Parsed,
    Refusal,
    Refused,
    chunk_identity,
    open_bundle,
    parse_message,
)
from edge_gate.fleet.payload import PayloadError, decode_payload
from edge_gate.fleet.topics import FleetTopics
from edge_gate.gallery.store import GalleryStore

log = logging.getLogger(__name__)

Emit = Callable[..., object]  # AuditTrail.emit-like: (type, *, door, subject, reason, **fields)
Ack = Callable[[str, bytes], None]  # (topic, payload) published retained, QoS 1
MAX_PENDING_VERSIONS = 2


@dataclass
class _GroupBuffer:
    chunks: dict[tuple[int, int], bytes] = field(default_factory=dict)
    pending: Parsed | None = None


@dataclass(frozen=True)
class Applied:
    group: str
    version: int
    kind: str
    added: int
    updated: int
    removed: int
    seconds: float


class Follower:
    def __init__(
        self,
        *,
        gateway_id: str,
        groups: tuple[str, ...],
        topics: FleetTopics,
        fleet_key: Ed25519PublicKey,
        gateway_key: X25519PrivateKey,
        store: GalleryStore,
        applied_path: Path,
        emit: Emit,
        ack: Ack,
        signer: EventSigner | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.gateway_id = gateway_id
        self.groups = groups
        self.topics = topics
        self._fleet_key = fleet_key
        self._gateway_key = gateway_key
        self._store = store
        self._applied_path = applied_path
        self._emit = emit
        self._ack = ack
        self._signer = signer
        self._clock = clock
        self.state: AppliedState = load_applied(applied_path)
        self._buffers = {g: _GroupBuffer() for g in groups}
        self.history: list[Applied | Refused] = []

    # -- input ------------------------------------------------------------------------------

    def handle(self, topic: str, payload: bytes) -> Applied | Refused | None:
        where = self.topics.parse(topic)
        if where is None or not payload:  # an empty retained message clears a topic
            return None
        group, kind, _index = where
        if group not in self._buffers:
            return self._refuse(group, Refused(Refusal.WRONG_GROUP, "not a followed group"))
        buffer = self._buffers[group]
        if kind == "chunk":
            ident = chunk_identity(payload)
            if ident is not None and ident[0] > self.state.group(group).version:
                buffer.chunks[ident] = payload
                self._trim(buffer)
            return self._try_complete(group)
        parsed = parse_message(payload, self._fleet_key)
        if isinstance(parsed, Refused):
            return self._refuse(group, parsed)
        decision = admit(
            group=parsed.header.group,
            version=parsed.header.version,
            base_version=parsed.header.base_version,
            expected_group=group,
            applied_version=self.state.group(group).version,
        )
        if decision is Admission.ALREADY or decision is Admission.WAIT_FULL:
            return None
        if decision is not Admission.APPLY:
            what = Refusal.ROLLBACK if decision is Admission.ROLLBACK else Refusal.WRONG_GROUP
            detail = f"version {parsed.header.version} ≤ applied {self.state.group(group).version}"
            return self._refuse(group, Refused(what, detail, parsed.header.version))
        if parsed.header.kind == KIND_DELTA or parsed.inline:
            return self._open_and_apply(group, parsed, dict(enumerate(parsed.inline)))
        if buffer.pending is None or parsed.header.version >= buffer.pending.header.version:
            buffer.pending = parsed
        return self._try_complete(group)

    def _trim(self, buffer: _GroupBuffer) -> None:
        """Keep chunks of at most the newest few versions (memory stays bounded)."""
        versions = sorted({v for v, _ in buffer.chunks}, reverse=True)
        for old in versions[MAX_PENDING_VERSIONS:]:
            for key in [k for k in buffer.chunks if k[0] == old]:
                del buffer.chunks[key]

    def _try_complete(self, group: str) -> Applied | Refused | None:
        buffer = self._buffers[group]
        pending = buffer.pending
        if pending is None:
            return None
        version = pending.header.version
        have = {i: c for (v, i), c in buffer.chunks.items() if v == version}
        if len(have) < len(pending.header.chunks):
            return None
        buffer.pending = None
        for key in [k for k in buffer.chunks if k[0] <= version]:
            del buffer.chunks[key]
        return self._open_and_apply(group, pending, have)

    # -- applying ---------------------------------------------------------------------------

    def _open_and_apply(
        self, group: str, parsed: Parsed, chunks: dict[int, bytes]
    ) -> Applied | Refused:
        begun = time.monotonic()
        opened = open_bundle(
            parsed, chunks, gateway_id=self.gateway_id, gateway_key=self._gateway_key
        )
        if isinstance(opened, Refused):
            return self._refuse(group, opened)
        try:
            result = self._apply(group, opened, begun)
        except PayloadError as e:
            return self._refuse(group, Refused(Refusal.MALFORMED, str(e), parsed.header.version))
        except EdgeGateError as e:
            refused = Refused(
                Refusal.MALFORMED, f"the gallery refused it: {e}", opened.header.version
            )
            return self._refuse(group, refused)
        return result

    def _apply(self, group: str, opened: Opened, begun: float) -> Applied:
        header = opened.header
        payload = decode_payload(opened.plaintext)
        st = self.state.group(group)
        elsewhere = self.state.members_elsewhere(group)
        incoming = {p.record.user_id for p in payload.people}
        if header.kind == KIND_DELTA:
            leaving = set(payload.removed)
            members = (st.members - leaving) | incoming
        else:
            leaving = st.members - incoming
            members = incoming
        removes = sorted(leaving - elsewhere - incoming)
        counts = self._store.apply_changes([p.record for p in payload.people], removes)
        now = self._clock()
        st.version, st.applied_at, st.members = header.version, now, members
        save_applied(self._applied_path, self.state)
        self.acknowledge()
        done = Applied(
            group,
            header.version,
            header.kind,
            counts.added,
            counts.updated,
            counts.removed,
            time.monotonic() - begun,
        )
        log.info(
            "fleet.applied",
            extra={
                "EG_GROUP": group,
                "EG_VERSION": header.version,
                "EG_PEOPLE": len(members),
                "EG_LATENCY_MS": round(done.seconds * 1000),
            },
        )
        self._emit(
            EventType.FLEET_APPLIED,
            door=None,
            reason=f"{group} v{header.version} {header.kind}",
            count=len(members),
            latency_ms=done.seconds * 1000,
        )
        self.history.append(done)
        return done

    def acknowledge(self) -> None:
        """Publish what is applied, per group (retained, so ``fleet status`` sees it later),
        signed with this gateway's ack key (:mod:`edge_gate.fleet.report`)."""
        body: dict[str, object] = {
            "gateway": self.gateway_id,
            "ts_ms": round(self._clock() * 1000),
            "groups": {
                g: {"version": st.version, "applied_at": st.applied_at}
                for g, st in sorted(self.state.groups.items())
                if g in self._buffers
            },
        }
        if self._signer is not None:
            body = self._signer.sign(body)
        self._ack(self.topics.applied(self.gateway_id), encode_event(body))

    def _refuse(self, group: str, refused: Refused) -> Refused:
        log.warning(
            "fleet.refused",
            extra={
                "EG_GROUP": group,
                "EG_REASON": refused.reason.value,
                "EG_VERSION": refused.version,
            },
        )
        self._emit(
            EventType.FLEET_REFUSED,
            door=None,
            reason=refused.reason.value,
            detail=f"{group}: {refused.detail}"
            + (f" (version {refused.version})" if refused.version is not None else ""),
        )
        self.history.append(refused)
        return refused
