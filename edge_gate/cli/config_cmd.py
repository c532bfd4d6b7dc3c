"""``edge-gate check-config``: validate the config file and print every problem."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from edge_gate.cli.support import EXIT_CONFIG, config_option, fail
from edge_gate.config import EdgeGateConfig, default_config_path, load_config
from edge_gate.errors import ConfigError, EdgeGateError


def _models(cfg: EdgeGateConfig) -> None:
    from edge_gate.vision.runtime import load_manifest, read_verified, resolve_models_dir

    manifest = load_manifest(resolve_models_dir(cfg.vision.models_dir))
    for spec in manifest.models.values():
        read_verified(manifest.models_dir, spec)


def _gallery_key(cfg: EdgeGateConfig) -> None:
    from edge_gate.gallery.keyfile import load_keyring

    load_keyring(cfg.gallery.key_file)


def _relay_key(cfg: EdgeGateConfig) -> None:
    from edge_gate.door.keys import load_relay_key

    load_relay_key(cfg.relay.key_file)


def _audit_key(cfg: EdgeGateConfig) -> None:
    from edge_gate.audit.signing import load_signing_key

    load_signing_key(cfg.mqtt.signing_key_file)


def _mqtt(cfg: EdgeGateConfig) -> None:
    from edge_gate.audit.connection import check_settings

    check_settings(cfg.mqtt)


FILE_CHECKS: tuple[tuple[str, Callable[[EdgeGateConfig], None]], ...] = (
    ("models", _models),
    ("gallery key", _gallery_key),
    ("relay key", _relay_key),
    ("audit signing key", _audit_key),
    ("mqtt TLS and credentials", _mqtt),
)
"""What the daemon reads at start besides the config (camera and relay are not contacted)."""


@click.command("check-config")
@config_option
@click.option(
    "--syntax-only", is_flag=True, help="only validate the file; do not read keys, models, certs"
)
def check_config(config_path: Path | None, syntax_only: bool) -> None:
    """Validate the config and the files it names; print each problem; exit 78 if any.

    Besides the settings themselves, the keys (present, private, well-formed), the model
    files (sha256 against the manifest) and the MQTT TLS files are read as the daemon reads
    them at start. The camera and the relay are not contacted (see ``camera probe`` and
    ``relay test``).
    """
    path = config_path if config_path is not None else default_config_path()
    try:
        cfg = load_config(path)
    except ConfigError as e:
        fail(str(e), EXIT_CONFIG, command="config check")
    problems = 0
    if not syntax_only:
        for what, check in FILE_CHECKS:
            try:
                check(cfg)
            except EdgeGateError as e:
                problems += 1
                click.echo(f"{what}: {e}", err=True)
    if problems:
        raise SystemExit(EXIT_CONFIG)  # each problem was printed on its own line above
    click.echo(f"{path}: OK" + (" (syntax only)" if syntax_only else ""))
