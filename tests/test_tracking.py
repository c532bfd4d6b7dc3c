"""The face tracker keeps one id per face across frames and expires lost faces."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_gate.tracking import Tracker, TrackerParams
from edge_gate.tracking.tracker import iou
from edge_gate.vision.types import Box, Detection


def _det(x: float, y: float, w: float = 100.0, score: float = 0.99) -> Detection:
    box = Box(x, y, x + w, y + 1.2 * w)
    lm = np.array(
        [
            [x + 0.3 * w, y + 0.45 * w],
            [x + 0.7 * w, y + 0.45 * w],
            [x + 0.5 * w, y + 0.65 * w],
            [x + 0.35 * w, y + 0.85 * w],
            [x + 0.65 * w, y + 0.85 * w],
        ],
        dtype=np.float32,
    )
    return Detection(box=box, score=score, landmarks=lm)


def test_same_face_keeps_its_id_while_moving() -> None:
    """A face drifting 5 px per frame keeps one id over 30 frames at 15 fps."""
    tracker = Tracker()
    ids = set()
    for i in range(30):
        (track,) = tracker.update([_det(100 + 5 * i, 80)], now_s=i / 15)
        ids.add(track.track_id)
    assert ids == {1}
    assert track.hits == 30
    assert abs(track.age_s - 29 / 15) < 1e-9


def test_fast_move_matched_by_landmarks() -> None:
    """A jump too far for IoU but within half a face width is still the same face."""
    tracker = Tracker(TrackerParams(min_iou=0.5))
    (a,) = tracker.update([_det(100, 100)], 0.0)
    (b,) = tracker.update([_det(150, 100)], 0.066)
    assert iou(a.detection.box, b.detection.box) < 0.5
    assert a.track_id == b.track_id


def test_two_faces_two_ids_and_order_follows_detections() -> None:
    """Two faces get distinct ids that follow them even when the detector swaps their order."""
    tracker = Tracker()
    left, right = tracker.update([_det(50, 100), _det(400, 100)], 0.0)
    assert left.track_id != right.track_id
    right2, left2 = tracker.update([_det(405, 102), _det(52, 99)], 0.066)
    assert (left2.track_id, right2.track_id) == (left.track_id, right.track_id)


def test_track_expires_after_gap_and_new_id_is_fresh() -> None:
    """A face unseen for longer than max_gap_s comes back with a new id; ids are not reused."""
    tracker = Tracker(TrackerParams(max_gap_s=0.5))
    (a,) = tracker.update([_det(100, 100)], 0.0)
    assert tracker.update([], 0.3) == []
    (b,) = tracker.update([_det(100, 100)], 0.45)
    assert b.track_id == a.track_id
    assert tracker.expired_since(1.0) == [a.track_id]
    tracker.update([], 1.0)
    assert tracker.tracks == []
    (c,) = tracker.update([_det(100, 100)], 1.1)
    assert c.track_id not in {a.track_id}


def test_max_tracks_bounds_state() -> None:
    """A flood of detections never makes more than max_tracks tracks; best scores win."""
    tracker = Tracker(TrackerParams(max_tracks=3))
    dets = [_det(10 + 110 * i, 10, w=100, score=0.5 + 0.01 * i) for i in range(6)]
    tracks = tracker.update(dets, 0.0)
    assert len(tracks) == 3
    assert sorted(t.detection.score for t in tracks) == sorted(d.score for d in dets[3:])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 600), st.floats(0, 400), st.floats(20, 200)),
        min_size=0,
        max_size=6,
    ),
    st.floats(0, 10),
)
def test_update_invariants(boxes: list[tuple[float, float, float]], t0: float) -> None:
    """Any detection list gives tracks with unique ids, each carrying one of the detections."""
    tracker = Tracker()
    dets = [_det(x, y, w) for x, y, w in boxes]
    for k in range(2):
        tracks = tracker.update(dets, t0 + 0.07 * k)
        ids = [t.track_id for t in tracks]
        assert len(ids) == len(set(ids))
        assert len(tracks) == len(dets)
        for t in tracks:
            assert any(t.detection is d for d in dets)
