"""Liveness (presentation attack detection) over a face track's frames.

Pure core: :mod:`types`, :mod:`scoring`, :mod:`metrics`. Adapters (cv2): :mod:`cues`,
:mod:`estimator` (the daemon's entry point), :mod:`attacks`, :mod:`render`, :mod:`sources`,
:mod:`clipio`, :mod:`evaluate`, :mod:`bench`. Import submodules directly; this package
module imports nothing so that the core stays free of cv2.
"""

from __future__ import annotations

__layer__ = "core"
