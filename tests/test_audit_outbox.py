"""Durable outbox and AuditTrail without a broker: durability, seq, overflow, never raising."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edge_gate.audit.events import decode_event
from edge_gate.audit.outbox import Outbox, OutboxEntry
from edge_gate.audit.signing import (
    VerifyOutcome,
    generate_signing_key,
    load_signing_key,
    verify_event,
)
from edge_gate.audit.trail import AuditTrail
from edge_gate.config.mqtt import MqttConfig
from edge_gate.fsutil import atomic_write


def _entry(n: int, *, security: bool) -> OutboxEntry:
    return OutboxEntry(
        f"id-{n}", "access.denied" if security else "camera.lost", "d1", security, b"{}"
    )


def _cfg(tmp_path: Path, **kw: object) -> MqttConfig:
    key = tmp_path / "audit.key"
    if not key.exists():
        atomic_write(key, generate_signing_key())
    values: dict[str, object] = {
        "outbox_file": tmp_path / "state" / "outbox.db",
        "signing_key_file": key,
        "gateway_id": "gw1",
        "port": 1,  # nothing listens: these tests never start the publisher
    }
    values.update(kw)
    return MqttConfig(**values)


def test_outbox_is_wal_full_sync_and_private(tmp_path: Path) -> None:
    """WAL journal, synchronous=FULL (2), and the database file is 0600."""
    with Outbox(tmp_path / "o.db", 100) as ob:
        assert ob.pragma("journal_mode") == "wal"
        assert ob.pragma("synchronous") == 2
    assert (tmp_path / "o.db").stat().st_mode & 0o777 == 0o600


def test_seq_is_monotonic_and_persisted_across_reopen(tmp_path: Path) -> None:
    """seq keeps counting after every event was acked and the file was reopened."""
    path = tmp_path / "o.db"
    with Outbox(path, 100) as ob:
        seqs = [ob.append(lambda s: _entry(s, security=True)).seq for _ in range(5)]
        assert seqs == [1, 2, 3, 4, 5]
        assert ob.ack(seqs) == 5
        assert ob.count() == 0
    with Outbox(path, 100) as ob:
        assert ob.append(lambda s: _entry(s, security=True)).seq == 6
        assert ob.last_seq() == 6


def test_pending_in_order_and_ack_removes_only_acked(tmp_path: Path) -> None:
    """Rows come back oldest first; only PUBACKed seqs leave the outbox."""
    with Outbox(tmp_path / "o.db", 100) as ob:
        for _ in range(10):
            ob.append(lambda s: _entry(s, security=False))
        assert [e.seq for e in ob.pending(0, 4)] == [1, 2, 3, 4]
        assert [e.seq for e in ob.pending(8)] == [9, 10]
        ob.ack([2, 3, 99])
        assert [e.seq for e in ob.pending()] == [1, 4, 5, 6, 7, 8, 9, 10]
        assert ob.count() == 8


def test_overflow_evicts_oldest_non_security_then_refuses_new(tmp_path: Path) -> None:
    """Full outbox: the oldest non-security event goes first; with only security events left the
    new event is refused. Both are counted, and one audit.dropped report resets the counters."""
    with Outbox(tmp_path / "o.db", 4) as ob:
        ob.append(lambda s: _entry(s, security=True))  # 1
        ob.append(lambda s: _entry(s, security=False))  # 2
        ob.append(lambda s: _entry(s, security=True))  # 3
        ob.append(lambda s: _entry(s, security=False))  # 4
        r5 = ob.append(lambda s: _entry(s, security=True))
        assert (r5.stored, r5.evicted_seq) == (True, 2)
        r6 = ob.append(lambda s: _entry(s, security=True))
        assert (r6.stored, r6.evicted_seq) == (True, 4)
        r7 = ob.append(lambda s: _entry(s, security=True))
        r8 = ob.append(lambda s: _entry(s, security=False))
        assert not r7.stored
        assert not r8.stored
        assert (r7.seq, r8.seq) == (7, 8)
        assert [e.seq for e in ob.pending()] == [1, 3, 5, 6]
        drops = ob.drops()
        assert (drops.dropped, drops.dropped_security) == (3, 1)
        captured = []

        def make_report(seq: int, d: object) -> OutboxEntry:
            captured.append(d)
            return _entry(seq, security=True)

        report = ob.take_drop_report(make_report)
        assert report is not None
        assert report.seq == 9
        assert ob.drops().total == 0
        assert ob.take_drop_report(make_report) is None
        assert len(captured) == 1


def test_concurrent_processes_never_share_a_seq(tmp_path: Path) -> None:
    """The daemon and the enroll CLI may append at once: seqs stay unique and gap-free."""
    path = tmp_path / "o.db"
    Outbox(path, 10_000).close()
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from edge_gate.audit.outbox import Outbox, OutboxEntry
        tag = sys.argv[1]
        with Outbox(Path({str(path)!r}), 10_000) as ob:
            for i in range(150):
                ob.append(lambda s: OutboxEntry(f"{{tag}}-{{s}}", "test", None, False, b"x"))
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, tag]) for tag in ("a", "b")]
    assert [p.wait(60) for p in procs] == [0, 0]
    with Outbox(path, 10_000) as ob:
        seqs = [e.seq for e in ob.pending(0, 1000)]
    assert seqs == list(range(1, 301))


def test_event_is_durable_once_emit_returns(tmp_path: Path) -> None:
    """SIGKILL right after emit() returned: the signed event is in the outbox after restart."""
    cfg = _cfg(tmp_path)
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from edge_gate.config.mqtt import MqttConfig
        from edge_gate.audit.trail import AuditTrail
        cfg = MqttConfig.model_validate_json({cfg.model_dump_json()!r})
        trail = AuditTrail.from_config(cfg)
        seq = trail.emit("access.granted", door="door-1", subject="u-1", reason="match")
        print(seq, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL
    assert proc.stdout.strip() == "1"
    with Outbox(cfg.outbox_file, 100) as ob:
        rows = ob.pending()
    assert [r.seq for r in rows] == [1]
    assert json.loads(rows[0].payload)["type"] == "access.granted"


def test_trail_without_publisher_stores_signed_events(tmp_path: Path) -> None:
    """The enroll CLI's path: emit() without start() stores verifiable signed events."""
    cfg = _cfg(tmp_path)
    trail = AuditTrail.from_config(cfg)
    assert trail.emit("gallery.enrolled", door=None, subject="u-9", reason="cli", frames=5) == 1
    assert trail.emit("gallery.revoked", door=None, subject="u-9") == 2
    rows = trail.outbox.pending()
    trail.close()
    pub = load_signing_key(cfg.signing_key_file).public_key()
    for row in rows:
        assert verify_event(decode_event(row.payload), pub) is VerifyOutcome.VALID


