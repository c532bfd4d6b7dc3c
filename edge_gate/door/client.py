"""The gateway side of the relay protocol: handshake, signed unlock, verified answer, status.

Every outcome is a value: :class:`UnlockOutcome` ``ok`` is true only after an ACK whose MAC,
nonce and counter all check out (``unlocked``), or, when that ACK was lost, after a MAC'd
STATUS bound to a fresh nonce shows that the relay accepted exactly this command's counter
(``unlocked_ack_lost``). Reasons (stable strings, used in audit events):

``unlocked``, ``unlocked_ack_lost``, ``unconfirmed`` (the UNLOCK went out and the relay went
quiet: the door may have opened), ``relay_unavailable``, ``timeout``, ``bad_mac`` (an answer
failed its MAC),
``bad_challenge``, ``stale`` (deadline passed before sending), ``counter_error`` (the counter
could not be persisted), ``nack:<code>`` with code one of ``bad_mac``, ``replay``, ``expired``,
``counter``, ``bad_pulse``, ``internal``, ``unknown_<n>``.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge_gate.door.codec import (
    KEY_BYTES,
    MAX_PULSE_MS,
    NONCE_BYTES,
    Answer,
    Challenge,
    Decoded,
    Hello,
    Message,
    NackCode,
    Result,
    Status,
    StatusRequest,
    Unlock,
    encode,
    from_unframed,
)
from edge_gate.door.counter import CounterStore
from edge_gate.door.framing import StreamDecoder
from edge_gate.door.transport import Channel, ChannelUnavailable
from edge_gate.errors import RelayError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnlockOutcome:
    ok: bool
    reason: str
    latency_ms: float  # HELLO sent → answer verified (or failure)
    pulse_ms: int = 0  # pulse the relay applied (ACK only)
    counter: int | None = None
    ack_latency_ms: float | None = None  # UNLOCK sent → ACK verified


@dataclass(frozen=True)
class StatusOutcome:
    ok: bool
    reason: str
    door_open: bool = False
    tamper: bool = False
    energised: bool = False
    relay_counter: int = 0


@dataclass(frozen=True)
class HandshakeOutcome:
    ok: bool
    reason: str
    challenge: Challenge | None = None
    latency_ms: float = 0.0


class _Timeout(Exception):
    pass


def nack_reason(code: int) -> str:
    """``nack:<name>`` for an answer code."""
    try:
        return f"nack:{NackCode(code).name.lower()}"
    except ValueError:
        return f"nack:unknown_{code}"


class RelayClient:
    """Talks to one relay over ``channel``. Not thread-safe: one worker thread owns it."""

    def __init__(
        self,
        channel: Channel,
        key: bytes,
        counter: CounterStore,
        *,
        timeout_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("relay key must be 32 bytes")
        self._channel = channel
        self._key = key
        self._counter = counter
        self._timeout_s = timeout_s
        self._clock = clock
        self._decoder = StreamDecoder()
        self._pending: list[Decoded] = []

    @property
    def channel(self) -> Channel:
        return self._channel

    def _send(self, msg: Message) -> None:
        self._channel.write(encode(msg, self._key))

    def _await(self, deadline_s: float, accept: Callable[[Message], bool]) -> Decoded:
        """Next decoded frame that is BAD_MAC or an OK message ``accept`` wants; others dropped."""
        while True:
            while self._pending:
                d = self._pending.pop(0)
                if d.result is Result.BAD_MAC and d.msg_type is not None:
                    return d
                if d.result is Result.OK and d.message is not None and accept(d.message):
                    return d
                log.debug("relay.frame_ignored", extra={"EG_RESULT": d.result.value})
            remaining = deadline_s - self._clock()
            if remaining <= 0:
                raise _Timeout
            data = self._channel.read(remaining)
            self._pending.extend(from_unframed(u, self._key) for u in self._decoder.feed(data))

    def _fresh(self) -> None:
        self._decoder.reset()
        self._pending.clear()
        self._channel.discard_input()

    def handshake(self) -> HandshakeOutcome:
        """HELLO → CHALLENGE with a verified MAC: proves the relay holds the key."""
        start = self._clock()
        try:
            self._fresh()
            gw_nonce = secrets.token_bytes(NONCE_BYTES)
            self._send(Hello(gw_nonce))
            d = self._await(
                start + self._timeout_s,
                lambda m: isinstance(m, Challenge) and m.gw_nonce == gw_nonce,
            )
        except ChannelUnavailable:
            return HandshakeOutcome(False, "relay_unavailable")
        except _Timeout:
            return HandshakeOutcome(False, "timeout")
        latency_ms = (self._clock() - start) * 1000.0
        if d.result is not Result.OK or not isinstance(d.message, Challenge):
            return HandshakeOutcome(False, "bad_mac", latency_ms=latency_ms)
        return HandshakeOutcome(True, "ok", d.message, latency_ms)

    def unlock(self, pulse_ms: int, deadline_s: float | None = None) -> UnlockOutcome:
        """Challenge, signed UNLOCK, verified ACK. Never raises for expected failures."""
        if not 1 <= pulse_ms <= MAX_PULSE_MS:
            raise ValueError(f"pulse_ms must be in 1..{MAX_PULSE_MS}")
        start = self._clock()
        hs = self.handshake()
        if not hs.ok or hs.challenge is None:
            return self._done(start, hs.reason if hs.reason != "bad_mac" else "bad_challenge")
        return self.unlock_with(hs.challenge, pulse_ms, deadline_s=deadline_s, start_s=start)

    def unlock_with(
        self,
        challenge: Challenge,
        pulse_ms: int,
        *,
        deadline_s: float | None = None,
        start_s: float | None = None,
        counter: int | None = None,
    ) -> UnlockOutcome:
        """Second half of :meth:`unlock` (tests use it to age a challenge or force a counter)."""
        start = self._clock() if start_s is None else start_s
        if not 1 <= pulse_ms <= MAX_PULSE_MS:
            raise ValueError(f"pulse_ms must be in 1..{MAX_PULSE_MS}")
        if deadline_s is not None and self._clock() > deadline_s:
            return self._done(start, "stale")
        try:
            value = self._counter.reserve() if counter is None else counter
        except RelayError as e:
            log.error("relay.counter_error", extra={"EG_ERROR": str(e)})
            return self._done(start, "counter_error")
        sent_s = self._clock()
        try:
            self._send(Unlock(challenge.relay_nonce, value, pulse_ms))
            d = self._await(
                sent_s + self._timeout_s,
                lambda m: (
                    isinstance(m, Answer)
                    and m.relay_nonce == challenge.relay_nonce
                    and m.counter == value
                ),
            )
        except ChannelUnavailable:
            return self._done(start, "relay_unavailable", value)
        except _Timeout:
            return self._settle_unanswered(start, challenge, value, pulse_ms, "timeout")
        ack_ms = (self._clock() - sent_s) * 1000.0
        answer = d.message
        if d.result is not Result.OK or not isinstance(answer, Answer):
            return self._settle_unanswered(start, challenge, value, pulse_ms, "bad_mac")
        if answer.is_ack and answer.code == NackCode.OK and answer.pulse_ms > 0:
            return UnlockOutcome(
                True, "unlocked", (self._clock() - start) * 1000.0, answer.pulse_ms, value, ack_ms
            )
        if answer.code == NackCode.COUNTER:
            # Authenticated news that our counter is behind (state restored from an old copy):
            # this command stays refused; move forward so the next one can succeed.
            log.warning("relay.counter_rollback_refused", extra={"EG_COUNTER": value})
            self._counter.advance_to(answer.relay_counter)
        reason = nack_reason(answer.code) if not answer.is_ack else "bad_ack"
        return self._done(start, reason, value)

    def _settle_unanswered(
        self, start: float, challenge: Challenge, value: int, pulse_ms: int, why: str
    ) -> UnlockOutcome:
        """The UNLOCK went out but no valid answer came back: a lost or mangled ACK, or a
        refused command. Ask the relay (a MAC'd STATUS bound to a fresh nonce) whether it
        accepted this counter, so the audit trail says what the door really did.

        Only a relay counter that was below ours at the challenge and has reached ours since
        proves this command ran; a relay already ahead of us (our counter file restored from an
        old copy) refused it, and we move our counter past the relay's."""
        st = self.status()
        if st.ok and st.relay_counter >= value and challenge.relay_counter >= value:
            self._counter.advance_to(st.relay_counter)  # we were behind: this command was refused
            return self._done(start, why, value)
        if st.ok and challenge.relay_counter < value <= st.relay_counter:
            log.warning("relay.ack_lost_unlock_confirmed", extra={"EG_COUNTER": value})
            elapsed_ms = (self._clock() - start) * 1000.0
            return UnlockOutcome(True, "unlocked_ack_lost", elapsed_ms, pulse_ms, value, None)
        if st.ok or st.reason == "bad_mac":  # refused, or answers we cannot verify (wrong key)
            return self._done(start, why, value)
        # the relay went quiet after the UNLOCK: the door may or may not have opened
        return self._done(start, "unconfirmed", value)

    def _done(self, start: float, reason: str, counter: int | None = None) -> UnlockOutcome:
        outcome = UnlockOutcome(False, reason, (self._clock() - start) * 1000.0, 0, counter)
        log.warning("relay.unlock_failed", extra={"EG_REASON": reason})
        return outcome

    def status(self) -> StatusOutcome:
        """Door sensor, tamper and relay state, in a MAC'd answer bound to a fresh nonce."""
        try:
            self._fresh()
            gw_nonce = secrets.token_bytes(NONCE_BYTES)
            self._send(StatusRequest(gw_nonce))
            d = self._await(
                self._clock() + self._timeout_s,
                lambda m: isinstance(m, Status) and m.gw_nonce == gw_nonce,
            )
        except ChannelUnavailable:
            return StatusOutcome(False, "relay_unavailable")
        except _Timeout:
            return StatusOutcome(False, "timeout")
        st = d.message
        if d.result is not Result.OK or not isinstance(st, Status):
            return StatusOutcome(False, "bad_mac")
        return StatusOutcome(True, "ok", st.door_open, st.tamper, st.energised, st.relay_counter)
