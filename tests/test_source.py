"""File decoding through jasr_video.source (real clip + synthetic inputs made here with PyAV)."""

from __future__ import annotations

import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from jasr_video.source import Frame, MultiSource, SourceError, StreamInfo, open_source, open_sources

from conftest import CLIP, need
from video_utils import remux_video


def _encode(path: Path, codec: str, pix_fmt: str, size: tuple[int, int], n: int = 10, options=None) -> Path:
    w, h = size
    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        if options:
            s.options = options
        for i in range(n):
            img = np.zeros((h, w, 3), np.uint8)
            img[..., 0] = (np.arange(w)[None, :] * 255 // max(w - 1, 1)).astype(np.uint8)
            img[..., 1] = (i * 20) % 256
            img[: h // 2, : w // 2, 2] = 200
            frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format=pix_fmt)
            frame.pts = i
            frame.time_base = Fraction(1, 25)
            for p in s.encode(frame):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def _frames(src) -> list[Frame]:
    return [f for f in src if isinstance(f, Frame)]


def test_real_clip_count_pts_info():
    clip = need(CLIP)
    with open_source(str(clip)) as src:
        info = src.info
        assert isinstance(info, StreamInfo)
        assert (info.width, info.height) == (1920, 1080)
        assert info.fps == pytest.approx(25.0)
        assert info.frame_count == 105
        assert info.has_audio and not info.is_live
        n, last, first_shape = 0, -1.0, None
        for f in src:
            assert isinstance(f, Frame)
            assert f.index == n
            assert f.pts is not None and f.pts > last
            assert f.image.dtype == np.uint8 and f.image.shape == (1080, 1920, 3)
            assert f.stream == clip.stem
            last = f.pts
            n += 1
    assert n == 105
    assert src.stats["decoded"] == 105 and src.stats["dropped"] == 0
    assert src.error is None


def test_missing_file_one_line():
    with pytest.raises(SourceError) as e:
        open_source("/nonexistent/video.mp4")
    msg = str(e.value)
    assert "not found" in msg and "\n" not in msg


def test_not_a_video(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 100)
    with pytest.raises(SourceError) as e:
        open_source(str(p))
    assert "not a video" in str(e.value) and "\n" not in str(e.value)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(SourceError, match="empty"):
        open_source(str(empty))
    with pytest.raises(SourceError, match="directory"):
        open_source(str(tmp_path))


def test_audio_only_is_not_a_video(tmp_path):
    p = tmp_path / "tone.wav"
    with av.open(str(p), "w") as out:
        s = out.add_stream("pcm_s16le", rate=8000)
        f = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        f.sample_rate = 8000
        for pk in s.encode(f):
            out.mux(pk)
    with pytest.raises(SourceError, match="no video stream"):
        open_source(str(p))


def test_truncated_without_index(tmp_path):
    clip = need(CLIP)  # moov atom at the end: cutting the file loses the index
    p = tmp_path / "cut.mp4"
    p.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    with pytest.raises(SourceError) as e:
        open_source(str(p))
    assert "\n" not in str(e.value)


def test_truncated_faststart_yields_partial(tmp_path):
    clip = need(CLIP)
    fast = tmp_path / "fast.mp4"
    remux_video(clip, fast, options={"movflags": "faststart"})
    data = fast.read_bytes()
    cut = tmp_path / "fast_cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with open_source(str(cut)) as src:
        frames = _frames(src)
    assert 10 < len(frames) < 105
    assert all(f.image.shape == (1080, 1920, 3) for f in frames[:3])


def test_corrupt_bytes_skipped_no_exception(tmp_path):
    clip = need(CLIP)
    data = bytearray(clip.read_bytes())
    rng = np.random.default_rng(0)
    # Garble many spans inside mdat (bytes 40 .. ~2.4 MB); keep the container index intact.
    for start in rng.integers(200_000, 2_300_000, size=40):
        data[start : start + 2000] = rng.integers(0, 256, 2000, dtype=np.uint8).tobytes()
    p = tmp_path / "corrupt.mp4"
    p.write_bytes(bytes(data))
    with open_source(str(p)) as src:
        frames = _frames(src)
    # Either frames are dropped as corrupt (counted) or concealed; never an exception.
    assert len(frames) + src.stats["corrupt_skipped"] >= 50
    assert src.stats["corrupt_skipped"] > 0 and src.error is None
    assert all(f.image.dtype == np.uint8 and f.image.shape == (1080, 1920, 3) for f in frames)


@pytest.mark.parametrize(
    "codec,pix_fmt,size,suffix",
    [
        ("ffv1", "gray", (64, 48), "mkv"),
        ("mpeg4", "yuv420p", (641, 479), "avi"),
        ("ffv1", "yuv420p", (641, 479), "mkv"),
        ("libx264", "yuv420p10le", (64, 48), "mp4"),
        ("ffv1", "yuv444p10le", (33, 17), "mkv"),
    ],
)
def test_pixel_formats_and_odd_sizes(tmp_path, codec, pix_fmt, size, suffix):
    if codec not in av.codecs_available:
        pytest.skip(f"encoder {codec} not in this FFmpeg build")
    try:
        p = _encode(tmp_path / f"clip.{suffix}", codec, pix_fmt, size, n=6)
    except (av.error.FFmpegError, ValueError) as exc:
        pytest.skip(f"cannot encode {codec}/{pix_fmt}: {exc}")
    with open_source(str(p)) as src:
        assert (src.info.width, src.info.height) == size
        frames = _frames(src)
    assert len(frames) == 6
    w, h = size
    for f in frames:
        assert f.image.dtype == np.uint8 and f.image.shape == (h, w, 3)
    # the horizontal red gradient survives the format round trip (as luma for gray)
    img = frames[0].image.astype(int)
    assert img[h // 2, -1].mean() - img[h // 2, 0].mean() > 20
    if pix_fmt == "gray":
        assert np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2])
    else:
        assert img[h // 2, -1, 0] - img[h // 2, 0, 0] > 150


def test_early_close_and_no_fd_leak():
    clip = need(CLIP)
    import os

    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = fds()
    for _ in range(3):
        src = open_source(str(clip), queue_size=2)
        it = iter(src)
        next(it)
        t0 = time.monotonic()
        src.close()
        assert time.monotonic() - t0 < 2.0
        assert not src._thread.is_alive()
    assert fds() <= before


def test_close_from_other_thread():
    clip = need(CLIP)
    src = open_source(str(clip), queue_size=1, loop=True)
    got = []
    t = threading.Timer(0.5, src.close)
    t.start()
    t0 = time.monotonic()
    for f in src:
        got.append(f.index)
        time.sleep(0.01)
    assert time.monotonic() - t0 < 3.0
    assert got and not src._thread.is_alive()


def test_close_ends_the_decode_thread_when_an_interrupt_left_the_queue_lock_held():
    """A KeyboardInterrupt raised in the consumer just after queue.get took the queue's lock leaves that lock held
    (the interrupt lands before the with-block that would release it). close() must still end the decode thread,
    which waits on a full queue, instead of deadlocking on the lock."""
    clip = need(CLIP)
    for live in (False, True):
        src = open_source(str(clip), queue_size=1, loop=True, live=live)
        next(iter(src))
        time.sleep(0.2)  # the decoder refills the queue and waits
        assert src._queue.mutex.acquire(timeout=1)  # held from here on, as the interrupt leaves it
        closer = threading.Thread(target=src.close, daemon=True)
        t0 = time.monotonic()
        closer.start()
        closer.join(4.0)
        assert not closer.is_alive() and time.monotonic() - t0 < 2.0, "close() deadlocked on the queue's lock"
        assert not src._thread.is_alive()
        src._queue.mutex.release()


def test_latest_frame_mode_drops_when_slow():
    clip = need(CLIP)
    with open_source(str(clip), live=True, queue_size=1) as src:
        frames = []
        for f in src:
            frames.append(f.index)
            time.sleep(0.05)  # slower than the decoder
    assert src.stats["dropped"] > 0
    assert len(frames) + src.stats["dropped"] == src.stats["decoded"]
    assert frames == sorted(frames)


def test_loop_option(tmp_path):
    p = _encode(tmp_path / "short.mkv", "ffv1", "yuv420p", (32, 32), n=5)
    with open_source(str(p), loop=True) as src:
        idx = []
        for f in src:
            idx.append(f.index)
            if len(idx) == 12:
                break
    assert idx == list(range(12))


def test_multisource_files_and_failure(tmp_path):
    a = _encode(tmp_path / "a.mkv", "ffv1", "yuv420p", (32, 32), n=7)
    b = _encode(tmp_path / "b.mkv", "ffv1", "gray", (16, 16), n=4)
    multi = open_sources([str(a), str(b), str(tmp_path / "missing.mp4")])
    assert isinstance(multi, MultiSource)
    assert len(multi.failed) == 1 and "not found" in next(iter(multi.failed.values()))
    with multi:
        items = list(multi)
    by = {}
    for f in items:
        by.setdefault(f.stream, []).append(f.index)
    assert by == {"a": list(range(7)), "b": list(range(4))}
    with pytest.raises(SourceError):
        open_sources([str(tmp_path / "x.mp4")])
