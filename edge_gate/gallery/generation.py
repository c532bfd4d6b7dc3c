"""The gallery generation counter kept outside the database (rollback detection).

Every committed change to the gallery increases the generation stored (MAC'd) inside the
database; afterwards the same number is written here. At load, a database whose generation
is *lower* than this file's is an old copy put back: a rollback. A database that is ahead of
this file is accepted: that is what a crash between the database commit and this write
leaves behind (writers then move the file forward).

The file only protects against rollback if an attacker cannot roll it back together with
the database, so put it on different storage when that matters (``gallery.generation_file``).

Format: ``{"format": "edge-gate-gallery-generation", "gallery_id": "...", "generation": N}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edge_gate.errors import GalleryError
from edge_gate.fsutil import atomic_write

GEN_FORMAT = "edge-gate-gallery-generation"


@dataclass(frozen=True, slots=True)
class GenerationMark:
    gallery_id: str
    generation: int


def read_generation(path: Path) -> GenerationMark | None:
    """The mark in ``path``, or ``None`` if the file does not exist."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise GalleryError(f"{path}: cannot read the generation file: {e.strerror}") from e
    try:
        doc = json.loads(data.decode("utf-8"))
        if doc["format"] != GEN_FORMAT:
            raise ValueError("format")
        mark = GenerationMark(gallery_id=str(doc["gallery_id"]), generation=int(doc["generation"]))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise GalleryError(f"{path}: not an edge-gate gallery generation file") from e
    if mark.generation < 0:
        raise GalleryError(f"{path}: negative generation")
    return mark


def write_generation(path: Path, mark: GenerationMark) -> None:
    """Atomically replace the generation file (fsynced, mode 0600)."""
    doc = {"format": GEN_FORMAT, "gallery_id": mark.gallery_id, "generation": mark.generation}
    atomic_write(Path(path), (json.dumps(doc) + "\n").encode("utf-8"), mode=0o600)
