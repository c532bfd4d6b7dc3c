"""Build the daemon's parts from the config; each builder fails with a clear EdgeGateError."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge_gate.config import EdgeGateConfig
from edge_gate.errors import ConfigError, GalleryError
from edge_gate.gallery.credentials import CredentialDirectory, card_tag_key
from edge_gate.gallery.loaded import LoadedGallery
from edge_gate.gallery.matching import MatchResult, TemplateMatrix, match
from edge_gate.gallery.store import default_generation_path, store_from_config
from edge_gate.service.second_factor import Credentials, NoCredentials
from edge_gate.vision.fusion import block_scale, normalise_weights

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GalleryMatcher:
    """The loaded gallery as the decision path sees it: an open-set 1:N matcher, the 1:1
    score against one person (a card's holder), and who holds which card or PIN."""

    matrix: TemplateMatrix
    threshold: float
    margin: float
    people: int
    credentials: Credentials = field(default_factory=NoCredentials)
    card_tag_key: bytes = field(default=b"", repr=False)

    def match(self, embedding: npt.NDArray[np.float32]) -> MatchResult:
        return match(self.matrix, embedding, self.threshold, self.margin)

    def score_user(self, embedding: npt.NDArray[np.float32], user_id: str) -> float:
        return self.matrix.identity_score(embedding, user_id)


GalleryStamp = tuple[tuple[int, int, int] | None, ...]


def gallery_stamp(cfg: EdgeGateConfig) -> GalleryStamp:
    """What identifies the gallery's current on-disk state: inode, mtime and size of the
    generation file (every committed change rewrites it atomically) and of the database (in
    case the generation file could not be written); ``None`` for a missing file."""
    gen = cfg.gallery.generation_file or default_generation_path(cfg.gallery.db_file)
    return tuple(_file_stamp(p) for p in (gen, cfg.gallery.db_file))


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def nobody(cfg: EdgeGateConfig, embedding_size: int) -> GalleryMatcher:
    """A matcher that matches nobody: what the door uses when the gallery cannot be trusted."""
    empty = TemplateMatrix([], [], embedding_size)
    return GalleryMatcher(empty, cfg.gallery.threshold, cfg.gallery.margin, 0)


def load_gallery(cfg: EdgeGateConfig, embedder_id: str, embedding_size: int) -> GalleryMatcher:
    """Decrypt and verify the gallery; refuse one made with a different embedder."""
    store = store_from_config(cfg.gallery)
    if not store.exists():
        raise GalleryError(
            f"{cfg.gallery.db_file}: no gallery yet; enroll people with `edge-gate enroll`"
        )
    loaded: LoadedGallery = store.load()
    try:
        loaded.require_model(embedder_id)
    except GalleryError as e:
        raise ConfigError(str(e)) from e
    if loaded.dims is not None:
        weights = normalise_weights(cfg.vision.embedder_weights, len(loaded.dims))
        loaded = replace(loaded, scale=block_scale(loaded.dims, weights))
    if not loaded.people:
        return nobody(cfg, embedding_size)
    key = store.keyring.get(loaded.key_id)
    return GalleryMatcher(
        loaded.matrix,
        cfg.gallery.threshold,
        cfg.gallery.margin,
        len(loaded.people),
        CredentialDirectory.from_gallery(loaded),
        card_tag_key(key.key) if key is not None else b"",
    )
