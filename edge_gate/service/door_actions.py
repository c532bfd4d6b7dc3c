"""What a door does with each outcome: events, the unlock, and the relay's answer.

With ``[osdp_pd]`` a grant opens nothing here: the granted person's card goes to the panel as
one card read (:class:`CardReporter`), and the panel decides. A person without a card, or no
Secure Channel to the panel, is an ``access.denied`` (``no_card``, ``panel_unavailable``) and
nothing is sent. Cards are named in events only by their keyed tag.

Runs on the pipeline thread (decisions) and on the relay worker thread (unlock results); the
only shared state is the table of grants waiting for the relay, under a lock.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol, assert_never

from edge_gate.audit.events import EventType
from edge_gate.capture.frame import Frame
from edge_gate.capture.thread import LostEvent, RestoredEvent
from edge_gate.config import EdgeGateConfig
from edge_gate.decision.policy import Deny, DenyReason, Grant, Outcome, relay_reason
from edge_gate.door.client import UnlockOutcome
from edge_gate.door.worker import UnlockCommand
from edge_gate.osdp.cards import CardCredential, card_hash
from edge_gate.osdp.messages import LinkState
from edge_gate.service.frame_processor import FrameResult
from edge_gate.service.notify import Notifier
from edge_gate.service.ports import DoorActuator, EventSink, EventValue
from edge_gate.service.second_factor import Credentials, FactorOutcome, NoCredentials
from edge_gate.service.snapshots import SnapshotWriter

log = logging.getLogger(__name__)


class CardReporter(Protocol):
    """Where a granted person's card goes instead of an unlock (``[osdp_pd]``)."""

    def report(self, card: CardCredential) -> bool: ...


@dataclass(frozen=True)
class _Waiting:
    grant: Grant
    queued_s: float
    detail: str | None


