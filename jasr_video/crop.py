"""Square face crops that match the training crop, and the way back from crop to frame coordinates.

Training crop (``jasr_video.model.data.crop_transform``): side = margin (1.4) x the longer side of the
68-landmark box, centred on the landmark-box centre, resized to 128x128. At run time there are no
landmarks yet, only an MTCNN box, so the landmark box is estimated from the MTCNN box with constants
measured on real faces (300-W / HELEN test faces, at full size and down-scaled to tiny faces) by

    python -m jasr_video.crop --calibrate            (see :func:`calibrate`)

Every crop is brought down to 16x16 for the model, whatever its size in the frame (that is what the
model was trained on); :class:`CropBatch` records which faces were below / above 16 px.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

HR_SIZE = 128
LR_SIZE = 16
DEFAULT_MARGIN = 1.4

# Measured by `python -m jasr_video.crop --calibrate --output docs/calibration.json` (MTCNN,
# min_face_size 12, on all 330 HELEN test faces of ../shared/data/faces68/test at scales 1, 1/4 and
# 1/8; 986 of 990 faces matched; medians). Per MTCNN-box size (longer side, px): landmark-box centre =
# MTCNN-box centre + (offset_x x box width, offset_y x box height); landmark-box longer side =
# size_ratio x MTCNN-box longer side. The relation drifts with size (MTCNN's integer box rounding
# weighs more on tiny faces), so values are interpolated linearly in log(size), clamped at the ends.
#               (mtcnn box px, offset_x, offset_y, size_ratio)
CALIBRATION = (
    (18.6, -0.0533, 0.0843, 0.8596),
    (38.6, -0.0202, 0.1094, 0.8297),
    (160.5, 0.0051, 0.1275, 0.7977),
)


def calibration_at(size: float) -> tuple[float, float, float]:
    """(offset_x, offset_y, size_ratio) for an MTCNN box of this size (px), interpolated in log size."""
    xs = np.log([row[0] for row in CALIBRATION])
    s = np.log(max(float(size), 1e-3))
    return tuple(float(np.interp(s, xs, [row[k] for row in CALIBRATION])) for k in (1, 2, 3))  # type: ignore[return-value]


def landmark_box_from_detection(box: Sequence[float]) -> tuple[float, float, float]:
    """MTCNN box (x0, y0, x1, y1) -> estimated landmark-box (centre x, centre y, longer side)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    ox, oy, ratio = calibration_at(max(w, h))
    return (x0 + x1) / 2 + ox * w, (y0 + y1) / 2 + oy * h, ratio * max(w, h)


@dataclass
class CropGeometry:
    """Square crop: centre (cx, cy) and side in frame pixels; maps 128-crop pixels <-> frame pixels."""

    cx: float
    cy: float
    side: float

    @classmethod
    def from_detection(cls, box: Sequence[float], margin: float = DEFAULT_MARGIN) -> "CropGeometry":
        cx, cy, lm_side = landmark_box_from_detection(box)
        return cls(cx, cy, max(margin * lm_side, 1.0))

    def matrix(self, size: int = HR_SIZE) -> np.ndarray:
        """2x3 affine frame -> size x size crop (same convention as training's crop_transform)."""
        zoom = size / self.side
        c = (size - 1) / 2
        return np.array([[zoom, 0.0, c - zoom * self.cx], [0.0, zoom, c - zoom * self.cy]])

    def to_frame(self, points: np.ndarray, size: int = HR_SIZE) -> np.ndarray:
        """Points in size x size crop pixels (..., 2) -> frame pixels."""
        zoom = size / self.side
        c = (size - 1) / 2
        return (np.asarray(points, np.float64) - c) / zoom + np.array([self.cx, self.cy])

    def to_crop(self, points: np.ndarray, size: int = HR_SIZE) -> np.ndarray:
        zoom = size / self.side
        c = (size - 1) / 2
        return (np.asarray(points, np.float64) - np.array([self.cx, self.cy])) * zoom + c


def crop_face(image: np.ndarray, geometry: CropGeometry, size: int = HR_SIZE) -> np.ndarray:
    """Square crop resampled to size x size (uint8 HxWx3); outside the frame the edge is replicated.

    Big faces (side > 2 x size) are cut at native resolution first and shrunk with area averaging, so
    the crop is not aliased; smaller ones are warped directly (bilinear, as in training).
    """
    if geometry.side > 2 * size:
        native = int(np.ceil(geometry.side))
        g = CropGeometry(geometry.cx, geometry.cy, float(native))
        big = cv2.warpAffine(image, g.matrix(native), (native, native), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)
        return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.warpAffine(image, geometry.matrix(size), (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


@dataclass
class CropBatch:
    """Faces ready for FaceEnhancer.enhance: (N, 3, 128, 128) float in [0, 1] plus their geometry."""

    tensor: torch.Tensor
    geometries: list[CropGeometry]
    face_px: list[float]  # face size in frame pixels (longer side of the detection box)

    @property
    def below_16px(self) -> list[bool]:
        return [px < LR_SIZE for px in self.face_px]


def make_crops(image: np.ndarray, boxes: Sequence[Sequence[float]], margin: float = DEFAULT_MARGIN) -> CropBatch:
    """Crops for every box in one frame, as a float batch (the model brings them to 16x16 itself)."""
    geoms = [CropGeometry.from_detection(b, margin) for b in boxes]
    if not geoms:
        return CropBatch(torch.zeros(0, 3, HR_SIZE, HR_SIZE), [], [])
    crops = np.stack([crop_face(image, g) for g in geoms])
    tensor = torch.from_numpy(crops).permute(0, 3, 1, 2).float().div_(255.0)
    face_px = [float(max(b[2] - b[0], b[3] - b[1])) for b in boxes]
    return CropBatch(tensor, geoms, face_px)


# ---------------------------------------------------------------------------------------------
# calibration on real faces


def calibrate(folder: str | Path, limit: int = 330, scales: Sequence[float] = (1.0, 0.25, 0.125),
              min_face_size: int = 12) -> dict:
    """Run MTCNN on 300-W crops and measure landmark box vs MTCNN box (offset and size ratio)."""
    from .detect import FaceDetector
    from .model.data import read_pts

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
    parser.add_argument("--folder", default=str(Path(__file__).resolve().parents[2] / "shared/data/faces68/test"),
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
