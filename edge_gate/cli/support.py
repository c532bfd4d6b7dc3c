"""What every ``edge-gate`` command shares: options, one ``fail()``, one error → exit-code map.

A command module uses it like this::

    from edge_gate.cli.support import cache_option, exit_on_errors, fail, json_option

    @click.command("thing")
    @json_option
    @cache_option
    def thing(as_json: bool, cache: Path) -> None:
        with exit_on_errors("thing"):        # EdgeGateError subclasses → one line, mapped code
            ...
            if bad:
                fail("what went wrong and what to do")   # exit 1 unless code= says

Exit codes (documented in the README's admin-commands block):

* ``0`` success; ``1`` the operation failed (:data:`EXIT_FAILURE`);
* ``2`` usage error (click's own);
* ``65`` the gallery failed its integrity checks (:data:`EXIT_DATA`, sysexits ``EX_DATAERR``);
* ``69`` a development command on an install without :mod:`edge_gate_dev` (:data:`EXIT_NO_DEV`,
  ``EX_UNAVAILABLE``);
* ``75`` nothing usable seen in time, e.g. ``enroll --camera`` with nobody in front of the camera
  (:data:`EXIT_TIMEOUT`, ``EX_TEMPFAIL``: try again);
* ``78`` invalid configuration (:data:`EXIT_CONFIG`, ``EX_CONFIG``; systemd's
  ``RestartPreventExitStatus`` uses it).

Development tools (benchmarks, attack generation, evaluation, the relay simulator) live in the
separate :mod:`edge_gate_dev` package, which a gateway wheel does not carry: such a command calls
:func:`require_dev` first and exits 69 with one line when the package is missing.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar, overload

import click

from edge_gate.config import EdgeGateConfig, default_config_path, load_config
from edge_gate.errors import ConfigError, EdgeGateError, GalleryTamperedError

F = TypeVar("F", bound=Any)

EXIT_FAILURE = 1
EXIT_DATA = 65
EXIT_NO_DEV = 69
EXIT_TIMEOUT = 75
EXIT_CONFIG = 78
CACHE_ENV = "EDGE_GATE_CACHE"
DEV_PACKAGE = "edge_gate_dev"

# most specific first: the first isinstance match decides the exit code
ERROR_EXIT_CODES: tuple[tuple[type[EdgeGateError], int], ...] = (
    (ConfigError, EXIT_CONFIG),
    (GalleryTamperedError, EXIT_DATA),
    (EdgeGateError, EXIT_FAILURE),
)


def exit_code_for(
    error: EdgeGateError, extra: tuple[tuple[type[EdgeGateError], int], ...] = ()
) -> int:
    """The process exit code for an error of the exception tree (``extra`` entries first)."""
    for kind, code in (*extra, *ERROR_EXIT_CODES):
        if isinstance(error, kind):
            return code
    return EXIT_FAILURE


def fail(
    message: str | list[str], code: int = EXIT_FAILURE, *, command: str | None = None
) -> NoReturn:
    """Print ``edge-gate[ COMMAND]: MESSAGE`` on stderr (one such line per message when given
    several) and exit with ``code``."""
    where = f"edge-gate {command}" if command else "edge-gate"
    for line in [message] if isinstance(message, str) else message:
        click.echo(f"{where}: {line}", err=True)
    raise SystemExit(code)


@contextmanager
def exit_on_errors(
    command: str | None, extra: tuple[tuple[type[EdgeGateError], int], ...] = ()
) -> Iterator[None]:
    """Turn an :class:`EdgeGateError` into one stderr line and its mapped exit code; ``extra``
    maps a command's own kinds first (``run``: a missing key file cannot be fixed by a
    restart, so it exits 78 like a bad setting)."""
    try:
        yield
    except EdgeGateError as e:
        fail(str(e), exit_code_for(e, extra), command=command)


def dev_available() -> bool:
    """Whether the development package is importable (a source checkout or a dev install)."""
    return importlib.util.find_spec(DEV_PACKAGE) is not None


def require_dev(command: str) -> None:
    """Exit 69 with one line unless :mod:`edge_gate_dev` is installed."""
    if not dev_available():
        fail(
            f"this is a development command and needs the {DEV_PACKAGE} package, which a "
            "gateway install does not carry; run it from a source checkout "
            "(make venv, or pip install -e '.[dev]')",
            EXIT_NO_DEV,
            command=command,
        )


def default_cache() -> Path:
    """``$EDGE_GATE_CACHE`` or ``~/.cache/edge-gate`` (the test-data cache)."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "edge-gate"


@overload
def json_option(func: F, *, help: str = ...) -> F: ...
@overload
def json_option(func: None = None, *, help: str = ...) -> Callable[[F], F]: ...
def json_option(
    func: F | None = None, *, help: str = "machine-readable output (JSON)"
) -> F | Callable[[F], F]:
    """``--json``: machine-readable output, passed as ``as_json``. Use as ``@json_option`` or
    ``@json_option(help="one JSON object per line")``."""
    opt: Callable[[F], F] = click.option("--json", "as_json", is_flag=True, help=help)
    return opt if func is None else opt(func)


def cache_option(func: F) -> F:
    """``--cache DIR`` (test-data cache), passed as ``cache`` with the default resolved."""
    opt = click.option(
        "--cache",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        callback=lambda _ctx, _param, value: value if value is not None else default_cache(),
        help="test-data cache with real faces [default: $EDGE_GATE_CACHE or ~/.cache/edge-gate]",
    )
    return opt(func)


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
        fail(str(e), EXIT_CONFIG)
