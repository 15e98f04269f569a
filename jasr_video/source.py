"""Video sources: files, RTSP / HTTP(S) / TCP streams and webcams behind one interface.

Decoding runs in a background thread that feeds a bounded queue; the consumer iterates
:class:`Frame` objects and, between them, events (``SourceEvent``): :class:`StreamGap` after a live
reconnect, :class:`StreamChange` before the first frame of a new size or pixel format, :class:`PtsJump` where
the input's own timestamps break (``event_line`` gives each one's JSON Lines record).

    with open_source("rtsp://cam/stream", open_timeout=5, read_timeout=5) as src:
        for item in src:
            if isinstance(item, StreamGap):
                ...               # the stream was down for item.duration seconds
                continue
            latency = time.monotonic() - item.captured

Guarantees:

* opening never hangs: PyAV's ``timeout=(open, read)`` interrupt callback plus FFmpeg's own socket
  timeouts, and on top of both the open runs in a thread that is abandoned after
  ``open_timeout`` + a small grace period (PyAV issue 584);
* live sources reconnect with exponential back-off capped at ``max_backoff`` (each attempt is
  logged) and yield a :class:`StreamGap` with the outage duration once frames flow again;
* live (latest-frame) mode drops the oldest queued frame when the consumer is slower than the
  camera, so latency does not grow; drops are counted in ``stats["dropped"]``;
* corrupt packets / frames are skipped and counted (``stats["corrupt_skipped"]``), never raised;
* ``pts`` always increase, also across timestamps that restart or jump (``stats["pts_jumps"]``); a change of
  frame size mid-stream is announced (``stats["stream_changes"]``) and frames come at their new size;
* ``close()`` (from any thread, or via the context manager on Ctrl-C) stops the decode thread.

Errors at open time raise :class:`SourceError` whose ``str()`` is one line naming the problem
and the fix. A stream that ends with an error (reconnect off or exhausted) ends the iteration;
the reason is in ``source.error`` and ``stats["error"]``.

Length: one job (a source that never hangs and survives outages) whose timeouts, reconnects, latest-frame
mode, timestamps and damaged-data handling share the decode thread's state; split, they would need that
state passed between modules.
"""

from __future__ import annotations

import contextlib
import fractions
import logging
import os
import queue
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from .redact import protect, redact, remember
from .types import Frame  # re-exported: it used to live here

log = protect(logging.getLogger(__name__))  # every log line of this module is redacted

LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "tcp", "udp", "rtp", "srt")
_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_OPEN_GRACE = 2.0  # seconds on top of open_timeout before an open thread is abandoned
_JOIN_LOOKAHEAD = 4  # packets after a corrupt one searched for a segment join (see VideoSource._packets)
PTS_JUMP_S = 5.0  # input timestamps leaping forward by more than this (live: beyond the wall clock) are a break


@dataclass
class StreamGap:
    stream: str
    start_pts: float | None
    duration: float
    reason: str


@dataclass
class StreamChange:
    """The frame size or pixel format changed mid-stream (a camera switching profile, segments of two sizes
    joined end to end); comes before the first frame of the new size. Sizes are (width, height) as delivered
    (upright)."""

    stream: str
    pts: float | None  # of the first frame of the new size
    old_size: tuple[int, int]
    new_size: tuple[int, int]
    old_format: str
    new_format: str
    first_size: tuple[int, int]  # the size the stream was opened with: an annotated video keeps it


@dataclass
class PtsJump:
    """The input's own timestamps broke (restarted, went back, or leapt forward by more than ``PTS_JUMP_S``); the
    output ``pts`` carries on one frame interval after the last one. ``raw_from`` / ``raw_to``: the input's
    timestamps (seconds) of the frames either side."""

    stream: str
    pts: float  # output pts of the first frame after the jump
    raw_from: float
    raw_to: float


SourceEvent = (StreamGap, StreamChange, PtsJump)  # what a source yields besides Frames


def event_line(item: "StreamGap | StreamChange | PtsJump") -> dict[str, Any]:
    """The JSON Lines record ({"event": ...}) of a source event (docs/sources.md, "Events")."""
    if isinstance(item, StreamGap):
        return {"event": "stream_gap", "stream": item.stream, "start_pts": item.start_pts,
                "duration": round(item.duration, 3), "reason": redact(item.reason)}
    if isinstance(item, StreamChange):
        (w, h), (fw, fh) = item.new_size, item.first_size
        line: dict[str, Any] = {"event": "stream_change", "stream": item.stream, "pts": _seconds(item.pts),
                                "old_size": list(item.old_size), "new_size": list(item.new_size)}
        if item.old_format != item.new_format:
            line.update(old_format=item.old_format, new_format=item.new_format)
        line["annotated_video"] = ("same size" if (w, h) == (fw, fh) else
                                   f"these frames scaled to fit {fw}x{fh}, aspect kept, padded")
        return line
    return {"event": "pts_jump", "stream": item.stream, "pts": _seconds(item.pts), "raw_from": _seconds(item.raw_from),
            "raw_to": _seconds(item.raw_to)}


