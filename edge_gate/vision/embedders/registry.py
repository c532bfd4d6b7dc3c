"""Embedder families by manifest ``family`` name, found by scanning this package.

Adding a family is one new module here with a module-level ``FAMILY`` (see
:class:`~edge_gate.vision.embedders.base.EmbedderFamily`); nothing else needs to change.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from edge_gate.errors import ModelRuntimeError
from edge_gate.vision import embedders
from edge_gate.vision.embedders.base import EmbedderFamily

_NOT_FAMILIES = frozenset({"base", "registry"})


@cache
def families() -> dict[str, EmbedderFamily]:
    """Every embedder family module of this package, keyed by its manifest family name."""
    found: dict[str, EmbedderFamily] = {}
    for info in pkgutil.iter_modules(embedders.__path__):
        if info.name in _NOT_FAMILIES or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{embedders.__name__}.{info.name}")
        impl: EmbedderFamily | None = getattr(module, "FAMILY", None)
        if impl is not None:
            found[impl.family] = impl
    return found


def family(name: str) -> EmbedderFamily:
    """The family called ``name``; a clear error when it is not an embedder family."""
    impl = families().get(name)
    if impl is None:
        raise ModelRuntimeError(
            f"{name!r} is not an embedder family (known: {', '.join(sorted(families()))})"
        )
    return impl


def is_embedder_family(name: str) -> bool:
    return name in families()
