"""Live sources against a real RTSP server (GStreamer gst-rtsp-server run by the system python).

The server is tests/rtsp_server.py, started with /usr/bin/python3 and ended by PID. These tests skip
(with the reason) when the GStreamer packages listed in .ci/apt-packages.txt are not installed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from jasr_video.source import Frame, SourceError, StreamGap, open_source, open_sources

from rtsp_utils import RtspServer, free_port, needs_gst
from video_utils import remux_video


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory) -> Path:
    """A 2 s 320x240 H.264 clip (single slice, no B-frames, key frame every second)."""
    path = tmp_path_factory.mktemp("rtsp") / "small.mp4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        s.options = {"bf": "0", "g": "25", "preset": "ultrafast", "threads": "1"}
        for i in range(50):
            img = np.zeros((240, 320, 3), np.uint8)
            img[:, (i * 6) % 300 : (i * 6) % 300 + 20] = 255
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 25)
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


@pytest.fixture
def server(small_clip):
    srv = RtspServer(small_clip, free_port()).start()
    yield srv
    srv.stop()


class SilentServer:
    """Accepts TCP connections and never sends a byte."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                continue

    def close(self) -> None:
        self._stop = True
        self.thread.join(2)
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.fixture
def silent():
    s = SilentServer()
    yield s
    s.close()


# ---------------------------------------------------------------------------------------------


@needs_gst
@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_rtsp_read_frames(server, transport):
    with open_source(server.url, transport=transport, open_timeout=5, live=False) as src:
        assert src.info.is_live and (src.info.width, src.info.height) == (320, 240)
        frames = []
        for item in src:
            assert isinstance(item, Frame)
            frames.append(item)
            if len(frames) == 60:  # more than one loop of the 50-frame clip
                break
    assert [f.index for f in frames] == list(range(60))
    assert all(f.image.shape == (240, 320, 3) and f.image.dtype == np.uint8 for f in frames)
    pts = [f.pts for f in frames if f.pts is not None]
    assert pts == sorted(pts) and len(pts) >= 58
    assert src.stats["decoded"] >= 60


@needs_gst
def test_rtsp_server_restart_reconnects(server):
    fds_before = len(os.listdir("/proc/self/fd"))
    with open_source(server.url, open_timeout=3, read_timeout=3, min_backoff=0.25, max_backoff=1.0) as src:
        before, after, gaps = 0, 0, []
        restarted = False
        t0 = time.monotonic()
        for item in src:
            if isinstance(item, StreamGap):
                gaps.append(item)
                continue
            if not gaps:
                before += 1
                if before == 20 and not restarted:
                    server.stop()  # SIGKILL mid-stream
                    time.sleep(1.0)
                    server.start()  # same port
                    restarted = True
            else:
                after += 1
                if after == 20:
                    break
            assert time.monotonic() - t0 < 40, "no recovery"
    assert before >= 20 and after == 20
    assert len(gaps) == 1 and gaps[0].duration > 0.5 and gaps[0].stream == src.name
    assert src.stats["reconnects"] == 1 and src.stats["gaps"] == 1
    assert len(os.listdir("/proc/self/fd")) <= fds_before  # no socket leaked across the reconnect


@needs_gst
def test_rtsp_stall_times_out(server):
    """Server frozen mid-stream (SIGSTOP): the read times out within the configured time."""
    read_timeout = 2.0
    src = open_source(server.url, open_timeout=5, read_timeout=read_timeout, reconnect=False)
    try:
        n = 0
        t_stall = None
        for item in src:
            n += 1
            if n == 10:
                server.signal(signal.SIGSTOP)
                t_stall = time.monotonic()
        elapsed = time.monotonic() - t_stall
    finally:
        server.signal(signal.SIGCONT)
        src.close()
    assert elapsed < read_timeout + 1.5, f"stalled stream took {elapsed:.1f}s to end"
    assert src.error and "reconnect is off" in src.error


@needs_gst
def test_rtsp_stall_reconnects(server):
    """Frozen server: read timeout -> reconnect attempts (back-off) -> server resumes -> StreamGap."""
    with open_source(server.url, open_timeout=2, read_timeout=1.5, min_backoff=0.2, max_backoff=0.5) as src:
        n, gap, after = 0, None, 0
        t0 = time.monotonic()
        for item in src:
            if isinstance(item, StreamGap):
                gap = item
                continue
            n += 1
            if n == 10:
                server.signal(signal.SIGSTOP)
                threading.Timer(3.0, server.signal, args=(signal.SIGCONT,)).start()
            if gap is not None:
                after += 1
                if after == 10:
                    break
            assert time.monotonic() - t0 < 30, "no recovery"
    assert gap is not None and "read timeout" in gap.reason and gap.duration > 0.5
    assert src.stats["reconnects"] == 1


@needs_gst
def test_latest_frame_mode_bounds_latency(server):
    with open_source(server.url, open_timeout=5, queue_size=1) as src:  # live default for rtsp
        assert src.live_mode
        lat = []
        for item in src:
            if isinstance(item, Frame):
                lat.append(time.monotonic() - item.captured)
                time.sleep(0.15)  # ~6 fps consumer on a 25 fps camera
                if len(lat) == 12:
                    break
    assert src.stats["dropped"] > 10
    # a stale frame waits at most one consumer step; it never piles up
    assert max(lat[2:]) < 0.5, lat


