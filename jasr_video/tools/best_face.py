"""Best faces against picks made by eye: contact sheets of every track, and how often the automatic pick agrees.

    python -m jasr_video.tools.best_face VIDEO --sheets DIR          # one contact sheet per track, to pick by eye
    python -m jasr_video.tools.best_face VIDEO --compare PICKS.json   # agreement with such picks (docs/benchmarks.md)

The automatic pick is :class:`jasr_video.gallery.TrackGallery`'s (:func:`jasr_video.gallery.quality`); size,
landmark confidence and sharpness alone are compared beside it.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ..gallery import TrackGallery, _write_png, native_crop, sharpness


def _run(video: str, max_frames: int | None, threads: int | None
         ) -> tuple[TrackGallery, dict[int, dict[int, np.ndarray]], dict[int, list[tuple[int, float, float, float]]]]:
    import torch

    from ..pipeline import Pipeline, PipelineConfig

    if threads:
        torch.set_num_threads(threads)
    gallery = TrackGallery()
    crops: dict[int, dict[int, np.ndarray]] = {}
    features: dict[int, list[tuple[int, float, float, float]]] = {}  # per track: (frame, size, confidence, sharpness)
    for result in Pipeline(PipelineConfig(max_frames=max_frames)).run(video):
        gallery.write(result)
        for face in result.faces:
            native = crops.setdefault(face.track_id, {})[result.index] = native_crop(result.image, face.crop)
            features.setdefault(face.track_id, []).append(
                (result.index, float(face.face_px), float(np.mean(face.landmark_confidence)), sharpness(native)))
    return gallery, crops, features


def contact_sheet(crops: dict[int, np.ndarray], cell: int = 96, columns: int = 10) -> np.ndarray:
    """Every frame's crop of one track, resized to ``cell`` px, with its frame number, in a grid (RGB)."""
    frames = sorted(crops)
    rows = (len(frames) + columns - 1) // columns
    sheet = np.full((rows * (cell + 14), columns * cell, 3), 255, np.uint8)
    for k, f in enumerate(frames):
        r, c = divmod(k, columns)
        y, x = r * (cell + 14), c * cell
        sheet[y + 14:y + 14 + cell, x:x + cell] = cv2.resize(crops[f], (cell, cell), interpolation=cv2.INTER_NEAREST)
        cv2.putText(sheet, str(f), (x + 2, y + 11), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return sheet


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jasr_video.tools.best_face", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video")
    p.add_argument("--sheets", metavar="DIR", help="write track_NNNN.png contact sheets of every track's crops")
    p.add_argument("--compare", metavar="PICKS", help="JSON {track_id: [frames judged best by eye]}: report agreement")
    p.add_argument("--tolerance", type=int, default=2, help="frames either side of a by-eye pick that also agree "
                   "(neighbouring frames look alike; default: 2)")
    p.add_argument("--max-frames", type=int)
    p.add_argument("--threads", type=int)
    args = p.parse_args(argv)
    gallery, crops, features = _run(args.video, args.max_frames, args.threads)
    if args.sheets:
        out = Path(args.sheets)
        out.mkdir(parents=True, exist_ok=True)
        for t in gallery.tracks():
            _write_png(out / f"track_{t.track_id:04d}.png", contact_sheet(crops[t.track_id]))
            print(f"track {t.track_id}: frames {t.first_frame}-{t.last_frame} ({t.frames}), auto best {t.best.frame}")
    if args.compare:
        picks = {int(k): [int(f) for f in v] for k, v in json.loads(Path(args.compare).read_text())["picks"].items()}
        choices = {"quality (the gallery's pick)": {t.track_id: t.best.frame for t in gallery.tracks() if t.best}}
        for name, k in (("largest face only", 1), ("landmark confidence only", 2), ("sharpness only", 3)):
            choices[name] = {tid: max(rows, key=lambda r: r[k])[0] for tid, rows in features.items()}
        n = len(picks)
        for name, auto in choices.items():
            exact = near = 0
            for tid, frames in sorted(picks.items()):
                a = auto.get(tid)
                hit = a in frames
                close = a is not None and min(abs(a - f) for f in frames) <= args.tolerance
                exact, near = exact + hit, near + close
                if name.startswith("quality"):
                    print(f"track {tid}: by eye {frames}, automatic {a}: {'agree' if hit else 'near' if close else 'differ'}")
            print(f"{name}: {exact}/{n} tracks on a by-eye frame, {near}/{n} within {args.tolerance} frames")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
