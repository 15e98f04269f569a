"""`jasr-video --demo`: find the demo clip, or build a built-in stand-in when the shared data is absent.

The demo clip is ``video/royal_opera_house_1080p25.mp4`` of the project's data folder, looked up in
``$JASR_VIDEO_DATA`` (when set, only there), else ``../shared/data`` beside the repository or the
current folder. Nothing is downloaded. Without it, the demo renders a clip made at run time from
``grace_hopper.jpg``, the public-domain portrait that matplotlib ships (matplotlib is installed with
filterpy): the face zooms out from about 65 px to 12 px while drifting sideways, so detection,
tracking, super-resolution, landmarks, smoothing and both outputs all run on a real face.
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

CLIP = Path("video") / "royal_opera_house_1080p25.mp4"
DEMO_DIR = Path("demo")
ENV = "JASR_VIDEO_DATA"
REPO = Path(__file__).resolve().parents[1]


def data_dirs() -> list[Path]:
    """Where the data folder is looked for, in order."""
    if os.environ.get(ENV):
        return [Path(os.environ[ENV]).expanduser()]
    dirs = [REPO.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    return list(dict.fromkeys(d.resolve() for d in dirs))


def find_clip() -> Path | None:
    """The shared demo clip, or None when no data folder holds it."""
    for d in data_dirs():
        if (d / CLIP).is_file():
            return d / CLIP
    return None


def missing_message() -> str:
    """One line: what is missing and how to fix it."""
    where = " or ".join(str(d) for d in data_dirs())
    return (f"demo clip {CLIP} not found in {where} (set {ENV}=/path/to/data, the folder holding {CLIP}, "
            f"or run from a checkout beside shared/data)")


def fallback_image() -> Path | None:
    """matplotlib's sample portrait (public domain), when matplotlib is installed."""
    try:
        from matplotlib import cbook

        path = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    except Exception:  # noqa: BLE001 - absent or a build without sample data
        return None
    return path if path.is_file() else None


def make_fallback_clip(image: Path, dst: Path, frames: int = 75, size: tuple[int, int] = (640, 360),
                       fps: int = 25) -> Path:
    """Write an H.264 clip of `image` zooming out (face ~65 -> ~12 px) and drifting, on a grey ground."""
    import av
    import cv2

    img = cv2.imread(str(image), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot read {image}")
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    w, h = size
    tmp = dst.with_name(dst.name + ".partial")
    with av.open(str(tmp), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps, options={"crf": "18", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(frames):
            t = i / max(frames - 1, 1)
            scale = 0.30 * (0.06 / 0.30) ** t  # geometric zoom: the face is ~220 px at scale 1
            small = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            frame = np.full((h, w, 3), 118, np.uint8)
            sh, sw = small.shape[:2]
            cx = int(w * (0.35 + 0.3 * t))
            x0, y0 = cx - sw // 2, h // 2 - sh // 2
            xs, ys = max(x0, 0), max(y0, 0)
            xe, ye = min(x0 + sw, w), min(y0 + sh, h)
            frame[ys:ye, xs:xe] = small[ys - y0:ye - y0, xs - x0:xe - x0]
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    os.replace(tmp, dst)
    return dst
