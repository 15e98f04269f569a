"""Measure the outputs on real clips: how much of the faces the drawings cover, and JSON bytes per face.

    python scripts/measure_outputs.py ../shared/data/video/*.mp4 --max-frames 60 --threads 2

For each clip (default pipeline settings, first N frames), per frame the layout of :mod:`jasr_video.layout`
is planned for ``--inset auto`` and ``--inset side`` with everything drawn, and
:func:`jasr_video.layout.covered_fraction` gives per face the share of its box covered by drawings other
than its own box and landmarks: by placed items (insets and id labels), and by everything (also other
faces' box outlines and landmark dots, which can only touch a face whose box overlaps another's).
Drawing time: ``plan`` + ``render`` (``--inset auto``) per frame, and its ratio to the pipeline's own stage time
(decode to smoothing) in the same run. JSON Lines bytes per face are the frame lines' bytes (newline
included) divided by the faces, for several
``--json-decimals`` / ``--json-landmarks`` settings. Results go to docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from jasr_video.layout import DrawStyle, covered_fraction, plan, render
from jasr_video.pipeline import Pipeline, PipelineConfig

JSON_SETTINGS = ((2, "both"), (2, "smoothed"), (1, "smoothed"), (0, "smoothed"), (1, "none"))


def measure(video: str, max_frames: int) -> dict:
    styles = {"auto": DrawStyle(inset="auto"), "side": DrawStyle(inset="side")}
    cover = {m: {"placed": [], "all": []} for m in styles}
    insets = {m: 0 for m in styles}
    json_bytes = {s: 0 for s in JSON_SETTINGS}
    faces = frames = edge = 0
    draw_s = 0.0
    pipeline = Pipeline(PipelineConfig(max_frames=max_frames))
    for result in pipeline.run(video):
        t0 = time.perf_counter()
        render(result, plan(result, styles["auto"]))  # what the video sink does per frame
        draw_s += time.perf_counter() - t0
        frames += 1
        faces += len(result.faces)
        edge += sum(f.at_edge for f in result.faces)
        for mode, style in styles.items():
            layout = plan(result, style)
            cover[mode]["placed"] += covered_fraction(layout, ("label", "inset"))
            cover[mode]["all"] += covered_fraction(layout)
            insets[mode] += sum(it.kind == "inset" for it in layout.items)
        for d, lm in JSON_SETTINGS:
            json_bytes[(d, lm)] += len(json.dumps(result.to_json(d, lm), separators=(",", ":"))) + 1
    stages = sum(pipeline.stage_seconds().values())
    out = {"video": Path(video).name, "frames": frames, "faces": faces, "at_edge": edge,
           "draw_ms_per_frame": round(1000 * draw_s / max(frames, 1), 2),
           "draw_vs_pipeline_stages": round(draw_s / max(stages, 1e-9), 4)}
    for mode in styles:
        for what in ("placed", "all"):
            c = np.array(cover[mode][what] or [0.0])
            out[f"{mode}_{what}"] = {"mean": float(c.mean()), "max": float(c.max()),
                                     "faces_touched": int((c > 0).sum())}
        out[f"{mode}_insets_shown"] = insets[mode]
    out["json_bytes_per_face"] = {f"decimals={d} landmarks={lm}": round(b / max(faces, 1), 1)
                                  for (d, lm), b in json_bytes.items()}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("videos", nargs="+")
    p.add_argument("--max-frames", type=int, default=60)
    p.add_argument("--threads", type=int)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for video in args.videos:
        print(json.dumps(measure(video, args.max_frames)), flush=True)


if __name__ == "__main__":
    main()
