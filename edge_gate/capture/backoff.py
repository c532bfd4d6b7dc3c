"""Exponential reconnect backoff with jitter (pure: the caller passes the random draw in)."""

from __future__ import annotations

from dataclasses import dataclass

__layer__ = "core"


@dataclass(frozen=True)
class BackoffPolicy:
    """Delay before reconnect attempt ``n`` (0-based): ``initial_s * multiplier**n``, capped.

    ``jitter`` spreads each delay uniformly over ``[d * (1 - jitter), d]`` so that many doors
    behind one switch that rebooted do not reconnect in lock-step. Failures where a quick
    retry cannot help (wrong password: cameras lock accounts) use ``slow_max_s`` as the cap
    and start from ``slow_initial_s``.
    """

    initial_s: float = 0.25
    max_s: float = 1.0
    multiplier: float = 2.0
    jitter: float = 0.25
    slow_initial_s: float = 2.0
    slow_max_s: float = 30.0

    def __post_init__(self) -> None:
        if not (0 < self.initial_s <= self.max_s and 0 < self.slow_initial_s <= self.slow_max_s):
            raise ValueError(
                "backoff: need 0 < initial_s <= max_s and slow_initial_s <= slow_max_s"
            )
        if self.multiplier < 1 or not 0 <= self.jitter < 1:
            raise ValueError("backoff: need multiplier >= 1 and 0 <= jitter < 1")

    def delay_s(self, attempt: int, unit_random: float, *, slow: bool = False) -> float:
        """The wait before retry ``attempt``; ``unit_random`` is a draw from [0, 1)."""
        base, cap = (self.slow_initial_s, self.slow_max_s) if slow else (self.initial_s, self.max_s)
        exponent = min(max(attempt, 0), 64)  # 2**64 * anything is past every cap
        nominal = min(cap, base * self.multiplier**exponent)
        return nominal * (1.0 - self.jitter * min(max(unit_random, 0.0), 1.0))
