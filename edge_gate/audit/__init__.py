"""Signed audit events, a durable outbox and a TLS MQTT publisher.

* :mod:`edge_gate.audit.events` — event model and canonical encoding (pure core);
* :mod:`edge_gate.audit.signing` — Ed25519 keys, signing and verification;
* :mod:`edge_gate.audit.outbox` — SQLite outbox (WAL, synchronous=FULL) and its overflow policy;
* :mod:`edge_gate.audit.connection` / :mod:`edge_gate.audit.publisher` — paho MQTT v5 over TLS;
* :mod:`edge_gate.audit.trail` — ``AuditTrail``, the facade the daemon and the CLIs use;
* :mod:`edge_gate.audit.verify` — checking a stream of events (``edge-gate audit verify``);
* :mod:`edge_gate_dev.bench.audit` — publish throughput benchmark.

Nothing is imported here so that ``import edge_gate.audit.events`` does not pull in paho.
"""
