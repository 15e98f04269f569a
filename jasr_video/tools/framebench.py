"""Frame-path benchmark: real test faces placed in frames, cut and enhanced by the pipeline's own code.

    python -m jasr_video.tools.framebench --data ../shared/data/faces68/test --sizes 12 16 20 24 32 48 64 96

:mod:`jasr_video.model.sizebench` feeds the model LR faces made straight from the 128-px truth (the model
protocol). Here each face follows the product's path instead: frame -> crop -> model -> output.

- **Frame.** The face's source photo (with its surroundings) is padded into a larger canvas at a random
  integer offset and the canvas is reduced so that the face's training-style crop (1.4 x the landmark box)
  is `size` px: the face in the frame is real pixels, at a sub-pixel position that differs per face
  (seeded). ``--camera`` picks the reduction: anti-aliased bicubic (the training protocol's kernel, default)
  or area averaging (a box sensor).
- **Frame path** (``frame``): the detection box whose calibrated crop is the face's true crop
  (:meth:`~jasr_video.crop.CropGeometry.detection_box`), :func:`~jasr_video.route.cut_face` with the routed
  enhancer's routes, :meth:`~jasr_video.route.RoutedCrops.from_crops`, the :class:`~jasr_video.route.RoutedEnhancer`:
  the pipeline's calls. No detector runs (this measures the crop chain, not detection).
- **Model protocol** (``protocol``): the truth reduced to `size` (anti-aliased bicubic), then the same route's
  network input (:func:`jasr_video.model.routing.network_inputs`), as sizebench's routed column.
- **Warped** (``warp``): the crop chain before faces were cut at their model's input size, kept for comparison:
  a bilinear warp of the frame to the crop size the route had then (128 px for x8, the input size for x4 / x2),
  then the route's reduction.
- **Bicubic** (``bicubic``): the face's crop at its own size in the frame, bicubic up to 128.

PSNR / SSIM (Y, inside the landmark box) of each 128x128 output against the truth (the crop's window in the
source photo, reduced to 128 px by anti-aliased bicubic; the training crop warps it bilinearly), NME (inter-ocular) of the 68 landmarks in crop pixels. Faces above the largest route keep their
native crop, as in the pipeline.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch
from PIL import Image

from ..crop import CropGeometry, crop_face
from ..model.checkpoint import DEFAULT_WEIGHTS
from ..model.config import HR_SIZE
from ..model.data import FaceDataset, degrade, face_box, find_pairs, upsample
from ..model.metrics import face_psnr_ssim, nme
from ..model.routing import Route, network_inputs
from ..model.sizebench import add_common_arguments, checked_sizes, per_size_table, write_report
from ..route import RoutedCrops, RoutedEnhancer, cut_face

DEFAULT_SIZES = (12, 16, 20, 24, 32, 48, 64, 96)
METHODS = ("bicubic", "protocol", "warp", "frame")
CAMERAS = {"bicubic-aa": Image.BICUBIC, "area": Image.BOX}


@dataclass
class Placed:
    """A face placed in a frame: the frame (uint8 RGB), the face's true crop in it, and the way back to the photo."""

    frame: np.ndarray
    geometry: CropGeometry
    factor: float  # photo pixels per frame pixel
    origin: np.ndarray  # the photo's (x, y) offset in the canvas

    def truth(self, photo: np.ndarray, points: np.ndarray, geometry: CropGeometry) -> tuple[np.ndarray, np.ndarray]:
        """The 128x128 truth of a crop `geometry` of the frame: the same window cut from the photo (one anti-aliased
        resampling, :func:`~jasr_video.crop.crop_face`, so the truth holds no aliasing that the frame lacks), and the
        68 points in its pixels."""
        centre = (np.array([geometry.cx, geometry.cy]) + 0.5) * self.factor - 0.5 - self.origin
        source = CropGeometry(float(centre[0]), float(centre[1]), geometry.side * self.factor)
        return crop_face(photo, source, HR_SIZE), source.to_crop(points).astype(np.float32)


