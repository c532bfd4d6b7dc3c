"""In-process CLI runs for the admin-command tests."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner, Result

from edge_gate.cli import cli


def run(*args: str) -> Result:
    """``edge-gate ARGS…`` in this process (stdout and stderr together in ``output``)."""
    return CliRunner().invoke(cli, list(args))


def json_lines(output: str) -> list[dict[str, Any]]:
    """The JSON objects among the output lines."""
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]
