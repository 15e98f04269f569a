"""Render one annotated frame of a video to a PNG (used for docs/demo_frame.png).

    python examples/demo_frame.py ../shared/data/video/royal_opera_house_1080p25.mp4 docs/demo_frame.png --frame 20
"""
from __future__ import annotations

import argparse

import cv2

from jasr_video import Pipeline, PipelineConfig
from jasr_video.sinks import annotate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video")
    parser.add_argument("png")
    parser.add_argument("--frame", type=int, default=20, help="frame index to render (tracks warm up before it)")
    parser.add_argument("--width", type=int, default=960, help="resize the PNG to this width")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    for result in Pipeline(PipelineConfig(device=args.device, max_frames=args.frame + 1)).run(args.video):
        if result.index == args.frame:
            img = annotate(result)
            h, w = img.shape[:2]
            img = cv2.resize(img, (args.width, round(h * args.width / w)), interpolation=cv2.INTER_AREA)
            cv2.imwrite(args.png, cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
            print(f"wrote {args.png}: frame {result.index}, {len(result.faces)} faces")


if __name__ == "__main__":
    main()