def _seconds(t: float | None) -> float | None:
    return None if t is None else round(float(t), 6)  # as the frame lines' pts


@dataclass
class StreamInfo:
    uri: str
    width: int
    height: int
    fps: float | None
    frame_count: int | None
    time_base: fractions.Fraction | None
    has_audio: bool
    is_live: bool
    rotation: int = 0  # display rotation of the input (degrees counter-clockwise); frames are delivered upright


class SourceError(Exception):
    """A source could not be opened or read; ``str()`` is one user-facing line."""


# ---------------------------------------------------------------------------------------------
# helpers


def _scheme(uri: str) -> str | None:
    m = _SCHEME_RE.match(uri)
    return m.group(1).lower() if m else None


def _is_webcam(uri: str) -> bool:
    return uri.startswith("/dev/video") or uri.startswith("v4l2://") or re.fullmatch(r"webcam:\d+", uri) is not None


def _webcam_path(uri: str) -> str:
    if uri.startswith("v4l2://"):
        return uri[len("v4l2://"):]
    if uri.startswith("webcam:"):
        return f"/dev/video{uri.split(':', 1)[1]}"
    return uri


def is_live_uri(uri: str) -> bool:
    return _is_webcam(uri) or _scheme(uri) in LIVE_SCHEMES


def _default_name(uri: str) -> str:
    if _is_webcam(uri):
        return Path(_webcam_path(uri)).name
    if _scheme(uri) in (None, "file"):
        return Path(uri[7:] if uri.startswith("file://") else uri).stem or uri
    return redact(uri)


def _one_line(exc: BaseException) -> str:
    """The first line of an error's text, credentials redacted (FFmpeg's errors quote the raw URL)."""
    text = str(exc).strip().splitlines()
    return redact(text[0]) if text else type(exc).__name__


# the first bytes of container formats (offset, bytes): a file that starts like one is a damaged video
_SIGNATURES = ((4, b"ftyp"), (4, b"moov"), (4, b"mdat"), (4, b"free"), (4, b"wide"), (0, b"\x1a\x45\xdf\xa3"),
               (0, b"RIFF"), (0, b"FLV"), (0, b"OggS"), (0, b"\x00\x00\x01\xba"), (0, b"\x00\x00\x01\xb3"))


def _looks_like_video(path: str) -> bool:
    """The file starts like a known video container (MP4/MOV, Matroska/WebM, AVI, FLV, Ogg, MPEG-PS/TS)."""
    try:
        with open(path, "rb") as f:
            head = f.read(400)
    except OSError:
        return False
    if any(head[o:o + len(sig)] == sig for o, sig in _SIGNATURES):
        return True
    return len(head) > 376 and head[0] == head[188] == head[376] == 0x47  # MPEG-TS sync bytes


def _classify_open_error(uri: str, exc: BaseException, timeout: float | None) -> SourceError:
    """Map a PyAV / OS error on open to a SourceError with one line naming problem and fix."""
    import av

    shown = redact(uri)
    msg = _one_line(exc)
    live = is_live_uri(uri)
    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, (FileNotFoundError, av.error.FileNotFoundError)) and not live:
        return SourceError(f"input file not found: {shown} (check the path)")
    if isinstance(exc, (FileNotFoundError, av.error.FileNotFoundError)) and _is_webcam(uri):
        return SourceError(f"camera device not found: {shown} (check the device exists: ls /dev/video*)")
    if isinstance(exc, (PermissionError, av.error.PermissionError)):
        return SourceError(f"permission denied opening {shown} (check file / device permissions)")
    if isinstance(exc, IsADirectoryError) or (not live and os.path.isdir(uri)):
        return SourceError(f"input is a directory, not a video: {shown} (give a video file)")
    if live:
        low = msg.lower()
        if isinstance(exc, (TimeoutError, av.error.ExitError)) or "timed out" in low or "immediate exit" in low:
            return SourceError(
                f"timed out after {timeout:g}s opening {shown} (check the URL and that the server is "
                f"sending video; raise open_timeout if the network is slow)"
            )
        if isinstance(exc, av.error.ConnectionRefusedError) or "refused" in low:
            return SourceError(f"connection refused by {shown} (check host, port and that the server is running)")
        if "401" in low or "unauthorized" in low or "403" in low or "forbidden" in low:
            return SourceError(f"access denied by {shown} (check the user name / password in the URL)")
        if "404" in low or "not found" in low:
            return SourceError(f"stream not found at {shown} (check the path part of the URL)")
        if isinstance(exc, OSError) and not isinstance(exc, av.error.InvalidDataError):
            return SourceError(f"cannot reach {shown}: {msg} (check the URL, network and server)")
        return SourceError(f"cannot open stream {shown}: {msg} (check the URL and that it serves video)")
    if isinstance(exc, av.error.InvalidDataError):
        if _looks_like_video(uri[7:] if uri.startswith("file://") else uri):
            return SourceError(f"damaged or truncated video file (its index / headers cannot be read): {shown} "
                               f"(copy or download it again; a recording cut short needs repairing, e.g. untrunc)")
        return SourceError(f"not a video file (invalid data): {shown} (give a video file such as .mp4/.mkv)")
    return SourceError(f"cannot open {shown}: {msg} (check that it is a readable video)")


