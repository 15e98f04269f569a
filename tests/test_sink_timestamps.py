"""The annotated video keeps playing at the stream's rate when timestamps repeat, restart or are missing."""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from jasr_video.pipeline import FrameResult
from jasr_video.sinks import VideoSink
from jasr_video.source import StreamInfo
from video_utils import probe


def test_missing_and_restarting_pts_advance_one_frame_interval(tmp_path):
    info = StreamInfo("x", 64, 48, 25.0, None, Fraction(1, 90000), False, True)
    sink = VideoSink(tmp_path / "o.mp4", info)
    # a live stream's first frames without pts, then pts that restart (as after a reconnect without rebasing)
    for i, pts in enumerate([None, None, 0.08, 0.12, 0.0, 0.0, None, 0.24]):
        sink.write(FrameResult(i, pts, np.full((48, 64, 3), 10 * i, np.uint8), []))
    sink.close()
    got = probe(tmp_path / "o.mp4")["pts"]
    assert len(got) == 8
    assert np.allclose(np.diff(got), 0.04, atol=1e-3), got  # never 1/90000 s apart
