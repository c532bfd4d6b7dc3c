"""Development tools of edge-gate: benchmarks, evaluation, attack synthesis, simulators, brokers.

Nothing here runs at the door, and the gateway wheel (``pip install .`` / ``deploy/install.sh``)
does not carry this package: ``pyproject.toml`` packages only ``edge_gate``. It is importable
from a source checkout (``make venv`` installs the checkout in editable mode), which is where
``edge-gate bench``, ``edge-gate liveness eval|attacks|score``, ``edge-gate relay sim`` and the
test suite use it. ``tests/test_dev_split.py`` checks that the runtime never imports it.

* :mod:`edge_gate_dev.bench` — ``edge-gate bench`` sections (vision, pipeline, gallery, relay,
  audit, capture, liveness);
* :mod:`edge_gate_dev.vision` / :mod:`edge_gate_dev.gallery` — verification and open-set metrics
  on real faces (pure-maths modules keep the ``__layer__ = "core"`` marker);
* :mod:`edge_gate_dev.liveness` — synthetic print/replay attacks, clip files, ISO/IEC 30107-3
  evaluation;
* :mod:`edge_gate_dev.relay_sim` — the reference relay controller (``edge-gate relay sim``);
* :mod:`edge_gate_dev.broker` / :mod:`edge_gate_dev.pki` — a throw-away mosquitto with mTLS and
  the test certificates it needs.
"""
