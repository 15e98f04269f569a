"""CPU lanes: parts of a batch side by side on their own torch threads; the pipeline's results unchanged."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from conftest import need, CLIP
from jasr_video.lanes import Lanes, cpu_lanes, run_all, split


@pytest.fixture
def two_threads():
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(saved)


def test_split_cuts_consecutive_near_equal_parts():
    assert split(10, 3) == [slice(0, 3), slice(3, 7), slice(7, 10)]
    assert split(4, 2) == [slice(0, 2), slice(2, 4)]
    assert split(1, 2) == [slice(0, 1)]  # never an empty part
    assert split(0, 2) == []
    assert split(5, 1) == [slice(0, 5)]


def test_lanes_keep_order_and_the_callers_thread_count(two_threads):
    lanes = Lanes(2, 1)
    try:
        def probe(i: int) -> tuple[int, int, str]:
            return i, torch.get_num_threads(), threading.current_thread().name

        out = lanes.map(probe, list(range(6)))
        assert [o[0] for o in out] == list(range(6))
        assert all(o[1] == 1 and o[2].startswith("jasr-lane") for o in out)  # each lane on its own one thread
        assert lanes.submit(probe, 7).result()[1] == 1
        assert torch.get_num_threads() == 2  # the caller's count as it was
        later: list[int] = []  # a thread started afterwards gets torch's setting as it was, not the lanes' 1
        t = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
        t.start()
        t.join()
        assert later == [2]
        assert run_all(None, lambda x: x * 2, [1, 2]) == [2, 4]  # without lanes: inline
    finally:
        lanes.close()


def test_cpu_lanes_only_on_a_cpu_with_threads_to_share(two_threads):
    assert cpu_lanes("cpu").count == 2 and cpu_lanes("cpu").threads_each == 1
    assert cpu_lanes("cpu") is cpu_lanes("cpu", 2)  # one shared pool per shape
    assert cpu_lanes("cpu", 1) is None
    assert cpu_lanes("cuda") is None
    torch.set_num_threads(1)
    assert cpu_lanes("cpu") is None
    with pytest.raises(ValueError):
        Lanes(1)


def _faces(results):
    return [(r.index, [(f.track_id, f.detected, f.box, f.landmarks_raw, f.landmarks_smoothed, f.landmark_confidence,
                        f.sr) for f in r.faces]) for r in results]


def test_pipeline_with_lanes_gives_the_same_results(two_threads):
    """Lanes on (detection of a batch beside the JASRNet of the batch before, JASRNet batches cut in parts) and
    off: the same frames in order, the same tracks; boxes, landmarks and SR faces equal up to float rounding."""
    from jasr_video import Pipeline, PipelineConfig

    need(CLIP)
    config = PipelineConfig(max_frames=10)  # CPU: batches of 4, 4 and 2 frames (the last one flushed at the end)
    with_lanes = Pipeline(config)
    assert with_lanes.enhancer.lanes is not None and with_lanes.enhancer.lanes.count == 2
    got = _faces(with_lanes.run(str(CLIP)))
    want = _faces(Pipeline(PipelineConfig(max_frames=10, lanes=1)).run(str(CLIP)))
    assert [g[0] for g in got] == [w[0] for w in want] == list(range(10))
    assert sum(len(g[1]) for g in got) >= 20  # the clip's faces were found, so the comparison means something
    for (_, faces_got), (_, faces_want) in zip(got, want):
        assert len(faces_got) == len(faces_want)
        for a, b in zip(faces_got, faces_want):
            assert a[:2] == b[:2]
            for x, y in zip(a[2:6], b[2:6]):  # detection on one thread vs two: sums in another order
                np.testing.assert_allclose(x, y, atol=1e-2)
            assert np.abs(a[6].astype(int) - b[6].astype(int)).max() <= 1
    assert with_lanes.stats["frames"] == 10


def test_stop_with_lanes_finishes_every_frame_already_detected(two_threads):
    from jasr_video import Pipeline, PipelineConfig

    need(CLIP)
    pipeline = Pipeline(PipelineConfig(max_frames=40))
    results = []
    for result in pipeline.run(str(CLIP)):
        results.append(result.index)
        if len(results) == 1:
            pipeline.stop()
    assert results == list(range(len(results)))
    assert 1 < len(results) < 40 and len(results) == pipeline._counter  # nothing detected and tracked was dropped


def test_leaving_a_run_early_leaves_nothing_running(two_threads):
    """A caller that stops iterating (closes the generator) while the lanes detect and enhance later batches: the
    run waits for them, so the pipeline's state is final and the next run starts clean."""
    import time

    from jasr_video import Pipeline, PipelineConfig

    need(CLIP)
    pipeline = Pipeline(PipelineConfig(max_frames=40))
    run = pipeline.run(str(CLIP))
    next(run)
    run.close()
    counter = pipeline._counter
    time.sleep(2.0)  # a detection still running in a lane would move the counter on
    assert pipeline._counter == counter
    pipeline.config.max_frames = 6
    assert [r.index for r in pipeline.run(str(CLIP))] == list(range(6))


def test_cli_with_lanes_writes_what_one_lane_writes(tmp_path):
    """The CLI on 2 threads (lanes on) and with --lanes 1: the same video frames and JSON Lines records (frames,
    tracks, detected flags; boxes and landmarks up to float rounding)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from video_utils import make_clip, probe

    need(CLIP)
    clip = make_clip(CLIP, tmp_path / "clip.mp4", frames=14, width=960)
    rows = {}
    for name, extra in (("lanes", []), ("one", ["--lanes", "1"])):
        out = tmp_path / name
        out.mkdir()
        r = subprocess.run([sys.executable, "-m", "jasr_video.cli", str(clip), "--out", str(out / "a.mp4"), "--json",
                            str(out / "a.jsonl"), "--threads", "2", "--quiet", *extra], capture_output=True, text=True,
                           cwd=Path(__file__).resolve().parents[1], timeout=600)
        assert r.returncode == 0, r.stderr
        assert probe(out / "a.mp4")["frames"] == 14
        rows[name] = [json.loads(line) for line in (out / "a.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in rows["lanes"]] == [r["frame"] for r in rows["one"]] == list(range(14))
    assert sum(len(r["faces"]) for r in rows["lanes"]) >= 14
    for a, b in zip(rows["lanes"], rows["one"]):
        assert [(f["track_id"], f["detected"]) for f in a["faces"]] == [(f["track_id"], f["detected"]) for f in b["faces"]]
        for fa, fb in zip(a["faces"], b["faces"]):
            np.testing.assert_allclose(fa["box"], fb["box"], atol=0.02)
