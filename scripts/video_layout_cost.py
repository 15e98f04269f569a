"""What the crash-safe video layout costs: the annotated-video sink writing the same frames as fragmented MP4
(what ``--out x.mp4`` writes, a fragment per frame flushed to disk, so a killed run's ``.partial`` plays) and as
Matroska (no per-frame fragments). Prints size and encode time of each as JSON.

    python scripts/video_layout_cost.py ../shared/data/video/royal_opera_house_1080p25.mp4 --frames 50

A measuring aid for the notes on the output layout (not a test); timings are wall clock on a shared machine,
so compare the two rows of one run (each the faster of two alternating encodes).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from jasr_video.pipeline import FrameResult
from jasr_video.sinks import VideoSink
from jasr_video.source import Frame, open_source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video")
    parser.add_argument("--frames", type=int, default=50)
    args = parser.parse_args()
    with open_source(args.video) as src:
        info = src.info
        frames = [f for f in src if isinstance(f, Frame)][: args.frames]
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        # alternating, twice each; the faster of the two runs counts (the first encode also warms up x264)
        for name in ("fragmented.mp4", "plain.mkv", "fragmented.mp4", "plain.mkv"):
            path = Path(tmp) / name
            sink = VideoSink(path, info)
            t0 = time.perf_counter()
            for f in frames:
                sink.write(FrameResult(f.index, f.pts, f.image, []))
            sink.close()
            seconds = round(time.perf_counter() - t0, 2)
            best = min(seconds, results.get(name, {}).get("encode_s", seconds))
            results[name] = {"frames": len(frames), "bytes": path.stat().st_size, "encode_s": best}
            path.unlink()
    a, b = results["fragmented.mp4"], results["plain.mkv"]
    results["size_ratio"] = round(a["bytes"] / b["bytes"], 3)
    results["time_ratio"] = round(a["encode_s"] / b["encode_s"], 3)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
