"""Several streams in one process: real clip, real MTCNN + JASRNet, real encoders, real RTSP server."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import CLIP, need
from rtsp_utils import RtspServer, free_port, needs_gst
from video_utils import end_process, make_clip, probe, wait_for_lines

from jasr_video.multistream import OutputSpec, output_path, read_streams_file, stream_label, unique_labels

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def cli_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "jasr_video.cli", *map(str, args)]


def cli(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cli_cmd(*args), capture_output=True, text=True, cwd=REPO, env=ENV, timeout=timeout)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("jasr-video: error:")]


@pytest.fixture(scope="module")
def clip640(tmp_path_factory) -> Path:
    """The first 12 frames of the real clip at 640x360, with its audio."""
    return make_clip(need(CLIP), tmp_path_factory.mktemp("ms") / "roh_640.mp4", frames=12, width=640)


@pytest.fixture(scope="module")
def rtsp_clip(tmp_path_factory) -> Path:
    """2 s of the real clip at 480x270 for the RTSP server (which loops it)."""
    return make_clip(need(CLIP), tmp_path_factory.mktemp("ms") / "roh_480.mp4", frames=50, width=480, audio=False)


# --- naming and validation (no model) -------------------------------------------------------


def test_stream_labels_are_unique_and_safe():
    uris = ["a/cam.mp4", "b/cam.mkv", "rtsp://user:secret@10.0.0.5:554/Streaming/lobby", "rtsp://10.0.0.6/",
            "/dev/video0", "webcam:1", "http://h/live stream.ts"]
    labels = unique_labels(uris)
    assert labels == ["cam", "cam-2", "lobby", "10.0.0.6", "video0", "video1", "live_stream"]
    assert unique_labels(["a.mp4", "a.mp4", "x/a-2.mp4"]) == ["a", "a-2", "a-2-2"]
    assert "secret" not in stream_label(uris[2])


def test_output_paths(tmp_path):
    assert output_path("out/{stream}.jsonl", "cam", "{stream}.jsonl") == Path("out/cam.jsonl")
    assert output_path(str(tmp_path), "cam", "{stream}.jsonl") == tmp_path / "cam.jsonl"
    assert output_path("new/", "cam", "{stream}_annotated.mp4") == Path("new/cam_annotated.mp4")
    assert output_path("one.jsonl", "cam", "{stream}.jsonl") == Path("one.jsonl")
    spec = OutputSpec(out="v/{stream}.mkv", json="j/", crops="c")
    assert spec.paths("lobby") == {"out": Path("v/lobby.mkv"), "json": Path("j/lobby.jsonl"), "crops": Path("c/lobby")}
    listing = tmp_path / "cams.txt"
    listing.write_text("# cameras\nrtsp://a/s\n\n  b.mp4  \n")
    assert read_streams_file(listing) == ["rtsp://a/s", "b.mp4"]


def one_line_usage_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def test_several_inputs_need_per_stream_outputs(clip640, tmp_path):
    line = one_line_usage_error(cli(clip640, "rtsp://127.0.0.1:9/cam", "--json", tmp_path / "all.jsonl"))
    assert "{stream}" in line and "--json" in line and "folder" in line
    listing = tmp_path / "cams.txt"
    listing.write_text(f"{clip640}\n")
    line = one_line_usage_error(cli(clip640, "--streams", listing, "--out", tmp_path / "one.mp4"))
    assert "2 inputs" in line
    line = one_line_usage_error(cli("--streams", tmp_path / "missing.txt", "--json", tmp_path))
    assert "missing.txt" in line and "cannot read" in line
    line = one_line_usage_error(cli(clip640, tmp_path / "nope.mp4", "--json", tmp_path))
    assert "not found" in line and "nope.mp4" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cams.txt"]  # nothing written


# --- one model for all streams --------------------------------------------------------------


@pytest.mark.parametrize("detect_gather", [None, 0.5])
def test_streams_share_one_model_and_match_single_runs(clip640, tmp_path, detect_gather):
    """detect_gather 0.5: the GPU mode that puts several streams' frames in one MTCNN call, forced on CPU."""
    import torch

    from jasr_video import Pipeline, PipelineConfig
    from jasr_video.multistream import MultiStreamRunner, SharedModel, stream_specs

    torch.set_num_threads(1)
    cfg = PipelineConfig(device="cpu", max_frames=4)
    single = Pipeline(cfg)
    expected = [r.to_json() for r in single.run(clip640)]
    model = SharedModel(single.enhancer, single.detector, detect_gather=detect_gather)  # the same MTCNN and JASRNet
    specs = stream_specs([str(clip640), str(clip640)])
    reports = MultiStreamRunner(cfg, specs, OutputSpec(json=f"{tmp_path}/"), model=model).run()
    assert [(r.name, r.status, r.frames) for r in reports] == [("roh_640", "complete", 4), ("roh_640-2", "complete", 4)]
    faces = sum(len(r["faces"]) for r in expected)
    assert faces >= 8
    for spec in specs:
        rows = read_jsonl(tmp_path / f"{spec.name}.jsonl")
        assert [r["frame"] for r in rows] == [r["frame"] for r in expected]
        for got, want in zip(rows, expected):
            assert [f["track_id"] for f in got["faces"]] == [f["track_id"] for f in want["faces"]]
            for f, g in zip(got["faces"], want["faces"]):  # outputs split back to the right stream and face
                assert np.allclose(f["landmarks_raw"], g["landmarks_raw"], atol=0.05)
                assert np.allclose(f["landmarks_smoothed"], g["landmarks_smoothed"], atol=0.05)
    stats = model.stats
    assert stats["faces"] == 2 * faces
    assert stats["max_streams"] == 2 and stats["forwards"] < stats["requests"], stats  # batched across streams
    detect = model.detector.stats
    if detect_gather:
        assert detect["calls"] < detect["requests"], detect  # frames of both streams in one MTCNN call
    else:
        assert detect["calls"] == detect["requests"], detect