def _ffmpeg_options(uri: str, open_timeout: float, read_timeout: float, transport: str) -> dict[str, str]:
    scheme = _scheme(uri)
    us = str(int(max(open_timeout, read_timeout) * 1_000_000))
    opts: dict[str, str] = {}
    if scheme in ("rtsp", "rtsps"):
        if transport not in ("tcp", "udp"):
            raise SourceError(f"unknown RTSP transport {transport!r} (use transport='tcp' or 'udp')")
        opts["rtsp_transport"] = transport
        opts["timeout"] = us  # socket I/O timeout (microseconds) of the RTSP demuxer
        if transport == "udp":
            opts["buffer_size"] = str(4 * 1024 * 1024)
    elif scheme in ("http", "https", "tcp", "rtmp", "rtmps", "srt"):
        opts["rw_timeout"] = us
    elif scheme in ("udp", "rtp"):
        opts["timeout"] = us
    return opts


def _open_container(uri: str, opts: dict[str, Any]):
    """av.open guarded by PyAV's timeout, FFmpeg's socket timeouts and an abandonable thread."""
    import av

    open_timeout = float(opts["open_timeout"])
    read_timeout = float(opts["read_timeout"])
    live = is_live_uri(uri)
    # FFmpeg's RTSP demuxer makes two interrupted waits on a stalled stream (measured: a stall
    # ends after 2 x PyAV's read timeout), so give PyAV half the budget to keep the configured bound.
    av_read_timeout = read_timeout / 2 if _scheme(uri) in ("rtsp", "rtsps") else read_timeout
    kwargs: dict[str, Any] = {"mode": "r", "timeout": (open_timeout, av_read_timeout)}
    options: dict[str, str] = {}
    target = uri
    if _is_webcam(uri):
        target = _webcam_path(uri)
        kwargs["format"] = opts.get("format") or "v4l2"
        if opts.get("video_size"):
            options["video_size"] = str(opts["video_size"])
        if opts.get("framerate"):
            options["framerate"] = str(opts["framerate"])
        if opts.get("input_format"):
            options["input_format"] = str(opts["input_format"])
    else:
        if opts.get("format"):
            kwargs["format"] = opts["format"]
        if uri.startswith("file://"):
            target = uri[7:]
        if not live:
            p = Path(target)
            if not p.exists():
                raise SourceError(f"input file not found: {target} (check the path)")
            if p.is_dir():
                raise SourceError(f"input is a directory, not a video: {target} (give a video file)")
            if p.stat().st_size == 0:
                raise SourceError(f"input file is empty: {target} (give a video file)")
        options.update(_ffmpeg_options(uri, open_timeout, read_timeout, opts.get("transport") or "tcp"))
    options.update({str(k): str(v) for k, v in (opts.get("av_options") or {}).items()})
    kwargs["options"] = options

    if not live:  # local files cannot stall: open inline
        try:
            return av.open(target, **kwargs)
        except Exception as exc:  # noqa: BLE001 - mapped to one line
            raise _classify_open_error(uri, exc, open_timeout) from None

    box: dict[str, Any] = {}
    done = threading.Event()
    abandoned = threading.Event()

    def worker() -> None:
        try:
            c = av.open(target, **kwargs)
            if abandoned.is_set():
                c.close()
            else:
                box["c"] = c
        except BaseException as exc:  # noqa: BLE001
            box["e"] = exc
        finally:
            done.set()

    t = threading.Thread(target=worker, name=f"jasr-open:{_default_name(uri)}", daemon=True)
    t0 = time.monotonic()
    t.start()
    if not done.wait(open_timeout + _OPEN_GRACE):
        abandoned.set()
        if "c" in box:  # raced: finished just now
            box.pop("c").close()
        log.warning("open of %s did not return within %.1fs; abandoning it", redact(uri), open_timeout + _OPEN_GRACE)
        raise SourceError(
            f"timed out after {open_timeout:g}s opening {redact(uri)} (check the URL and that the server "
            f"is sending video; raise open_timeout if the network is slow)"
        )
    if "e" in box:
        exc = box["e"]
        if time.monotonic() - t0 >= open_timeout * 0.95 and not isinstance(exc, SourceError):
            # PyAV's interrupt callback fired; FFmpeg reports that as various errors
            exc = TimeoutError(str(exc))
        raise _classify_open_error(uri, exc, open_timeout) from None
    return box["c"]


