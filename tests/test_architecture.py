"""Layering rules: the pure core imports no I/O adapters, threads or clocks."""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
from pathlib import Path

import edge_gate
import edge_gate_dev

FORBIDDEN_IN_CORE = {
    "cv2",
    "serial",
    "paho",
    "sqlite3",
    "socket",
    "threading",
    "time",
    "os",
    "subprocess",
    "systemd",
    "ai_edge_litert",
    "tflite_runtime",
    "pathlib",
    "random",
    "asyncio",
}


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


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_core_modules_exist() -> None:
    """The pure core is not empty: the marker convention is actually used."""
    assert len(_core_modules()) >= 1


def test_core_imports_no_io() -> None:
    """Every ``__layer__ = "core"`` module imports only stdlib maths, numpy and other core."""
    core = set(_core_modules())
    problems = []
    for name in sorted(core):
        path = _path_of(name)
        assert path is not None
        for imp in _imports(path):
            top = imp.split(".")[0]
            if top in FORBIDDEN_IN_CORE:
                problems.append(f"{name} imports {imp}")
            elif (
                top in {"edge_gate", "edge_gate_dev"}
                and imp not in core
                and imp not in {"edge_gate.errors"}
            ):
                # a core module may use other core modules (or their package) and the error tree
                pkg_ok = any(c.startswith(imp + ".") for c in core)
                if not pkg_ok:
                    problems.append(f"{name} imports non-core {imp}")
    assert problems == []


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
