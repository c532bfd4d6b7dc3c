"""Check a stream of audit events, as a security desk would: signatures, duplicates, seq gaps.

Input: one event per line (the JSON published on ``…/events``); ``mosquitto_sub -v`` lines
(``topic payload``) are accepted too, and those whose topic does not end in ``/events`` (the
retained ``…/status`` and ``…/health`` messages a ``-t 'edge-gate/#'`` capture also holds) are
skipped and counted, not checked; a line that starts with ``{`` is always checked strictly.
Lines may be bytes: one that is not UTF-8 is a malformed event, not a crash. An input without
a single event fails (an empty capture proves nothing). Duplicates (same ``id``, e.g.
redelivered after a gateway crash) are fine; two different events with the same gateway and
``seq`` are a failure.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge_gate.audit.events import EventFieldError, decode_event
from edge_gate.audit.signing import VerifyOutcome, verify_event


@dataclass
class Problem:
    line: int
    kind: str
    detail: str


@dataclass
class VerifyReport:
    """What ``edge-gate audit verify`` prints."""

    lines: int = 0
    valid: int = 0
    duplicates: int = 0
    skipped: int = 0  # ``mosquitto_sub -v`` lines of other topics than ``…/events``
    problems: list[Problem] = field(default_factory=list)
    gaps: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # gateway -> [(from, to)]
    seq_range: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def missing(self) -> int:
        return sum(b - a + 1 for spans in self.gaps.values() for a, b in spans)

    @property
    def empty(self) -> bool:
        """No event at all (empty input or blank lines only)."""
        return self.lines == 0

    @property
    def ok(self) -> bool:
        return not self.empty and not self.problems and not self.gaps

    def exit_code(self) -> int:
        """0 all good; 1 no events or a bad/malformed/conflicting event; 2 only seq gaps."""
        if self.problems or self.empty:
            return 1
        return 2 if self.gaps else 0


EVENTS_TOPIC_SUFFIX = "/events"
_NOT_IN_TOPIC = frozenset('+#{}":')  # wildcards and JSON punctuation: not a captured topic


def _split(line: str) -> tuple[str | None, str]:
    """``(topic, payload)`` of a ``mosquitto_sub -v`` line, ``(None, line)`` of any other."""
    text = line.strip()
    if not text or text.startswith("{"):
        return None, text
    # "<topic> <payload>"; edge-gate topics hold no blanks (prefix, gateway and door ids can't)
    topic, _, payload = text.partition(" ")
    if not payload or "/" not in topic or any(ch in topic for ch in _NOT_IN_TOPIC):
        return None, text  # not a topic: the line is checked (and fails) as an event
    return topic, payload.strip()


def _gaps(seqs: set[int]) -> list[tuple[int, int]]:
    ordered = sorted(seqs)
    return [(a + 1, b - 1) for a, b in itertools.pairwise(ordered) if b - a > 1]


def verify_lines(lines: Iterable[str | bytes], public_key: Ed25519PublicKey) -> VerifyReport:
    """Verify every non-blank line; collect problems instead of stopping at the first."""
    report = VerifyReport()
    ids_by_seq: dict[tuple[str, int], str] = {}
    seen_ids: set[str] = set()
    for line_no, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                report.lines += 1
                detail = f"not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})"
                report.problems.append(Problem(line_no, "malformed", detail))
                continue
        topic, text = _split(raw)
        if topic is not None and not topic.endswith(EVENTS_TOPIC_SUFFIX):
            report.skipped += 1
            continue
        if not text:
            continue
        report.lines += 1
        try:
            event = decode_event(text)
        except EventFieldError as e:
            report.problems.append(Problem(line_no, "malformed", str(e)))
            continue
        outcome = verify_event(event, public_key)
        if outcome is not VerifyOutcome.VALID:
            detail = f"seq {event['seq']} id {event['id']}"
            report.problems.append(Problem(line_no, outcome.value, detail))
            continue
        key = (str(event["gateway"]), int(event["seq"]))
        previous = ids_by_seq.get(key)
        if previous is not None and previous != event["id"]:
            report.problems.append(
                Problem(
                    line_no, "seq_conflict", f"seq {key[1]} used by {previous} and {event['id']}"
                )
            )
            continue
        ids_by_seq[key] = str(event["id"])
        if event["id"] in seen_ids:
            report.duplicates += 1
        seen_ids.add(str(event["id"]))
        report.valid += 1
    by_gateway: dict[str, set[int]] = {}
    for gateway, seq in ids_by_seq:
        by_gateway.setdefault(gateway, set()).add(seq)
    for gateway, seqs in sorted(by_gateway.items()):
        report.seq_range[gateway] = (min(seqs), max(seqs))
        spans = _gaps(seqs)
        if spans:
            report.gaps[gateway] = spans
    return report


def format_report(report: VerifyReport) -> list[str]:
    """Human-readable summary lines."""
    out = [
        f"events: {report.lines} lines, {report.valid} valid signatures, "
        f"{report.duplicates} duplicates (same id), {len(report.problems)} problems, "
        f"{report.skipped} non-event lines skipped (topic not ending in /events)"
    ]
    for gateway, (lo, hi) in report.seq_range.items():
        spans = report.gaps.get(gateway, [])
        text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans) or "none"
        out.append(f"gateway {gateway}: seq {lo}..{hi}, gaps: {text}")
    out.extend(f"line {p.line}: {p.kind}: {p.detail}" for p in report.problems)
    if report.empty:
        out.append(
            "no events found: the input is empty or holds only blank lines"
            + (f" and {report.skipped} non-event lines" if report.skipped else "")
        )
    out.append("OK" if report.ok else "FAILED")
    return out
