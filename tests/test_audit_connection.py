"""Broker connection settings without a broker: TLS policy, plaintext opt-in, secrets, backoff."""

from __future__ import annotations

import logging
import os
import ssl
from pathlib import Path

import pytest

from edge_gate.audit.connection import Topics, build_tls_context, make_client, read_credentials
from edge_gate.audit.publisher import backoff_delay_s
from edge_gate.config.mqtt import MqttConfig
from edge_gate.errors import AuditError, ConfigError, SecretFileError
from edge_gate.fsutil import atomic_write
from tests.mqtt_broker import make_pki


def test_tls_context_verifies_broker_and_requires_tls12(tmp_path: Path) -> None:
    """Default: certificate required, hostname checked, nothing below TLS 1.2."""
    pki = make_pki(tmp_path, "gw1")
    ctx = build_tls_context(
        MqttConfig(ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.client_key)
    )
    assert ctx is not None
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2


def test_plaintext_only_when_explicit_and_loud(caplog: pytest.LogCaptureFixture) -> None:
    """``insecure_plaintext = true`` is the only way to get no TLS, and it logs a warning."""
    cfg = MqttConfig(insecure_plaintext=True)
    assert build_tls_context(cfg) is None
    with caplog.at_level(logging.WARNING):
        make_client(cfg, Topics("edge-gate", "gw1"), max_inflight=10)
    warnings = [r for r in caplog.records if r.getMessage() == "audit.insecure_plaintext"]
    assert warnings
    assert warnings[0].levelno == logging.WARNING


def test_world_readable_client_key_is_refused(tmp_path: Path) -> None:
    """The mTLS client key is a secret: a 0644 key file fails setup."""
    pki = make_pki(tmp_path, "gw1")
    pki.client_key.chmod(0o644)
    with pytest.raises(SecretFileError, match="too open"):
        build_tls_context(
            MqttConfig(ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.client_key)
        )


def test_half_configured_mtls_or_password_is_a_config_error(tmp_path: Path) -> None:
    """cert without key, key without cert, password without user: config errors, not silence."""
    pki = make_pki(tmp_path, "gw1")
    with pytest.raises(ConfigError):
        build_tls_context(MqttConfig(ca_file=pki.ca, cert_file=pki.client_cert))
    with pytest.raises(ConfigError):
        build_tls_context(MqttConfig(ca_file=pki.ca, key_file=pki.client_key))
    with pytest.raises(ConfigError):
        read_credentials(MqttConfig(password_file=tmp_path / "pw"))
    with pytest.raises(AuditError):
        build_tls_context(MqttConfig(ca_file=tmp_path / "missing-ca.crt"))


def test_password_file_must_be_private(tmp_path: Path) -> None:
    """User name is read plainly; the password file obeys the 0600 rule."""
    (tmp_path / "user").write_text("gw1\n")
    atomic_write(tmp_path / "pw", b"s3cret\n")
    cfg = MqttConfig(username_file=tmp_path / "user", password_file=tmp_path / "pw")
    assert read_credentials(cfg) == ("gw1", "s3cret")
    (tmp_path / "pw").chmod(0o644)
    with pytest.raises(SecretFileError):
        read_credentials(cfg)


def test_topics() -> None:
    """Topic layout of the issue: <prefix>/<gateway>/<door>/events, …/status, …/health."""
    t = Topics("site-a/edge-gate", "gw1")
    assert t.events("door-1") == "site-a/edge-gate/gw1/door-1/events"
    assert t.events(None) == "site-a/edge-gate/gw1/_gateway/events"
    assert t.status == "site-a/edge-gate/gw1/status"
    assert t.health == "site-a/edge-gate/gw1/health"


def test_backoff_grows_is_capped_and_jittered() -> None:
    """Exponential backoff with full jitter between min and the capped ceiling."""
    assert backoff_delay_s(0, 0.5, 30, 1.0) == 0.5
    assert backoff_delay_s(3, 0.5, 30, 1.0) == 4.0
    assert backoff_delay_s(50, 0.5, 30, 1.0) == 30.0
    assert backoff_delay_s(50, 0.5, 30, 0.0) == 0.5
    assert 0.5 < backoff_delay_s(10, 0.5, 30, 0.5) < 30


def test_bad_credential_files_give_clear_errors(tmp_path: Path) -> None:
    """A user name or password that is not UTF-8, or a FIFO where the user name should be,
    is a one-line AuditError (the daemon reports it), never a traceback or a hang."""
    atomic_write(tmp_path / "pw", b"s3cret\n")
    (tmp_path / "user").write_bytes(b"gw\xff1\n")
    cfg = MqttConfig(username_file=tmp_path / "user", password_file=tmp_path / "pw")
    with pytest.raises(AuditError, match=r"mqtt\.username is not UTF-8"):
        read_credentials(cfg)
    (tmp_path / "user").write_text("gw1\n")
    atomic_write(tmp_path / "pw", b"s3\xc3cret\n")
    with pytest.raises(AuditError, match=r"mqtt\.password is not UTF-8"):
        read_credentials(cfg)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(AuditError, match="not a regular file"):
        read_credentials(MqttConfig(username_file=tmp_path / "fifo"))
