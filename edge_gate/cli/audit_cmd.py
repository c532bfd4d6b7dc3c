"""``edge-gate audit pubkey|verify|test``: the audit trail for installers and security desks."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import BinaryIO

import click

from edge_gate.cli.support import EXIT_FAILURE, config_option, load_or_exit
from edge_gate.errors import AuditError, ConfigError, SecretFileError

_HINTS = {
    "audit.broker_certificate_rejected": "the broker's certificate is not signed by [mqtt] ca_file "
    "or is not valid for [mqtt] host",
    "audit.connect_failed": "cannot reach the broker: check [mqtt] host/port, firewall, and that "
    "the broker runs",
    "audit.broker_refused": "the broker closed or refused the connection: is the client "
    "certificate signed by the broker's CA (or are user/password right)?",
    "audit.connack_timeout": "the broker did not answer the MQTT handshake",
    "audit.publish_rejected": "the broker refused the events: check its ACL for this gateway",
    "audit.client_setup_failed": "the TLS or credential files could not be loaded",
}


@click.group()
def audit() -> None:
    """Signed audit events: public key, verification, delivery test."""


@audit.command()
@config_option
@click.option("--id", "show_id", is_flag=True, help="print only the key id used in events (kid)")
def pubkey(config_path: Path | None, show_id: bool) -> None:
    """Print the gateway's public event-signing key (PEM) for the security desk."""
    from edge_gate.audit.signing import key_id, load_signing_key, public_key_pem

    cfg = load_or_exit(config_path)
    try:
        key = load_signing_key(cfg.mqtt.signing_key_file)
    except SecretFileError as e:
        click.echo(f"edge-gate audit: {e}", err=True)
        raise SystemExit(EXIT_FAILURE) from e
    click.echo(key_id(key) if show_id else public_key_pem(key).decode("ascii"), nl=show_id)


@audit.command()
@click.option(
    "--pubkey",
    "pubkey_file",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="the gateway's public key (from `edge-gate audit pubkey`)",
)
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@click.argument("events", type=click.File("rb"), default="-")
def verify(pubkey_file: Path, as_json: bool, events: BinaryIO) -> None:
    """Check every event's signature and report seq gaps (EVENTS.jsonl, default stdin).

    `mosquitto_sub -v` lines whose topic does not end in /events (status, health) are skipped
    and counted. Exit 0 when all is well, 1 on any bad or malformed event (a line that is not
    UTF-8 too) or when there is no event at all, 2 on seq gaps.
    """
    from edge_gate.audit.signing import load_public_key
    from edge_gate.audit.verify import format_report, verify_lines

    try:
        public_key = load_public_key(pubkey_file.read_bytes())
    except (ValueError, SecretFileError) as e:
        click.echo(f"edge-gate audit verify: {pubkey_file}: {e}", err=True)
        raise SystemExit(EXIT_FAILURE) from e
    report = verify_lines(events, public_key)
    if as_json:
        body = {
            "lines": report.lines,
            "valid": report.valid,
            "duplicates": report.duplicates,
            "skipped": report.skipped,
            "missing": report.missing,
            "gaps": report.gaps,
            "seq_range": report.seq_range,
            "problems": [vars(p) for p in report.problems],
            "empty": report.empty,
            "ok": report.ok,
        }
        click.echo(json.dumps(body, indent=2, sort_keys=True))
    else:
        for line in format_report(report):
            click.echo(line)
    raise SystemExit(report.exit_code())


@audit.command("test")
@config_option
@click.option("--count", default=3, show_default=True, type=click.IntRange(0, 100_000))
@click.option("--timeout", "timeout_s", default=15.0, show_default=True, type=click.FloatRange(0.1))
def test_cmd(config_path: Path | None, count: int, timeout_s: float) -> None:
    """Publish COUNT signed `test` events through the outbox and wait for the broker's acks.

    Whatever the outbox still holds is delivered first. Exit 1 if the broker could not be reached
    or events remain queued at the deadline.
    """
    from edge_gate.audit.trail import AuditTrail
    from edge_gate.logs import setup_logging

    if not logging.getLogger().handlers:  # leave an embedding application's logging alone
        setup_logging(logging.WARNING)
    cfg = load_or_exit(config_path)
    try:
        trail = AuditTrail.from_config(cfg.mqtt)
    except (SecretFileError, AuditError, ConfigError) as e:
        click.echo(f"edge-gate audit test: {e}", err=True)
        raise SystemExit(EXIT_FAILURE) from e
    deadline = time.monotonic() + timeout_s
    already = trail.outbox.count()
    trail.start()
    stored = 0
    for i in range(count):
        seq = trail.emit(
            "test",
            door=cfg.policy.door_id,
            reason="audit_test",
            count=i + 1,
            detail=f"edge-gate audit test {i + 1}/{count}",
        )
        stored += seq is not None
    online = trail.wait_online(max(deadline - time.monotonic(), 0.0))
    drained = online and trail.flush(max(deadline - time.monotonic(), 0.0))
    stats = trail.stats()
    trail.stop(timeout_s=5.0)
    click.echo(
        f"broker {cfg.mqtt.host}:{cfg.mqtt.port}: {'reached' if online else 'NOT reached'}; "
        f"{already} were queued before, {stored} test events stored; "
        f"acknowledged {stats.publisher.acked}, still queued {stats.queued}"
    )
    if not drained:
        err = stats.publisher.last_error or "timeout"
        hint = _HINTS.get(err.split(":")[0], "")
        click.echo(
            f"edge-gate audit test: FAILED: {err}" + (f"\n  hint: {hint}" if hint else ""), err=True
        )
        raise SystemExit(EXIT_FAILURE)
