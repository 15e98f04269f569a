"""Outputs: annotated H.264 video (audio kept), JSON Lines per frame, per-track SR crops.

Every sink writes to ``<name>.partial`` and renames to the final name only when it is finalised
after a complete run or a user stop (Ctrl-C / SIGTERM), so no half-written file ever looks complete.
After a crash the ``.partial`` files stay behind: the JSONL holds every frame processed so far (one
flushed line per frame) and the video muxer is closed in a ``finally`` so it is playable too. MP4 / MOV
video is written fragmented (one fragment per video frame), so even a killed process (SIGKILL, power
loss) leaves a playable ``.partial`` video of every frame the encoder had output; Matroska is playable
up to its last cluster without an index.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, Sequence

import cv2
import numpy as np

from . import layout
from .layout import DrawStyle, fit_into, track_color  # noqa: F401 (track_color re-exported)
from .types import EventSink, FaceResult, FrameResult, Sink  # FaceResult: re-exported
from .redact import protect
from .source import StreamInfo

log = protect(logging.getLogger(__name__))  # every log line of this module is redacted

# mp4 / mov can carry these audio codecs as they are; others are transcoded to AAC
_MP4_AUDIO = {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"}
_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
# fragmented MP4 / MOV: the header (written with the first fragment, so its edit list hides the B-frame delay),
# then a fragment per video frame, each flushed to disk: a file cut at any point plays up to its last fragment
_FRAGMENTED = {"movflags": "frag_every_frame+empty_moov+delay_moov+default_base_moof", "flush_packets": "1"}
PARTIAL = ".partial"


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + PARTIAL)


def annotate(result: FrameResult, inset: bool | str = True, raw_landmarks: bool = False,
             style: DrawStyle | None = None) -> np.ndarray:
    """Draw boxes, track ids, landmarks and super-resolved insets on a copy of the frame (:mod:`jasr_video.layout`:
    insets never cover a face). ``style`` overrides ``inset`` (True: auto placement, False: none, or a mode name)
    and ``raw_landmarks``."""
    if style is None:
        mode = inset if isinstance(inset, str) else ("auto" if inset else "off")
        style = DrawStyle(inset=mode, raw_landmarks=raw_landmarks)
    return layout.annotate(result, style)


class VideoSink:
    """Annotated video: H.264 (libx264), input size, timestamps and frame count; audio copied.

    The video keeps the input's size as opened: frames of another size (:class:`~jasr_video.source.StreamChange`)
    are annotated at their own size, then scaled to fit, aspect kept, centred and padded with black.

    Sizes: yuv420p needs even width and height; for odd sizes (e.g. 641x479) the video is encoded in
    yuv444p (High 4:4:4 profile), which keeps the exact size (some players, e.g. browsers, do not
    play 4:4:4); ``even_size=True`` instead pads by one replicated pixel row/column to yuv420p.
    Audio packets of the input are copied (AAC, MP3, ...) or transcoded to AAC when the container
    cannot carry them; they are muxed as the video advances, so a stopped run keeps them in sync.
    """

    def __init__(self, path: str | Path, info: StreamInfo, audio_from: str | None = None, crf: int = 20,
                 preset: str = "veryfast", even_size: bool = False, inset: bool | str = True,
                 style: DrawStyle | None = None) -> None:
        import av

        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in _FORMATS:
            raise ValueError(f"unsupported video output extension {suffix!r} (use .mp4, .mov or .mkv)")
        self.tmp = partial_path(self.path)
        self.info = info
        self.style = style or DrawStyle(inset=inset if isinstance(inset, str) else ("auto" if inset else "off"))
        self.width, self.height = info.width, info.height
        odd = self.width % 2 or self.height % 2
        self.pad = bool(odd and even_size)
        pix_fmt = "yuv444p" if odd and not even_size else "yuv420p"
        enc_w = self.width + (self.width % 2 if self.pad else 0)
        enc_h = self.height + (self.height % 2 if self.pad else 0)
        self.time_base = info.time_base or Fraction(1, 90000)
        rate = Fraction(info.fps).limit_denominator(1001) if info.fps else Fraction(25)
        self.rate = rate
        fmt = _FORMATS[suffix]
        self.container = av.open(str(self.tmp), "w", format=fmt, options=_FRAGMENTED if fmt in ("mp4", "mov") else {})
        self.stream = self.container.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": preset})
        self.stream.width, self.stream.height, self.stream.pix_fmt = enc_w, enc_h, pix_fmt
        self.stream.time_base = self.time_base
        self.stream.codec_context.time_base = self.time_base
        self.pix_fmt = pix_fmt
        self.frames = 0
        self._last_pts: int | None = None
        self._audio: Iterator[Any] | None = None
        self._audio_in = None
        self._audio_pending: Any = None
        self.audio_mode = "none"
        if audio_from is not None and info.has_audio and not info.is_live:
            self._open_audio(audio_from)
        self._closed = False
        self.seconds = {"annotate": 0.0, "encode": 0.0}  # wall-clock time spent in write()

    # -- audio --------------------------------------------------------------------------------

    def _open_audio(self, uri: str) -> None:
        import av

        try:
            self._audio_in = av.open(uri)
            ain = self._audio_in.streams.audio[0]
        except Exception as exc:  # noqa: BLE001
            log.warning("audio not kept: cannot open the input's audio (%s)", exc)
            self._audio_in = None
            return
        name = ain.codec_context.name
        if name in _MP4_AUDIO or self.path.suffix.lower() == ".mkv":
            self.audio_stream = self.container.add_stream_from_template(ain)
            self.audio_mode = "copy"
            self._audio = self._copy_packets(ain)
        else:
            self.audio_stream = self.container.add_stream("aac", rate=ain.codec_context.sample_rate or 48000)
            self.audio_mode = "aac"
            self._audio = self._transcode(ain)

    def _copy_packets(self, ain) -> Iterator[Any]:
        for packet in self._audio_in.demux(ain):
            if packet.dts is None or packet.size == 0:
                continue
            packet.stream = self.audio_stream
            t = float(packet.pts * ain.time_base) if packet.pts is not None else None
            yield t, [packet]

    def _transcode(self, ain) -> Iterator[Any]:
        import av

        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=self.audio_stream.codec_context.sample_rate)
        for packet in self._audio_in.demux(ain):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                continue
            for frame in frames:
                t = float(frame.time) if frame.time is not None else None
                out = []
                for rf in resampler.resample(frame):
                    rf.pts = None
                    out.extend(self.audio_stream.encode(rf))
                yield t, out
        yield None, list(self.audio_stream.encode(None))

    def _mux_audio_until(self, t: float | None) -> None:
        """Mux audio up to time t (seconds); None: everything left."""
        if self._audio is None:
            return
        while True:
            if self._audio_pending is None:
                try:
                    self._audio_pending = next(self._audio)
                except StopIteration:
                    self._audio = None
                    return
                except Exception as exc:  # noqa: BLE001  (a damaged audio track must not stop the video)
                    log.warning("audio stopped early: %s", exc)
                    self._audio = None
                    return
            at, packets = self._audio_pending
            if t is not None and at is not None and at > t:
                return
            for p in packets:
                self.container.mux(p)
            self._audio_pending = None

    # -- video --------------------------------------------------------------------------------

    def write(self, result: FrameResult) -> None:
        import av

        t0 = time.perf_counter()
        img = annotate(result, style=self.style)
        if img.shape[:2] != (self.height, self.width):
            img = fit_into(img, self.width, self.height)
        if self.pad:
            img = np.pad(img, ((0, self.stream.height - img.shape[0]), (0, self.stream.width - img.shape[1]), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        t1 = time.perf_counter()
        step = max(1, int(round(1 / (self.rate * self.time_base))))  # one frame interval in time_base units
        if result.pts is not None:
            pts = int(round(result.pts / self.time_base))
        else:  # no timestamp: one frame interval after the previous frame
            pts = self._last_pts + step if self._last_pts is not None else 0
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + step  # strictly increasing at the stream's rate (live sources may repeat)
        self._last_pts = pts
        frame.pts, frame.time_base = pts, self.time_base
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1
        self._mux_audio_until(float(pts * self.time_base) + 1.0 / float(self.rate))
        self.seconds["annotate"] += t1 - t0
        self.seconds["encode"] += time.perf_counter() - t1

    def close(self, complete: bool = True) -> Path:
        """Flush the encoder and close the file; rename to the final name when `complete`.

        Audio is kept up to the end of the last video frame (so --max-frames and Ctrl-C stay in sync).
        ``complete=False`` (a crash) leaves the finalised file under its ``.partial`` name.
        """
        if self._closed:
            return self.path if complete else self.tmp
        self._closed = True
        try:
            for packet in self.stream.encode(None):
                self.container.mux(packet)
            if self._last_pts is not None:
                end = float(self._last_pts * self.time_base) + 1.0 / float(self.rate)
                self._mux_audio_until(end)
        finally:
            self.container.close()
            if self._audio_in is not None:
                self._audio_in.close()
        if complete:
            os.replace(self.tmp, self.path)
            return self.path
        return self.tmp


def close_partial(file: Any, tmp: Path, path: Path, complete: bool) -> Path:
    """Flush, fsync and close a text output written under its ``.partial`` name ``tmp``; rename it to ``path``
    when ``complete`` (a crash leaves the ``.partial``). Closing twice is harmless. Returns where the file is."""
    if not file.closed:
        file.flush()
        os.fsync(file.fileno())
        file.close()
        if complete:
            os.replace(tmp, path)
    return path if complete else tmp


JSON_LANDMARKS = ("both", "smoothed", "raw", "none")


class JsonlSink:
    """One JSON object per frame, one line each, flushed (and fsync'ed every ``sync_every`` lines).

    ``decimals``: places kept in coordinates (0: whole pixels); ``landmarks``: which 68-point sets are written
    (``both``, ``smoothed``, ``raw``, ``none``; see :meth:`FaceResult.to_json`); ``append``: go on with an
    existing ``.partial`` file (every earlier line kept) instead of starting it afresh.
    """

    def __init__(self, path: str | Path, sync_every: int = 25, decimals: int = 2, landmarks: str = "both",
                 append: bool = False) -> None:
        if landmarks not in JSON_LANDMARKS:
            raise ValueError(f"landmarks must be one of {', '.join(JSON_LANDMARKS)}")
        self.decimals, self.landmarks = decimals, landmarks
        self.path = Path(path)
        self.tmp = partial_path(self.path)
        self.file = open(self.tmp, "a" if append else "w", encoding="utf-8")
        self.sync_every = sync_every
        self.lines = 0
        self.seconds = {"json": 0.0}  # wall-clock time spent in write()

    def write(self, result: FrameResult) -> None:
        t0 = time.perf_counter()
        self.file.write(json.dumps(result.to_json(self.decimals, self.landmarks), separators=(",", ":")) + "\n")
        self.file.flush()
        self.lines += 1
        if self.sync_every and self.lines % self.sync_every == 0:
            os.fsync(self.file.fileno())
        self.seconds["json"] += time.perf_counter() - t0

    def write_event(self, event: dict[str, Any]) -> None:
        """A non-frame line (e.g. a stream gap of a live source): {"event": ...}."""
        self.file.write(json.dumps(event, separators=(",", ":")) + "\n")
        self.file.flush()

    def close(self, complete: bool = True) -> Path:
        return close_partial(self.file, self.tmp, self.path, complete)


class CropSink:
    """Per-track super-resolved faces: DIR/track_0007/frame_000123.png (128x128 RGB; flat grey where the face's
    crop reached past the frame edge, see :func:`jasr_video.layout.mask_outside`)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.files = 0

    def write(self, result: FrameResult) -> None:
        h, w = result.image.shape[:2]
        for face in result.faces:
            if face.sr is None:  # the pipeline computed no SR faces (PipelineConfig.sr_faces off)
                continue
            d = self.folder / f"track_{face.track_id:04d}"
            d.mkdir(exist_ok=True)
            final = d / f"frame_{result.index:06d}.png"
            tmp = d / f".frame_{result.index:06d}.png.partial"
            sr = layout.mask_outside(face.sr, face.crop, w, h)  # grey where the crop lay outside the frame
            ok, buf = cv2.imencode(".png", cv2.cvtColor(sr, cv2.COLOR_RGB2BGR))
            if ok:
                tmp.write_bytes(buf.tobytes())
                os.replace(tmp, final)
                self.files += 1

    def close(self, complete: bool = True) -> Path:
        return self.folder


def write_event(sinks: Sequence[Sink], event: dict[str, Any]) -> None:
    """An event line ({"event": ...}) to every sink that writes events (:class:`~jasr_video.types.EventSink`:
    JSON Lines)."""
    for sink in sinks:
        if isinstance(sink, EventSink):
            sink.write_event(event)


class BackgroundWriter:
    """Runs sinks' ``write`` in one worker thread behind a bounded queue, so annotation and H.264 encoding
    overlap detection and enhancement (the pipeline's FrameResults are not reused, so handing them over is safe).
    It pays on GPUs, where the host is otherwise idle during the model's work; on a CPU with few cores the worker
    competes with torch's threads (figures in docs/benchmarks.md).

    ``write`` blocks when ``queue_size`` frames are waiting; ``write_event`` queues a JSON Lines event in
    order with the frames; an error in a sink is raised by the next ``write``, by ``finish`` or by ``close``.
    ``finish`` writes what is queued; ``close`` finishes, then closes every sink.
    """

    _END = object()

    def __init__(self, sinks: Sequence[Any], queue_size: int = 8) -> None:
        self.sinks = list(sinks)
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._error: BaseException | None = None  # not yet raised to the caller
        self.failed = False  # a sink failed: close() leaves the outputs under their .partial names
        self._thread = threading.Thread(target=self._work, name="jasr-sinks", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if self.failed:
                continue  # drain without writing after a failure
            try:
                if isinstance(item, dict):  # an event line
                    write_event(self.sinks, item)
                    continue
                for sink in self.sinks:
                    sink.write(item)
            except BaseException as exc:  # noqa: BLE001  (re-raised in the caller's thread)
                self._error, self.failed = exc, True

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def write(self, result: FrameResult) -> None:
        self._raise()
        self._queue.put(result)

    def write_event(self, event: dict[str, Any]) -> None:
        """Queue an event line ({"event": ...}) for the sinks that write events (JSON Lines)."""
        self._raise()
        self._queue.put(dict(event))

    def _drain(self) -> None:
        if self._thread.is_alive():
            self._queue.put(self._END)
            self._thread.join()

    def finish(self) -> None:
        """Write everything queued and stop the worker; raises a sink's error, if any."""
        self._drain()
        self._raise()

    def abandon(self, timeout: float = 5.0) -> None:
        """Stop writing (what is queued is dropped) and wait up to `timeout` s for the worker to stop."""
        self.failed = True
        if self._thread.is_alive():
            try:
                self._queue.put(self._END, timeout=timeout)
            except queue.Full:
                pass
            self._thread.join(timeout)

    def close(self, complete: bool = True) -> list[Path]:
        """Finish the queued frames, then close every sink (``complete``: rename to the final names)."""
        self._drain()
        paths = [sink.close(complete=complete and not self.failed) for sink in self.sinks]
        self._raise()
        return paths
