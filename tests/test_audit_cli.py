"""``edge-gate audit pubkey|verify|test`` as installers and security desks run them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_gate.audit.signing import generate_signing_key, key_id, load_public_key, load_signing_key
from edge_gate.audit.trail import AuditTrail
from edge_gate.cli import cli
from edge_gate.config.mqtt import MqttConfig
from edge_gate.fsutil import atomic_write
from tests.mqtt_broker import free_port, mosquitto_broker, mqtt_config


def _write_config(path: Path, cfg: MqttConfig) -> Path:
    lines = ["[mqtt]"]
    for key, value in cfg.model_dump(exclude_none=True).items():
        lines.append(f"{key} = {json.dumps(str(value) if isinstance(value, Path) else value)}")
    lines += ["", "[policy]", 'door_id = "door-1"']
    path.write_text("\n".join(lines) + "\n")
    return path


def _offline_cfg(tmp_path: Path) -> MqttConfig:
    key = tmp_path / "audit.key"
    atomic_write(key, generate_signing_key())
    return MqttConfig(
        gateway_id="gw1",
        port=free_port(),
        host="127.0.0.1",
        outbox_file=tmp_path / "outbox.db",
        signing_key_file=key,
    )


@pytest.fixture
def events_file(tmp_path: Path) -> tuple[Path, Path]:
    """Five signed events as a desk would have saved them, and the gateway's public key."""
    cfg = _offline_cfg(tmp_path)
    trail = AuditTrail.from_config(cfg)
    for i in range(5):
        trail.emit("access.granted", door="door-1", subject=f"u-{i}", reason="match", score=0.9)
    lines = [row.payload.decode() for row in trail.outbox.pending()]
    trail.close()
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n")
    conf = _write_config(tmp_path / "edge-gate.toml", cfg)
    pub = tmp_path / "gw1.pub"
    result = CliRunner().invoke(cli, ["audit", "pubkey", "--config", str(conf)])
    assert result.exit_code == 0, result.output
    pub.write_text(result.output)
    return events, pub


def test_pubkey_prints_the_public_half(tmp_path: Path) -> None:
    """`audit pubkey` prints a PEM public key matching the signing key; `--id` prints its kid."""
    cfg = _offline_cfg(tmp_path)
    conf = _write_config(tmp_path / "c.toml", cfg)
    out = CliRunner().invoke(cli, ["audit", "pubkey", "--config", str(conf)])
    assert out.exit_code == 0
    assert out.output.startswith("-----BEGIN PUBLIC KEY-----")
    key = load_signing_key(cfg.signing_key_file)
    assert key_id(load_public_key(out.output.encode())) == key_id(key)
    out_id = CliRunner().invoke(cli, ["audit", "pubkey", "--id", "--config", str(conf)])
    assert out_id.output.strip() == key_id(key)


def test_pubkey_without_key_fails_clearly(tmp_path: Path) -> None:
    """A missing key file is an error with the path, not a traceback."""
    cfg = _offline_cfg(tmp_path).model_copy(update={"signing_key_file": tmp_path / "nope.key"})
    conf = _write_config(tmp_path / "c.toml", cfg)
    out = CliRunner().invoke(cli, ["audit", "pubkey", "--config", str(conf)])
    assert out.exit_code == 1
    assert "nope.key" in out.output


def test_verify_accepts_good_events_and_duplicates(events_file: tuple[Path, Path]) -> None:
    """All signatures valid, a redelivered duplicate is fine: exit 0, OK."""
    events, pub = events_file
    lines = events.read_text().splitlines()
    events.write_text("\n".join([*lines, lines[2]]) + "\n")
    out = CliRunner().invoke(cli, ["audit", "verify", "--pubkey", str(pub), str(events)])
    assert out.exit_code == 0, out.output
    assert "1 duplicates" in out.output
    assert out.output.strip().endswith("OK")


def test_verify_reads_stdin_and_mosquitto_sub_lines(events_file: tuple[Path, Path]) -> None:
    """Default input is stdin; ``mosquitto_sub -v`` output (topic + payload) is accepted."""
    events, pub = events_file
    text = "".join(f"edge-gate/gw1/door-1/events {line}\n" for line in events.read_text().split())
    out = CliRunner().invoke(cli, ["audit", "verify", "--pubkey", str(pub)], input=text)
    assert out.exit_code == 0, out.output


