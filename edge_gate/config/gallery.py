"""``[gallery]``: the encrypted template store, matching thresholds and enrollment gates."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from edge_gate.config.base import NonEmptyPath, Section


class GalleryConfig(Section):
    db_file: NonEmptyPath = Field(
        Path("/var/lib/edge-gate/gallery.db"), description="encrypted gallery database"
    )
    key_file: NonEmptyPath = Field(
        Path("/etc/edge-gate/credentials/gallery.key"),
        description="gallery key ring file, mode 0600 (systemd credential gallery.key)",
    )
    generation_file: NonEmptyPath | None = Field(
        None,
        description="rollback counter kept outside the database; default: <db_file>.gen. "
        "Put it on storage that cannot be rolled back together with the database",
    )
    threshold: float = Field(
        0.647,
        ge=-1,
        le=1,
        description="similarity needed to call a face a match. Left out, it is the calibrated "
        "default of the configured embedder set (0.647 for the default mobilefacenet, 0.789 "
        "for mobilefacenet + dlib-resnet fused: held-out FAR 1e-5, see "
        "edge_gate.config.thresholds); a set without one must name it. `edge-gate calibrate` "
        "measures it for your own population",
    )
    margin: float = Field(
        0.05, ge=0, le=2, description="best minus second-best identity similarity needed"
    )
    enroll_min_face_px: float = Field(
        56, ge=12, le=2000, description="enrollment: shorter box side at least this (px)"
    )
    enroll_min_sharpness: float = Field(
        40,
        ge=0,
        description="enrollment: Laplacian variance of the face (frame pixels only) at least this",
    )
    enroll_max_yaw_deg: float = Field(25, gt=0, le=90, description="enrollment: |yaw| at most")
    enroll_max_pitch_deg: float = Field(25, gt=0, le=90, description="enrollment: |pitch| at most")
    enroll_max_roll_deg: float = Field(20, gt=0, le=90, description="enrollment: |roll| at most")
    enroll_min_brightness: float = Field(
        40, ge=0, le=255, description="enrollment: mean grey of the aligned crop at least this"
    )
    enroll_max_brightness: float = Field(
        220, ge=0, le=255, description="enrollment: mean grey of the aligned crop at most this"
    )
    enroll_min_detection_score: float = Field(
        0.9, ge=0, le=1, description="enrollment: detector confidence at least this"
    )
    enroll_min_in_frame: float = Field(
        0.8,
        ge=0,
        le=1,
        description="enrollment: fraction of the face (brows to chin) inside the picture at "
        "least this (whole head-only portraits >= 0.89; a quarter cut off 0.70-0.87)",
    )
    enroll_max_other_face_ratio: float = Field(
        0.5,
        gt=0,
        le=1,
        description="enrollment: refuse an image whose second face has at least this fraction "
        "of the largest face's area (no single dominant face)",
    )
    enroll_max_templates: int = Field(
        10, ge=1, le=64, description="keep at most this many templates per person"
    )
