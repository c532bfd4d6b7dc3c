"""``[vision]``: detector and embedder choice, detector tuning, image limits."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator, model_validator

from edge_gate.config.base import NonEmptyPath, Section

_MODEL_NAME = r"^[a-z0-9][a-z0-9\-_.]*$"

# the shipped default. The mobilefacenet + dlib-resnet fusion beats it held out (TAR@FAR 1e-3
# 0.964 vs 0.957, DIR@FPIR 0 0.949 vs 0.942; README "Held out, by person") but costs the door
# 26.3 ms per frame here against 19.8 (`edge-gate bench --section pipeline`), over the 20 ms
# budget of a 2-core gateway: it is one line to opt in where the box is faster
DEFAULT_EMBEDDERS: tuple[str, ...] = ("mobilefacenet",)


class VisionConfig(Section):
    models_dir: NonEmptyPath | None = Field(
        None,
        description="directory with manifest.json; default: $EDGE_GATE_MODELS, "
        "/usr/share/edge-gate/models, then the models shipped with the package",
    )
    embedder: str | None = Field(
        None,
        pattern=_MODEL_NAME,
        description="one embedding model instead of the default fusion: a manifest id (e.g. "
        "facenet-int8) or a family (facenet, mobilefacenet, dlib-resnet) meaning its default "
        "variant. Neither this nor `embedders`: mobilefacenet",
    )
    embedders: list[Annotated[str, StringConstraints(pattern=_MODEL_NAME)]] | None = Field(
        None,
        min_length=1,
        max_length=4,
        description="several embedders fused: score = weighted mean of their cosines (see "
        'edge_gate.vision.fusion), e.g. ["mobilefacenet", "dlib-resnet"]; a one-element '
        "list is the same as `embedder`. A gallery is enrolled with one set and matched only "
        "with that set",
    )
    embedder_weights: list[float] | None = Field(
        None,
        description="one weight > 0 per entry of `embedders` (normalised to sum 1; default "
        "equal). Weights are applied at match time: changing them needs no re-enrollment, "
        "only `edge-gate calibrate`",
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

    @model_validator(mode="after")
    def _one_embedder_set(self) -> VisionConfig:
        """``embedder`` and ``embedders`` may both be given only when they say the same."""
        if self.embedders is not None:
            if len(set(self.embedders)) != len(self.embedders):
                raise ValueError(f"vision.embedders names a model twice: {self.embedders}")
            if self.embedder is not None and self.embedders != [self.embedder]:
                raise ValueError(
                    f"vision.embedder = {self.embedder!r} and vision.embedders = "
                    f"{self.embedders} disagree: set only one of them"
                )
        if self.embedder_weights is not None:
            n = len(self.embedder_set)
            if len(self.embedder_weights) != n:
                raise ValueError(
                    f"vision.embedder_weights has {len(self.embedder_weights)} entries for "
                    f"{n} embedder(s)"
                )
            if not all(math.isfinite(w) and w > 0 for w in self.embedder_weights):
                raise ValueError("vision.embedder_weights must all be finite and > 0")
        return self

    @property
    def embedder_set(self) -> tuple[str, ...]:
        """The embedders in use, in order: ``embedders``, else ``(embedder,)``, else the default."""
        if self.embedders is not None:
            return tuple(self.embedders)
        return (self.embedder,) if self.embedder is not None else DEFAULT_EMBEDDERS
