"""The tiny-face benchmark's scorer on hand-made boxes (expected results worked out by hand), and its
H.264 round trip on a real frame."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jasr_video.tinybench import Tally, bucket_of, h264_roundtrip, match_boxes, score_frame

VIDEO = Path(__file__).resolve().parents[2] / "shared/data/video/stadium_crowd_720p25.mp4"


def test_buckets_follow_the_longer_side_edges():
    assert [bucket_of(s) for s in (5, 11.99, 12, 15.9, 16, 23.9, 24, 31.9, 32, 400)] == [
        "<12", "<12", "12-16", "12-16", "16-24", "16-24", "24-32", "24-32", ">=32", ">=32"]


def test_hungarian_pairs_maximise_total_iou_not_greedy_order():
    # IoUs by hand (all boxes 10 high): gt0 [10, 20] / det A [11, 21]: 9/11 = 0.82; gt0 / det B [8, 18]: 8/12 = 0.67;
    # gt1 [13, 23] / A: 8/12 = 0.67; gt1 / B: 5/15 = 0.33. Greedy (best IoU first) pairs gt0-A and leaves gt1
    # without a partner above 0.5; the optimal pairing is gt0-B, gt1-A (total 1.33).
    gt = np.array([[10, 0, 20, 10], [13, 0, 23, 10]], float)
    det = np.array([[11, 0, 21, 10], [8, 0, 18, 10]], float)
    assert match_boxes(gt, det, 0.5) == [(0, 1), (1, 0)]
    assert match_boxes(gt, det, 0.7) == [(0, 0)]  # above 0.7 only gt0-A is a candidate pair


def test_score_frame_counts_found_faces_and_false_positives():
    gt = np.array([[0, 0, 10, 10], [100, 100, 130, 120], [200, 200, 214, 214]], float)  # sizes 10, 30, 14
    det = np.array([[1, 1, 11, 11],        # IoU 81/119 = 0.68 with gt 0: found
                    [100, 100, 130, 121],  # IoU 600/630 = 0.95 with gt 1: found
                    [300, 300, 340, 340],  # nothing there: false positive of 40 px
                    [500, 500, 510, 510]], float)  # matches an "unsure" box: ignored
    ignore = np.array([[501, 500, 511, 510]], float)
    s = score_frame(gt, det, ignore, 0.5)
    assert s.found.tolist() == [True, True, False]
    assert s.gt_sizes.tolist() == [10, 30, 14]
    assert s.fp_sizes.tolist() == [40] and s.fp_boxes.tolist() == [[300, 300, 340, 340]]
    s = score_frame(gt, det, None, 0.5)
    assert sorted(s.fp_sizes.tolist()) == [10, 40]


def test_a_detection_counts_once():
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float)  # two faces in the same place
    s = score_frame(gt, np.array([[0, 0, 10, 10]], float))
    assert s.found.sum() == 1 and len(s.fp_sizes) == 0
    s = score_frame(np.zeros((0, 4)), np.array([[0, 0, 10, 10], [5, 5, 30, 30]], float))
    assert s.found.size == 0 and sorted(s.fp_sizes.tolist()) == [10, 25]


def test_tally_recall_per_bucket_and_fp_per_frame():
    t = Tally()
    t.add(score_frame(np.array([[0, 0, 10, 10], [50, 50, 64, 64]], float), np.array([[0, 0, 10, 10]], float)))
    t.add(score_frame(np.array([[0, 0, 20, 20]], float), np.array([[0, 0, 20, 20], [90, 90, 120, 120]], float)))
    r = t.recall()
    assert r["<12"] == 1.0 and r["12-16"] == 0.0 and r["16-24"] == 1.0 and r["24-32"] is None
    assert t.summary()["fp_per_frame"] == 0.5 and t.summary()["fp_large_per_frame"] == 0.5


@pytest.mark.skipif(not VIDEO.is_file(), reason="needs ../shared/data/video/stadium_crowd_720p25.mp4")
def test_h264_roundtrip_keeps_frames_in_order():
    import av

    with av.open(str(VIDEO)) as c:
        frames = [f.to_ndarray(format="rgb24")[::4, ::4] for _, f in zip(range(8), c.decode(video=0))]
    runs = [frames[:4], frames[4:]]
    out = h264_roundtrip(runs, 0.5)
    assert [len(r) for r in out] == [4, 4]
    for a, b in zip(sum(runs, []), sum(out, [])):
        h, w = b.shape[:2]
        assert np.abs(a[:h, :w].astype(float) - b).mean() < 12  # each decoded frame is its own source frame


@pytest.mark.skipif(not (VIDEO.parent / "traffic_cctv_riders_360p30.mp4").is_file(),
                    reason="needs ../shared/data/video/traffic_cctv_riders_360p30.mp4")
def test_tinybench_command_runs_on_one_clip(tmp_path):
    import json

    from jasr_video.tinybench import main

    out, crops = tmp_path / "tiny.json", tmp_path / "fp"
    assert main(["--clips", "traffic_cctv_riders_360p30.mp4", "--samples", "1", "--run", "2", "--detectors", "before",
                 "--ids-frames", "0", "--threads", "1", "--json", str(out), "--fp-crops", str(crops),
                 "--fp-crops-min-px", "0"]) == 0
    report = json.loads(out.read_text())
    assert report["clips"]["traffic_cctv_riders_360p30.mp4"]["gt_faces"] >= 1  # the sampled wide shot has faces
    for cond in ("raw", "h264", "all"):
        r = report["results"][f"before|{cond}"]
        assert r["frames"] == (2 if cond != "all" else 4)  # scales x1 and x2
        assert sum(r["gt_faces"].values()) >= 2 and 0 <= r["fp_per_frame"]
    # --fp-crops-min-px 0: a montage for every sample with a false positive of any size
    assert bool(list(crops.glob("before_*.png"))) == (report["results"]["before|all"]["fp_per_frame"] > 0)


def test_unknown_detector_options_are_refused():
    from jasr_video.tinybench import main, make_detectors

    with pytest.raises(ValueError, match="unknown option weak"):
        make_detectors(["track:weak=1"])
    assert main(["--detectors", "fast:start=0.7", "--ids-frames", "0"]) == 2


def test_false_positives_take_the_label_of_the_box_they_overlap():
    from jasr_video.tinybench import label_boxes

    labelled = [{"box": [0, 0, 10, 10], "label": "hand"}, {"box": [20, 0, 30, 10], "label": "face"}]
    got = label_boxes(np.array([[20, 0, 30, 10.2], [0, 0, 10, 10], [50, 50, 60, 60], [0, 0, 10, 14]]), labelled)
    assert got == ["face", "hand", "unlabelled", "unlabelled"]  # the last overlaps "hand" with IoU 0.71 only
    assert label_boxes(np.zeros((2, 4)), []) == ["unlabelled"] * 2
    tally = Tally()
    tally.add(score_frame(np.zeros((0, 4)), np.array([[0, 0, 10, 10], [50, 50, 60, 60]])), ["hand", "unlabelled"])
    tally.add(score_frame(np.zeros((0, 4)), np.array([[0, 0, 10, 10]])), ["hand"])
    tally.add(score_frame(np.zeros((0, 4)), np.array([[0, 0, 30, 30], [0, 0, 10, 10]])), ["face", "hand"])
    assert tally.summary()["fp_labels"] == {"hand": 3, "unlabelled": 1, "face": 1} and tally.fp == 5
    assert tally.summary()["fp_large_labels"] == {"face": 1}  # only the 30 px box is >= 24 px


def test_montage_tiles_keep_the_box_in_place_and_black_out_what_lies_outside_the_frame(tmp_path):
    import cv2

    from jasr_video.tinybench import save_montage

    image = np.full((100, 100, 3), 200, np.uint8)
    save_montage(tmp_path / "edge.png", image, np.array([[-10, 40, 10, 60]]), tile=40, columns=1, context=1.0)
    tile = cv2.imread(str(tmp_path / "edge.png"))
    assert tile.shape == (40, 40, 3)
    assert (tile[:, :19] == 0).all() and (tile[:, 21:] == 200).all()  # the half left of the frame stays black
    save_montage(tmp_path / "context.png", image, np.array([[40, 40, 60, 60]]), tile=60, columns=1, context=3.0)
    tile = cv2.imread(str(tmp_path / "context.png"))[..., ::-1]  # RGB
    assert (tile[20, 20:40] == (255, 0, 0)).all() and (tile[30, 30] == 200).all()  # the box outlined, in the middle
    assert (tile[5, 5] == 200).all()  # its surroundings shown


def test_landmark_confidence_gate_keeps_real_faces_and_drops_a_blank_box(faces_test):
    """conf=C rows: real test faces (box from their labelled points, at 40 and 20 px) score high mean landmark
    confidence through the pipeline's JASRNet; a box over a flat grey wall scores low and is dropped."""
    import cv2

    from jasr_video.model.data import find_pairs, read_pts
    from jasr_video.tinybench import gated, landmark_confidence, make_detectors

    faces, boxes = [], []
    for image_path, pts_path in find_pairs(faces_test)[:4]:
        image, points = cv2.cvtColor(cv2.imread(str(image_path)), cv2.COLOR_BGR2RGB), read_pts(pts_path)
        (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
        for side in (40, 20):  # the face reduced so that its landmark box is `side` px
            zoom = side / max(x1 - x0, y1 - y0)
            small = cv2.resize(image, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_AREA)
            canvas = np.full((160, 160, 3), 128, np.uint8)
            cx, cy = (x0 + x1) / 2 * zoom, (y0 + y1) / 2 * zoom
            ox, oy = int(round(cx)) - 50, int(round(cy)) - 50  # face centre at (50, 50) of the canvas
            patch = small[max(oy, 0):oy + 100, max(ox, 0):ox + 100]
            canvas[max(-oy, 0):max(-oy, 0) + patch.shape[0], max(-ox, 0):max(-ox, 0) + patch.shape[1]] = patch
            faces.append(canvas)
            half = side / 2
            boxes.append(np.array([[50 - half, 50 - half, 50 + half, 50 + half], [110, 110, 110 + side, 110 + side]]))
    from jasr_video.route import RoutedEnhancer

    enhancer = RoutedEnhancer(device="cpu")
    scores = np.array([landmark_confidence(enhancer, f, b) for f, b in zip(faces, boxes)])
    assert scores[:, 0].min() > 0.4 and scores[:, 1].max() < 0.15, scores
    for face, b in zip(faces, boxes):  # a row's boxes through the gate: the face kept, the blank box dropped
        assert np.array_equal(gated(lambda frames, b=b: b, 0.3, lambda: enhancer)([face]), b[:1])
    assert "default:conf=0.3" in make_detectors(["default:conf=0.3"])
    with pytest.raises(ValueError, match="unknown option conf"):
        make_detectors(["facenet:conf=0.3"])
