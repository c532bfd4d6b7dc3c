"""Liveness (presentation attack detection) over a face track's frames.

Pure core: :mod:`types`, :mod:`scoring`. Adapters (cv2): :mod:`cues`, :mod:`estimator` (the
daemon's entry point). Attack synthesis, clip files and the evaluation are development tools in
:mod:`edge_gate_dev.liveness`. Import submodules directly; this package module imports nothing so
that the core stays free of cv2.
"""

from __future__ import annotations

__layer__ = "core"
