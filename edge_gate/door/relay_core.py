"""The relay controller's protocol logic, pure: challenge issue, unlock verification, answers.

The simulator (:mod:`edge_gate_dev.relay_sim`) and a firmware port do the I/O around this: feed it
decoded frames with the current monotonic time, write the returned reply, persist
``grant.counter`` *before* energising the relay, and relock after ``grant.pulse_ms``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from edge_gate.door.codec import (
    KEY_BYTES,
    MAX_NONCE_TTL_MS,
    NONCE_BYTES,
    Answer,
    Challenge,
    Decoded,
    Hello,
    NackCode,
    Result,
    Status,
    StatusRequest,
    Unlock,
    encode,
)

__layer__ = "core"


class EventKind(enum.Enum):
    HELLO = "hello"
    STATUS = "status"
    UNLOCKED = "unlocked"
    REJECTED = "rejected"


@dataclass(frozen=True)
class RelayPolicy:
    max_pulse_ms: int = 5000
    nonce_ttl_ms: int = MAX_NONCE_TTL_MS

    def __post_init__(self) -> None:
        if not 1 <= self.nonce_ttl_ms <= MAX_NONCE_TTL_MS:
            raise ValueError(f"nonce_ttl_ms must be in 1..{MAX_NONCE_TTL_MS}")
        if not 1 <= self.max_pulse_ms <= 0xFFFF:
            raise ValueError("max_pulse_ms must be in 1..65535")


@dataclass(frozen=True)
class RelayInputs:
    """Physical state the relay reports in STATUS."""

    door_open: bool = False
    tamper: bool = False
    energised: bool = False


@dataclass(frozen=True)
class UnlockGrant:
    """An accepted unlock: persist ``counter``, energise for ``pulse_ms``, then send ``ack``."""

    counter: int
    pulse_ms: int
    ack: bytes
    nack_internal: bytes  # send this instead of ``ack`` when persisting the counter failed


@dataclass(frozen=True)
class RelayAction:
    """What the I/O side must do after one frame."""

    event: EventKind | None
    reason: str = ""
    reply: bytes | None = None
    grant: UnlockGrant | None = None


_NACK_FOR: dict[Result, NackCode] = {
    Result.BAD_MAC: NackCode.BAD_MAC,
    Result.REPLAY: NackCode.REPLAY,
    Result.EXPIRED: NackCode.EXPIRED,
    Result.COUNTER: NackCode.COUNTER,
    Result.BAD_PULSE: NackCode.BAD_PULSE,
}


@dataclass
class _Outstanding:
    nonce: bytes
    issued_s: float


class RelayCore:
    """One relay's protocol state: at most one outstanding nonce; highest accepted counter."""

    def __init__(
        self,
        key: bytes,
        *,
        highest_counter: int,
        policy: RelayPolicy,
        nonce_source: Callable[[int], bytes],
    ) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("relay key must be 32 bytes")
        self._key = key
        self._highest = highest_counter
        self._policy = policy
        self._nonce_source = nonce_source
        self._outstanding: _Outstanding | None = None

    @property
    def highest_counter(self) -> int:
        return self._highest

    def commit(self, grant: UnlockGrant) -> None:
        """Record the grant's counter as accepted (call after persisting it)."""
        self._highest = max(self._highest, grant.counter)

    def handle(self, decoded: Decoded, now_s: float, inputs: RelayInputs) -> RelayAction:
        """Process one decoded frame."""
        if decoded.result is Result.BAD_MAC and isinstance(decoded.unverified, Unlock):
            # Any UNLOCK attempt uses up the challenge. The NACK echoes the (untrusted) nonce
            # and counter so the gateway can match it; a NACK can never be turned into an ACK.
            self._outstanding = None
            bad = decoded.unverified
            return self._reject(Result.BAD_MAC, bad.relay_nonce, bad.counter)
        if decoded.result is not Result.OK or decoded.message is None:
            return RelayAction(EventKind.REJECTED, decoded.result.value)
        msg = decoded.message
        if isinstance(msg, Hello):
            return self._challenge(msg, now_s)
        if isinstance(msg, Unlock):
            return self._unlock(msg, now_s)
        if isinstance(msg, StatusRequest):
            status = Status(
                msg.gw_nonce, inputs.door_open, inputs.tamper, inputs.energised, self._highest
            )
            return RelayAction(EventKind.STATUS, reply=encode(status, self._key))
        return RelayAction(EventKind.REJECTED, "unexpected_type")

    def _challenge(self, hello: Hello, now_s: float) -> RelayAction:
        nonce = self._nonce_source(NONCE_BYTES)
        if len(nonce) != NONCE_BYTES:
            raise ValueError("nonce source returned the wrong length")
        self._outstanding = _Outstanding(nonce, now_s)
        msg = Challenge(hello.gw_nonce, nonce, self._policy.nonce_ttl_ms, self._highest)
        return RelayAction(EventKind.HELLO, reply=encode(msg, self._key))

    def _unlock(self, cmd: Unlock, now_s: float) -> RelayAction:
        outstanding, self._outstanding = self._outstanding, None  # single use, whatever happens
        if outstanding is None or outstanding.nonce != cmd.relay_nonce:
            return self._reject(Result.REPLAY, cmd.relay_nonce, cmd.counter)
        age_ms = (now_s - outstanding.issued_s) * 1000.0
        if age_ms > self._policy.nonce_ttl_ms or age_ms < 0:
            return self._reject(Result.EXPIRED, cmd.relay_nonce, cmd.counter)
        if cmd.counter <= self._highest:
            return self._reject(Result.COUNTER, cmd.relay_nonce, cmd.counter)
        if cmd.pulse_ms == 0:
            return self._reject(Result.BAD_PULSE, cmd.relay_nonce, cmd.counter)
        pulse_ms = min(cmd.pulse_ms, self._policy.max_pulse_ms)
        ack = Answer(True, cmd.relay_nonce, cmd.counter, NackCode.OK, pulse_ms, cmd.counter)
        internal = Answer(False, cmd.relay_nonce, cmd.counter, NackCode.INTERNAL, 0, self._highest)
        grant = UnlockGrant(
            cmd.counter, pulse_ms, encode(ack, self._key), encode(internal, self._key)
        )
        return RelayAction(EventKind.UNLOCKED, reply=None, grant=grant)

    def _reject(self, why: Result, nonce: bytes, counter: int) -> RelayAction:
        nack = Answer(False, nonce, counter, _NACK_FOR[why], 0, self._highest)
        return RelayAction(EventKind.REJECTED, why.value, reply=encode(nack, self._key))
