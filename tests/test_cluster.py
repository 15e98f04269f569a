"""Streams on Ray (jasr_video.cluster): a local Ray instance with 2 CPUs, the real clip, real MTCNN + JASRNet,
the real RTSP server; stream workers and model replicas killed mid-run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import CLIP, need
from rtsp_utils import _MISSING, RtspServer, free_port, needs_gst
from video_utils import check_changes, end_process, join_files, make_clip, probe, wait_for_lines

ray = pytest.importorskip("ray", reason='Ray not installed (pip install "jasr-video[ray]")')

from jasr_video.cluster import RESTART_REASON, RayRunner  # noqa: E402
from jasr_video.multistream import OutputSpec, stream_specs  # noqa: E402

# The replica gets each face's LR image (x8: 16x16; x4 / x2: its route's size) in float32, as one process
# computes it; faces of other streams in the same forward may move landmarks by float rounding: LANDMARK_TOL px
# (as tests/test_multistream.py). Boxes, track ids and frames are identical (detection and tracking run in the
# stream worker).
LANDMARK_TOL = 0.05


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def clip640(tmp_path_factory) -> Path:
    return make_clip(need(CLIP), tmp_path_factory.mktemp("ray") / "roh_640.mp4", frames=20, width=640)


@pytest.fixture(scope="module")
def rtsp_clip(tmp_path_factory) -> Path:
    return make_clip(need(CLIP), tmp_path_factory.mktemp("ray") / "roh_480.mp4", frames=50, width=480, audio=False)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def config(**kw):
    from jasr_video import PipelineConfig

    return PipelineConfig(device="cpu", **kw)


def wait_lines(path: Path, n: int, timeout: float = 120) -> list[str]:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if path.exists():
            lines = [line for line in path.read_text().splitlines(keepends=True) if line.endswith("\n")]
            if len(lines) >= n:
                return lines
        time.sleep(0.05)
    pytest.fail(f"{path} did not reach {n} lines in {timeout} s")


@needs_gst
def test_two_files_and_a_live_stream_match_the_single_process_pipeline(clip640, rtsp_clip, tmp_path):
    import torch

    from jasr_video import Pipeline

    torch.set_num_threads(1)
    # a full scan on each of the 4 frames: the live stream is joined while it plays, and a CI run saw its first
    # frame come out with no face found; with the default schedule its next full scan comes after the 4 frames
    cfg = config(max_frames=4, full_scan_every=1)
    expected = [r.to_json() for r in Pipeline(cfg).run(clip640)]
    assert sum(len(r["faces"]) for r in expected) >= 8
    srv = RtspServer(rtsp_clip, free_port(), "cam").start()
    try:
        specs = stream_specs([str(clip640), str(clip640), srv.url])
        runner = RayRunner(cfg, specs, OutputSpec(json=f"{tmp_path}/", out=f"{tmp_path}/"),
                           source_options={"open_timeout": 10}, worker_cpus=0.25, replica_cpus=0.5)
        reports = runner.run(timeout=240)
    finally:
        srv.stop()
    assert [(r.name, r.status, r.frames) for r in reports] == [("roh_640", "complete", 4), ("roh_640-2", "complete", 4),
                                                               ("cam", "complete", 4)], reports
    for name in ("roh_640", "roh_640-2"):
        rows = read_jsonl(tmp_path / f"{name}.jsonl")
        assert [r["frame"] for r in rows] == [r["frame"] for r in expected]
        for got, want in zip(rows, expected):
            assert [f["track_id"] for f in got["faces"]] == [f["track_id"] for f in want["faces"]]
            for f, g in zip(got["faces"], want["faces"]):
                assert f["box"] == g["box"]
                assert (f["sr_factor"], f["model_input_px"]) == (g["sr_factor"], g["model_input_px"])  # same route
                assert np.allclose(f["landmarks_raw"], g["landmarks_raw"], atol=LANDMARK_TOL)
                assert np.allclose(f["landmarks_smoothed"], g["landmarks_smoothed"], atol=LANDMARK_TOL)
        assert (tmp_path / f"{name}_annotated.mp4").stat().st_size > 0
    cam = read_jsonl(tmp_path / "cam.jsonl")
    assert len(cam) == 4 and all("frame" in r for r in cam)
    assert any(r["faces"] for r in cam)
    assert runner.model_stats["replica_faces"] == runner.model_stats["faces"] > 0
    # each face crosses as its route's LR image in float32: model_input_px^2 x 3 x 4 bytes (x8: 16x16, 3,072 bytes)
    sides = [f["model_input_px"] for name in ("roh_640", "roh_640-2", "cam")
             for r in read_jsonl(tmp_path / f"{name}.jsonl") for f in r["faces"]]
    assert runner.model_stats["bytes_sent"] == sum(12 * m * m for m in sides)
    assert not list(tmp_path.glob("*.partial"))


def test_killed_replica_and_workers_restart_and_carry_on(clip640, rtsp_clip, tmp_path):
    """A file stream and (with GStreamer) a live RTSP stream; the replica, then both stream workers, are killed."""
    live = _MISSING is None
    srv = RtspServer(rtsp_clip, free_port(), "cam").start() if live else None
    try:
        specs = stream_specs([str(clip640)] + ([srv.url] if live else []))
        runner = RayRunner(config(frame_batch=2, max_frames=20), specs, OutputSpec(json=f"{tmp_path}/"),
                           source_options={"open_timeout": 10}, worker_cpus=0.25, replica_cpus=0.5, model_timeout=90)
        runner.start()
        reports: list = []
        thread = threading.Thread(target=lambda: reports.extend(runner.run(timeout=300)), daemon=True)
        thread.start()
        names = [s.name for s in specs]
        partials = {name: tmp_path / f"{name}.jsonl.partial" for name in names}
        wait_lines(partials["roh_640"], 2)
        ray.kill(runner.replicas[0], no_restart=False)  # the streams wait for the restarted replica
        before = {"roh_640": wait_lines(partials["roh_640"], 6)}
        if live:
            before["cam"] = wait_lines(partials["cam"], 2)
        for name in names:
            ray.kill(runner.workers[name], no_restart=False)
        thread.join(300)
        assert not thread.is_alive()
    finally:
        if srv is not None:
            srv.stop()
    assert [(r.name, r.status, r.frames, r.gaps) for r in reports] == [(n, "complete", 20, 1) for n in names], reports
    for name in names:
        text = (tmp_path / f"{name}.jsonl").read_text()
        assert text.startswith("".join(before[name]))  # every line written before the kill is kept
        rows = [json.loads(line) for line in text.splitlines()]
        gaps = [r for r in rows if r.get("event") == "stream_gap"]
        assert len(gaps) == 1 and gaps[0]["reason"] == RESTART_REASON and gaps[0]["stream"] == name
        assert gaps[0]["duration"] >= 0
        frames = [r["frame"] for r in rows if "frame" in r]
        assert len(frames) == 20 and frames == sorted(set(frames))
        if name == "roh_640":  # a file resumes after the last frame written: none lost, none repeated
            assert frames == list(range(20))
        gap_at = rows.index(gaps[0])
        assert rows[gap_at - 1]["frame"] < rows[gap_at + 1]["frame"]


def test_cli_sigterm_finalises_every_stream(clip640, tmp_path):
    """jasr-video --ray ADDRESS (the tests' Ray instance): SIGTERM stops the streams, outputs finalised, exit 143."""
    listing = tmp_path / "cameras.txt"
    listing.write_text(f"{clip640}\n{clip640}\n")
    out = tmp_path / "out"
    out.mkdir()
    cmd = [sys.executable, "-m", "jasr_video.cli", "--streams", listing, "--json", f"{out}/", "--out", f"{out}/",
           "--ray", ray.get_runtime_context().gcs_address, "--ray-worker-cpus", 0.25, "--quiet"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([str(c) for c in cmd], cwd=Path(__file__).resolve().parents[1], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_lines(out / "roh_640.jsonl.partial", 2, proc, timeout=180)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        end_process(proc)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    assert not list(out.glob("*.partial"))
    for name in ("roh_640", "roh_640-2"):
        rows = read_jsonl(out / f"{name}.jsonl")
        assert rows and [r["frame"] for r in rows] == list(range(len(rows)))
        assert probe(out / f"{name}_annotated.mp4")["frames"] == len(rows)


def test_stream_worker_restarts_at_a_change_of_frame_size(tmp_path):
    """A recording of two sizes joined end to end (MPEG-TS, 5 frames at 480x270 then 6 at 320x240): the stream
    worker writes every frame, one stream_change and one pts_jump, boxes of the current frame, no track carried over
    the change, a full scan on the first new frame (frame 5: a regions frame in the schedule), and a video at the
    first size."""
    parts = [make_clip(need(CLIP), tmp_path / f"{w}.ts", frames=n, width=w, height=h, audio=False)
             for n, w, h in ((5, 480, 270), (6, 320, 240))]
    joined = join_files(parts, tmp_path / "joined.ts")
    out = tmp_path / "out"
    out.mkdir()
    runner = RayRunner(config(full_scan_every=2), stream_specs([str(joined)]),
                       OutputSpec(json=f"{out}/", out=f"{out}/"), worker_cpus=0.25, replica_cpus=0.5)
    (report,) = runner.run(timeout=240)
    assert (report.status, report.frames, report.stream_changes, report.pts_jumps) == ("complete", 11, 1, 1), report
    rows = read_jsonl(out / "joined.jsonl")
    frames, changes = check_changes(rows, (480, 270))
    assert [f["frame"] for f in frames] == list(range(11)) and len(changes) == 1
    assert [r["event"] for r in rows if "event" in r] == ["stream_change", "pts_jump"]
    assert any(f["faces"] for f in frames[5:])
    info = probe(out / "joined_annotated.mp4")
    assert info["frames"] == 11 and (info["width"], info["height"]) == (480, 270)


def test_ray_address_that_is_an_input_is_one_error_line(clip640, tmp_path):
    from jasr_video.cli import main

    assert main([str(clip640), "--json", f"{tmp_path}/", "--ray", str(clip640)]) == 2
    assert not list(tmp_path.iterdir())


def test_unreachable_ray_address_is_one_error_line(clip640, tmp_path):
    r = subprocess.run([sys.executable, "-m", "jasr_video.cli", str(clip640), "--json", f"{tmp_path}/", "--ray",
                        f"127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=120,
                       cwd=Path(__file__).resolve().parents[1])
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(err) == 1 and err[0].startswith("jasr-video: error: --ray"), r.stderr
    assert "no Ray head answers" in err[0]
    assert not list(tmp_path.iterdir())