def place(photo: np.ndarray, points: np.ndarray, margin: float, size: int, rng: np.random.Generator,
          camera: str = "bicubic-aa") -> Placed:
    """The photo in a frame where its face's crop (`margin` x the landmark box) is `size` px: padded (reflected)
    at a random offset into a canvas, the canvas reduced by one resampling."""
    lo, hi = points.min(0), points.max(0)
    factor = margin * float((hi - lo).max()) / size
    pad = int(np.ceil(2 * margin * float((hi - lo).max())))
    offset = rng.integers(0, int(np.ceil(factor)) + 1, 2)
    canvas = cv2.copyMakeBorder(photo, pad + int(offset[1]), pad, pad + int(offset[0]), pad, cv2.BORDER_REFLECT101)
    w, h = int(canvas.shape[1] / factor), int(canvas.shape[0] / factor)
    frame = np.asarray(Image.fromarray(canvas).resize((w, h), CAMERAS[camera], box=(0, 0, w * factor, h * factor)))
    origin = (pad + offset).astype(np.float64)
    frame_points = (points + origin + 0.5) / factor - 0.5
    flo, fhi = frame_points.min(0), frame_points.max(0)
    side = round(margin * float((fhi - flo).max()), 6)  # `size` itself, without float noise at the routes' bands
    return Placed(frame, CropGeometry(*((flo + fhi) / 2), side), factor, origin)


