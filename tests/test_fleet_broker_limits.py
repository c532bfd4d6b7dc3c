"""A broker that takes smaller messages than the fleet's chunks makes `fleet publish` fail
loudly, never report a bundle as published that the gateways cannot receive (real mosquitto:
``message_size_limit`` answers with a failing PUBACK, ``max_packet_size`` is announced in the
CONNACK and would disconnect the publisher)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edge_gate.errors import AuditError
from edge_gate.fleet.link import FleetLink
from edge_gate_dev.broker import gateway_config, issue_client, mosquitto_broker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ACL = "\nuser fleet-admin\ntopic readwrite edge-gate/fleet/#\n"
LIMIT = 64 * 1024


@pytest.mark.parametrize("option", ["message_size_limit", "max_packet_size"])
def test_a_chunk_over_the_brokers_limit_is_an_error(tmp_path: Path, option: str) -> None:
    """Under the limit: published. Over it: an AuditError naming the limits and
    fleet.chunk_kib, well before the publish timeout."""
    with mosquitto_broker(tmp_path, extra_acl=ACL, extra_conf=f"{option} {LIMIT}\n") as broker:
        cert, key = issue_client(broker.pki, "fleet-admin", tmp_path / "admin")
        cfg = gateway_config(
            broker, tmp_path / "admin", cert_file=cert, key_file=key, gateway_id="fleet-admin"
        )
        link = FleetLink(cfg, role="test")
        link.start()
        try:
            assert link.wait_ready(10)
            topic = "edge-gate/fleet/lobby/chunk/0"
            link.publish(topic, bytes(LIMIT // 2), retain=True, timeout_s=5)
            began = time.monotonic()
            with pytest.raises(AuditError, match="chunk_kib"):
                link.publish(topic, bytes(LIMIT * 2), retain=True, timeout_s=60)
            assert time.monotonic() - began < 20
        finally:
            link.stop()