def test_emit_stores_an_event_with_a_long_detail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A camera.lost whose detail (redacted rtsps URL + reason, ~240 chars) and a service event
    with a multi-line exception text exceed the text limit: both are stored, shortened and
    signed, not lost to audit.emit_failed."""
    cfg = _cfg(tmp_path)
    url = "rtsps://cam-entrance-north.site-berlin-3.example.internal:322/axis-media/media.amp"
    detail = (
        f"{url}?videocodec=h264&resolution=1920x1080&fps=15&streamprofile=edge-gate-recognition: "
        "TLS handshake failed: certificate verify failed: unable to get local issuer certificate "
        "(read timeout after 5.0 s)"
    )
    assert len(detail) > 200
    trail = AuditTrail.from_config(cfg)
    assert trail.emit("camera.lost", door="door-1", reason="open_failed", detail=detail) == 1
    error = "Traceback (most recent call last):\n" + "  File x, line 1\n" * 100
    assert trail.emit("service.stopping", door=None, reason="startup_failed", detail=error) == 2
    rows = trail.outbox.pending()
    trail.close()
    assert trail.stats().emit_failures == 0
    assert "audit.emit_failed" not in [r.getMessage() for r in caplog.records]
    assert [r.seq for r in rows] == [1, 2]
    pub = load_signing_key(cfg.signing_key_file).public_key()
    lost, stopping = (decode_event(r.payload) for r in rows)
    assert lost["detail"].startswith(url)
    assert lost["detail"].endswith("\u2026")
    assert len(lost["detail"]) == 200
    assert "\n" not in stopping["detail"]
    for event in (lost, stopping):
        assert verify_event(event, pub) is VerifyOutcome.VALID


def test_emit_never_raises(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Bad input or a closed trail returns None and logs; the decision path never sees an error."""
    trail = AuditTrail.from_config(_cfg(tmp_path))
    assert trail.emit("no.such.type", door="door-1") is None
    assert trail.emit("access.denied", door="bad door!") is None
    assert trail.emit("access.granted", door="d1", subject="u1", name="Alice", embedding=[1.0]) == 1
    trail.close()
    assert trail.emit("access.granted", door="d1") is None
    assert trail.stats().emit_failures == 3
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("audit.emit_failed") == 3
    assert "audit.fields_dropped" in messages
    assert not any("Alice" in str(vars(r)) for r in caplog.records)


def test_full_outbox_reports_drops_as_signed_event(tmp_path: Path) -> None:
    """Overflow drops become one signed audit.dropped event carrying the counts."""
    cfg = _cfg(tmp_path, outbox_max_events=100)
    trail = AuditTrail.from_config(cfg)
    for _ in range(105):
        trail.emit("camera.lost", door="d1")
    trail._report_drops()  # what the publisher calls once back online
    rows = trail.outbox.pending(0, 1000)
    trail.close()
    last = decode_event(rows[-1].payload)
    assert last["type"] == "audit.dropped"
    assert last["dropped"] == 5
    assert last["dropped_security"] == 0
    assert os.path.exists(cfg.outbox_file)