def _probe(container, uri: str, live: bool) -> tuple[Any, StreamInfo]:
    import av

    videos = list(container.streams.video)
    if not videos:
        container.close()
        raise SourceError(f"no video stream in {redact(uri)} (give a file or URL that contains video)")
    vs = videos[0]
    cc = vs.codec_context
    if cc is None or not getattr(cc, "name", None):
        container.close()
        raise SourceError(f"unsupported video codec in {redact(uri)} (re-encode it, e.g. to H.264)")
    try:  # check the decoder exists (e.g. an FFmpeg build without it)
        av.codec.Codec(cc.name, "r")
    except Exception:  # noqa: BLE001
        container.close()
        raise SourceError(
            f"unsupported video codec '{cc.name}' in {redact(uri)} (re-encode it, e.g. to H.264)"
        ) from None
    try:
        cc.thread_type = "AUTO"
    except Exception:  # noqa: BLE001
        pass
    if live and _scheme(uri) in ("http", "https", "ftp") and (container.duration or 0) > 0:
        live = False  # a remote file (finite duration), not a live stream: EOF ends it
    rate = vs.average_rate or vs.guessed_rate or vs.base_rate
    fps = float(rate) if rate else None
    if fps is not None and not (0 < fps < 1000):
        fps = None
    frames = int(vs.frames or 0) or None
    local = not is_live_uri(uri)  # a local file (remote files are not fetched twice)
    rotation = _display_rotation(uri[7:] if uri.startswith("file://") else uri) if local else 0
    width, height = int(cc.width or 0), int(cc.height or 0)
    if rotation in (90, 270):
        width, height = height, width
    info = StreamInfo(
        uri=redact(uri),
        width=width,
        height=height,
        fps=fps,
        frame_count=None if live else frames,
        time_base=vs.time_base,
        has_audio=len(container.streams.audio) > 0,
        is_live=live,
        rotation=rotation,
    )
    return vs, info


