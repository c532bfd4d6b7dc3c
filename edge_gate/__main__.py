"""``python -m edge_gate`` == ``edge-gate``."""

from edge_gate.cli import main

main()
