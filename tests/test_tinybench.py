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
