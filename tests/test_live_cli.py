"""`jasr-video` on a live RTSP camera (the real GStreamer server serving the real clip): outages and startup."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import CLIP, need
from rtsp_utils import RtspServer, free_port, needs_gst
from video_utils import end_process, make_clip, probe, wait_for_lines

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def cli_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "jasr_video.cli", *map(str, args)]


@pytest.fixture(scope="module")
def rtsp_clip(tmp_path_factory) -> Path:
    """2 s of the real clip at 480x270 for the RTSP server (which loops it)."""
    return make_clip(need(CLIP), tmp_path_factory.mktemp("live") / "roh_480.mp4", frames=50, width=480, audio=False)


@needs_gst
@pytest.mark.parametrize("sink_thread", ["off", "on"])
def test_outage_writes_stream_gap_and_keeps_earlier_lines(rtsp_clip, tmp_path, sink_thread):
    """sink_thread on: the event goes through the writer thread's queue, in order with the frames."""
    srv = RtspServer(rtsp_clip, free_port(), "cam").start()
    js, out = tmp_path / "cam.jsonl", tmp_path / "cam.mp4"
    proc = subprocess.Popen(cli_cmd(srv.url, "--json", js, "--out", out, "--max-frames", 8, "--threads", 1, "--quiet",
                                    "--open-timeout", 5, "--sink-thread", sink_thread), cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        partial = tmp_path / "cam.jsonl.partial"
        wait_for_lines(partial, 3, proc)
        before = partial.read_text()
        srv.stop()  # SIGKILL mid-stream
        time.sleep(1.0)
        srv.start()  # same port
        _, err = proc.communicate(timeout=120)
    finally:
        srv.stop()
        end_process(proc)
    assert proc.returncode == 0, err
    text = js.read_text()
    assert text.startswith(before)  # nothing already written is lost or rewritten
    rows = [json.loads(line) for line in text.splitlines()]
    gaps = [i for i, r in enumerate(rows) if r.get("event") == "stream_gap"]
    assert len(gaps) == 1, rows
    gap = rows[gaps[0]]
    assert gap["stream"] == srv.url and 0.5 < gap["duration"] < 30 and gap["reason"]
    frames = [r["frame"] for r in rows if "frame" in r]
    assert len(frames) == 8 and frames == sorted(set(frames))
    assert 3 <= gaps[0] < len(rows) - 1  # frames before and after the outage
    assert probe(out)["frames"] == 8


@needs_gst
def test_camera_down_at_startup(rtsp_clip, tmp_path):
    port = free_port()
    url = f"rtsp://127.0.0.1:{port}/cam"
    # without --reconnect: one line, at once, nothing written
    t0 = time.monotonic()
    r = subprocess.run(cli_cmd(url, "--json", tmp_path / "a.jsonl", "--open-timeout", 3), cwd=REPO, env=ENV,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and time.monotonic() - t0 < 15, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "refused" in lines[0] and "Traceback" not in r.stderr
    assert not list(tmp_path.iterdir())
    # with --reconnect: retried with back-off until the camera comes up
    proc = subprocess.Popen(cli_cmd(url, "--json", tmp_path / "b.jsonl", "--reconnect", "--max-frames", 3,
                                    "--threads", 1, "--quiet", "--open-timeout", 3), cwd=REPO, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    srv = RtspServer(rtsp_clip, port, "cam")
    try:
        first = proc.stderr.readline()  # the first failed attempt is logged
        assert "not available" in first and "refused" in first and "retry 1" in first, first
        srv.start()
        _, err = proc.communicate(timeout=120)
    finally:
        srv.stop()
        end_process(proc)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    rows = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all("frame" in row for row in rows)


@needs_gst
def test_rtsp_over_udp_from_the_cli(rtsp_clip, tmp_path):
    srv = RtspServer(rtsp_clip, free_port(), "cam").start()
    js = tmp_path / "udp.jsonl"
    try:
        r = subprocess.run(cli_cmd(srv.url, "--json", js, "--max-frames", 5, "--threads", 1, "--quiet",
                                   "--rtsp-transport", "udp", "--open-timeout", 5),
                           cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)
    finally:
        srv.stop()
    assert r.returncode == 0, r.stderr
    frames = [json.loads(line) for line in js.read_text().splitlines() if '"frame"' in line]
    assert len(frames) == 5
