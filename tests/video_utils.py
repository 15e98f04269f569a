"""Test helpers: small real clips made with PyAV (first frames of the real clip, downscaled, audio kept);
waiting for and ending CLI subprocesses."""
from __future__ import annotations

import subprocess
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


def make_clip(src: Path, dst: Path, frames: int = 20, width: int | None = 960, height: int | None = None,
              pix_fmt: str = "yuv420p", codec: str = "libx264", audio: bool = True, gray: bool = False,
              shift: float = 0.0, options: dict | None = None) -> Path:
    """Re-encode the first `frames` frames of `src` (resized to width x height) plus its audio up to there;
    `shift`: seconds added to every video timestamp (no audio then); `options`: the encoder's."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        if width is not None and height is None:
            height = int(round(vin.height * width / vin.width / 2)) * 2
        width, height = width or vin.width, height or vin.height
        vout = out.add_stream(codec, rate=vin.average_rate or 25)
        vout.width, vout.height, vout.pix_fmt = width, height, pix_fmt
        vout.time_base = vin.time_base
        if options:
            vout.options = dict(options)
        offset = int(round(shift / vin.time_base))
        aout = (out.add_stream_from_template(inp.streams.audio[0])
                if audio and inp.streams.audio and not shift else None)
        last_t = 0.0
        for i, frame in enumerate(inp.decode(vin)):
            if i >= frames:
                break
            img = cv2.resize(frame.to_ndarray(format="rgb24"), (width, height), interpolation=cv2.INTER_AREA)
            if gray:
                img = np.repeat(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = frame.pts + offset, vin.time_base
            last_t = float(frame.pts * vin.time_base)
            for p in vout.encode(f):
                out.mux(p)
        for p in vout.encode():
            out.mux(p)
        if aout is not None:
            inp2 = av.open(str(src))
            ain = inp2.streams.audio[0]
            for packet in inp2.demux(ain):
                if packet.dts is None:
                    continue
                if packet.pts is not None and packet.pts * ain.time_base > last_t + 0.04:
                    break
                packet.stream = aout
                out.mux(packet)
            inp2.close()
    return dst


def check_changes(rows: list[dict], first: tuple[int, int]) -> tuple[list[dict], list[dict]]:
    """Frame lines and stream_change events of a run's JSON Lines; checks what holds for every run with changes:
    pts increasing, each box inside the frame size current at its frame, no track of before a change after it,
    the first frame after a change a full-frame scan. Returns (frames, changes)."""
    size, seen, before = first, set(), set()
    frames, changes = [], []
    after_change = False
    for row in rows:
        if row.get("event") == "stream_change":
            assert list(size) == row["old_size"], row
            size = tuple(row["new_size"])
            changes.append(row)
            before |= seen
            seen = set()
            after_change = True
            continue
        if "frame" not in row:
            continue
        if after_change:
            assert row["scan"] == "full", row  # the first frame of the new size is scanned whole
            after_change = False
        for face in row["faces"]:
            x0, y0, x1, y1 = face["box"]
            assert 0 <= x0 < x1 <= size[0] and 0 <= y0 < y1 <= size[1], (row["frame"], size, face["box"])
            assert face["track_id"] not in before, (row["frame"], face["track_id"])  # nothing carried over
            seen.add(face["track_id"])
        frames.append(row)
    pts = [r["pts"] for r in frames]
    assert all(b > a for a, b in zip(pts, pts[1:])), pts
    return frames, changes


def join_files(parts: list[Path], dst: Path) -> Path:
    """`parts` concatenated byte for byte (MPEG-TS recordings joined end to end, as `cat a.ts b.ts`)."""
    dst.write_bytes(b"".join(p.read_bytes() for p in parts))
    return dst


def probe(path: Path) -> dict:
    """Frame count (decoded), size, pts (seconds) and audio presence of a video file."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        pts = [float(f.time) for f in c.decode(vs)]
        return {"frames": len(pts), "width": vs.codec_context.width, "height": vs.codec_context.height,
                "pts": pts, "audio": len(c.streams.audio) > 0, "codec": vs.codec_context.name}


def audio_packets(path: Path) -> int:
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return 0
        return sum(1 for p in c.demux(c.streams.audio[0]) if p.size)


def remux_video(src: Path, dst: Path, fmt: str | None = None, options: dict | None = None) -> Path:
    """Copy the video packets of `src` into a new container (`fmt`, muxer `options`), no re-encoding."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format=fmt, options=options or {}) as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        for packet in inp.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            out.mux(packet)
    return dst


def wait_for_lines(path: Path, count: int, proc: subprocess.Popen, timeout: float = 120.0, poll: float = 0.05) -> None:
    """Wait until the text file at `path` has `count` lines (e.g. a CLI's .partial JSON Lines), `proc` ends,
    or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(poll)


def end_process(proc: subprocess.Popen) -> None:
    """Test clean-up: kill `proc` if it still runs."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()


__all__ = ["make_clip", "probe", "audio_packets", "remux_video", "wait_for_lines", "end_process", "Fraction"]
