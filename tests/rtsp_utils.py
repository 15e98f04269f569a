"""Helpers for tests against a real RTSP server (tests/rtsp_server.py, GStreamer, run by /usr/bin/python3)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SERVER = HERE / "rtsp_server.py"
SYS_PY = "/usr/bin/python3"
_CHECK = (
    "import gi; gi.require_version('Gst','1.0'); gi.require_version('GstRtspServer','1.0');"
    "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
    "missing=[e for e in ('appsrc','appsink','filesrc','qtdemux','h264parse','rtph264pay')"
    " if Gst.ElementFactory.find(e) is None]; print(' '.join(missing))"
)


def _gst_missing() -> str | None:
    if not os.path.exists(SYS_PY):
        return f"{SYS_PY} not found"
    try:
        r = subprocess.run([SYS_PY, "-c", _CHECK], capture_output=True, text=True, timeout=30)
    except Exception as exc:  # noqa: BLE001
        return f"cannot run {SYS_PY}: {exc}"
    if r.returncode != 0:
        return "python3-gi / gir1.2-gst-rtsp-server-1.0 not installed"
    if r.stdout.strip():
        return f"GStreamer elements missing: {r.stdout.strip()}"
    return None


_MISSING = _gst_missing()
needs_gst = pytest.mark.skipif(
    _MISSING is not None,
    reason=f"RTSP server unavailable ({_MISSING}); install the packages in .ci/apt-packages.txt",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    def __init__(self, clip: Path, port: int, name: str = "cam", args: tuple = ()) -> None:
        """`args`: more options of tests/rtsp_server.py (e.g. ``("--then", clip2)``)."""
        self.clip, self.port, self.name, self.args = clip, port, name, tuple(map(str, args))
        self.proc: subprocess.Popen | None = None
        self.url = f"rtsp://127.0.0.1:{port}/{name}"

    def start(self, timeout: float = 20.0) -> "RtspServer":
        self.proc = subprocess.Popen(
            [SYS_PY, str(SERVER), str(self.clip), "--port", str(self.port), "--name", self.name, *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        ready = threading.Event()

        def wait_line() -> None:
            for line in self.proc.stdout:
                if line.startswith("READY"):
                    ready.set()
                    return

        threading.Thread(target=wait_line, daemon=True).start()
        t0 = time.monotonic()
        while not ready.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() - t0 > timeout:
                err = self.proc.stderr.read() if self.proc.poll() is not None else ""
                self.stop()
                pytest.fail(f"RTSP server did not start: {err[-500:]}")
        return self

    def signal(self, sig: int) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        if self.proc:
            for f in (self.proc.stdout, self.proc.stderr):
                if f:
                    f.close()
        self.proc = None
