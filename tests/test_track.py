"""SORT tracker on synthetic boxes (the tracker is the part under test)."""
from __future__ import annotations

import numpy as np

from jasr_video.track import SortTracker, iou_matrix


def box(cx: float, cy: float, s: float = 20.0) -> list[float]:
    return [cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2]


def test_iou_matrix():
    m = iou_matrix(np.array([box(10, 10)]), np.array([box(10, 10), box(20, 10), box(100, 100)]))
    assert np.allclose(m, [[1.0, 1 / 3, 0.0]])


def test_ids_persist_through_short_miss_and_crossing():
    t = SortTracker(max_age=5, min_hits=2)
    ids_a, ids_b = set(), set()
    for f in range(30):
        a, b = box(10 + 3 * f, 50), box(100 - 3 * f, 56)  # two faces crossing paths
        dets = [a, b]
        if 10 <= f < 13:
            dets = [b]  # face A missed for 3 frames
        out = t.update(np.array(dets), [0.99] * len(dets))
        for face in out:
            cy = (face.box[1] + face.box[3]) / 2
            (ids_a if abs(cy - 50) < 2 else ids_b).add(face.track_id)
        if 10 <= f < 13:
            assert all(abs((o.box[0] + o.box[2]) / 2 - (100 - 3 * f)) < 2 for o in out)
    assert len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b


def test_long_miss_gives_new_id_and_reports_lost():
    t = SortTracker(max_age=3, min_hits=1)
    first = t.update(np.array([box(50, 50)]))[0].track_id
    lost = []
    for _ in range(5):
        t.update(np.zeros((0, 4)))
        lost += t.lost
    assert lost == [first]
    again = t.update(np.array([box(50, 50)]))[0].track_id
    assert again != first


def test_min_hits_hides_one_frame_false_positive():
    t = SortTracker(max_age=3, min_hits=3)
    t.update(np.array([box(50, 50)]))
    t.update(np.array([box(51, 50)]))
    t.update(np.array([box(52, 50)]))  # first min_hits frames: reported (SORT warm-up)
    out = t.update(np.array([box(53, 50), box(200, 200)]))  # a one-frame blip after warm-up
    assert [o.track_id for o in out] == [1]


def test_predict_only_frames_follow_the_motion():
    t = SortTracker(max_age=10, min_hits=1)
    for f in range(8):
        t.update(np.array([box(20 + 4 * f, 40)]))
    predicted = []
    for f in range(8, 11):
        out = t.update(None)  # detect_every > 1: no detection on these frames
        assert len(out) == 1 and not out[0].detected and out[0].track_id == 1
        predicted.append((out[0].box[0] + out[0].box[2]) / 2)
    assert np.allclose(predicted, [20 + 4 * f for f in range(8, 11)], atol=1.5)
