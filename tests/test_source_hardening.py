"""Source faults on real clips: lost frames keep source frame numbers, files cut short say so, damaged files are
named damaged, display rotation is honoured."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from jasr_video.source import Frame, SourceError, open_source

from conftest import CLIP, need
from video_utils import remux_video


def _frames(src) -> list[Frame]:
    return [f for f in src if isinstance(f, Frame)]


def test_frame_numbers_stay_source_numbers_after_garbage(tmp_path):
    """64 kB of garbage mid-file: decoding loses frames; every `index` still matches the frame's pts."""
    data = bytearray(need(CLIP).read_bytes())
    mid = len(data) // 2
    data[mid:mid + 65536] = np.random.default_rng(1).integers(0, 256, 65536, dtype=np.uint8).tobytes()
    p = tmp_path / "garbage.mp4"
    p.write_bytes(bytes(data))
    with open_source(str(p)) as src:
        frames = _frames(src)
    assert len(frames) < 105 and src.error is None
    assert [f.index for f in frames] == [round(f.pts * 25) for f in frames]
    assert src.stats["frames_missing"] == 105 - len(frames)
    assert frames[-1].index == 104


def test_file_cut_short_with_index_at_front_says_it_ended_early(tmp_path):
    fast = remux_video(need(CLIP), tmp_path / "fast.mp4", options={"movflags": "faststart"})
    data = fast.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 4])
    with open_source(str(cut)) as src:
        frames = _frames(src)
    assert 10 < len(frames) < 50 and src.info.frame_count == 105
    assert src.error and "ended early" in src.error and "of the 105 frames" in src.error
    assert [f.index for f in frames] == [round(f.pts * 25) for f in frames]


def test_file_cut_short_without_index_is_named_damaged(tmp_path):
    clip = need(CLIP)  # index (moov) at the end: the cut file cannot be opened
    p = tmp_path / "cut.mp4"
    p.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    with pytest.raises(SourceError) as e:
        open_source(str(p))
    assert "damaged or truncated" in str(e.value) and "not a video file" not in str(e.value)
    junk = tmp_path / "notes.mp4"
    junk.write_bytes(b"just some text, not a video\n" * 100)
    with pytest.raises(SourceError, match="not a video file"):
        open_source(str(junk))


def make_rotated_clip(src: Path, dst: Path, frames: int = 6, width: int = 640) -> tuple[Path, list[np.ndarray]]:
    """A phone-style clip made with a real encoder: each upright frame stored turned a quarter (portrait storage
    of a landscape view) with a display matrix saying "rotate -90" (clockwise) to show it upright."""
    upright = []
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        for i, frame in enumerate(inp.decode(video=0)):
            if i >= frames:
                break
            img = frame.to_ndarray(format="rgb24")
            img = cv2.resize(img, (width, width * img.shape[0] // img.shape[1] // 2 * 2), interpolation=cv2.INTER_AREA)
            upright.append(img)
            stored = np.ascontiguousarray(np.rot90(img, 1))  # counter-clockwise: stored portrait
            if i == 0:
                vs.width, vs.height, vs.pix_fmt = stored.shape[1], stored.shape[0], "yuv420p"
                vs.set_display_rotation(-90)
            f = av.VideoFrame.from_ndarray(stored, format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 25)
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    return dst, upright


def test_display_rotation_gives_upright_frames(tmp_path):
    clip, upright = make_rotated_clip(need(CLIP), tmp_path / "phone.mp4")
    with av.open(str(clip)) as c:  # the test clip really carries the display matrix
        first = next(c.decode(video=0))
        assert (first.width, first.height) == (360, 640) and first.rotation == -90
    with open_source(str(clip)) as src:
        frames = _frames(src)
    assert src.info.rotation == 270 and (src.info.width, src.info.height) == (640, 360)
    assert len(frames) == len(upright)
    for f, ref in zip(frames, upright):
        assert f.image.shape == ref.shape
        assert np.abs(f.image.astype(int) - ref.astype(int)).mean() < 6  # the same picture, upright (lossy codec)