def old_warp(frame: np.ndarray, geometry: CropGeometry, route: Route) -> tuple[np.ndarray, Route]:
    """The crop as the chain cut it before: a bilinear warp to 128 px for x8 (then reduced to 16), to the input
    size for x4 / x2."""
    px = HR_SIZE if route.sr_factor == 8 or route.keep_native else route.model_input_px
    crop = cv2.warpAffine(frame, geometry.matrix(px), (px, px), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return crop, Route(route.sr_factor, route.model_input_px, px, route.keep_native)


def _tensor(images: Sequence[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)


def _image(t: torch.Tensor) -> np.ndarray:
    return (t.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


@torch.inference_mode()
def run(dataset: FaceDataset, enhancer: RoutedEnhancer, sizes: Sequence[int], seed: int = 0,
        camera: str = "bicubic-aa", methods: Sequence[str] = METHODS) -> list[dict[str, Any]]:
    """Per-face records {"size", "method", "psnr", "ssim"[, "nme"], "route"} (see sizebench's per_size_table).
    Each output is compared with the truth of the crop it was made from (a crop cut on whole frame pixels
    sits up to half a pixel from the face's true crop)."""
    margin = dataset.margin
    records: list[dict[str, Any]] = []
    for i in range(len(dataset)):
        photo, points = dataset.images[i], dataset.points[i]
        for size in sizes:
            placed = place(photo, points, margin, size, np.random.default_rng([seed, i, size]), camera)
            box = placed.geometry.detection_box(margin)
            geometry, route, crop = cut_face(placed.frame, box, margin, enhancer.route)
            outputs: dict[str, tuple[CropGeometry, np.ndarray, np.ndarray | None]] = {}
            if "frame" in methods:
                out = enhancer(RoutedCrops.from_crops([crop], [route]))
                outputs["frame"] = geometry, out.sr[0], out.landmarks[0]
            if "warp" in methods:
                warped, old_route = old_warp(placed.frame, placed.geometry, route)
                out = enhancer(RoutedCrops.from_crops([warped], [old_route]))
                outputs["warp"] = placed.geometry, out.sr[0], out.landmarks[0]
            if "protocol" in methods:  # the truth reduced to `size`, then the route's network input
                hr, _ = placed.truth(photo, points, placed.geometry)
                lr = degrade(_tensor([hr]), size)
                out = enhancer.by_factor[route.sr_factor](network_inputs(lr, route.model_input_px), prepared=True)
                image = _image(upsample(lr)[0]) if route.keep_native else out.sr[0]  # native: the face itself
                outputs["protocol"] = placed.geometry, image, out.landmarks[0]
            if "bicubic" in methods:
                g, _, native = cut_face(placed.frame, box, margin, lambda side: Route(8, size, size))
                outputs["bicubic"] = g, _image(upsample(_tensor([native]))[0]), None
            for method, (g, image, landmarks) in outputs.items():
                truth_image, truth_points = placed.truth(photo, points, g)
                p, s = face_psnr_ssim(image.astype(np.float64) / 255, truth_image.astype(np.float64) / 255,
                                      face_box(truth_points))
                record = {"size": size, "method": method, "psnr": p, "ssim": s,
                          "route": f"{route.name} at {route.model_input_px} px"}
                if landmarks is not None:
                    record["nme"] = nme(landmarks, truth_points)
                records.append(record)
    return records


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown: per size, PSNR / SSIM / NME of each method, and the frame path's gains."""
    methods = [m for m in METHODS if any(m in r for r in rows)]
    lines = ["| size (px) | route | " + " | ".join(f"{m} PSNR / SSIM / NME %" for m in methods)
             + " | frame - bicubic (dB) | frame - protocol (dB) |", "|" + "---|" * (len(methods) + 4)]

    def cell(v: dict[str, Any] | None) -> str:
        if not v or v.get("psnr") is None:
            return "-"
        nme_text = f"{v['nme_percent']:.2f}" if v.get("nme_percent") is not None else "-"
        return f"{v['psnr']:.2f} / {v['ssim']:.3f} / {nme_text}"

    def gain(r: dict[str, Any], other: str) -> str:
        return f"{r['frame']['psnr'] - r[other]['psnr']:+.2f}" if "frame" in r and other in r else "-"

    for r in rows:
        route = next((r[m]["route"] for m in methods if m in r and "route" in r[m]), "-")
        lines.append(f"| {r['size']} | {route} | " + " | ".join(cell(r.get(m)) for m in methods)
                     + f" | {gain(r, 'bicubic')} | {gain(r, 'protocol')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """PSNR / SSIM / NME of faces placed in frames and enhanced along the pipeline's own path, beside the model
    protocol, the former warped crop chain and bicubic."""
    parser = argparse.ArgumentParser(prog="python -m jasr_video.tools.framebench", description=main.__doc__)
    parser.add_argument("--data", required=True, help="folder of image + .pts pairs, e.g. ../shared/data/faces68/test")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="face crop sizes, px")
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS, help=f"x8 weights; x4 / x2: their siblings (default {DEFAULT_WEIGHTS})")
    parser.add_argument("--camera", choices=tuple(CAMERAS), default="bicubic-aa",
                        help="how the canvas is reduced to the frame (default bicubic-aa)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), help="methods to run")
    parser.add_argument("--seed", type=int, default=0, help="seed of the faces' positions in the frames")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    if not checked_sizes("framebench", args):
        return 2
    try:
        enhancer = RoutedEnhancer(args.weights, device="cpu", precision=args.precision, lanes=1)
        pairs = find_pairs(args.data)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"framebench: error: {error}", file=sys.stderr)
        return 2
    if args.limit:
        pairs = pairs[: args.limit]
    started = time.perf_counter()
    dataset = FaceDataset(pairs, margin=enhancer.crop_margin)
    rows = per_size_table(run(dataset, enhancer, args.sizes, args.seed, args.camera, args.methods))
    table = format_table(rows)
    print(table)
    write_report(args.report, {"data": str(Path(args.data).resolve()), "faces": len(pairs), "sizes": args.sizes,
                               "camera": args.camera, "seed": args.seed, "weights": args.weights,
                               "precision": args.precision, "routing": enhancer.routing,
                               "seconds": time.perf_counter() - started, "table": rows, "markdown": table})
    return 0


if __name__ == "__main__":
    sys.exit(main())
