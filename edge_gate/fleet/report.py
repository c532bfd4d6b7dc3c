"""What a gateway reports back to the admin station, and whether the admin station trusts it.

A gateway signs its two retained reports with its own Ed25519 ack key (``fleet.ack_key_file``,
written 0600 by ``edge-gate fleet keygen``; the public half is registered on the admin station
with ``fleet add-gateway``):

* ``<prefix>/<gateway>/fleet/applied`` — ``{"gateway", "ts_ms", "groups": {group: {"version",
  "applied_at"}}, "kid", "sig"}`` (the follower, after every apply and on start);
* ``<prefix>/<gateway>/health`` — ``{"gateway", "ts_ms", "camera", "door", "last_event": {"type",
  "ts"}, outbox figures, "kid", "sig"}`` (the daemon's audit publisher; nothing personal).

The signature is the audit events' (:class:`~edge_gate.audit.signing.EventSigner`: Ed25519 over
the canonical JSON without ``sig``). :func:`check_report` says whether a report is the gateway's
own and new: signed by the key registered for that gateway (another gateway's key, or any other,
is ``wrong_key``), naming that gateway, and not older than the newest one the admin station has
trusted before (:class:`SeenState`; an older one is a ``replayed`` message). Only a ``trusted``
acknowledgement counts as applied.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge_gate.audit.signing import VerifyOutcome, verify_event
from edge_gate.errors import EdgeGateError
from edge_gate.fsutil import atomic_write, read_private_file

FORMAT = "edge-gate-fleet-seen"
MAX_BYTES = 16 << 20
KINDS = ("applied", "health")


class Trust(enum.StrEnum):
    TRUSTED = "trusted"
    UNSIGNED = "unsigned"
    NO_KEY = "no_key"  # no ack key registered for this gateway
    WRONG_KEY = "wrong_key"
    BAD_SIGNATURE = "bad_signature"
    WRONG_GATEWAY = "wrong_gateway"
    REPLAYED = "replayed"
    MALFORMED = "malformed"


def report_ts_ms(body: Mapping[str, Any]) -> int | None:
    ts = body.get("ts_ms")
    return ts if isinstance(ts, int) and not isinstance(ts, bool) and ts >= 0 else None


def check_report(
    body: Mapping[str, Any],
    *,
    gateway: str,
    key: Ed25519PublicKey | None,
    newest_ts_ms: int | None,
) -> Trust:
    """Whether ``body``, read on ``gateway``'s topic, is that gateway's own, current report."""
    if "sig" not in body:
        return Trust.UNSIGNED
    if key is None:
        return Trust.NO_KEY
    outcome = verify_event(body, key)
    if outcome is VerifyOutcome.WRONG_KEY:
        return Trust.WRONG_KEY
    if outcome is VerifyOutcome.BAD_SIGNATURE:
        return Trust.BAD_SIGNATURE
    if outcome is not VerifyOutcome.VALID:
        return Trust.MALFORMED
    if body.get("gateway") != gateway:
        return Trust.WRONG_GATEWAY
    ts = report_ts_ms(body)
    if ts is None:
        return Trust.MALFORMED
    if newest_ts_ms is not None and ts < newest_ts_ms:
        return Trust.REPLAYED
    return Trust.TRUSTED


class SeenStateError(EdgeGateError):
    """The admin station's record of trusted reports is damaged."""


@dataclass
class SeenState:
    """Per gateway and report kind, the ``ts_ms`` of the newest trusted report."""

    newest: dict[str, dict[str, int]] = field(default_factory=dict)

    def get(self, gateway: str, kind: str) -> int | None:
        return self.newest.get(gateway, {}).get(kind)

    def note(self, gateway: str, kind: str, ts_ms: int) -> None:
        per = self.newest.setdefault(gateway, {})
        per[kind] = max(ts_ms, per.get(kind, ts_ms))


def seen_path(state_file: Path) -> Path:
    """Kept next to the admin state (its own file: ``fleet status`` never rewrites the state)."""
    return state_file.with_name(state_file.name + ".seen")


def load_seen(path: Path) -> SeenState:
    if not Path(path).exists():
        return SeenState()
    try:
        raw = json.loads(read_private_file(path, MAX_BYTES))
        if raw.get("format") != FORMAT:
            raise ValueError("format")
        newest = {
            str(gw): {str(k): int(v) for k, v in kinds.items() if k in KINDS}
            for gw, kinds in raw["gateways"].items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        # forgetting it would let a replayed old report pass again: refuse instead
        raise SeenStateError(
            f"{path}: damaged record of gateway reports ({type(e).__name__})"
        ) from e
    return SeenState(newest)


def save_seen(path: Path, seen: SeenState) -> None:
    data = {
        "format": FORMAT,
        "gateways": {gw: dict(sorted(k.items())) for gw, k in sorted(seen.newest.items())},
    }
    atomic_write(path, json.dumps(data, separators=(",", ":")).encode("utf-8"))
