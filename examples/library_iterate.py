"""Use jasr-video as a library: iterate per-frame results and print what each track does.

    python examples/library_iterate.py ../shared/data/video/royal_opera_house_1080p25.mp4 --max-frames 25
"""
from __future__ import annotations

import argparse

from jasr_video import Pipeline, PipelineConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video")
    parser.add_argument("--max-frames", type=int, default=25)
    parser.add_argument("--detect-every", type=int, default=1)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    config = PipelineConfig(device=args.device, max_frames=args.max_frames, detect_every=args.detect_every)
    pipeline = Pipeline(config)
    for result in pipeline.run(args.video):
        faces = ", ".join(
            f"#{f.track_id} {f.face_px:.0f}px{' (<16px)' if f.below_16px else ''} "
            f"eyes=({f.landmarks_smoothed[36][0]:.0f},{f.landmarks_smoothed[36][1]:.0f})-"
            f"({f.landmarks_smoothed[45][0]:.0f},{f.landmarks_smoothed[45][1]:.0f}) "
            f"conf={f.landmark_confidence.mean():.2f}"
            for f in result.faces
        )
        kind = "det " if result.detected else "pred"
        print(f"frame {result.index:4d} t={result.pts or 0:6.2f}s {kind} {len(result.faces)} faces: {faces}")
    print(pipeline.summary())


if __name__ == "__main__":
    main()
