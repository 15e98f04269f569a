"""`jasr-video` under faults, end to end (real model, real encoders, real RTSP server): outputs checked before
the model loads, no silent data loss, videos that survive a kill, rotation, and passwords that never leak."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import CLIP, need
from rtsp_utils import RtspServer, free_port, needs_gst
from test_source_hardening import make_rotated_clip
from video_utils import end_process, make_clip, probe, remux_video, wait_for_lines

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def cli_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "jasr_video.cli", *map(str, args)]


def cli(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cli_cmd(*args), capture_output=True, text=True, cwd=REPO, env=ENV, timeout=timeout)


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def clip320(tmp_path_factory) -> Path:
    """100 frames of the real clip at 320x180, with audio."""
    return make_clip(need(CLIP), tmp_path_factory.mktemp("c") / "roh_320.mp4", frames=100, width=320)


def test_outputs_checked_before_the_model_loads(clip320, tmp_path):
    cases = [
        (["--out", tmp_path / "x.mp4", "--json", tmp_path / "x.mp4"], "name the same file"),
        (["--json", "/sys/x.jsonl"], "cannot write in /sys"),  # a read-only folder (even for root)
        (["--save-crops", tmp_path / "c", "--json", tmp_path / "c"], "name the same file"),
        (["--json", clip320], "overwrite the input"),
    ]
    for args, expect in cases:
        t0 = time.monotonic()
        r = cli(clip320, *args)
        lines = error_lines(r.stderr)
        assert r.returncode == 2 and len(lines) == 1 and expect in lines[0], (args, r.stderr)
        assert time.monotonic() - t0 < 20  # no model was loaded
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_output_not_finalised_fails_the_run_even_quiet(clip320, tmp_path):
    js = tmp_path / "o.jsonl"
    proc = subprocess.Popen(cli_cmd(clip320, "--json", js, "--out", tmp_path / "o.mp4", "--threads", 1,
                                    "--max-frames", 30, "--quiet"), cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for_lines(tmp_path / "o.jsonl.partial", 1, proc)
        (js / "blocker").mkdir(parents=True)  # the final name is now a non-empty folder: the rename fails
        _, err = proc.communicate(timeout=300)
    finally:
        end_process(proc)
    assert proc.returncode == 2, err
    assert "could not finalise" in err and str(js) in err and "Traceback" not in err
    assert len(rows(tmp_path / "o.jsonl.partial")) == 30  # what was written is kept
    assert probe(tmp_path / "o.mp4")["frames"] == 30


def test_file_cut_short_exits_2_with_stream_error(clip320, tmp_path):
    fast = remux_video(clip320, tmp_path / "fast.mp4", options={"movflags": "faststart"})
    data = fast.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])
    js = tmp_path / "cut.jsonl"
    r = cli(cut, "--json", js, "--out", tmp_path / "cut_annotated.mp4", "--threads", 1)
    assert r.returncode == 2, r.stderr
    assert "ended early" in r.stderr and "complete" not in r.stderr and "Traceback" not in r.stderr
    lines = rows(js)
    assert lines[-1]["event"] == "stream_error" and "ended early" in lines[-1]["reason"]
    frames = [x for x in lines if "frame" in x]
    assert 5 < len(frames) < 100 and probe(tmp_path / "cut_annotated.mp4")["frames"] == len(frames)


def test_rotated_phone_video_is_detected_upright(tmp_path):
    clip, _ = make_rotated_clip(need(CLIP), tmp_path / "phone.mp4", frames=4, width=960)
    r = cli(clip, "--json", tmp_path / "p.jsonl", "--out", tmp_path / "p.mp4", "--threads", 1,
            "--full-scan-every", 1)
    assert r.returncode == 0, r.stderr
    faces = [len(x["faces"]) for x in rows(tmp_path / "p.jsonl")]
    assert len(faces) == 4 and max(faces) >= 3, faces  # the stored (sideways) frames give none
    with av.open(str(tmp_path / "p.mp4")) as c:
        frame = next(c.decode(video=0))
        assert (frame.width, frame.height) == (960, 540) and not frame.rotation  # upright, shown as stored


def test_killed_run_leaves_a_playable_video(clip320, tmp_path):
    out, js = tmp_path / "o.mp4", tmp_path / "o.jsonl"
    proc = subprocess.Popen(cli_cmd(clip320, "--out", out, "--json", js, "--threads", 1, "--frame-batch", 1,
                                    "--quiet"), cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_lines(tmp_path / "o.jsonl.partial", 40, proc)
        assert proc.poll() is None
        proc.kill()  # SIGKILL: nothing is finalised
        proc.wait()
    finally:
        end_process(proc)
    lines = len(rows(tmp_path / "o.jsonl.partial"))
    partial = tmp_path / "o.mp4.partial"
    with av.open(str(partial)) as c:  # the fragmented MP4 opens and decodes to its last fragment
        pts = [float(f.time) for f in c.decode(video=0)]
    # every frame the encoder had output is there (x264's lookahead holds the last few; with B-frames the
    # last fragments may hold a frame shown after B-frames not yet written), at the clip's timestamps
    assert lines - 20 <= len(pts) <= lines, (len(pts), lines)
    frame_no = np.array(pts) * 25
    assert pts[0] == 0 and (np.diff(pts) > 0).all() and np.allclose(frame_no, np.round(frame_no), atol=0.03)
    assert np.round(frame_no[:-4]).tolist() == list(range(len(pts) - 4))  # complete up to the last few


def test_two_quick_ctrl_c_finalise_both_outputs(clip320, tmp_path):
    out, js = tmp_path / "o.mp4", tmp_path / "o.jsonl"
    proc = subprocess.Popen(cli_cmd(clip320, "--out", out, "--json", js, "--threads", 1, "--quiet"), cwd=REPO,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_lines(tmp_path / "o.jsonl.partial", 6, proc)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        end_process(proc)
    assert proc.returncode == 130 and "Traceback" not in err, err
    n = len(rows(js))
    assert n >= 6 and probe(out)["frames"] == n
    assert not list(tmp_path.glob("*.partial"))


@pytest.fixture(scope="module")
def rtsp_clip(tmp_path_factory) -> Path:
    return make_clip(need(CLIP), tmp_path_factory.mktemp("live") / "roh_480.mp4", frames=50, width=480, audio=False)


PASSWORD = "p@ss%2Fw0rd"  # holds '@' and an encoded '/'
SECRETS = ("p@ss", "w0rd", "T0kenQ9")


@needs_gst
def test_live_reconnect_plays_through_the_gap_and_hides_the_password(rtsp_clip, tmp_path):
    port = free_port()
    srv = RtspServer(rtsp_clip, port, "cam").start()
    url = f"rtsp://admin:{PASSWORD}@127.0.0.1:{port}/cam?token=T0kenQ9"
    js, out = tmp_path / "cam.jsonl", tmp_path / "cam.mp4"
    proc = subprocess.Popen(cli_cmd(url, "--json", js, "--out", out, "--max-frames", 24, "--threads", 1,
                                    "--open-timeout", 5), cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for_lines(tmp_path / "cam.jsonl.partial", 8, proc)
        srv.stop()
        time.sleep(1.5)
        srv.start()
        stdout, err = proc.communicate(timeout=180)
    finally:
        srv.stop()
        end_process(proc)
    assert proc.returncode == 0, err
    text = js.read_text()
    for secret in SECRETS:
        assert secret not in text and secret not in err and secret not in stdout, secret
    lines = [json.loads(x) for x in text.splitlines()]
    gap_at = next(i for i, x in enumerate(lines) if x.get("event") == "stream_gap")
    gap = lines[gap_at]
    frames = [x for x in lines if "frame" in x]
    pts = np.array([x["pts"] for x in frames])
    steps = np.diff(pts)
    assert len(frames) == 24 and (steps > 0).all()  # monotonic through the gap
    k = sum(1 for x in lines[:gap_at] if "frame" in x)  # frames before the gap
    assert steps[k - 1] >= gap["duration"] - 0.5 and steps[k - 1] > 1.0  # the outage shows as a gap
    others = np.delete(steps, k - 1)
    # elsewhere whole frame intervals of the 25 fps camera (latest-frame mode drops frames when the CPU is slower)
    assert np.allclose(others / 0.04, np.round(others / 0.04), atol=0.1)
    assert lines[gap_at + 1]["scan"] == "full"  # detection restarts with a full-frame scan
    video = probe(out)
    # the video plays at the JSON's timing (from its first frame: frames dropped while the model loaded come first)
    assert video["frames"] == 24 and np.allclose(np.array(video["pts"]) - video["pts"][0], pts - pts[0], atol=2e-3)


@needs_gst
def test_live_stream_given_up_exits_2_without_the_password(rtsp_clip, tmp_path):
    port = free_port()
    srv = RtspServer(rtsp_clip, port, "cam").start()
    url = f"rtsp://admin:{PASSWORD}@127.0.0.1:{port}/cam?token=T0kenQ9"
    js = tmp_path / "cam.jsonl"
    proc = subprocess.Popen(cli_cmd(url, "--json", js, "--threads", 1, "--open-timeout", 3, "--max-reconnects", 2),
                            cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_lines(tmp_path / "cam.jsonl.partial", 4, proc)
        srv.stop()  # and it never comes back
        stdout, err = proc.communicate(timeout=180)
    finally:
        srv.stop()
        end_process(proc)
    assert proc.returncode == 2, err
    text = js.read_text()
    for secret in SECRETS:
        assert secret not in text and secret not in err and secret not in stdout, secret
    last = json.loads(text.splitlines()[-1])
    assert last["event"] == "stream_error" and "gave up" in last["reason"]
    assert "reconnect attempt" in err or "stream lost" in err  # the log lines were written (redacted)
    assert "ended early" in err and "complete" not in err
