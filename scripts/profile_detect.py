"""Where the fast MTCNN path spends its time: ms per frame at several frame batch sizes, and a cProfile of one.

    python scripts/profile_detect.py --device cuda --clip ../shared/data/video/royal_opera_house_1080p25.mp4

A profiling aid for docs/benchmarks.md (not a test). On CUDA, time spent waiting for the GPU shows up in
the calls that synchronise (.cpu(), nonzero, NMS).
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import torch

from jasr_video.detect import FaceDetector
from jasr_video.source import open_source


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clip", default="../shared/data/video/royal_opera_house_1080p25.mp4")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="auto", help="P-net precision")
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--profile-batch", type=int, default=4)
    args = ap.parse_args()
    with open_source(args.clip, loop=True) as src:
        frames = [f.image for _, f in zip(range(args.frames), src)]
    detector = FaceDetector(12, device=args.device, min_score=0.9, precision=args.precision)

    def run(batch: int) -> float:
        sync = torch.cuda.synchronize if detector.device.type == "cuda" else (lambda: None)
        detector.detect(frames[:batch])  # warm-up at this batch size
        sync()
        start = time.perf_counter()
        for k in range(0, len(frames) - batch + 1, batch):
            detector.detect(frames[k:k + batch])
        sync()
        return (time.perf_counter() - start) / (len(frames) // batch * batch)

    for batch in args.batches:
        print(f"batch {batch:3d}: {1000 * run(batch):7.1f} ms per frame", flush=True)
    profiler = cProfile.Profile()
    profiler.enable()
    run(args.profile_batch)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(22)


if __name__ == "__main__":
    main()
