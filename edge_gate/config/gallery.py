"""``[gallery]``: the encrypted template store and matching thresholds."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from edge_gate.config.base import Section


class GalleryConfig(Section):
    db_file: Path = Field(
        Path("/var/lib/edge-gate/gallery.db"), description="encrypted gallery database"
    )
    key_file: Path = Field(
        Path("/etc/edge-gate/credentials/gallery.key"),
        description="gallery key file (credential gallery.key)",
    )
    threshold: float = Field(
        0.60, ge=-1, le=1, description="cosine similarity needed to call a face a match"
    )
    margin: float = Field(
        0.05, ge=0, le=2, description="best minus second-best identity similarity needed"
    )
