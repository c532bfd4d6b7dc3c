"""``edge-gate bench [--json] [--cache DIR] [--section NAME]... [--eval]``: measured figures.

A development command: the sections live in :mod:`edge_gate_dev.bench.sections`, which a gateway
install does not carry (the command then exits 69 with one line).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from edge_gate.cli.embed_cmd import vision_config
from edge_gate.cli.support import (
    EXIT_FAILURE,
    cache_option,
    config_option,
    exit_on_errors,
    json_option,
    load_or_exit,
    require_dev,
)
from edge_gate.config import EdgeGateConfig, default_config_path
from edge_gate.errors import EdgeGateError


@click.command("bench")
@json_option(help="print one JSON document")
@cache_option
@click.option("--section", "sections", multiple=True, help="run only these sections (repeatable)")
@click.option(
    "--frames",
    type=click.IntRange(10, 2000),
    default=60,
    show_default=True,
    help="video frames per run",
)
@click.option(
    "--eval",
    "evaluate",
    is_flag=True,
    help="also evaluate each embedder on ORL + johns and each set held out by person (slow)",
)
@click.option(
    "--min-face-px",
    type=click.IntRange(12, 1000),
    default=None,
    help="smallest face for the detector [default: config vision.min_face_px, 60]",
)
@config_option
def bench(
    as_json: bool,
    cache: Path,
    sections: tuple[str, ...],
    frames: int,
    evaluate: bool,
    min_face_px: int | None,
    config_path: Path | None,
) -> None:
    """Run the benchmark sections and print their figures (development tool)."""
    require_dev("bench")
    from edge_gate_dev.bench.sections import SECTIONS, BenchContext

    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise click.UsageError(f"unknown section(s) {unknown}; known: {sorted(SECTIONS)}")
    with exit_on_errors("bench"):
        whole = (
            load_or_exit(config_path)
            if config_path is not None or default_config_path().is_file()
            else EdgeGateConfig()
        )
        ctx = BenchContext(
            cache=cache,
            vision=vision_config(config_path, min_face_px),
            frames=frames,
            evaluate=evaluate,
            config=whole,
        )
    results: dict[str, Any] = {}
    failed = False
    for name in sections or tuple(SECTIONS):
        try:
            results[name] = SECTIONS[name](ctx)
        except (EdgeGateError, OSError) as e:  # one section failing does not hide the others
            results[name] = {"error": str(e)}
            failed = True
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        for name, result in results.items():
            click.echo(f"[{name}]")
            for key, value in result.items():
                click.echo(
                    f"  {key}: {value if not isinstance(value, list | dict) else json.dumps(value)}"
                )
    if failed:
        raise SystemExit(EXIT_FAILURE)
