"""Options shared by several subcommands."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import click

from edge_gate.config import EdgeGateConfig, default_config_path, load_config
from edge_gate.errors import ConfigError

F = TypeVar("F", bound=Any)

EXIT_CONFIG = 78  # EX_CONFIG from sysexits.h; systemd's RestartPreventExitStatus uses it


def config_option(func: F) -> F:
    """``--config PATH`` (default ``$EDGE_GATE_CONFIG`` or ``/etc/edge-gate/edge-gate.toml``)."""
    opt = click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="config file [default: $EDGE_GATE_CONFIG or /etc/edge-gate/edge-gate.toml]",
    )
    return opt(func)


def load_or_exit(config_path: Path | None) -> EdgeGateConfig:
    """Load the config or print every problem and exit 78 (fail closed)."""
    path = config_path if config_path is not None else default_config_path()
    try:
        return load_config(path)
    except ConfigError as e:
        click.echo(f"edge-gate: {e}", err=True)
        raise SystemExit(EXIT_CONFIG) from e
