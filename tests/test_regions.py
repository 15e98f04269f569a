"""Region detection between full scans (``full_scan_every`` / ``--full-scan-every``) on real clip frames."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import CLIP, need
from jasr_video.detect import FaceDetector
from jasr_video.pipeline import AUTO_FULL_SCAN_EVERY_CPU, Pipeline, PipelineConfig, auto_full_scan_every
from jasr_video.track import SortTracker, iou_matrix
from video_utils import make_clip

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clip_960(tmp_path_factory) -> Path:
    """The first 12 frames of the real clip at 960x540 (faces ~14-70 px)."""
    need(CLIP)
    return make_clip(CLIP, tmp_path_factory.mktemp("regions") / "roh_960.mp4", frames=12, width=960, audio=False)


def test_predicted_boxes_do_not_change_the_tracker():
    t = SortTracker(max_age=5, min_hits=1)
    t.update(np.array([[10, 10, 50, 50], [100, 100, 140, 150]], np.float32))
    t.update(np.array([[14, 12, 54, 52], [104, 103, 144, 153]], np.float32))
    peek = t.predicted_boxes()
    again = t.predicted_boxes()
    predicted = np.array([tr.predict() for tr in t.tracks])
    assert np.allclose(peek, again) and np.allclose(peek, predicted, atol=1e-4)


def test_region_mode_keeps_the_full_frame_faces(clip_960):
    """Pipeline with a full scan every 6th frame and regions between vs full-frame MTCNN on every frame."""
    torch.set_num_threads(2)
    detector = FaceDetector(12, min_score=0.9)
    assert detector.detect_regions(np.zeros((540, 960, 3), np.uint8), np.zeros((0, 4))) == []
    pipeline = Pipeline(PipelineConfig(device="cpu", full_scan_every=6, coast=0), detector=detector)  # no coasting
    results = list(pipeline.run(clip_960))
    assert len(results) == 12 and pipeline.stats["region_frames"] == 10  # frames 0 and 6 are full scans
    found = total = extra = 0
    for r in results[1:]:
        if r.index == 6:
            continue  # a full scan: the same detector on the same frame
        reference = np.array([d.box for d in detector.detect([r.image])[0]]).reshape(-1, 4)
        boxes = np.array([f.box for f in r.faces if f.detected]).reshape(-1, 4)
        assert all(f.detected for f in r.faces)  # every reported face has a real detection on this frame
        total += len(reference)
        if len(reference) and len(boxes):
            m = iou_matrix(reference, boxes)
            found += int((m.max(axis=1) >= 0.5).sum())
            extra += int((m.max(axis=0) < 0.5).sum())
    print(f"region mode: {found}/{total} full-frame faces found, {extra} extra")
    assert total >= 40, total
    # measured 84-92 % over six runs (e.g. 56/67, 55/61): the test clip is re-encoded per run and x264 does not
    # give bit-identical frames run to run here, so the borderline faces change
    assert found / total >= 0.80, (found, total)
    assert extra <= 0.1 * total, (extra, total)


@pytest.mark.parametrize("sampled", [False, True])
def test_batched_regions_match_facenet_per_region(clip_960, sampled):
    """The fast path (all regions' P-net in one batch, R-/O-net on the frame) finds the faces that facenet's own
    code finds region by region; what it finds beyond them (faces partly inside a region, which it sees whole
    on the frame where facenet's code sees them cut and drops them) are faces full-frame MTCNN finds too.
    sampled: the R-/O-net crops of the CUDA path (grid_sample), run here on CPU."""
    torch.set_num_threads(2)
    from jasr_video.source import open_source

    with open_source(str(clip_960)) as src:
        frames = [f.image for _, f in zip(range(4), src)]
    fast, reference = FaceDetector(12, min_score=0.9), FaceDetector(12, min_score=0.9, fast=False)
    boxes = np.array([d.box for d in fast.detect([frames[0]])[0]]).reshape(-1, 4)
    fast.sampled_crops = sampled
    assert len(boxes) >= 4

    def matched(a: np.ndarray, b: np.ndarray) -> int:
        """How many boxes of `a` have a box in `b` with IoU >= 0.5."""
        return int((iou_matrix(a, b).max(axis=1) >= 0.5).sum()) if len(a) and len(b) else 0

    found = total = outputs = real = 0
    for frame in frames[1:]:
        per_region = np.array([d.box for d in reference.detect_regions(frame, boxes)]).reshape(-1, 4)
        batched = np.array([d.box for d in fast.detect_regions(frame, boxes)]).reshape(-1, 4)
        full = np.array([d.box for d in fast.detect([frame])[0]]).reshape(-1, 4)
        total, found = total + len(per_region), found + matched(per_region, batched)
        outputs, real = outputs + len(batched), real + matched(batched, full)
    assert total >= 10 and found >= 0.9 * total, (found, total)
    assert real >= 0.9 * outputs, (real, outputs)


def test_auto_full_scan_every_by_device():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert auto_full_scan_every(PipelineConfig(), cpu) == AUTO_FULL_SCAN_EVERY_CPU == 5
    assert auto_full_scan_every(PipelineConfig(), cuda) == 1  # batched full-frame MTCNN is cheap there
    assert auto_full_scan_every(PipelineConfig(detect_every=3), cpu) == 1  # the two do not combine
    assert auto_full_scan_every(PipelineConfig(full_scan_every=0), cpu) == 0
    assert auto_full_scan_every(PipelineConfig(full_scan_every=7), cuda) == 7
    with pytest.raises(ValueError, match="full_scan_every"):
        PipelineConfig(full_scan_every=-1).validate()


def test_default_cpu_pipeline_scans_the_full_frame_every_fifth_frame(clip_960):
    torch.set_num_threads(2)
    results = list(Pipeline(PipelineConfig(device="cpu", coast=0)).run(clip_960))  # no coasting: faces are detections
    assert [r.scan for r in results] == ["full" if i % 5 == 0 else "regions" for i in range(12)]
    assert all(r.detected and r.to_json()["scan"] == r.scan for r in results)
    assert sum(len(r.faces) for r in results[1:5]) >= 4  # the tracked faces are re-detected in their regions
    assert all(f.detected for r in results for f in r.faces)


def _cli(*args: object) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "jasr_video.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=300)


def test_cli_full_scan_every(clip_960, tmp_path):
    out = tmp_path / "a.jsonl"
    r = _cli(clip_960, "--json", out, "--full-scan-every", "4", "--max-frames", "6", "--threads", "1",
             "--coast", "0")  # no coasting: every reported face is a detection
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["frame"] for row in rows] == list(range(6))
    assert all(row["detected"] for row in rows)
    assert [row["scan"] for row in rows] == ["full", "regions", "regions", "regions", "full", "regions"]
    assert all(row["faces"] and all(f["detected"] for f in row["faces"]) for row in rows[1:4])  # region frames
    bad = _cli(clip_960, "--json", tmp_path / "b.jsonl", "--full-scan-every", "4", "--detect-every", "3")
    assert bad.returncode == 2 and "full_scan_every" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
