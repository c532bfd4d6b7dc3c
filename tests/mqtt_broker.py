"""Real mosquitto for tests (generated CA, mTLS, ACLs, read-only desk user, free ports).

The machinery lives in :mod:`edge_gate_dev.broker` so that ``edge-gate bench`` and the demo
can use it too; this module re-exports it under the names tests use::

    from tests.mqtt_broker import mosquitto_broker, mqtt_config, DeskSubscriber

    def test_x(tmp_path):
        with mosquitto_broker(tmp_path) as broker:
            cfg = mqtt_config(broker, tmp_path)              # [mqtt] section: mTLS to this broker
            with DeskSubscriber(broker) as desk:              # read-only desk, persistent session
                ...
            broker.stop(); broker.start()                    # or broker.restart()
"""

from __future__ import annotations

from edge_gate_dev.broker import (
    DeskSubscriber,
    MosquittoBroker,
    Pki,
    Received,
    make_pki,
    mosquitto_broker,
)
from edge_gate_dev.broker import gateway_config as mqtt_config
from edge_gate_dev.pki import free_port

__all__ = [
    "DeskSubscriber",
    "MosquittoBroker",
    "Pki",
    "Received",
    "free_port",
    "make_pki",
    "mosquitto_broker",
    "mqtt_config",
]
