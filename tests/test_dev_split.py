"""The runtime (what a gateway runs) never needs edge_gate_dev; dev commands say so without it.

The subprocess scenarios hide the development package with ``sys.modules["edge_gate_dev"] = None``,
which is exactly what an install without it looks like to the import system: ``import`` raises
ModuleNotFoundError and ``importlib.util.find_spec`` answers None.
"""

from __future__ import annotations

import ast
import json
import os
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import setuptools

import edge_gate
from tests.cli_helpers import run

REPO = Path(__file__).resolve().parent.parent

WITHOUT_DEV = """
import sys
sys.modules["edge_gate_dev"] = None  # as on a gateway: the package is not installed
"""

IMPORT_ALL = (
    WITHOUT_DEV
    + """
import importlib, json, pkgutil
import edge_gate
names = [m.name for m in pkgutil.walk_packages(edge_gate.__path__, prefix="edge_gate.")]
names.remove("edge_gate.__main__")  # importing it runs the CLI
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except ImportError as e:
        failed[name] = repr(e)
print(json.dumps({"modules": len(names), "failed": failed}))
"""
)

RUN_CLI = (
    WITHOUT_DEV
    + """
from edge_gate.cli import main
sys.argv = ["edge-gate", *sys.argv[1:]]
main()
"""
)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _cli_without_dev(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", RUN_CLI, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=_env(),
        cwd=REPO,
    )


@pytest.mark.timeout(180)
def test_every_runtime_module_imports_without_dev() -> None:
    """Each module of edge_gate imports with edge_gate_dev missing (systemd is optional too)."""
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
        env=_env(),
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["modules"] > 50
    dev_failures = {k: v for k, v in report["failed"].items() if "edge_gate_dev" in v}
    assert dev_failures == {}
    # the one optional third-party import a runtime module may lack is systemd-python
    assert all("systemd" in v for v in report["failed"].values()), report["failed"]


def test_runtime_source_never_imports_dev_at_module_level() -> None:
    """Outside the CLI no runtime module imports edge_gate_dev; CLI modules only lazily.

    A dev command module may import edge_gate_dev inside its command function (after
    ``require_dev``) or under ``if TYPE_CHECKING:``, never at module level, so ``edge-gate --help``
    and the runtime commands load without it.
    """
    problems = []
    for info in pkgutil.walk_packages(edge_gate.__path__, prefix="edge_gate."):
        path = Path(REPO, *info.name.split("."))
        path = path / "__init__.py" if info.ispkg else path.with_suffix(".py")
        tree = ast.parse(path.read_text())
        in_cli = info.name.startswith("edge_gate.cli")
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                names = [node.module or ""]
            if not any(n.split(".")[0] == "edge_gate_dev" for n in names):
                continue
            if not in_cli or node in tree.body:
                problems.append(f"{info.name}:{node.lineno}")
    assert problems == []


@pytest.mark.timeout(120)
def test_run_help_and_check_config_work_without_dev(tmp_path: Path) -> None:
    """``edge-gate --help``, ``run --help`` and ``check-config`` run on an install without dev."""
    for args in (["--help"], ["run", "--help"], ["relay", "--help"]):
        proc = _cli_without_dev(*args)
        assert proc.returncode == 0, (args, proc.stderr)
        assert "Usage:" in proc.stdout
    site = REPO / "deploy" / "edge-gate.toml"
    proc = _cli_without_dev("check-config", "--syntax-only", "--config", str(site))
    assert proc.returncode == 0, proc.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[camera]\nfps = -1\n")
    proc = _cli_without_dev("check-config", "--config", str(bad))
    assert proc.returncode == 78
    assert "edge_gate_dev" not in proc.stderr


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "args",
    [
        ["bench", "--section", "relay"],
        ["liveness-eval"],
        ["attacks", "generate", "--out", "clips"],
        ["relay-sim", "--port", "/dev/null", "--key-file", "/nonexistent"],
    ],
)
def test_dev_commands_fail_with_one_line_without_dev(args: list[str], tmp_path: Path) -> None:
    """A dev command on a gateway install exits 69 with one line naming the missing package."""
    proc = subprocess.run(
        [sys.executable, "-c", RUN_CLI, *args],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
        env=_env(),
        cwd=tmp_path,
    )
    assert proc.returncode == 69, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "edge_gate_dev" in lines[0]
    assert lines[0].startswith("edge-gate ")
    assert not (tmp_path / "clips").exists()


def test_dev_command_help_works_without_dev() -> None:
    """``--help`` of a dev command still explains it, even where the package is missing."""
    proc = _cli_without_dev("bench", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "--section" in proc.stdout


def test_dev_commands_run_with_dev_installed(tmp_path: Path) -> None:
    """With edge_gate_dev present the same command runs: here ``relay-sim`` reaches its own
    key-file check instead of the missing-package line."""
    result = run("relay-sim", "--port", "/dev/null", "--key-file", str(tmp_path / "none.key"))
    assert result.exit_code == 1
    assert "edge_gate_dev" not in result.output
    assert "none.key" in result.output


def test_wheel_package_list_excludes_dev() -> None:
    """setuptools' discovery with the pyproject's include list finds edge_gate only.

    ``tests/test_deploy_install.py`` (slow) builds the real wheel into a venv and checks the
    installed tree; this is the fast check of the same configuration.
    """
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    find = config["tool"]["setuptools"]["packages"]["find"]
    packages = setuptools.find_packages(where=str(REPO), include=find["include"])
    assert "edge_gate" in packages
    assert "edge_gate.cli" in packages
    assert [p for p in packages if not p.startswith("edge_gate")] == []
    assert [p for p in packages if p.split(".")[0] != "edge_gate"] == []
    # the include list matches nothing of the development package, the tests or the tools
    everything = setuptools.find_packages(where=str(REPO))
    assert "edge_gate_dev" in everything
    assert "edge_gate_dev.bench" in everything
