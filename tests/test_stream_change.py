"""Streams that change under the run: a new frame size mid-stream, timestamps that restart or leap.

Files are real encodes of the opera clip's first frames made here with PyAV: MPEG-TS recordings of two sizes
(or of one size) joined byte for byte, as ``cat a.ts b.ts``; their timestamps restart at the join. The live
cases run against the real RTSP test server (tests/rtsp_server.py): ``--then`` serves a second clip of another
size after the first (the stream's SPS changes in-band, as a camera switching profile), ``--restart-ts``
restarts the RTP timestamps at each loop. GStreamer paces a stream by those timestamps, so once they restart the
server sends the rest as fast as it can: the live timestamp test reads only a short while, in latest-frame mode.
The live tests skip when the GStreamer packages of .ci/apt-packages.txt are missing.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import av
import jsonschema
import numpy as np
import pytest

from jasr_video.schemas import load_schema
from jasr_video.source import Frame, PtsJump, StreamChange, open_source

from conftest import CLIP, need
from rtsp_utils import RtspServer, free_port, needs_gst
from video_utils import check_changes, join_files, make_clip, probe

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, OMP_NUM_THREADS="1")
N = 10  # frames per part


def _cli(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jasr_video.cli", *map(str, args), "--threads", "1"], cwd=REPO,
                          env=ENV, capture_output=True, text=True, timeout=timeout)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> dict[str, Path]:
    """N frames at 640x360 (16:9), N at 480x360 (4:3, the picture squeezed), N more at 640x360."""
    d = tmp_path_factory.mktemp("join")
    clip = need(CLIP)
    return {"wide": make_clip(clip, d / "wide.ts", frames=N, width=640, audio=False),
            "narrow": make_clip(clip, d / "narrow.ts", frames=N, width=480, height=360, audio=False),
            "wide2": make_clip(clip, d / "wide2.ts", frames=N, width=640, audio=False),
            "dir": d}


def test_joined_ts_of_two_sizes(parts, tmp_path):
    """640x360 then 480x360: every frame written, one stream_change, boxes of the current frame, fresh tracks;
    the video keeps 640x360 with the 4:3 frames fitted in, aspect kept, black bars beside."""
    joined = join_files([parts["wide"], parts["narrow"]], tmp_path / "joined.ts")
    out, js = tmp_path / "o.mp4", tmp_path / "o.jsonl"
    r = _cli(joined, "--out", out, "--json", js, "--full-scan-every", 3)  # frame 10 would be a regions frame
    assert r.returncode == 0, r.stderr[-2000:]
    rows = _lines(js)
    frames, changes = check_changes(rows, (640, 360))
    assert [f["frame"] for f in frames] == list(range(2 * N))  # no frame lost at the join
    assert len(changes) == 1
    change = changes[0]
    assert (change["old_size"], change["new_size"]) == ([640, 360], [480, 360])
    assert change["pts"] == frames[N]["pts"] and "640x360" in change["annotated_video"]
    assert rows.index(change) == N  # between the last frame of one size and the first of the other
    jumps = [row for row in rows if row.get("event") == "pts_jump"]
    assert len(jumps) == 1 and jumps[0]["raw_to"] < jumps[0]["raw_from"]
    assert any(f["faces"] for f in frames[:N]) and any(f["faces"] for f in frames[N:])
    assert "stream changes" in r.stderr  # the summary's row
    schema = jsonschema.Draft202012Validator(load_schema("jsonl"))
    for row in rows:  # the events and the frames around them as the published schema says
        schema.validate(row)
    assert not schema.is_valid({**change, "new_size": [480]}) and not schema.is_valid({**jumps[0], "raw_to": "0"})
    info = probe(out)
    assert info["frames"] == 2 * N and (info["width"], info["height"]) == (640, 360)
    with av.open(str(out)) as c:
        images = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    def sides(img: np.ndarray) -> float:
        return float(np.concatenate([img[:, :70], img[:, -70:]], axis=1).mean())

    wide, narrow = images[N - 1], images[N]
    assert sides(narrow) < 8 < sides(wide)  # 480 wide fitted into 640: 80 px black bars each side
    assert narrow[:, 100:-100].mean() > 20  # the picture itself


@pytest.mark.parametrize("shift, kind", [(0.0, "restart"), (0.2, "back"), (60.0, "forward")])
def test_file_timestamps_that_break(parts, tmp_path, shift, kind):
    """One size, the second part's timestamps restarting, going back 0.2 s, or leaping 60 s on: pts go on one
    frame interval after the last, a pts_jump names the raw timestamps, no frame is lost or counted missing."""
    second = parts["wide2"] if not shift else make_clip(need(CLIP), tmp_path / "b.ts", frames=N, width=640,
                                                        audio=False, shift=shift)
    joined = join_files([parts["wide"], second], tmp_path / "joined.ts")
    with open_source(str(joined)) as src:
        items = list(src)
    frames = [i for i in items if isinstance(i, Frame)]
    jumps = [i for i in items if isinstance(i, PtsJump)]
    assert not any(isinstance(i, StreamChange) for i in items)
    assert [f.index for f in frames] == list(range(2 * N))
    pts = [f.pts for f in frames]
    assert all(b > a for a, b in zip(pts, pts[1:])), pts
    assert len(jumps) == 1 and src.stats["pts_jumps"] == 1 and src.stats["frames_missing"] == 0
    jump, at = jumps[0], items.index(jumps[0])
    assert items[at + 1] is frames[N] and jump.pts == pytest.approx(frames[N].pts)
    assert frames[N].pts == pytest.approx(frames[N - 1].pts + 0.04)
    assert jump.raw_from == pytest.approx(frames[N - 1].pts)  # the first part's timestamps are its own
    leap = jump.raw_to - jump.raw_from  # the muxer may move the second part's start by a frame or two
    assert {"restart": abs(jump.raw_to - frames[0].pts) < 0.1, "back": -0.5 < leap < 0,
            "forward": 55 < leap < 65}[kind], leap


@pytest.fixture(scope="module")
def live_clips(tmp_path_factory) -> tuple[Path, Path]:
    """1 s of the clip at 480x270, then 1 s at 320x240 (4:3), for the RTSP server."""
    d = tmp_path_factory.mktemp("live")
    clip = need(CLIP)
    return (make_clip(clip, d / "a.mp4", frames=25, width=480, audio=False),
            make_clip(clip, d / "b.mp4", frames=25, width=320, height=240, audio=False))


@needs_gst
def test_live_stream_changing_size(live_clips, tmp_path):
    """A live stream switching between 480x270 and 320x240: stream_change events, boxes of the current frame,
    fresh tracks, and a playable video at the first size with every processed frame."""
    srv = RtspServer(live_clips[0], free_port(), args=("--then", live_clips[1])).start()
    try:
        out, js = tmp_path / "live.mp4", tmp_path / "live.jsonl"
        r = _cli(srv.url, "--out", out, "--json", js, "--max-frames", 30, "--open-timeout", 5, "--quiet")
    finally:
        srv.stop()
    assert r.returncode == 0, r.stderr[-2000:]
    frames, changes = check_changes(_lines(js), (480, 270))
    assert len(frames) == 30 and changes, "no size change seen"
    assert {tuple(c["new_size"]) for c in changes} <= {(480, 270), (320, 240)}
    info = probe(out)
    assert info["frames"] == len(frames) and (info["width"], info["height"]) == (480, 270)


@needs_gst
def test_live_timestamps_that_restart(live_clips):
    """The server restarts its timestamps every second: pts keep increasing, each restart is a PtsJump."""
    srv = RtspServer(live_clips[0], free_port(), args=("--restart-ts",)).start()
    items = []
    try:
        with open_source(srv.url, open_timeout=5, live=True) as src:
            t0 = time.monotonic()
            for item in src:
                items.append(item)
                if isinstance(item, Frame) and (time.monotonic() - t0 > 3.0
                                                or sum(isinstance(i, PtsJump) for i in items) >= 3):
                    break
    finally:
        srv.stop()
    frames = [i for i in items if isinstance(i, Frame)]
    jumps = [i for i in items if isinstance(i, PtsJump)]
    pts = [f.pts for f in frames]
    assert all(b > a for a, b in zip(pts, pts[1:]))
    assert jumps and all(j.raw_to < j.raw_from for j in jumps)
    for j in jumps:  # the frame after a jump goes on from the one before it
        at = items.index(j)
        before = next(i for i in reversed(items[:at]) if isinstance(i, Frame))
        after = next(i for i in items[at:] if isinstance(i, Frame))
        assert after.pts == pytest.approx(j.pts) and after.pts > before.pts
