"""``edge-gate run``: the daemon."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from edge_gate.cli.support import EXIT_CONFIG, EXIT_FAILURE, config_option, load_or_exit
from edge_gate.errors import ConfigError, EdgeGateError, ModelIntegrityError, SecretFileError
from edge_gate.logs import setup_logging


@click.command("run")
@config_option
@click.option(
    "--run-for",
    "run_for_s",
    type=click.FloatRange(min=0.1),
    default=None,
    help="stop by itself after this many seconds (demo, tests)",
)
@click.option(
    "--snapshots",
    "snapshot_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="write annotated PNGs of decisions here (contain faces)",
)
@click.option("-v", "--verbose", is_flag=True, help="debug logging")
def run(
    config_path: Path | None, run_for_s: float | None, snapshot_dir: Path | None, verbose: bool
) -> None:
    """Run the door daemon: camera → recognition → relay + audit, until SIGTERM."""
    setup_logging(logging.DEBUG if verbose else logging.INFO)
    cfg = load_or_exit(config_path)
    from edge_gate.service.daemon import run_daemon  # heavy imports only for this command

    try:
        code = run_daemon(cfg, run_for_s=run_for_s, snapshot_dir=snapshot_dir)
    except (SecretFileError, ConfigError, ModelIntegrityError) as e:
        click.echo(f"edge-gate: {e}", err=True)
        # a missing/loose key, a bad setting, missing or altered models: a restart cannot help
        raise SystemExit(EXIT_CONFIG) from e
    except EdgeGateError as e:
        click.echo(f"edge-gate: {e}", err=True)
        raise SystemExit(EXIT_FAILURE) from e
    raise SystemExit(code)
