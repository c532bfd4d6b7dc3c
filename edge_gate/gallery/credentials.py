"""Who holds which card, and PIN checks, over one loaded gallery.

``CredentialDirectory.from_gallery(gallery)`` indexes the people's cards and PIN hashes in
dicts: rebuilding it when the gallery reloads costs one pass over the records and no hashing.
A card held by more than one person (possible only through a fleet bundle; ``users set-card``
refuses it) names nobody: fail secure.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Protocol

from edge_gate.gallery.pin import spend_pin_time, verify_pin
from edge_gate.gallery.record import PersonRecord, PinHash
from edge_gate.osdp.cards import CardCredential

_TAG_CONTEXT = b"edge-gate card tag v1"


class _HasPeople(Protocol):
    @property
    def people(self) -> tuple[PersonRecord, ...]: ...


class CredentialDirectory:
    """Card → person, person → card, person → PIN hash."""

    def __init__(self, people: Iterable[PersonRecord]) -> None:
        self._cards: dict[str, CardCredential] = {}
        self._pins: dict[str, PinHash] = {}
        holders: dict[str, str | None] = {}
        for rec in people:
            if rec.card is not None:
                self._cards[rec.user_id] = rec.card
                key = rec.card.key()
                holders[key] = None if key in holders else rec.user_id
            if rec.pin is not None:
                self._pins[rec.user_id] = rec.pin
        self._holders = holders
        self.shared_cards = sum(1 for v in holders.values() if v is None)
        """How many cards name more than one person (and so nobody)."""

    @classmethod
    def from_gallery(cls, gallery: _HasPeople) -> CredentialDirectory:
        return cls(gallery.people)

    def __len__(self) -> int:
        return len(self._cards)

    def holder_of(self, card: CardCredential) -> str | None:
        """The user id holding ``card``; None when nobody (or more than one person) does."""
        return self._holders.get(card.key())

    def card_of(self, user_id: str) -> CardCredential | None:
        return self._cards.get(user_id)

    def has_pin(self, user_id: str) -> bool:
        return user_id in self._pins

    def check_pin(self, user_id: str, pin: str) -> bool:
        """True when ``pin`` is ``user_id``'s PIN. Constant-time compare of the scrypt hash;
        an unknown user or one without a PIN still spends the hash time, and fails."""
        stored = self._pins.get(user_id)
        if stored is None:
            spend_pin_time(pin)
            return False
        return verify_pin(stored, pin)


def card_tag_key(gallery_key: bytes) -> bytes:
    """The key of :func:`edge_gate.osdp.cards.card_hash` for events, derived from the gallery
    key (so a card's tag changes with ``keys rotate``, like everything under that key)."""
    return hmac.new(gallery_key, _TAG_CONTEXT, hashlib.sha256).digest()
