"""Files root creates in the service's state directory stay usable by the service user, and a
symlink planted there by that user never turns into a chown of something else."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from edge_gate.audit.outbox import Outbox
from edge_gate.fsutil import atomic_write, open_private
from edge_gate.gallery.keyfile import KeyRing, load_keyring_file, new_key, write_keyring
from edge_gate.gallery.store import GalleryStore

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (as the admin CLI runs)")

SERVICE_UID, SERVICE_GID = 64321, 64322  # stands in for the edge-gate user; need not exist


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    d = tmp_path / "state"
    d.mkdir(mode=0o700)
    os.chown(d, SERVICE_UID, SERVICE_GID)
    return d


def _owner(path: Path) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_uid, st.st_gid


def test_state_files_made_by_root_belong_to_the_service(state_dir: Path, tmp_path: Path) -> None:
    """Gallery (database, generation file, lock), outbox and an atomically written counter:
    all owned by the state directory's owner, all still 0600."""
    write_keyring(tmp_path / "gallery.key", KeyRing((new_key(),)))  # keys stay root's
    store = GalleryStore(
        state_dir / "gallery.db", None, load_keyring_file(tmp_path / "gallery.key")
    )
    store.create()
    store.enroll("Ada", "m", np.eye(2, 8, dtype=np.float32))
    with Outbox(state_dir / "outbox.db", 100):
        pass
    atomic_write(state_dir / "relay.counter", b"x")
    made = sorted(p.name for p in state_dir.iterdir())
    assert {"gallery.db", "gallery.db.gen", "gallery.db.lock", "outbox.db", "relay.counter"} <= set(
        made
    )
    for name in made:
        assert _owner(state_dir / name) == (SERVICE_UID, SERVICE_GID), name
        assert (state_dir / name).stat().st_mode & 0o077 == 0, name
    assert _owner(tmp_path / "gallery.key") == (0, 0)


def test_a_planted_symlink_is_refused_not_followed(state_dir: Path, tmp_path: Path) -> None:
    """The service user plants outbox.db -> a root file: opening fails; the target keeps its
    owner and content."""
    target = tmp_path / "root-owned"
    target.write_bytes(b"precious")
    (state_dir / "outbox.db").symlink_to(target)
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        os.close(open_private(state_dir / "outbox.db"))
    assert _owner(target) == (0, 0)
    assert target.read_bytes() == b"precious"


def test_root_owned_directories_keep_root_files(tmp_path: Path) -> None:
    """Nothing changes hands in a directory root owns (e.g. /etc/edge-gate/credentials)."""
    atomic_write(tmp_path / "k", b"secret")
    assert _owner(tmp_path / "k") == (0, 0)
