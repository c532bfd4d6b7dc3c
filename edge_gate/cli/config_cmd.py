"""``edge-gate check-config``: validate the config file and print every problem."""

from __future__ import annotations

from pathlib import Path

import click

from edge_gate.cli.options import EXIT_CONFIG, config_option
from edge_gate.config import default_config_path, load_config
from edge_gate.errors import ConfigError


@click.command("check-config")
@config_option
def check_config(config_path: Path | None) -> None:
    """Validate the config; print ``key.path: message`` per problem; exit 78 if invalid."""
    path = config_path if config_path is not None else default_config_path()
    try:
        load_config(path)
    except ConfigError as e:
        click.echo(str(e), err=True)
        raise SystemExit(EXIT_CONFIG) from e
    click.echo(f"{path}: OK")