@needs_gst
def test_multisource_one_failure_does_not_stop_others(small_clip):
    a = RtspServer(small_clip, free_port(), "a").start()
    b = RtspServer(small_clip, free_port(), "b").start()
    try:
        multi = open_sources([a.url, b.url], open_timeout=5, read_timeout=2, reconnect=False, live=False)
        counts = {a.url: 0, b.url: 0}
        with multi:
            for item in multi:
                if not isinstance(item, Frame):
                    continue
                counts[item.stream] += 1
                if counts[a.url] == 10 and a.proc is not None:
                    a.stop()  # stream a dies
                if counts[b.url] >= 60:
                    break
        assert counts[b.url] >= 60
        assert 10 <= counts[a.url] < 60
        assert multi.sources[0].finished and multi.sources[0].error
    finally:
        a.stop()
        b.stop()


def test_silent_rtsp_server_times_out(silent):
    t0 = time.monotonic()
    with pytest.raises(SourceError) as e:
        open_source(f"rtsp://127.0.0.1:{silent.port}/cam", open_timeout=2.0)
    wall = time.monotonic() - t0
    assert wall < 2.0 + 2.5, wall
    assert "timed out" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("scheme", ["http", "tcp"])
def test_silent_http_tcp_times_out(silent, scheme):
    t0 = time.monotonic()
    with pytest.raises(SourceError) as e:
        open_source(f"{scheme}://127.0.0.1:{silent.port}/stream", open_timeout=1.5)
    wall = time.monotonic() - t0
    assert wall < 1.5 + 2.5, wall
    assert "\n" not in str(e.value)


def test_unreachable_url_one_line():
    port = free_port()  # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(SourceError) as e:
        open_source(f"rtsp://user:secret@127.0.0.1:{port}/cam", open_timeout=3)
    msg = str(e.value)
    assert time.monotonic() - t0 < 3 + 2.5
    assert "refused" in msg and "\n" not in msg
    assert "secret" not in msg  # credentials never shown


def test_missing_webcam_one_line():
    with pytest.raises(SourceError) as e:
        open_source("/dev/video99", open_timeout=2)
    assert "\n" not in str(e.value) and "video99" in str(e.value)


@needs_gst
def test_sigint_stops_cleanly(server, tmp_path):
    script = tmp_path / "consume.py"
    script.write_text(textwrap.dedent(f"""
        import faulthandler, signal, sys, time
        faulthandler.register(signal.SIGUSR1)  # the test asks for every thread's stack if the process hangs
        # Ctrl-C as at a terminal: a test run started in the background by a script ("cmd &") hands SIGINT
        # down ignored, and Python then installs no KeyboardInterrupt handler
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from jasr_video.source import open_source
        n = 0
        try:
            with open_source({server.url!r}, open_timeout=5) as src:
                for f in src:
                    n += 1
                    if n == 5:
                        print("RUNNING", flush=True)
        except KeyboardInterrupt:
            print("INTERRUPTED", n, src._thread.is_alive(), flush=True)
    """))
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("RUNNING"), p.stderr.read()
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        try:
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGUSR1)
            time.sleep(1)
            p.kill()
            out, err = p.communicate()
            pytest.fail(f"no exit within 10 s of SIGINT; stdout: {out!r}; the threads' stacks:\n{err}")
        assert time.monotonic() - t0 < 5
        assert p.returncode == 0, err
        assert out.startswith("INTERRUPTED") and out.strip().endswith("False"), out
        assert "Traceback" not in err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_http_file_is_finite(small_clip):
    """An http URL of a finite file is decoded to its end (not treated as a live camera)."""
    import functools
    import http.server

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(small_clip.parent))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.log_message = lambda *a, **k: None
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/{small_clip.name}"
        with open_source(url, open_timeout=5) as src:
            assert not src.info.is_live and not src.live_mode and src.info.frame_count == 50
            frames = [f for f in src if isinstance(f, Frame)]
        assert len(frames) == 50 and src.error is None
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_tcp_stream_reconnects(small_clip, tmp_path):
    """tcp:// MPEG-TS stream whose sender closes after each clip: reconnect, gap, more frames."""
    ts = tmp_path / "clip.ts"
    remux_video(small_clip, ts, fmt="mpegts")
    data = ts.read_bytes()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            with c:
                try:
                    c.sendall(data)
                except OSError:
                    pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        url = f"tcp://127.0.0.1:{srv.getsockname()[1]}"
        with open_source(url, open_timeout=3, live=False, min_backoff=0.1) as src:
            assert src.info.is_live and src.reconnect
            frames, gaps = 0, []
            for item in src:
                if isinstance(item, StreamGap):
                    gaps.append(item)
                else:
                    frames += 1
                if frames >= 70:
                    break
        assert gaps and gaps[0].reason == "end of stream"
        assert src.stats["reconnects"] >= 1
    finally:
        stop.set()
        t.join(2)
        srv.close()


def test_open_that_never_returns_is_abandoned(monkeypatch):
    """Guard for PyAV issue 584: even if av.open itself ignores its timeout, open_source returns."""
    release = threading.Event()

    def stuck_open(*args, **kwargs):
        release.wait(30)
        raise av.error.ExitError(-1, "released")

    monkeypatch.setattr(av, "open", stuck_open)
    t0 = time.monotonic()
    try:
        with pytest.raises(SourceError, match="timed out"):
            open_source("rtsp://127.0.0.1:9/cam", open_timeout=1.0)
        assert time.monotonic() - t0 < 1.0 + 2.5
    finally:
        release.set()