class DoorActions:
    """Acts on the pipeline's outcomes for one door; every callback the parts need."""

    def __init__(
        self,
        cfg: EdgeGateConfig,
        events: EventSink,
        notifier: Notifier,
        *,
        snapshots: SnapshotWriter | None = None,
    ) -> None:
        self._cfg = cfg
        self._events = events
        self._notifier = notifier
        self.snapshots = snapshots
        self._door: DoorActuator | None = None
        self._reporter: CardReporter | None = None
        self._credentials: Credentials = NoCredentials()
        self._tag_key = b""
        self._waiting: dict[str, _Waiting] = {}
        self._lock = threading.Lock()
        self._seq = 0

    def connect(self, door: DoorActuator, reporter: CardReporter | None = None) -> None:
        """The door to open on a grant (built after us: it reports back to :meth:`on_unlocked`);
        with ``reporter`` a grant becomes a card read for the panel instead."""
        self._door = door
        self._reporter = reporter

    def use_credentials(self, credentials: Credentials, tag_key: bytes) -> None:
        """The cards of the gallery now loaded (at start and on every reload)."""
        self._credentials, self._tag_key = credentials, tag_key

    def emit(
        self,
        event_type: EventType,
        *,
        subject: str | None = None,
        reason: str | None = None,
        **fields: EventValue,
    ) -> None:
        self._events.emit(
            event_type, door=self._cfg.policy.door_id, subject=subject, reason=reason, **fields
        )

    # -- the pipeline thread -------------------------------------------------------------------

    def on_decision(self, d: Outcome, frame: Frame, result: FrameResult) -> None:
        try:
            match d:
                case Deny():
                    self._denied(d)
                case Grant():
                    self._granted(d)
                case _:
                    assert_never(d)
        finally:
            if self.snapshots is not None:
                self._snapshot(self.snapshots, frame, result, d)

    def on_factor(self, f: FactorOutcome) -> None:
        """An outcome of the door mode (a card, a PIN, a 1:1 check, a timeout): no snapshot;
        the event's detail names the factors and the card's keyed hash, never its number."""
        match f.outcome:
            case Deny():
                self._denied(f.outcome, f.detail())
            case Grant():
                self._granted(f.outcome, f.detail())
            case _:
                assert_never(f.outcome)

    def on_pipeline_error(self, e: Exception) -> None:
        self.emit(EventType.ACCESS_DENIED, reason=DenyReason.ERROR.value, detail=type(e).__name__)

    @staticmethod
    def _snapshot(writer: SnapshotWriter, frame: Frame, result: FrameResult, d: Outcome) -> None:
        """Best effort, after the decision was acted on: a full disk costs the picture only."""
        try:
            writer.write(frame, result, d)
        except Exception as e:  # nothing about a picture may touch the door
            log.warning("snapshot.write_failed", extra={"EG_REASON": type(e).__name__})

    def _denied(self, d: Deny, detail: str | None = None) -> None:
        not_live = d.reason is DenyReason.NOT_LIVE
        self.emit(
            EventType.LIVENESS_FAILED if not_live else EventType.ACCESS_DENIED,
            reason=d.reason.value,
            score=d.score,
            liveness=d.liveness_score,
            frames=d.frames,
            latency_ms=round(d.latency_s * 1000),
            detail=detail,
        )
        log.info(
            "access.denied", extra={"EG_REASON": d.reason.value, "EG_SCORE": round(d.score, 3)}
        )

    def _granted(self, d: Grant, detail: str | None = None) -> None:
        if self._door is None:
            raise RuntimeError("no door connected")  # a programming error: fail secure
        if self._reporter is not None:
            self._report_card(self._reporter, d)
            return
        with self._lock:
            self._seq += 1
            tag = f"d{self._seq}"
            self._waiting[tag] = _Waiting(d, time.monotonic(), detail)
        deadline_s = time.monotonic() + self._cfg.policy.unlock_expiry_s
        if not self._door.submit(UnlockCommand(self._cfg.relay.pulse_ms, deadline_s, tag)):
            with self._lock:
                self._waiting.pop(tag, None)
            self.emit(
                EventType.ACCESS_DENIED,
                subject=d.user_id,
                reason=DenyReason.RELAY_BUSY.value,
                score=d.score,
                detail=detail,
            )

    def _report_card(self, reporter: CardReporter, d: Grant) -> None:
        card = self._credentials.card_of(d.user_id)
        if card is None:
            self.emit(
                EventType.ACCESS_DENIED,
                subject=d.user_id,
                reason=DenyReason.NO_CARD.value,
                score=d.score,
            )
            log.warning("access.denied", extra={"EG_REASON": DenyReason.NO_CARD.value})
            return
        tag = card_hash(self._tag_key, card) if self._tag_key else None
        latency_ms = round((time.monotonic() - d.first_seen_s) * 1000)
        if not reporter.report(card):
            reason = DenyReason.PANEL_UNAVAILABLE.value
            self.emit(EventType.ACCESS_DENIED, subject=d.user_id, reason=reason, card=tag)
            log.warning("access.denied", extra={"EG_REASON": reason})
            return
        self.emit(
            EventType.ACCESS_GRANTED,
            subject=d.user_id,
            reason="card_reported",  # the panel decides whether the door opens
            score=d.score,
            margin=d.margin,
            liveness=d.liveness_score,
            frames=d.frames,
            latency_ms=latency_ms,
            card=tag,
        )
        log.info("access.card_reported", extra={"EG_USER": d.user_id, "EG_LATENCY_MS": latency_ms})

    # -- the relay worker thread ---------------------------------------------------------------

    def on_unlocked(self, cmd: UnlockCommand, outcome: UnlockOutcome) -> None:
        """The relay's verified answer (or why there is none) for a grant."""
        with self._lock:
            waiting = self._waiting.pop(cmd.tag, None)
        if waiting is None:
            return
        d = waiting.grant
        latency_ms = round((time.monotonic() - d.first_seen_s) * 1000)
        if outcome.ok:
            if outcome.reason != "unlocked":  # opened, confirmed another way (ACK was lost)
                self.emit(EventType.RELAY_ERROR, reason=outcome.reason)
            self.emit(
                EventType.ACCESS_GRANTED,
                subject=d.user_id,
                reason="match" if d.via == "face" else d.via,
                score=d.score,
                margin=d.margin,
                liveness=d.liveness_score,
                frames=d.frames,
                latency_ms=latency_ms,
                detail=waiting.detail,
            )
            log.info(
                "access.granted",
                extra={"EG_USER": d.user_id, "EG_LATENCY_MS": latency_ms, "EG_SCORE": d.score},
            )
            return
        reason = relay_reason(outcome.reason)  # e.g. relay_unconfirmed: the door may have opened
        self.emit(
            EventType.RELAY_ERROR, reason=outcome.reason, latency_ms=round(outcome.latency_ms)
        )
        self.emit(
            EventType.ACCESS_DENIED,
            subject=d.user_id,
            reason=reason.value,
            score=d.score,
            detail=waiting.detail,
        )
        log.warning("access.denied", extra={"EG_REASON": reason.value, "EG_RELAY": outcome.reason})

    # -- the OSDP panel thread -----------------------------------------------------------------

    def on_reader_link(self, state: LinkState) -> None:
        """The reader's link changed: ``osdp.online`` only with a Secure Channel; anything less
        is ``osdp.offline`` (the panel sends no osdp_OUT then: the door stays locked)."""
        if state.online and state.secure:
            self.emit(EventType.OSDP_ONLINE, reason="secure", detail=f"pd {state.address}")
            self._notifier.status("OSDP reader online (secure channel)")
            log.info("osdp.online", extra={"EG_OSDP_ADDRESS": state.address})
            return
        reason = "no_secure_channel" if state.online else "link_down"
        self.emit(EventType.OSDP_OFFLINE, reason=reason, detail=f"pd {state.address}")
        self._notifier.status(f"OSDP reader offline: {reason}; door locked")
        log.warning("osdp.offline", extra={"EG_OSDP_ADDRESS": state.address, "EG_REASON": reason})

    # -- the capture thread --------------------------------------------------------------------

    def on_camera_lost(self, ev: LostEvent) -> None:
        self.emit(EventType.CAMERA_LOST, reason=ev.failure.value, detail=ev.detail)
        self._notifier.status(f"camera lost: {ev.failure.value}")

    def on_camera_restored(self, ev: RestoredEvent) -> None:
        self.emit(EventType.CAMERA_RESTORED, latency_ms=round(ev.outage_s * 1000))
        self._notifier.status("camera streaming")
