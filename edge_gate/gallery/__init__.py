"""Encrypted face gallery.

* :mod:`~edge_gate.gallery.matching` — open-set 1:N matcher over one float32 matrix (core);
* :mod:`~edge_gate.gallery.calibration` — threshold for a target FAR (core; open-set evaluation
  is :mod:`edge_gate_dev.gallery.openset`);
* :mod:`~edge_gate.gallery.gates` — enrollment / identification quality gates (core);
* :mod:`~edge_gate.gallery.record` — record plaintext layout (core);
* :mod:`~edge_gate.gallery.keyfile` — JSON key ring (rotation-ready), 0600, systemd credential;
* :mod:`~edge_gate.gallery.crypto` — AES-256-GCM records, HMAC-SHA256 manifest;
* :mod:`~edge_gate.gallery.generation` — rollback counter outside the database;
* :mod:`~edge_gate.gallery.store` / :mod:`~edge_gate.gallery.loaded` — SQLite store, verification;
* :mod:`~edge_gate.gallery.images` — images → enrollment verdicts / identify results;
* real-data accuracy and speed figures: :mod:`edge_gate_dev.gallery.measure`,
  :mod:`edge_gate_dev.bench.gallery` (development tools).

Entry point for other subsystems: ``store_from_config(cfg.gallery).load()`` →
:class:`~edge_gate.gallery.loaded.LoadedGallery` (``.matrix``, ``.model``, ``.get(user_id)``).
"""
