"""Build the daemon's parts from the config; each builder fails with a clear EdgeGateError."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge_gate.config import EdgeGateConfig
from edge_gate.errors import GalleryError
from edge_gate.gallery.loaded import LoadedGallery
from edge_gate.gallery.matching import MatchResult, TemplateMatrix, match
from edge_gate.gallery.store import store_from_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GalleryMatcher:
    """The loaded gallery as the decision path sees it: an open-set 1:N matcher."""

    matrix: TemplateMatrix
    threshold: float
    margin: float
    people: int

    def match(self, embedding: npt.NDArray[np.float32]) -> MatchResult:
        return match(self.matrix, embedding, self.threshold, self.margin)


def load_gallery(cfg: EdgeGateConfig, embedder_id: str, embedding_size: int) -> GalleryMatcher:
    """Decrypt and verify the gallery; refuse one made with a different embedder."""
    store = store_from_config(cfg.gallery)
    if not store.exists():
        raise GalleryError(
            f"{cfg.gallery.db_file}: no gallery yet; enroll people with `edge-gate enroll`"
        )
    loaded: LoadedGallery = store.load()
    if loaded.people and loaded.model != embedder_id:
        raise GalleryError(
            f"gallery templates were made with {loaded.model!r} but the configured embedder is "
            f"{embedder_id!r}; re-enroll or set vision.embedder to match"
        )
    matrix = loaded.matrix if loaded.people else TemplateMatrix([], [], embedding_size)
    return GalleryMatcher(matrix, cfg.gallery.threshold, cfg.gallery.margin, len(loaded.people))
