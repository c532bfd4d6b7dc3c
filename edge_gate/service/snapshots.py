"""Annotated PNG snapshots of decisions (opt in: ``service.snapshot_dir``; they contain faces)."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2

from edge_gate.capture.annotate import annotate
from edge_gate.capture.frame import Frame
from edge_gate.decision.policy import Deny, Outcome
from edge_gate.fsutil import atomic_write
from edge_gate.service.frame_processor import FrameResult

log = logging.getLogger(__name__)


class SnapshotWriter:
    """Writes ``<n>-<verdict>-<reason>.png`` files, mode 0600, at most ``max_files`` of them."""

    def __init__(self, directory: Path, max_files: int = 200) -> None:
        self.directory = Path(directory)
        self.max_files = max_files
        self.written: list[Path] = []

    def write(self, frame: Frame, result: FrameResult, decision: Outcome) -> Path | None:
        if len(self.written) >= self.max_files:
            return None
        faces = [face for face, _, _ in result.annotations]
        verdict, label = (
            ("deny", decision.reason.value) if isinstance(decision, Deny) else ("grant", "match")
        )
        banner = f"{verdict.upper()} {label} score={decision.score:.2f}"
        image = annotate(frame.image, faces, banner=banner)
        ok, png = cv2.imencode(".png", image)
        if not ok:
            log.warning("snapshot.encode_failed")
            return None
        path = self.directory / f"{len(self.written) + 1:04d}-{verdict}-{label}.png"
        atomic_write(path, png.tobytes(), mode=0o600)
        self.written.append(path)
        return path
