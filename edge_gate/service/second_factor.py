"""The door's second factor in the daemon: OSDP card reads and PINs → :class:`SecondFactorPolicy`.

The panel thread hands each :class:`~edge_gate.osdp.messages.CardRead` and
:class:`~edge_gate.osdp.messages.KeypadEntry` to :class:`ReaderInbox` (thread safe); the
pipeline thread drains it on every loop turn, frame or not (:meth:`SecondFactorStage.step`), so
an unknown card is denied and a claim times out even while the camera is away. Keys are
collected into a PIN until ``#`` (``*`` clears) or until no key came for ``pin_timeout_s``.

The stage knows who holds a card and checks PINs through :class:`Credentials` (the gallery's
credential directory, rebuilt on every gallery reload). A card number or PIN never leaves this
module: outcomes carry the holder's pseudonymous id and, at most, the card's keyed hash
(:func:`~edge_gate.osdp.cards.card_hash` under the gallery's card-tag key,
:func:`~edge_gate.gallery.credentials.card_tag_key`: the same tag as ``users set-card``'s event
and the panel-reader path; no key — no usable gallery — no tag).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from edge_gate.decision.factors import (
    DoorMode,
    FaceCheck,
    FactorParams,
    ModeWindow,
    SecondFactorPolicy,
    mode_at,
)
from edge_gate.decision.policy import Decision, Deny, Grant, Outcome, Pending
from edge_gate.osdp.cards import CardCredential, card_hash
from edge_gate.osdp.messages import CardRead, KeypadEntry, ReaderEvent

log = logging.getLogger(__name__)

MAX_PIN_KEYS = 16  # longer entries are cut: a PIN is never that long


class Credentials(Protocol):
    """Who holds a card, and whose PIN is what (``edge_gate.gallery.credentials``)."""

    def holder_of(self, card: CardCredential) -> str | None: ...

    def card_of(self, user_id: str) -> CardCredential | None: ...

    def check_pin(self, user_id: str, pin: str) -> bool: ...


class NoCredentials:
    """No cards, no PINs: what a door without a usable gallery knows (every card unknown)."""

    def holder_of(self, card: CardCredential) -> str | None:
        return None

    def card_of(self, user_id: str) -> CardCredential | None:
        return None

    def check_pin(self, user_id: str, pin: str) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class CardInput:
    card: CardCredential | None  # None: a card in a format edge-gate does not decode
    now_s: float


@dataclass(frozen=True, slots=True)
class PinInput:
    pin: str
    now_s: float

    def __repr__(self) -> str:
        return f"PinInput({len(self.pin)} keys, now_s={self.now_s})"


ReaderInput = CardInput | PinInput


class ReaderInbox:
    """Card reads and finished PINs from the panel thread, for the pipeline thread."""

    def __init__(self, pin_timeout_s: float, max_items: int = 32) -> None:
        self._pin_timeout_s = pin_timeout_s
        self._max_items = max_items
        self._lock = threading.Lock()
        self._items: list[ReaderInput] = []
        self._keys: list[str] = []
        self._last_key_s = 0.0
        self.dropped = 0

    def put(self, event: ReaderEvent, now_s: float) -> None:
        with self._lock:
            if isinstance(event, CardRead):
                self._push(CardInput(event.card, now_s))
            elif isinstance(event, KeypadEntry):
                self._keys_in(event.keys, now_s)

    def _keys_in(self, keys: str, now_s: float) -> None:
        for key in keys:
            if key == "*":
                self._keys.clear()
            elif key == "#":
                self._finish(now_s)
            elif len(self._keys) < MAX_PIN_KEYS:
                self._keys.append(key)
        self._last_key_s = now_s

    def _finish(self, now_s: float) -> None:
        if self._keys:
            self._push(PinInput("".join(self._keys), now_s))
        self._keys.clear()

    def _push(self, item: ReaderInput) -> None:
        if len(self._items) >= self._max_items:  # a flood of reads: the oldest are dropped
            del self._items[0]
            self.dropped += 1
        self._items.append(item)

    def drain(self, now_s: float) -> list[ReaderInput]:
        """What arrived since the last call; keys left alone for ``pin_timeout_s`` end a PIN."""
        with self._lock:
            if self._keys and now_s - self._last_key_s >= self._pin_timeout_s:
                self._finish(now_s)
            items, self._items = self._items, []
        return items


@dataclass(frozen=True, slots=True)
class FactorOutcome:
    """A grant or denial of the second-factor stage, with the card's keyed hash if a card
    took part (for the audit event's detail: never the number)."""

    outcome: Outcome
    card: str | None = None

    def detail(self) -> str | None:
        via = self.outcome.via if isinstance(self.outcome, Grant) else None
        parts = [f"via {via}" if via else "", f"card {self.card}" if self.card else ""]
        return " ".join(p for p in parts if p) or None


class SecondFactorStage:
    """The door mode at work: one :class:`SecondFactorPolicy`, re-made when the schedule
    changes the mode (an open claim is dropped: the new mode starts clean)."""

    def __init__(
        self,
        params: FactorParams,
        inbox: ReaderInbox,
        credentials: Credentials,
        *,
        tag_key: bytes = b"",
        schedule: Sequence[ModeWindow] = (),
        wall_clock: Callable[[], datetime] = lambda: datetime.now().astimezone(),
    ) -> None:
        self._default = params.mode
        self._params = params
        self._inbox = inbox
        self._credentials = credentials
        self._tag_key = tag_key
        self._schedule = tuple(schedule)
        self._wall_clock = wall_clock
        self._claim_card: str | None = None
        self._policy = self._make(self._scheduled_mode())

    def _scheduled_mode(self) -> DoorMode:
        if not self._schedule:
            return self._default
        return mode_at(self._schedule, self._default, self._wall_clock())

    def _make(self, mode: DoorMode) -> SecondFactorPolicy:
        self._claim_card = None
        return SecondFactorPolicy(replace(self._params, mode=mode), self._check_pin)

    def _check_pin(self, user_id: str, pin: str) -> bool:
        return self._credentials.check_pin(user_id, pin)

    @property
    def mode(self) -> DoorMode:
        return self._policy.mode

    @property
    def claimed_user(self) -> str | None:
        return self._policy.claimed_user

    def set_credentials(self, credentials: Credentials, tag_key: bytes) -> None:
        """A reloaded gallery's directory and card-tag key; an open claim is dropped (it may
        be revoked)."""
        self._credentials, self._tag_key = credentials, tag_key
        self._policy = self._make(self._policy.mode)

    def on_face(self, outcome: Outcome, now_s: float) -> Decision:
        return self._policy.on_face(outcome, now_s)

    def on_face_check(self, check: FaceCheck) -> FactorOutcome | None:
        return self._settled(self._policy.on_face_check(check))

    def step(self, now_s: float) -> list[FactorOutcome]:
        """Schedule, then the reader's inputs, then the claim's timeout."""
        out: list[FactorOutcome] = []
        mode = self._scheduled_mode()
        if mode is not self._policy.mode:
            log.info("policy.mode_changed", extra={"EG_MODE": mode.value})
            self._policy = self._make(mode)
        for item in self._inbox.drain(now_s):
            if isinstance(item, CardInput):
                settled = self._card(item)
            else:
                settled = self._settled(self._policy.on_pin(item.pin, item.now_s))
            if settled is not None:
                out.append(settled)
        expired = self._settled(self._policy.tick(now_s))
        if expired is not None:
            out.append(expired)
        return out

    def _card(self, item: CardInput) -> FactorOutcome | None:
        card = item.card
        holder = self._credentials.holder_of(card) if card is not None else None
        hashed = card_hash(self._tag_key, card) if card is not None and self._tag_key else None
        decision = self._policy.on_card(holder, item.now_s)
        if isinstance(decision, Pending) and self._policy.claimed_user is not None:
            self._claim_card = hashed  # the claim this card opened
        if isinstance(decision, Grant | Deny):
            return FactorOutcome(decision, hashed)
        return None

    def _settled(self, decision: Decision | None) -> FactorOutcome | None:
        if not isinstance(decision, Grant | Deny):
            return None
        card, self._claim_card = self._claim_card, None
        return FactorOutcome(decision, card)
