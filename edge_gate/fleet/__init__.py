"""Fleet: one admin station distributes signed, encrypted galleries to many gateways over MQTT.

* :mod:`~edge_gate.fleet.payload` (core) — the people a bundle carries, as bytes;
* :mod:`~edge_gate.fleet.bundle` — seal/open: chunking, AES-256-GCM, X25519 key wrap, Ed25519;
* :mod:`~edge_gate.fleet.keys` — the fleet signing key and the gateways' X25519 key files;
* :mod:`~edge_gate.fleet.admin` — the admin station's state (door groups, members, versions);
* :mod:`~edge_gate.fleet.follower` — the gateway sidecar that applies bundles to the gallery.
"""