def _display_rotation(path: str) -> int:
    """The display rotation of a file's video (its display matrix, e.g. a phone video stored 720x1280 shown
    turned by 90 degrees), as 0/90/180/270 degrees counter-clockwise; read from the first decoded frame."""
    import av

    try:
        with av.open(path) as c:
            for frame in c.decode(video=0):
                return int(round(float(frame.rotation or 0) / 90.0)) * 90 % 360
    except Exception:  # noqa: BLE001 - an undecodable start is reported by the decode loop
        pass
    return 0


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a decoded image by its display rotation (degrees counter-clockwise, a multiple of 90)."""
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(image, k)) if k else image


_END = object()


def _starts_segment(prev: Any, nxt: Any, time_base: Any) -> bool:
    """`nxt` (the packet after `prev`) is a key frame whose decode timestamps restart or leap forward by more
    than ``PTS_JUMP_S``: a new segment of a recording joined end to end begins."""
    if not nxt.is_keyframe or nxt.is_corrupt or prev.dts is None or nxt.dts is None or not time_base:
        return False
    return nxt.dts < prev.dts or float((nxt.dts - prev.dts) * time_base) > PTS_JUMP_S


def _quiet_close(container) -> None:
    try:
        container.close()
    except Exception:  # noqa: BLE001
        pass


@contextlib.contextmanager
def _held(lock: Any, timeout: float = 0.1) -> Iterator[bool]:
    """`lock` taken for the block if it is free within `timeout`; yields whether it was."""
    locked = lock.acquire(timeout=timeout)
    try:
        yield locked
    finally:
        if locked:
            lock.release()


class VideoSource:
    """One decoded video input. Iterate it for Frames (and SourceEvents); close() it when done. ``info`` is the
    stream as opened (a later change of frame size comes as a StreamChange)."""

    def __init__(self, uri: str, **options: Any) -> None:
        known = {
            "queue_size", "live", "open_timeout", "read_timeout", "reconnect", "max_backoff",
            "min_backoff", "max_reconnects", "transport", "name", "loop", "format", "video_size",
            "framerate", "input_format", "av_options", "close_timeout",
        }
        unknown = set(options) - known
        if unknown:
            raise TypeError(f"unknown source option(s): {', '.join(sorted(unknown))}")
        self.uri = str(uri)
        remember(self.uri)  # its password / tokens are redacted from every line written from now on
        is_live = is_live_uri(self.uri)
        self.name: str = options.get("name") or _default_name(self.uri)
        self.loop: bool = bool(options.get("loop", False))
        self.open_timeout = float(options.get("open_timeout") or 10.0)
        self.read_timeout = float(options.get("read_timeout") or self.open_timeout)
        self.min_backoff = float(options.get("min_backoff") or 0.5)
        self.max_backoff = float(options.get("max_backoff") or 30.0)
        self.max_reconnects: int | None = options.get("max_reconnects")
        self.close_timeout = float(options.get("close_timeout") or 5.0)
        qs = options.get("queue_size")
        if qs is not None and int(qs) < 1:
            raise ValueError("queue_size must be >= 1")
        self._opts = dict(options, open_timeout=self.open_timeout, read_timeout=self.read_timeout)
        self.stats: dict[str, Any] = {"decoded": 0, "corrupt_skipped": 0, "dropped": 0, "reconnects": 0, "gaps": 0,
                                      "frames_missing": 0, "stream_changes": 0, "pts_jumps": 0}
        self.error: str | None = None
        self._stop = threading.Event()
        self._finished = False
        self._notify: threading.Event | None = None  # set on every put (used by MultiSource)

        self._container = _open_container(self.uri, self._opts)
        try:
            self._vstream, self.info = _probe(self._container, self.uri, is_live)
        except BaseException:
            self._container.close()
            raise
        # live defaults follow what was opened (an http URL of a finite file is not live)
        self.live_mode: bool = bool(options.get("live", self.info.is_live))
        self.reconnect: bool = bool(options.get("reconnect", self.info.is_live))
        self.queue_size = int(qs) if qs else (2 if self.live_mode else 8)
        self._queue: queue.Queue = queue.Queue(maxsize=self.queue_size)
        self._thread = threading.Thread(target=self._run, name=f"jasr-source:{self.name}", daemon=True)
        self._thread.start()

    # -- consumer side ---------------------------------------------------------------------

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame | StreamGap]:
        while True:
            item = self._get(timeout=0.2)
            if item is None:
                if self._finished:
                    return
                continue
            yield item

    def _get(self, timeout: float | None = None):
        """Next Frame/StreamGap, or None when nothing is ready (or the source has ended)."""
        if self._finished:
            return None
        try:
            item = self._queue.get(timeout=timeout) if timeout else self._queue.get_nowait()
        except queue.Empty:
            if self._stop.is_set() and not self._thread.is_alive():
                self._finished = True
            return None
        if item is _END:
            self._finished = True
            return None
        return item

    @property
    def finished(self) -> bool:
        return self._finished

    def close(self) -> None:
        """Stop the decode thread and release the input. Safe from any thread, idempotent."""
        self._stop.set()
        # Free a producer waiting on a full queue. The queue's lock is only tried: a KeyboardInterrupt raised
        # in the consumer just after it took that lock (inside queue.get) leaves it held for good.
        with _held(self._queue.mutex) as locked:
            if locked:
                self._queue.queue.clear()
                self._queue.not_full.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(self.close_timeout)
            if self._thread.is_alive():
                log.warning("%s: decode thread still blocked after %.1fs; abandoning it", self.name, self.close_timeout)
        self._finished = True
        if self._notify is not None:
            self._notify.set()

    # -- producer side ---------------------------------------------------------------------

    def _put(self, item: Any) -> bool:
        """Queue an item. Latest-frame mode drops the oldest queued frame instead of waiting."""
        while not self._stop.is_set():
            if self._offer(item):
                break
            if not (self.live_mode and self._drop_one_frame()):
                self._stop.wait(0.02)
        else:
            return False
        if self._notify is not None:
            self._notify.set()
        return True

    def _offer(self, item: Any) -> bool:
        """Append `item` if the queue has room; False when full or its lock is not free within 0.1 s. Unlike
        Queue.put this never waits on the lock without a bound, so a stopped source's thread always ends."""
        q = self._queue
        with _held(q.mutex) as locked:
            if not locked or len(q.queue) >= q.maxsize:
                return False
            q.queue.append(item)
            q.unfinished_tasks += 1
            q.not_empty.notify()
            return True

    def _drop_one_frame(self) -> bool:
        """Remove the oldest queued Frame (events such as StreamGap and StreamChange are kept)."""
        with _held(self._queue.mutex) as locked:
            if not locked:
                return False
            for i, old in enumerate(self._queue.queue):
                if isinstance(old, Frame):
                    del self._queue.queue[i]
                    self._queue.not_full.notify()
                    self.stats["dropped"] += 1
                    return True
        return False

    def _sleep(self, seconds: float) -> bool:
        """Interruptible sleep; False when stopped."""
        return not self._stop.wait(seconds)

    def _run(self) -> None:
        import av

        container = self._container
        self._index = 0
        self._last_pts: float | None = None  # pts of the last frame delivered (on the output timeline)
        self._last_capture: float | None = None
        self._last_raw: float | None = None  # the input's own pts of that frame
        self._shape: tuple[int, int, str] | None = None  # width, height and pixel format of that frame
        self._pts_offset = 0.0  # added to the input's pts (changes when a reconnect / loop restarts them)
        # the next frame starts a new input timeline: a live stream's first frame (its pts start at 0), after a
        # reconnect or a loop
        self._rebase = self.info.is_live
        # the video's start time (frames before the first decodable one are counted too); a negative start
        # (B-frames before an edit list) is not a frame position
        self._t0 = float(self._vstream.start_time * self._vstream.time_base) if (
            self._vstream.start_time is not None and self._vstream.time_base and self._vstream.start_time >= 0) else None
        try:
            while not self._stop.is_set():
                reason = None
                stalled = False
                try:
                    self._decode(container)
                    reason = "end of stream"
                except av.error.ExitError:
                    reason = f"no data for {self.read_timeout:g}s (read timeout)"
                    stalled = True
                except (av.error.FFmpegError, OSError) as exc:
                    reason = _one_line(exc)
                except Exception as exc:  # noqa: BLE001 - never leak from the thread
                    reason = f"{type(exc).__name__}: {_one_line(exc)}"
                    log.exception("%s: unexpected decode error", self.name)
                finally:
                    if stalled and self.info.is_live:
                        # closing a stalled RTSP session waits for a TEARDOWN reply (another
                        # timeout): do it off the decode thread so recovery is not delayed
                        threading.Thread(target=_quiet_close, args=(container,), daemon=True).start()
                    else:
                        _quiet_close(container)
                    self._container = container = None
                if self._stop.is_set():
                    break
                if not self.info.is_live:
                    if self.loop and reason == "end of stream":
                        container = self._reopen_file()
                        if container is None:
                            break
                        self._rebase = True
                        continue
                    if reason != "end of stream":
                        self._set_error(f"{self.name}: read error after frame {self._index}: {reason}")
                    elif self._ended_early():
                        self._set_error(f"{self.name}: ended early: the file holds {self._index} of the "
                                        f"{self.info.frame_count} frames its header lists (truncated or damaged)")
                    break
                # live: the stream ended or failed
                if not self.reconnect:
                    self._set_error(f"{self.name}: stream ended ({reason}); reconnect is off")
                    break
                # the outage in the video runs from the last decoded frame to the first new one
                down_since = self._last_capture if self._last_capture is not None else time.monotonic()
                log.warning("%s: stream lost (%s); reconnecting", self.name, reason)
                container = self._reconnect()
                if container is None:
                    break
                gap = StreamGap(self.name, self._last_pts, time.monotonic() - down_since, redact(reason))
                self._rebase = True  # the new connection's timestamps restart: continue after the outage
                self.stats["gaps"] += 1
                self._put(gap)
        finally:
            if self._container is not None:
                try:
                    self._container.close()
                except Exception:  # noqa: BLE001
                    pass
                self._container = None
            self._final_put()

    def _final_put(self) -> None:
        # The end marker (latest-frame mode drops only Frames, never it), and the waiter told even when stopped.
        if not self._put(_END) and self._notify is not None:
            self._notify.set()

    def _ended_early(self) -> bool:
        """A file whose decoding reached its end well before the frame count in its header (cut short)."""
        expected = self.info.frame_count
        return bool(expected) and self._index < expected - max(2, expected // 100)

    def _set_error(self, text: str) -> None:
        text = redact(text)
        self.error = text
        self.stats["error"] = text
        log.error("%s", text)

    def _reopen_file(self):
        try:
            c = _open_container(self.uri, self._opts)
            self._vstream, _ = _probe(c, self.uri, False)
            self._container = c
            return c
        except SourceError as exc:
            self._set_error(str(exc))
            return None

    def _reconnect(self):
        attempt = 0
        delay = self.min_backoff
        while not self._stop.is_set():
            if self.max_reconnects is not None and attempt >= self.max_reconnects:
                self._set_error(f"{self.name}: gave up after {attempt} reconnect attempts")
                return None
            attempt += 1
            log.info("%s: reconnect attempt %d in %.1fs", self.name, attempt, delay)
            if not self._sleep(delay):
                return None
            try:
                c = _open_container(self.uri, self._opts)
                vs, _ = _probe(c, self.uri, True)
            except SourceError as exc:
                log.warning("%s: reconnect attempt %d failed: %s", self.name, attempt, exc)
                delay = min(delay * 2, self.max_backoff)
                continue
            if self._stop.is_set():
                c.close()
                return None
            self._vstream = vs  # a new frame size shows as a StreamChange before its first frame (self.info stays)
            self._container = c
            self.stats["reconnects"] += 1
            log.warning("%s: reconnected after %d attempt(s)", self.name, attempt)
            return c
        return None

    def _packets(self, container, vs) -> Iterator[Any]:
        """The video packets, without those the demuxer marks corrupt, except where the mark only comes from a
        segment join: MPEG-TS files joined end to end restart their continuity counters, and FFmpeg marks a
        whole packet of the first half's last few corrupt. A corrupt packet is kept when one of the
        ``_JOIN_LOOKAHEAD`` packets after it is a key frame whose timestamps restart (or leap forward by more
        than ``PTS_JUMP_S``)."""
        held: list[Any] = []  # a corrupt packet and those after it, not yet judged
        for packet in container.demux(vs):
            if not held:
                if packet.is_corrupt:
                    held.append(packet)
                else:
                    yield packet
                continue
            join = _starts_segment(held[-1], packet, vs.time_base)
            held.append(packet)
            if join or len(held) > _JOIN_LOOKAHEAD:
                first, rest = held[0], held[1:]
                held = []
                if join:
                    yield first
                else:
                    self.stats["corrupt_skipped"] += 1
                    log.debug("%s: corrupt packet skipped", self.name)
                for p in rest:  # judged afresh (one may be corrupt too)
                    if held or p.is_corrupt:
                        held.append(p)
                    else:
                        yield p
        for i, p in enumerate(held):  # the end: no join followed
            if i == 0 or p.is_corrupt:
                self.stats["corrupt_skipped"] += 1
            else:
                yield p

    def _decode(self, container) -> None:
        import av

        vs = self._vstream
        for packet in self._packets(container, vs):
            if self._stop.is_set():
                return
            try:
                frames = packet.decode()
            except av.error.ExitError:
                raise
            except av.error.FFmpegError as exc:
                self.stats["corrupt_skipped"] += 1
                log.debug("%s: undecodable packet skipped: %s", self.name, _one_line(exc))
                continue
            for frame in frames:
                if frame.is_corrupt:
                    self.stats["corrupt_skipped"] += 1
                    continue
                try:
                    image = frame.to_ndarray(format="rgb24")
                except Exception as exc:  # noqa: BLE001
                    self.stats["corrupt_skipped"] += 1
                    log.debug("%s: frame conversion failed: %s", self.name, _one_line(exc))
                    continue
                if self.info.rotation:
                    image = upright(image, self.info.rotation)
                now = time.monotonic()
                pts, jump = self._timestamp(frame.time, now)
                shape = (image.shape[1], image.shape[0], frame.format.name)
                if self._shape is not None and shape != self._shape:
                    change = StreamChange(self.name, pts, self._shape[:2], shape[:2], self._shape[2], shape[2],
                                          (self.info.width, self.info.height))
                    log.warning("%s: frames change from %dx%d %s to %dx%d %s at pts %s", self.name, *self._shape,
                                *shape, "?" if pts is None else f"{pts:.3f}")
                    self.stats["stream_changes"] += 1
                    if not self._put(change):
                        return
                self._shape = shape
                if jump is not None and not self._put(jump):
                    return
                item = Frame(index=self._index, pts=pts, image=image, stream=self.name, captured=now)
                self._index += 1
                self._last_capture = item.captured
                if pts is not None:
                    self._last_pts = pts
                self.stats["decoded"] += 1
                if not self._put(item):
                    return


    def _timestamp(self, time_s: float | None, now: float) -> tuple[float | None, PtsJump | None]:
        """The frame's pts in seconds on the output timeline, and a PtsJump when the input's own timestamps
        broke just before it; moves ``self._index`` past frames lost in a file.

        Files: the input's pts; when it jumps by more than 1.5 frame intervals (frames lost to corrupt data),
        the frame index jumps with it, so ``Frame.index`` stays the source frame number, and the missing
        frames are counted in ``stats["frames_missing"]``. A frame without pts gets the previous pts plus one
        frame interval. A live stream's pts start at 0 with its first frame. After a reconnect (or a loop)
        the input's pts restart: they are shifted so that the new frames continue from the last pts before
        the outage plus the outage's wall-clock length. When the input's timestamps restart or go back by more
        than half a frame interval, or leap forward by more than ``PTS_JUMP_S`` (live: more than that beyond the
        wall-clock time between the frames), the pts carry on one frame interval after the last one, the frame
        index goes on by one, and a PtsJump names the raw timestamps (``stats["pts_jumps"]``). Pts never go
        backwards (a repeat moves one frame interval on).
        """
        fps = self.info.fps
        step = 1.0 / fps if fps else 0.001
        raw = float(time_s) if time_s is not None else None
        jump = None
        if not self._rebase and raw is not None and self._last_raw is not None and self._last_pts is not None:
            delta = raw - self._last_raw
            limit = PTS_JUMP_S
            if self.info.is_live and self._last_capture is not None:
                limit += max(now - self._last_capture, 0.0)
            if delta < -step / 2 or delta > limit:
                jump = PtsJump(self.name, self._last_pts + step, self._last_raw, raw)
                self._pts_offset = jump.pts - raw
                self.stats["pts_jumps"] += 1
                log.warning("%s: input timestamps jump from %.3f s to %.3f s; pts go on from %.3f s", self.name,
                            self._last_raw, raw, jump.pts)
        if jump is None and not self.info.is_live and not self._rebase and raw is not None and fps:
            ref = self._last_raw if self._last_raw is not None else self._t0
            if ref is not None:
                skipped = int(round((raw - ref) * fps)) - (1 if self._last_raw is not None else 0)
                if skipped >= 1 and (self._last_raw is None or raw - ref > 1.5 * step):
                    self._index += skipped
                    self.stats["frames_missing"] += skipped
        if self._rebase:
            if self._last_pts is None:
                target = 0.0  # a live stream's first frame
            elif self.info.is_live and self._last_capture is not None:
                target = self._last_pts + max(now - self._last_capture, step)  # the outage shows as a gap
            else:
                target = self._last_pts + step
            if raw is None:
                return target, None  # stays pending until a frame carries a pts
            self._pts_offset = target - raw
            self._rebase = False
        if raw is None:
            return (None if self._last_pts is None else self._last_pts + step), None
        self._last_raw = raw
        pts = raw + self._pts_offset
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + step
        return pts, jump


def open_source(uri: str, **options: Any) -> VideoSource:
    """Open a file, URL (rtsp/http(s)/tcp/udp/rtmp) or webcam (/dev/videoN, webcam:N).

    Options: queue_size, live (latest-frame mode), open_timeout, read_timeout (seconds),
    reconnect, min_backoff, max_backoff, max_reconnects, transport ("tcp"/"udp" for RTSP),
    name (stream label), loop (files: restart at the end), format / video_size / framerate /
    input_format (webcams), av_options (extra FFmpeg options), close_timeout.
    Raises SourceError (one line) when the input cannot be opened.
    """
    return VideoSource(os.fspath(uri), **options)


def open_source_retrying(uri: str, stop: threading.Event | None = None, **options: Any) -> VideoSource | None:
    """``open_source`` for a live input that may be down at startup: retry with the reconnect back-off.

    Attempts follow the same policy as a reconnect (``min_backoff`` doubling up to ``max_backoff``,
    at most ``max_reconnects`` retries; None = forever), each failure logged as a warning. Files are
    opened once. Returns None when ``stop`` is set while waiting; raises the last
    SourceError when the retries are used up.
    """
    uri = os.fspath(uri)
    delay = float(options.get("min_backoff") or 0.5)
    max_backoff = float(options.get("max_backoff") or 30.0)
    max_retries: int | None = options.get("max_reconnects")
    stop = stop or threading.Event()
    attempt = 0
    while not stop.is_set():
        try:
            return open_source(uri, **options)
        except SourceError as exc:
            if not is_live_uri(uri) or (max_retries is not None and attempt >= max_retries):
                raise
            attempt += 1
            log.warning("%s is not available (%s); retry %d in %.1fs", redact(uri), exc, attempt, delay)
        if stop.wait(delay):
            break
        delay = min(delay * 2, max_backoff)
    return None


# ---------------------------------------------------------------------------------------------
# several streams


class MultiSource:
    """Interleave frames of several VideoSources (each with its own decode thread).

    One stream ending or failing never stops the others; iteration ends when all have ended.
    ``failed`` maps a URI that could not be opened to its error line.
    """

    def __init__(self, sources: Iterable[VideoSource], failed: dict[str, str] | None = None) -> None:
        self.sources: list[VideoSource] = list(sources)
        self.failed: dict[str, str] = dict(failed or {})
        self._ready = threading.Event()
        for s in self.sources:
            s._notify = self._ready
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):  # make stream labels unique
            for i, s in enumerate(self.sources):
                s.name = f"{s.name}#{i}"

    @property
    def stats(self) -> dict[str, dict]:
        return {s.name: s.stats for s in self.sources}

    def __enter__(self) -> "MultiSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame | StreamGap]:
        active = list(self.sources)
        start = 0
        while active:
            self._ready.clear()
            got = False
            n = len(active)
            for k in range(n):  # round-robin, one item per source per pass
                s = active[(start + k) % n]
                item = s._get()
                if item is not None:
                    got = True
                    yield item
            start += 1
            ended = [s for s in active if s.finished]
            for s in ended:
                if s.error:
                    log.warning("stream %s ended: %s", s.name, s.error)
                active.remove(s)
            if not got and active:
                self._ready.wait(0.1)

    def close(self) -> None:
        for s in self.sources:
            s.close()


def open_sources(uris: Iterable[str], strict: bool = False, **options: Any) -> MultiSource:
    """Open several inputs concurrently; returns a MultiSource.

    With ``strict=False`` (default) inputs that fail to open are logged and listed in
    ``multi.failed``; SourceError is raised only when none opens.
    """
    uris = [os.fspath(u) for u in uris]
    results: dict[int, Any] = {}

    def opener(i: int, u: str) -> None:
        try:
            results[i] = open_source(u, **options)
        except SourceError as exc:
            results[i] = exc

    threads = [threading.Thread(target=opener, args=(i, u), daemon=True) for i, u in enumerate(uris)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sources, failed = [], {}
    for i, u in enumerate(uris):
        r = results.get(i)
        if isinstance(r, VideoSource):
            sources.append(r)
        else:
            failed[redact(u)] = str(r)
            log.error("%s", r)
    if failed and (strict or not sources):
        for s in sources:
            s.close()
        first = next(iter(failed.values()))
        raise SourceError(first if len(failed) == 1 else f"{len(failed)} inputs failed; first: {first}")
    return MultiSource(sources, failed)