# --- RTSP + file in one process -------------------------------------------------------------


@needs_gst
def test_rtsp_and_file_in_one_process(clip640, rtsp_clip, tmp_path):
    srv = RtspServer(rtsp_clip, free_port(), "cam").start()
    try:
        r = cli(srv.url, clip640, "--out", tmp_path / "{stream}.mp4", "--json", f"{tmp_path}/", "--max-frames", 4,
                "--threads", 1, "--open-timeout", 5)
    finally:
        srv.stop()
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    for name, width in (("cam", 480), ("roh_640", 640)):
        rows = read_jsonl(tmp_path / f"{name}.jsonl")
        assert len(rows) == 4 and all("frame" in row for row in rows)
        video = probe(tmp_path / f"{name}.mp4")
        assert video["frames"] == 4 and video["width"] == width
    src = probe(clip640)
    out = probe(tmp_path / "roh_640.mp4")
    assert np.allclose(out["pts"], src["pts"][:4], atol=1e-3) and out["audio"]
    assert any(row["faces"] for row in read_jsonl(tmp_path / "roh_640.jsonl"))
    assert not list(tmp_path.glob("*.partial"))


@needs_gst
def test_dead_streams_do_not_stop_the_others(clip640, rtsp_clip, tmp_path):
    """An unreachable URL and a server that dies for good: both reported, the file stream completes."""
    srv = RtspServer(rtsp_clip, free_port(), "cam").start()
    gone = f"rtsp://127.0.0.1:{free_port()}/gone"  # nothing listens there
    proc = subprocess.Popen(cli_cmd(clip640, srv.url, gone, "--json", f"{tmp_path}/", "--out", f"{tmp_path}/",
                                    "--max-reconnects", 1, "--threads", 1, "--quiet", "--open-timeout", 3),
                            cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_lines(tmp_path / "cam.jsonl.partial", 2, proc)
        srv.stop()  # SIGKILL; never comes back
        _, err = proc.communicate(timeout=180)
    finally:
        srv.stop()
        end_process(proc)
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    errors = error_lines(err)
    assert len(errors) == 2, err
    assert "stream gone:" in errors[1] and "refused" in errors[1] and "\n" not in errors[1]
    assert "stream cam:" in errors[0] and "gave up" in errors[0]
    # the file stream is complete
    rows = read_jsonl(tmp_path / "roh_640.jsonl")
    assert [r["frame"] for r in rows] == list(range(12))
    assert probe(tmp_path / "roh_640_annotated.mp4")["frames"] == 12
    # the dead camera's outputs are finalised: frames so far, then why it ended
    cam = read_jsonl(tmp_path / "cam.jsonl")
    frames = [r for r in cam if "frame" in r]
    assert len(frames) >= 2 and cam[-1]["event"] == "stream_error" and "gave up" in cam[-1]["reason"]
    assert probe(tmp_path / "cam_annotated.mp4")["frames"] == len(frames)
    assert not list(tmp_path.glob("gone*")) and not list(tmp_path.glob("*.partial"))


def test_batcher_runs_waiting_requests_together_and_hands_errors_to_each():
    import threading

    from jasr_video.multistream import _Batcher

    cv = threading.Condition()
    calls: list[list[int]] = []

    def run(batch):
        calls.append([r.payload for r in batch])
        if any(r.payload < 0 for r in batch):
            raise ValueError("bad payload")
        for r in batch:
            r.result = r.payload * 10

    batcher = _Batcher(cv, run, ready=lambda pending: len(pending) >= 3, poll=0.005)
    results: dict[int, object] = {}

    def submit(x):
        try:
            results[x] = batcher.submit(x)
        except ValueError as exc:
            results[x] = str(exc)

    for payloads in ([1, 2, 3], [4, -5, 6]):
        threads = [threading.Thread(target=submit, args=(x,)) for x in payloads]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert [sorted(c) for c in calls] == [[1, 2, 3], [-5, 4, 6]]  # one run per three requests
    assert [results[x] for x in (1, 2, 3)] == [10, 20, 30]
    assert [results[x] for x in (4, -5, 6)] == ["bad payload"] * 3  # the error reaches every request


def test_a_shared_batch_splits_per_request_and_keeps_sr_faces_only_where_wanted():
    from jasr_video.enhance import EnhancedFaces

    n = 6
    out = EnhancedFaces(np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1) * np.ones((1, 128, 128, 3), np.uint8),
                        np.arange(n * 136, dtype=np.float32).reshape(n, 68, 2), np.linspace(0, 1, n * 68).reshape(n, 68))
    parts = out.split([2, 0, 3, 1], [True, True, False, True])
    assert [len(p) for p in parts] == [2, 0, 3, 1]
    assert parts[2].sr is None and [p.sr[:, 0, 0, 0].tolist() for p in parts if p.sr is not None] == [[0, 1], [], [5]]
    assert np.array_equal(np.concatenate([p.landmarks for p in parts]), out.landmarks)
    assert np.array_equal(np.concatenate([p.confidence for p in parts]), out.confidence)
    bare = EnhancedFaces(None, out.landmarks, out.confidence).split([4, 2], [True, True])  # a landmarks-only batch
    assert [p.sr for p in bare] == [None, None] and len(bare[1]) == 2
