"""``[vision]``: detector and embedder choice, detector tuning, image limits."""

from __future__ import annotations

import math

from pydantic import Field, field_validator

from edge_gate.config.base import NonEmptyPath, Section

_MODEL_NAME = r"^[a-z0-9][a-z0-9\-_.]*$"


class VisionConfig(Section):
    models_dir: NonEmptyPath | None = Field(
        None,
        description="directory with manifest.json; default: $EDGE_GATE_MODELS, "
        "/usr/share/edge-gate/models, then the models shipped with the package",
    )
    embedder: str = Field(
        "mobilefacenet",
        pattern=_MODEL_NAME,
        description="embedding model: a manifest id (e.g. facenet-int8) or a family "
        "(facenet, mobilefacenet) meaning its default variant",
    )
    pnet_model: str = Field(
        "mtcnn-pnet", pattern=_MODEL_NAME, description="P-Net manifest id or family"
    )
    rnet_model: str = Field(
        "mtcnn-rnet", pattern=_MODEL_NAME, description="R-Net manifest id or family"
    )
    onet_model: str = Field(
        "mtcnn-onet", pattern=_MODEL_NAME, description="O-Net manifest id or family"
    )
    threads: int = Field(2, ge=1, le=16, description="TFLite interpreter threads per model")
    min_face_px: int = Field(
        60,
        ge=12,
        le=1000,
        description="smallest face (box side, px) the detector looks for; 60 px at 640x480 is a "
        "person about 2 m from a door camera; lower it (e.g. 20) for small photos",
    )
    pyramid_factor: float = Field(
        0.709, gt=0.3, lt=0.95, description="scale step of the P-Net image pyramid"
    )
    detect_thresholds: tuple[float, float, float] = Field(
        (0.6, 0.7, 0.8),
        description="P-Net, R-Net, O-Net face probability thresholds (O-Net 0.8 instead of "
        "the paper's 0.7: no false faces on the scikit-image negatives, no missed face on "
        "ORL/johns)",
    )
    facenet_margin_px: int = Field(
        32,
        ge=0,
        le=200,
        description="margin (px, split over both sides) around the box for FaceNet crops",
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

    @field_validator("detect_thresholds")
    @classmethod
    def _thresholds_are_probabilities(
        cls, value: tuple[float, float, float]
    ) -> tuple[float, float, float]:
        """Each is a face probability in (0, 1]: 0 or less accepts everything, above 1 nothing."""
        bad = [
            f"{stage} {t}"
            for stage, t in zip(("P-Net", "R-Net", "O-Net"), value, strict=True)
            if not (math.isfinite(t) and 0 < t <= 1)
        ]
        if bad:
            raise ValueError(f"thresholds must be in (0, 1]; got {', '.join(bad)}")
        return value
