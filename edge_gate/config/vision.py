"""``[vision]``: detector and embedder choice."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from edge_gate.config.base import Section


class VisionConfig(Section):
    models_dir: Path | None = Field(
        None,
        description="directory with manifest.json; default: the models shipped with the package",
    )
    embedder: str = Field(
        "facenet", pattern=r"^[a-z0-9\-]+$", description="embedding model name from the manifest"
    )
    threads: int = Field(2, ge=1, le=16, description="TFLite interpreter threads")
    min_face_px: int = Field(
        40, ge=12, le=1000, description="smallest face (box side, px) the detector looks for"
    )
    max_image_pixels: int = Field(
        40_000_000,
        ge=10_000,
        le=400_000_000,
        description="refuse images larger than this before decoding",
    )
    max_image_bytes: int = Field(
        50_000_000, ge=1000, le=1_000_000_000, description="refuse image files larger than this"
    )
