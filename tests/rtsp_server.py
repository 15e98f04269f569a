#!/usr/bin/python3
"""Tiny RTSP test server: serves an H.264 .mp4 looped forever at rtsp://127.0.0.1:PORT/NAME.

Run with the system python that has GObject introspection (not the venv):

    /usr/bin/python3 tests/rtsp_server.py clip.mp4 --port 8554 --name cam

Needs (Debian): gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
gstreamer1.0-plugins-bad python3-gi. The clip's H.264 access units are read once into memory and
pushed through appsrc with timestamps shifted by one clip duration per loop, so the stream never
ends; each client gets its own copy of the stream from the first key frame.
Prints "READY <url>" on stdout once listening.

``--then CLIP2`` serves CLIP2 after CLIP (each loop plays both; CLIP2 may have another frame size: a camera
switching profile). ``--restart-ts``: the timestamps start again at each clip's start instead of running on
(a stream whose timestamps restart, as recordings joined end to end).
"""

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def load_access_units(path):
    """[(pts, dts, duration, bytes)] of the file's H.264 in byte-stream/AU form, SPS/PPS inline."""
    pipe = Gst.parse_launch(
        f'filesrc location="{path}" ! qtdemux ! h264parse ! '
        "video/x-h264,stream-format=byte-stream,alignment=au ! appsink name=sink sync=false"
    )
    sink = pipe.get_by_name("sink")
    pipe.set_state(Gst.State.PLAYING)
    units, caps = [], None
    while True:
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        caps = caps or sample.get_caps()
        buf = sample.get_buffer()
        ok, info = buf.map(Gst.MapFlags.READ)
        units.append((buf.pts, buf.dts, buf.duration, bytes(info.data)))
        buf.unmap(info)
    pipe.set_state(Gst.State.NULL)
    if not units:
        sys.exit(f"no H.264 video found in {path}")
    return units, caps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("clip")
    ap.add_argument("--port", type=int, default=8554)
    ap.add_argument("--name", default="cam")
    ap.add_argument("--then", help="a second clip served after the first in every loop")
    ap.add_argument("--restart-ts", action="store_true", help="timestamps restart at each clip's start")
    args = ap.parse_args()
    Gst.init(None)
    units, caps = load_access_units(args.clip)
    frame_dur = units[0][2] if units[0][2] != Gst.CLOCK_TIME_NONE else Gst.SECOND // 25
    caps_str = caps.to_string()
    if args.then:  # one sequence: the second clip's timestamps follow the first's (or restart)
        first_dur = max(u[0] for u in units) + frame_dur
        more, _ = load_access_units(args.then)
        at = 0 if args.restart_ts else first_dur
        units = units + [(pts + at, dts + at if dts != Gst.CLOCK_TIME_NONE else dts, dur, data)
                         for pts, dts, dur, data in more]
        caps_str = caps_str.split(",")[0] + ",stream-format=byte-stream,alignment=au"  # sizes come from the SPS
    loop_dur = 0 if args.restart_ts else max(u[0] for u in units) + frame_dur

    def on_configure(factory, media):
        src = media.get_element().get_child_by_name("src")
        state = {"i": 0}

        def need_data(appsrc, _length):
            i = state["i"]
            pts, dts, dur, data = units[i % len(units)]
            shift = (i // len(units)) * loop_dur
            buf = Gst.Buffer.new_wrapped(data)
            buf.pts = pts + shift
            buf.dts = (dts + shift) if dts != Gst.CLOCK_TIME_NONE else Gst.CLOCK_TIME_NONE
            buf.duration = frame_dur
            state["i"] = i + 1
            appsrc.emit("push-buffer", buf)

        src.connect("need-data", need_data)

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( appsrc name=src is-live=false format=time caps="{caps_str}" ! h264parse ! '
        "rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )
    factory.set_shared(False)
    factory.connect("media-configure", on_configure)
    server.get_mount_points().add_factory(f"/{args.name}", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{args.port}")
    print(f"READY rtsp://127.0.0.1:{args.port}/{args.name}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
