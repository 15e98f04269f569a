"""Crop calibration: how the 68-landmark box of a face sits in its MTCNN box, measured on real faces.

    python -m jasr_video.tools.calibrate --calibrate --output docs/calibration.json

MTCNN runs on the 300-W / HELEN test faces at full size and down-scaled to tiny faces; per face the landmark
box is compared with the detection box (centre offset and size ratio, medians per scale). The results are the
constants of :data:`jasr_video.crop.CALIBRATION` (docs/pipeline.md, "Crop geometry").
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch


def calibrate(folder: str | Path, limit: int = 330, scales: Sequence[float] = (1.0, 0.25, 0.125),
              min_face_size: int = 12) -> dict:
    """Run MTCNN on 300-W crops and measure landmark box vs MTCNN box (offset and size ratio)."""
    from ..detect import FaceDetector
    from ..model.data import read_pts

    torch.set_num_threads(1)
    det = FaceDetector(min_face_size=min_face_size)
    files = sorted(Path(folder).glob("*.jpg"))[:limit]
    rows: dict[float, list[tuple[float, float, float, float]]] = {s: [] for s in scales}
    missed = {s: 0 for s in scales}
    for path in files:
        pts = read_pts(path.with_suffix(".pts"))
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        for s in scales:
            img = image if s == 1.0 else cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
            p = pts * s if s == 1.0 else (pts + 0.5) * s - 0.5
            lo, hi = p.min(0), p.max(0)
            lc, lside = (lo + hi) / 2, float((hi - lo).max())
            dets = det.detect([img])[0]
            best, best_d = None, np.inf
            for d in dets:  # the detection whose centre is nearest the landmark-box centre
                bc = (d.box[:2] + d.box[2:]) / 2
                dist = float(np.hypot(*(bc - lc)))
                if dist < best_d:
                    best, best_d = d, dist
            if best is None or best_d > 0.5 * lside:
                missed[s] += 1
                continue
            w, h = float(best.box[2] - best.box[0]), float(best.box[3] - best.box[1])
            bc = (best.box[:2] + best.box[2:]) / 2
            rows[s].append(((lc[0] - bc[0]) / w, (lc[1] - bc[1]) / h, lside / max(w, h), max(w, h)))
    out: dict = {"faces": len(files), "per_scale": {}}
    all_rows = [r for s in scales for r in rows[s]]
    for key, rs in [*[(str(s), rows[s]) for s in scales], ("all", all_rows)]:
        a = np.array(rs) if rs else np.zeros((0, 4))
        stats = {
            "matched": len(rs),
            "offset_x_median": float(np.median(a[:, 0])) if len(a) else None,
            "offset_y_median": float(np.median(a[:, 1])) if len(a) else None,
            "size_ratio_median": float(np.median(a[:, 2])) if len(a) else None,
            "size_ratio_iqr": [float(np.percentile(a[:, 2], 25)), float(np.percentile(a[:, 2], 75))] if len(a) else None,
            "offset_y_iqr": [float(np.percentile(a[:, 1], 25)), float(np.percentile(a[:, 1], 75))] if len(a) else None,
            "mtcnn_box_px_median": float(np.median(a[:, 3])) if len(a) else None,
        }
        if key != "all":
            stats["missed"] = missed[float(key)]
        out["per_scale" if key != "all" else "overall"] = (
            {**out["per_scale"], key: stats} if key != "all" else stats)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure the MTCNN-box -> landmark-box relation on real faces.")
    parser.add_argument("--calibrate", action="store_true", help="run the calibration")
    parser.add_argument("--folder", default=str(Path(__file__).resolve().parents[3] / "shared/data/faces68/test"),
                        help="folder of 300-W .jpg + .pts pairs (default: ../shared/data/faces68/test)")
    parser.add_argument("--limit", type=int, default=330, help="number of faces to use")
    parser.add_argument("--output", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if not args.calibrate:
        parser.print_help()
        return 0
    result = calibrate(args.folder, args.limit)
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