def test_verify_skips_status_and_health_in_mosquitto_sub_capture(
    events_file: tuple[Path, Path],
) -> None:
    """`mosquitto_sub -v -t 'edge-gate/#'` also captures the retained status and health
    messages: those lines are skipped and counted (text and --json), the events still checked."""
    events, pub = events_file
    lines = events.read_text().split()
    capture = [
        "edge-gate/gw1/status online",
        'edge-gate/gw1/health {"camera":"ok","relay":"ok","queued":0}',
        *(f"edge-gate/gw1/door-1/events {line}" for line in lines),
        "edge-gate/gw1/status offline",
    ]
    text = "\n".join(capture) + "\n"
    out = CliRunner().invoke(cli, ["audit", "verify", "--pubkey", str(pub)], input=text)
    assert out.exit_code == 0, out.output
    assert "5 lines, 5 valid signatures" in out.output
    assert "3 non-event lines skipped" in out.output
    assert out.output.strip().endswith("OK")
    out = CliRunner().invoke(cli, ["audit", "verify", "--json", "--pubkey", str(pub)], input=text)
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert (report["lines"], report["valid"], report["skipped"]) == (5, 5, 3)
    assert report["problems"] == []
    # a capture of status and health only proves nothing: no events, exit 1
    only_status = "\n".join(capture[:2]) + "\n"
    out = CliRunner().invoke(cli, ["audit", "verify", "--pubkey", str(pub)], input=only_status)
    assert out.exit_code == 1, out.output
    assert "no events found" in out.output
    assert "2 non-event lines" in out.output


def test_verify_plain_json_lines_stay_strict(events_file: tuple[Path, Path]) -> None:
    """Skipping is only for `topic payload` lines: in plain JSON-lines input a health payload,
    a bare word, and a broken payload on an …/events topic are still malformed events."""
    events, pub = events_file
    lines = events.read_text().split()
    mixed = [
        lines[0],
        '{"camera":"ok","relay":"ok","queued":0}',
        lines[1],
        "online",
        f"edge-gate/gw1/door-1/events {lines[2][:-5]}",
        *lines[3:],
    ]
    text = "\n".join(mixed) + "\n"
    out = CliRunner().invoke(cli, ["audit", "verify", "--json", "--pubkey", str(pub)], input=text)
    assert out.exit_code == 1, out.output
    report = json.loads(out.output)
    assert report["skipped"] == 0
    assert [(p["line"], p["kind"]) for p in report["problems"]] == [
        (2, "malformed"),
        (4, "malformed"),
        (5, "malformed"),
    ]
    assert report["valid"] == 4


def test_tampered_event_fails_verify(events_file: tuple[Path, Path]) -> None:
    """Changing one field of one event (denied → granted) is caught: exit 1, line named."""
    events, pub = events_file
    lines = events.read_text().splitlines()
    event = json.loads(lines[3])
    event["subject"] = "u-attacker"
    lines[3] = json.dumps(event, separators=(",", ":"), sort_keys=True)
    events.write_text("\n".join(lines) + "\n")
    out = CliRunner().invoke(cli, ["audit", "verify", "--pubkey", str(pub), str(events)])
    assert out.exit_code == 1
    assert "line 4: bad_signature" in out.output
    assert "FAILED" in out.output


def test_verify_reports_seq_gaps(events_file: tuple[Path, Path]) -> None:
    """A removed event shows up as a seq gap: exit 2 and the missing range printed."""
    events, pub = events_file
    lines = events.read_text().splitlines()
    del lines[2]
    events.write_text("\n".join(lines) + "\n")
    out = CliRunner().invoke(cli, ["audit", "verify", "--json", "--pubkey", str(pub), str(events)])
    assert out.exit_code == 2
    report = json.loads(out.output)
    assert report["gaps"] == {"gw1": [[3, 3]]}
    assert report["missing"] == 1


