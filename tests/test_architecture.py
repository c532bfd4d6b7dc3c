"""Layering rules: the pure core imports no I/O adapters, threads or clocks."""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
import re
from pathlib import Path

import edge_gate
import edge_gate_dev

# What a pure-core module may import besides numpy and other core modules: the standard
# library's pure parts (no I/O, threads, clocks, randomness, processes or sockets). Anything not
# listed is refused, so a new dependency of the core is a decision made here, not an accident.
STDLIB_PURE = frozenset(
    {
        "__future__",
        "abc",
        "base64",
        "binascii",
        "bisect",
        "collections",
        "collections.abc",
        "dataclasses",
        "datetime",  # formatting of a time passed in; the core never reads the clock
        "enum",
        "functools",
        "hashlib",
        "heapq",
        "hmac",
        "itertools",
        "json",
        "math",
        "numbers",
        "operator",
        "re",
        "statistics",
        "string",
        "struct",
        "types",
        "typing",
        "unicodedata",
        "urllib.parse",
        "zlib",
    }
)
THIRD_PARTY_IN_CORE = frozenset({"numpy", "numpy.typing"})
SHARED_IN_CORE = frozenset({"edge_gate.errors"})  # the exception tree (itself import-free)


def _modules() -> list[str]:
    """Every module of the runtime package and of the development package."""
    return [
        m.name
        for pkg in (edge_gate, edge_gate_dev)
        for m in pkgutil.walk_packages(pkg.__path__, prefix=f"{pkg.__name__}.")
    ]


def _core_modules() -> list[str]:
    core = []
    for name in _modules():
        path = _path_of(name)
        if path is None:
            continue
        tree = ast.parse(path.read_text())
        if any(_is_core_marker(node) for node in tree.body):
            core.append(name)
    return core


def _is_core_marker(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__layer__" for t in node.targets)
        and isinstance(node.value, ast.Constant)
        and node.value.value == "core"
    )


def _path_of(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _imports(path: Path, module: str) -> set[str]:
    """Absolute names of everything ``module`` (at ``path``) imports; relative imports and
    ``from pkg import name`` are resolved to the module they name where it is one."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if _is_module(sub) else target)
    return out


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def test_core_modules_exist() -> None:
    """The pure core is not empty: the marker convention is actually used."""
    assert len(_core_modules()) >= 10


def _core_problems(name: str, path: Path, core: set[str]) -> list[str]:
    problems = []
    for imp in sorted(_imports(path, name)):
        if imp in STDLIB_PURE or imp in THIRD_PARTY_IN_CORE or imp in SHARED_IN_CORE:
            continue
        if imp in core:
            continue
        problems.append(f"{name} imports {imp}")
    return problems


def test_core_imports_only_the_allow_list() -> None:
    """Every ``__layer__ = "core"`` module imports only pure stdlib modules, numpy, the error
    tree and other core modules (relative imports resolved)."""
    core = set(_core_modules())
    problems = []
    for name in sorted(core):
        path = _path_of(name)
        assert path is not None
        problems += _core_problems(name, path, core)
    assert problems == []


def test_the_allow_list_refuses_what_the_core_must_not_use(tmp_path: Path) -> None:
    """The check itself: I/O, clocks, threads, randomness and non-core modules are refused,
    also when imported relatively; pure stdlib and core modules pass."""
    bad = tmp_path / "bad_core.py"
    bad.write_text(
        "import time\nimport random\nfrom threading import Lock\nimport cv2\n"
        "from edge_gate.service import daemon\nimport numpy as np\nimport math\n"
        "from edge_gate.decision.policy import Grant\n"
    )
    core = set(_core_modules())
    found = _core_problems("edge_gate.decision.bad_core", bad, core)
    assert found == [
        "edge_gate.decision.bad_core imports cv2",
        "edge_gate.decision.bad_core imports edge_gate.service.daemon",
        "edge_gate.decision.bad_core imports random",
        "edge_gate.decision.bad_core imports threading",
        "edge_gate.decision.bad_core imports time",
    ]
    relative = tmp_path / "rel_core.py"
    relative.write_text("from ..service import daemon\nfrom . import policy\n")
    assert _core_problems("edge_gate.decision.rel_core", relative, core) == [
        "edge_gate.decision.rel_core imports edge_gate.service.daemon"
    ]


def _readme_core() -> set[str]:
    """The modules the README's architecture table lists as pure core."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    listed: set[str] = set()
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`edge_gate"):
            continue
        folder = cells[0].strip("`").rstrip("/").replace("/", ".")
        for name in re.findall(r"`([a-z_.]+)`", cells[2]):
            listed.add(f"{folder}.{name}")
    return listed


def test_the_readme_core_list_is_the_marked_set() -> None:
    """The README's table of core modules says exactly what the marker says (package
    ``__init__`` files of core folders are marked too, so core modules may import them)."""
    marked = {
        m for m in _core_modules() if (p := _path_of(m)) is not None and p.name != "__init__.py"
    }
    assert _readme_core() == marked


SECRET_WORDS = ("mac", "tag", "digest", "signature", "hmac")


def _secretish(node: ast.expr) -> bool:
    name = ""
    if isinstance(node, ast.Name):
        name = node.id
    elif isinstance(node, ast.Attribute):
        name = node.attr
    elif isinstance(node, ast.Call):
        return _secretish(node.func)
    return any(w in name.lower().split("_") or name.lower() == w for w in SECRET_WORDS)


def test_no_mac_is_compared_with_eq() -> None:
    """Timing leaks: MACs, tags and digests are compared only with hmac.compare_digest."""
    problems = []
    for name in _modules():
        path = _path_of(name)
        if path is None:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare) and any(
                isinstance(op, ast.Eq | ast.NotEq) for op in node.ops
            ):
                operands = [node.left, *node.comparators]
                if any(_secretish(o) for o in operands):
                    problems.append(f"{name}:{node.lineno}")
    assert problems == []


def test_compare_digest_is_used_for_macs() -> None:
    """The relay codec and the gallery manifest check their MACs in constant time."""
    for module in ("edge_gate.door.codec", "edge_gate.gallery.crypto"):
        path = _path_of(module)
        assert path is not None
        assert "hmac.compare_digest" in path.read_text()
