"""Encrypted face gallery.

* :mod:`~edge_gate.gallery.matching` — open-set 1:N matcher over one float32 matrix (core);
* :mod:`~edge_gate.gallery.calibration` / :mod:`~edge_gate.gallery.openset` — threshold for a
  target FAR, open-set evaluation (core);
* :mod:`~edge_gate.gallery.gates` — enrollment / identification quality gates (core);
* :mod:`~edge_gate.gallery.record` — record plaintext layout (core);
* :mod:`~edge_gate.gallery.keyfile` — JSON key ring (rotation-ready), 0600, systemd credential;
* :mod:`~edge_gate.gallery.crypto` — AES-256-GCM records, HMAC-SHA256 manifest;
* :mod:`~edge_gate.gallery.generation` — rollback counter outside the database;
* :mod:`~edge_gate.gallery.store` / :mod:`~edge_gate.gallery.loaded` — SQLite store, verification;
* :mod:`~edge_gate.gallery.images` — images → enrollment verdicts / identify results;
* :mod:`~edge_gate.gallery.measure` / :mod:`~edge_gate.gallery.bench` — real-data accuracy and
  speed figures.

Entry point for other subsystems: ``store_from_config(cfg.gallery).load()`` →
:class:`~edge_gate.gallery.loaded.LoadedGallery` (``.matrix``, ``.model``, ``.get(user_id)``).
"""