def test_verify_with_another_gateways_key_fails(
    events_file: tuple[Path, Path], tmp_path: Path
) -> None:
    """Events checked against the wrong public key all fail (wrong_key)."""
    events, _ = events_file
    other = tmp_path / "other.pem"
    other.write_bytes(generate_signing_key())
    out = CliRunner().invoke(cli, ["audit", "verify", "--pubkey", str(other), str(events)])
    assert out.exit_code == 1
    assert out.output.count("wrong_key") == 5


def test_verify_binary_garbage_is_bad_events_not_a_crash(
    events_file: tuple[Path, Path], tmp_path: Path
) -> None:
    """`audit verify random.bin`: undecodable lines are malformed events (exit 1), not a
    UnicodeDecodeError traceback; good events around them are still checked."""
    events, pub = events_file
    lines = events.read_bytes().splitlines()
    mixed = tmp_path / "mixed.bin"
    mixed.write_bytes(b"\n".join([lines[0], b"\xff\xfe\x00garbage", lines[1], b"\x80"]) + b"\n")
    out = CliRunner().invoke(cli, ["audit", "verify", "--pubkey", str(pub), str(mixed)])
    assert out.exit_code == 1, out.output
    assert out.exception is None or isinstance(out.exception, SystemExit), out.exception
    assert "line 2: malformed: not UTF-8 text" in out.output
    assert "line 4: malformed: not UTF-8 text" in out.output
    assert "2 valid signatures" in out.output
    assert out.output.strip().endswith("FAILED")
    rnd = tmp_path / "random.bin"
    rnd.write_bytes(bytes(range(256)) * 64 + b"\n\x81\n" + bytes(reversed(range(256))))
    out = CliRunner().invoke(cli, ["audit", "verify", "--json", "--pubkey", str(pub), str(rnd)])
    assert out.exit_code == 1, out.output
    report = json.loads(out.output)
    assert report["valid"] == 0
    assert report["ok"] is False
    assert len(report["problems"]) == report["lines"] > 0  # every non-blank line is bad


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_verify_without_events_fails(
    events_file: tuple[Path, Path], tmp_path: Path, content: bytes
) -> None:
    """`audit verify /dev/null` must not look like a clean desk check: it says no events were
    found and exits 1."""
    _, pub = events_file
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(content)
    out = CliRunner().invoke(cli, ["audit", "verify", "--pubkey", str(pub), str(empty)])
    assert out.exit_code == 1, out.output
    assert "no events found" in out.output
    assert out.output.strip().endswith("FAILED")
    out = CliRunner().invoke(cli, ["audit", "verify", "--json", "--pubkey", str(pub)], input="")
    assert out.exit_code == 1, out.output
    report = json.loads(out.output)
    assert report["empty"] is True
    assert report["ok"] is False


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_audit_test_delivers_to_real_broker(tmp_path: Path) -> None:
    """`audit test --count 3` against mosquitto: first what was queued, then 3 test events."""
    with mosquitto_broker(tmp_path) as broker:
        cfg = mqtt_config(broker, tmp_path)
        trail = AuditTrail.from_config(cfg)
        trail.emit("camera.lost", door="door-1")  # left over from before
        trail.close()
        conf = _write_config(tmp_path / "c.toml", cfg)
        out = CliRunner().invoke(cli, ["audit", "test", "--count", "3", "--config", str(conf)])
    assert out.exit_code == 0, out.output
    assert "1 were queued before, 3 test events stored" in out.output
    assert "acknowledged 4, still queued 0" in out.output


@pytest.mark.timeout(60)
def test_audit_test_unreachable_broker_exits_nonzero(tmp_path: Path) -> None:
    """No broker listening: exit 1, events stay queued, and a hint says what to check."""
    conf = _write_config(tmp_path / "c.toml", _offline_cfg(tmp_path))
    out = CliRunner().invoke(
        cli, ["audit", "test", "--count", "2", "--timeout", "1.5", "--config", str(conf)]
    )
    assert out.exit_code == 1
    assert "NOT reached" in out.output
    assert "still queued 2" in out.output
    assert "cannot reach the broker" in out.output
