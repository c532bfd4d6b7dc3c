"""``edge-gate run``: the daemon."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from edge_gate.cli.support import EXIT_CONFIG, config_option, exit_on_errors, load_or_exit
from edge_gate.errors import ModelIntegrityError, SecretFileError
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

    # a missing/loose key or missing/altered models: a restart cannot help (systemd stops on 78)
    with exit_on_errors(
        None, extra=((SecretFileError, EXIT_CONFIG), (ModelIntegrityError, EXIT_CONFIG))
    ):
        code = run_daemon(cfg, run_for_s=run_for_s, snapshot_dir=snapshot_dir)
    raise SystemExit(code)
