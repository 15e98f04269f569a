"""Credentials never leave the process: one redact() for URLs, query secrets and FFmpeg error text."""
from __future__ import annotations

import http.server
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from jasr_video.multistream import stream_label
from jasr_video.redact import RedactFilter, redact, remember, secrets_of
from jasr_video.source import SourceError, open_source

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("text,secrets,kept", [
    ("rtsp://user:secret@cam.local:554/live", ["user", "secret"], ["rtsp://***@cam.local:554/live"]),
    ("rtsp://user:p@ss@cam/stream", ["p@ss", "user"], ["rtsp://***@cam/stream"]),  # '@' in the password
    ("rtsp://user:pa/ss@cam/stream", ["pa/ss", "user:"], ["***@cam/stream"]),  # '/' in the password
    ("rtsp://admin:p@ss/w0rd@cam:554/h264", ["p@ss", "w0rd"], ["***@cam:554/h264"]),
    ("http://cam/video?password=hunter2&res=hd", ["hunter2"], ["password=***", "res=hd"]),
    ("http://cam/v?user=bob&passwd=hunter2", ["hunter2"], ["passwd=***", "user=bob"]),
    ("http://cam/v?pwd=hunter2", ["hunter2"], ["pwd=***"]),
    ("https://cdn/x.m3u8?token=abc123&key=k3y99&secret=s3cr&auth=au7h&signature=5ig",
     ["abc123", "k3y99", "s3cr", "au7h", "5ig"], ["token=***", "key=***", "signature=***"]),
    ("https://s3/x.mp4?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA1&access_token=t0kv4l",
     ["deadbeef", "AKIA1", "t0kv4l"], ["X-Amz-Signature=***"]),
    # FFmpeg's own error text quotes the URL
    ("[Errno 5] Input/output error: 'rtsp://admin:hunter2@10.0.0.5/cam'", ["hunter2", "admin"],
     ["Input/output error: 'rtsp://***@10.0.0.5/cam'"]),
    ("stream lost (Server returned 401 Unauthorized (authorization failed) for http://u:pw%40x@h/s?token=zz9); "
     "reconnecting", ["pw%40x", "zz9"], ["http://***@h/s?token=***", "reconnecting"]),
    ("a b rtsp://cam/stream c", [], ["a b rtsp://cam/stream c"]),  # nothing to hide: unchanged
])
def test_redact_forms(text, secrets, kept):
    out = redact(text)
    for s in secrets:
        assert s not in out, out
    for k in kept:
        assert k in out, out


def test_param_names_survive_remembered_secrets():
    remember("rtsp://u:secret@cam/s")  # a password that is also a parameter name
    out = redact("https://cdn/x.m3u8?secret=s3cr3t&res=hd")
    assert "s3cr3t" not in out and "res=hd" in out


def test_remembered_secrets_are_hidden_anywhere():
    uri = "rtsp://viewer:Zq9%2Fsecret@cam/s?token=T0k3nXYZ"
    assert {"Zq9%2Fsecret", "Zq9/secret", "T0k3nXYZ"} <= set(secrets_of(uri))
    remember(uri)
    # e.g. FFmpeg's text holding the decoded password outside any URL
    out = redact("auth failed for user viewer with Zq9/secret; token T0k3nXYZ rejected")
    assert "Zq9/secret" not in out and "T0k3nXYZ" not in out


def test_stream_labels_and_log_records_are_redacted():
    for uri, label in (("rtsp://user:p/ss@cam", "cam"), ("rtsp://u:p@ss@cam/", "cam"), ("rtsp://u:x/y@cam/live", "live")):
        assert stream_label(uri) == label, uri
    record = logging.LogRecord("jasr_video.source", logging.WARNING, __file__, 1, "lost %s: %s", (
        "rtsp://a:b0b0b0@cam/x", "error for 'http://h/v?token=qq77qq'"), None)
    RedactFilter().filter(record)
    assert "b0b0b0" not in record.getMessage() and "qq77qq" not in record.getMessage()


class _Unauthorized(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="cam"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_401():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unauthorized)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_http_failure_never_shows_the_password(http_401, tmp_path):
    """A real HTTP server refusing the credentials: the error line and the log hide them (library and CLI)."""
    url = f"http://admin:Sup3r%40Secret@127.0.0.1:{http_401}/video.mjpg?token=Tk99zz&res=hd"
    with pytest.raises(SourceError) as e:
        open_source(url, open_timeout=5)
    text = str(e.value)
    assert "Sup3r" not in text and "Tk99zz" not in text and "access denied" in text
    r = subprocess.run([sys.executable, "-m", "jasr_video.cli", url, "--json", str(tmp_path / "{stream}.jsonl"),
                        "--open-timeout", "5", "--debug"], cwd=REPO, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.returncode == 2, r.stderr
    for stream in (r.stdout, r.stderr):
        assert "Sup3r" not in stream and "Tk99zz" not in stream, stream
    assert not list(tmp_path.iterdir())
