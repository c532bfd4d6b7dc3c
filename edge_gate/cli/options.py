"""Kept for command modules written before :mod:`edge_gate.cli.support`; import from there."""

from __future__ import annotations

from edge_gate.cli.support import EXIT_CONFIG, config_option, load_or_exit

__all__ = ["EXIT_CONFIG", "config_option", "load_or_exit"]
