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


def test_weak_detections_continue_tracks_but_do_not_start_them():
    t = SortTracker(max_age=5, min_hits=1, new_track_score=0.9)
    assert t.update(np.array([box(50, 50), box(200, 50)]), [0.95, 0.8]) and len(t.tracks) == 1  # 0.8 starts nothing
    out = t.update(np.array([box(52, 50), box(202, 50)]), [0.75, 0.8])  # the weak one continues track 1
    assert [(o.track_id, o.detected) for o in out] == [(1, True)] and out[0].score == 0.75
    assert out[0].track_score == 0.95


def test_short_miss_reports_the_predicted_box_then_goes_silent():
    t = SortTracker(max_age=10, min_hits=1, coast=2)
    for f in range(6):
        t.update(np.array([box(20 + 4 * f, 40)]), [0.99])
    reported = [t.update(np.zeros((0, 4)), []) for _ in range(4)]  # missed on 4 detection frames
    assert [len(r) for r in reported] == [1, 1, 0, 0]
    assert not reported[0][0].detected and abs((reported[0][0].box[0] + reported[0][0].box[2]) / 2 - 44) < 1.5
    back = t.update(np.array([box(60, 40)]), [0.99])  # back where the motion says: same id
    assert [(o.track_id, o.detected) for o in back] == [(1, True)]


def test_reassociation_after_occlusion_uses_position_and_size():
    # a face stands still, is occluded for 8 frames and comes back 8 px off (IoU with the prediction 0.2 at
    # 12 px); a face of another size appears at the same time 10 px away on the other side
    t = SortTracker(max_age=12, min_hits=1, gate=1.0)
    for _ in range(5):
        t.update(np.array([box(100, 100, 12)]), [0.99])
    for _ in range(8):
        t.update(np.zeros((0, 4)), [])
    out = t.update(np.array([box(108, 100, 12), box(90, 100, 30)]), [0.99, 0.99])
    ids = {round(float(o.box[2] - o.box[0])): o.track_id for o in out}
    assert ids[12] == 1 and ids[30] != 1
    plain = SortTracker(max_age=12, min_hits=1)  # IoU only: the face gets a new id
    for _ in range(5):
        plain.update(np.array([box(100, 100, 12)]), [0.99])
    for _ in range(8):
        plain.update(np.zeros((0, 4)), [])
    assert 1 not in [o.track_id for o in plain.update(np.array([box(108, 100, 12)]), [0.99])]


def test_unconfirmed_track_dropped_at_first_miss():
    t = SortTracker(max_age=10, min_hits=3)
    for f in range(3):
        t.update(np.array([box(50 + f, 50)]), [0.99])  # warm-up frames: confirmed
    t.update(np.array([box(53, 50), box(200, 200)]), [0.99, 0.99])  # a one-frame blip: tentative track
    t.update(np.array([box(54, 50)]), [0.99])
    assert t.lost == [2] and t.active_ids == [1]


def test_pipeline_config_rejects_bad_tracking_values():
    import pytest

    from jasr_video.pipeline import PipelineConfig

    for bad in ({"new_track_score": 1.5}, {"min_score": -0.1}, {"coast": -1}, {"gate": -0.5}):
        with pytest.raises(ValueError):
            PipelineConfig(**bad).validate()
    PipelineConfig().validate()
