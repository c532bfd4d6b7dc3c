"""The ``edge-gate`` command line: one click group, subcommands loaded lazily.

Related commands are grouped (``liveness eval``, ``liveness attacks``, ``relay sim``,
``gallery keys``); the old top-level names stay as hidden aliases (:data:`HIDDEN_ALIASES`).
Shared options, ``fail()`` and the exit codes are in :mod:`edge_gate.cli.support`.

Each subcommand lives in its own module (``edge_gate.cli.<name>``) so that ``edge-gate
relay-sim`` does not import TensorFlow Lite and ``edge-gate embed`` does not import paho.
"""

from __future__ import annotations

import importlib
import sys

import click

from edge_gate import __version__

# old spellings, still accepted but not listed in --help: name -> the new spelling
HIDDEN_ALIASES: dict[str, str] = {
    "relay-sim": "relay sim",
    "liveness-eval": "liveness eval",
    "attacks": "liveness attacks",
    "keys": "gallery keys",
}

# command name -> "module:attribute"
COMMANDS: dict[str, str] = {
    "init": "edge_gate.cli.init_cmd:init",
    "check-config": "edge_gate.cli.config_cmd:check_config",
    "embed": "edge_gate.cli.embed_cmd:embed",
    "bench": "edge_gate.cli.bench_cmd:bench",
    "enroll": "edge_gate.cli.enroll_cmd:enroll",
    "users": "edge_gate.cli.users_cmd:users",
    "gallery": "edge_gate.cli.gallery_cmd:gallery",
    "identify": "edge_gate.cli.identify_cmd:identify",
    "calibrate": "edge_gate.cli.identify_cmd:calibrate",
    "keys": "edge_gate.cli.gallery_cmd:keys",
    "relay": "edge_gate.cli.relay_cmd:relay",
    "relay-sim": "edge_gate.cli.relay_cmd:relay_sim",
    "audit": "edge_gate.cli.audit_cmd:audit",
    "camera": "edge_gate.cli.camera_cmd:camera",
    "liveness": "edge_gate.cli.liveness_cmd:liveness",
    "liveness-eval": "edge_gate.cli.liveness_cmd:liveness_eval",
    "attacks": "edge_gate.cli.liveness_cmd:attacks",
    "run": "edge_gate.cli.run_cmd:run",
    "fleet": "edge_gate.cli.fleet_cmd:fleet",
    "osdp": "edge_gate.cli.osdp_cmd:osdp",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when invoked or listed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(c for c in COMMANDS if c not in HIDDEN_ALIASES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name == module_name:
                return None  # subcommand not built yet in this checkout
            raise
        command = getattr(module, attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edge-gate")
def cli() -> None:
    """edge-gate: face-recognition door access on a gateway box."""


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli.main(prog_name="edge-gate", standalone_mode=True))
