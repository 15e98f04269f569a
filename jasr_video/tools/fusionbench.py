"""Multi-frame fusion benchmark: synthetic tracks of real test faces, fused vs the best single frame.

    python -m jasr_video.tools.fusionbench --data ../shared/data/faces68/test --faces 60 --json fusion.json

Per face (a seeded subset of the folder) and face size (16 and 24 px: the side of the square training-style
crop in the frame), a track of 16 frames is made: the photo is drawn onto a frame three crops wide at 8x / 5.3x
the LR resolution (each frame moved by a random sub-pixel shift of up to 1 LR px, a rotation of up to 3 degrees
and a scale change of up to 3 %), then brought to the frame's resolution. ``clean``: anti-aliased bicubic
reduction only. ``cctv``: Gaussian optical blur (sigma 0.3-0.8 LR px per track), Gaussian noise (sigma 2-5
levels per track, fresh on every frame), and the 16 frames H.264-encoded as one clip (libx264 through PyAV,
``--bpp`` bits per pixel at 25 fps, one I-frame then P-frames) and decoded. The faces are cut from the decoded
frames by the pipeline's own code (:func:`jasr_video.route.cut`, ``RoutedCrops.from_crops``, ``RoutedEnhancer``)
around a crop that follows the face with a detector-like jitter (0.25 LR px, 2 % of the side).

K = 1, 4, 8, 16: the track's first K frames. The reference is the one of highest quality
(:func:`jasr_video.gallery.quality`); every method's output is compared with the true face as that frame's crop
sees it (PSNR / SSIM on Y inside the landmark box, NME inter-ocular). Methods: ``bicubic`` (of the reference's
LR face), ``single`` (the reference's SR: what ``--tracks`` keeps without fusion) and each of
:data:`jasr_video.fusion.METHODS`; the registration is estimated from the frames (landmarks + ECC).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch

from ..fusion import METHODS, FrameKeeper, KeptFrame, TrackFuser
from ..gallery import native_crop, quality, sharpness
from ..crop import CropGeometry
from ..model.config import HR_SIZE
from ..model.data import crop_transform, face_box, find_pairs, read_pts, upsample
from ..model.degradations import add_noise, blur, downscale
from ..model.metrics import face_psnr_ssim, nme
from ..route import RoutedCrops, RoutedEnhancer, cut

FRAMES = 16
KS = (1, 4, 8, 16)
SIZES = (16, 24)
CONDITIONS = ("clean", "cctv")
WEIGHTS = ("jasr-cpu", "jasr-cpu-robust")
MARGIN = 1.4
BPP = 0.5  # H.264 bits per pixel of the cctv clips


def _h3(m: np.ndarray) -> np.ndarray:
    return np.vstack([m, [0.0, 0.0, 1.0]])


def h264_clip(frames: Sequence[np.ndarray], bpp: float, fps: int = 25) -> list[np.ndarray]:
    """uint8 RGB frames (even sides) -> one H.264 clip at ``bpp`` bits per pixel (libx264, rate-controlled)
    -> decoded RGB frames."""
    import av

    h, w = frames[0].shape[:2]
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = w, h, "yuv420p"
    encoder.framerate, encoder.time_base = Fraction(fps), Fraction(1, fps)
    encoder.bit_rate = int(bpp * w * h * fps)
    encoder.gop_size = 250
    encoder.options = {"preset": "veryfast", "tune": "zerolatency", "bframes": "0"}
    decoder = av.CodecContext.create("h264", "r")
    packets = []
    for i, f in enumerate(frames):
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
        vf.pts = i
        packets += encoder.encode(vf)
    packets += encoder.encode(None)
    out = []
    for p in packets:
        out += [d.to_ndarray(format="rgb24") for d in decoder.decode(p)]
    out += [d.to_ndarray(format="rgb24") for d in decoder.decode(None)]
    if len(out) != len(frames):
        raise RuntimeError(f"H.264 round trip gave {len(out)} frames, expected {len(frames)}")
    return out


def make_track(image: np.ndarray, points: np.ndarray, size: int, condition: str, rng: np.random.Generator,
               bpp: float, frames_n: int = FRAMES
               ) -> tuple[list[np.ndarray], list[CropGeometry], list[np.ndarray], list[np.ndarray]]:
    """(decoded LR frames, each frame's crop geometry, each crop's true 128x128 face, its true landmarks);
    ``frames_n`` frames (the first ``frames_n`` of the same seeded draws)."""
    lr_side = 2 * math.ceil(3 * size / 2)
    f = HR_SIZE / size  # HR canvas pixels per frame pixel
    hr_side = int(round(lr_side * f))
    c_hr = (hr_side - 1) / 2
    base = _h3(crop_transform(points, MARGIN, HR_SIZE))
    base = _h3(np.array([[1.0, 0, c_hr - (HR_SIZE - 1) / 2], [0, 1.0, c_hr - (HR_SIZE - 1) / 2]])) @ base
    to_lr = _h3(np.array([[1 / f, 0, 0.5 / f - 0.5], [0, 1 / f, 0.5 / f - 0.5]]))
    sigma, noise = float(rng.uniform(0.3, 0.8)), float(rng.uniform(2.0, 5.0))
    frames, geoms, truths, marks = [], [], [], []
    for _ in range(frames_n):
        dx, dy = rng.uniform(-1, 1, 2) * f
        angle, scale = float(rng.uniform(-3, 3)), float(rng.uniform(0.97, 1.03))
        motion = _h3(cv2.getRotationMatrix2D((c_hr, c_hr), angle, scale))
        motion[:2, 2] += (dx, dy)
        move = motion @ base
        hr = cv2.warpAffine(image, move[:2], (hr_side, hr_side), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT101)
        hr = hr.astype(np.float32) / 255
        if condition == "cctv":
            hr = blur(hr, {"gaussian": sigma}, f)
        low = downscale(hr, lr_side, "bicubic-aa")
        if condition == "cctv":
            low = add_noise(low, noise, False, int(rng.integers(2**31)))
        frames.append((low * 255).round().astype(np.uint8))
        centre = (to_lr @ motion @ np.array([c_hr, c_hr, 1.0]))[:2] + rng.normal(0, 0.25, 2)
        geom = CropGeometry(float(centre[0]), float(centre[1]), size * scale * float(1 + rng.normal(0, 0.02)))
        geoms.append(geom)
        to_crop = _h3(geom.matrix(HR_SIZE)) @ to_lr @ move
        truths.append(cv2.warpAffine(image, to_crop[:2], (HR_SIZE, HR_SIZE), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT101))
        marks.append((points @ to_crop[:2, :2].T + to_crop[:2, 2]).astype(np.float32))
    if condition == "cctv":
        frames = h264_clip(frames, bpp)
    return frames, geoms, truths, marks


def enhance_track(enhancer: RoutedEnhancer, frames: Sequence[np.ndarray], geoms: Sequence[CropGeometry]
                  ) -> tuple[RoutedCrops, Any, list[float]]:
    """A track's faces cut by the pipeline's code and enhanced: (the routed crops, the JASRNet outputs, each
    frame's quality as the pipeline rates it)."""
    routes = [enhancer.route(g.side) for g in geoms]
    crops = RoutedCrops.from_crops([cut(fr, g, r) for fr, g, r in zip(frames, geoms, routes)], routes)
    out = enhancer(crops, sr=True)
    quals = [quality(g.side / MARGIN, float(np.mean(out.confidence[i])), sharpness(native_crop(frames[i], g)))
             for i, g in enumerate(geoms)]
    return crops, out, quals


def keep_best(crops: RoutedCrops, out: Any, quals: Sequence[float], geoms: Sequence[CropGeometry], k: int
              ) -> tuple[list[int], list[KeptFrame], Any]:
    """The first ``k`` frames through the fuser's :class:`~jasr_video.fusion.FrameKeeper`: (their indices best
    first, the kept frames, their JASRNet outputs in that order)."""
    keeper = FrameKeeper(k)
    for i in range(k):
        keeper.offer(0, quals[i], i, lambda i=i: KeptFrame(i, quals[i], crops.lr[i], out.landmarks[i],
                                                           crops.routes[i], geoms[i]))
    kept = keeper.frames(0)
    order = [f.frame for f in kept]
    return order, kept, type(out)(out.sr[order], out.landmarks[order], out.confidence[order])


def run(pairs: Sequence[tuple[Path, Path]], weights: Sequence[str], sizes: Sequence[int], conditions: Sequence[str],
        ks: Sequence[int], bpp: float, seed: int = 0) -> list[dict[str, Any]]:
    """Per-face records {"weights", "condition", "size", "k", "method", "psnr", "ssim", "nme", "used"}."""
    records: list[dict[str, Any]] = []
    for name in weights:
        enhancer = RoutedEnhancer(name, device="cpu", precision="fp32", sr_factor="auto", lanes=1)
        fusers = {m: TrackFuser(enhancer, m) for m in METHODS}
        for condition in conditions:
            for size in sizes:
                for n, (image_path, pts_path) in enumerate(pairs):
                    rng = np.random.default_rng([seed, n, size, CONDITIONS.index(condition)])
                    image = cv2.cvtColor(cv2.imread(str(image_path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
                    frames, geoms, truths, marks = make_track(image, read_pts(pts_path), size, condition, rng, bpp)
                    crops, out, quals = enhance_track(enhancer, frames, geoms)
                    for k in ks:
                        order, kept, single = keep_best(crops, out, quals, geoms, k)
                        ref = order[0]
                        truth = truths[ref].astype(np.float32) / 255
                        box = face_box(marks[ref])

                        def add(method: str, sr: np.ndarray, lm: np.ndarray | None, used: int = 1) -> None:
                            p, s = face_psnr_ssim(sr.astype(np.float32) / 255 if sr.dtype == np.uint8 else sr, truth, box)
                            records.append({"weights": name, "condition": condition, "size": size, "k": k,
                                            "method": method, "psnr": p, "ssim": s, "used": used,
                                            "nme": None if lm is None else nme(lm, marks[ref])})

                        bic = upsample(crops.lr[ref][None].float(), HR_SIZE)[0].permute(1, 2, 0).numpy()
                        add("bicubic", bic, None)
                        add("single", out.sr[ref], out.landmarks[ref])
                        for method, fuser in fusers.items():
                            fused = fuser.fuse(kept, single=single)
                            add(method, fused.sr, fused.landmarks, len(fused.frames))
                    print(f"{name} {condition} {size}px face {n + 1}/{len(pairs)}", file=sys.stderr, flush=True)
    return records


def table(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Means per (weights, condition, size, k, method), with the gain over single and bicubic (dB)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["weights"], r["condition"], r["size"], r["k"], r["method"]), []).append(r)
    rows = []
    for key, rs in groups.items():
        nmes = [r["nme"] for r in rs if r["nme"] is not None]
        rows.append(dict(zip(("weights", "condition", "size", "k", "method"), key), faces=len(rs),
                         psnr=float(np.mean([r["psnr"] for r in rs if math.isfinite(r["psnr"])])),
                         ssim=float(np.mean([r["ssim"] for r in rs])),
                         nme_percent=100 * float(np.mean(nmes)) if nmes else None,
                         frames_used=float(np.mean([r["used"] for r in rs]))))
    base = {(r["weights"], r["condition"], r["size"], r["k"], r["method"]): r["psnr"] for r in rows}
    for r in rows:
        key = (r["weights"], r["condition"], r["size"], r["k"])
        r["minus_single_db"] = r["psnr"] - base[key + ("single",)]
        r["minus_bicubic_db"] = r["psnr"] - base[key + ("bicubic",)]
    return rows


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    """One table per (weights, condition): per size and K, PSNR / SSIM / NME % of each method, and each
    method's gain over the single frame (dB)."""
    methods = ["bicubic", "single", *METHODS]
    lines = []
    for weights in dict.fromkeys(r["weights"] for r in rows):
        for condition in dict.fromkeys(r["condition"] for r in rows):
            sub = {(r["size"], r["k"], r["method"]): r for r in rows
                   if r["weights"] == weights and r["condition"] == condition}
            if not sub:
                continue
            lines += [f"\n{weights}, {condition}: PSNR dB / SSIM / NME % (fusion: gain over single, dB; frames used)\n",
                      "| size | K | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
            for size, k in sorted({(s, k) for s, k, _ in sub}):
                cells = []
                for m in methods:
                    r = sub.get((size, k, m))
                    if r is None:
                        cells.append("-")
                        continue
                    text = f"{r['psnr']:.2f} / {r['ssim']:.3f}"
                    if r["nme_percent"] is not None:
                        text += f" / {r['nme_percent']:.2f}"
                    if m in METHODS:
                        text += f" ({r['minus_single_db']:+.2f}; {r['frames_used']:.1f})"
                    cells.append(text)
                lines.append(f"| {size} | {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """PSNR / SSIM / NME of multi-frame fusion against the best single frame on synthetic tracks of real faces."""
    parser = argparse.ArgumentParser(prog="python -m jasr_video.tools.fusionbench", description=main.__doc__)
    parser.add_argument("--data", default="../shared/data/faces68/test", help="folder of image + .pts pairs")
    parser.add_argument("--faces", type=int, default=60, help="faces drawn from the folder (seeded; default 60)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the face subset and of every track")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="face sizes, px (default 16 24)")
    parser.add_argument("--k", type=int, nargs="+", default=list(KS), help=f"frames per track, 1 to {FRAMES}")
    parser.add_argument("--conditions", nargs="+", choices=CONDITIONS, default=list(CONDITIONS))
    parser.add_argument("--weights", nargs="+", default=list(WEIGHTS), help="x8 weights (x4 siblings beside them)")
    parser.add_argument("--bpp", type=float, default=BPP,
                        help="H.264 bits per pixel of the cctv clips, rate-controlled (default 0.5)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    parser.add_argument("--json", help="write the records' table and settings to this JSON file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if any(k < 1 or k > FRAMES for k in args.k) or args.faces < 1 or any(s < 8 or s > 96 for s in args.sizes):
        print(f"fusionbench: error: --k must be 1 to {FRAMES}, --faces >= 1, --sizes 8 to 96 px", file=sys.stderr)
        return 2
    try:
        pairs = find_pairs(args.data)
        started = time.perf_counter()
        pick = np.random.default_rng(args.seed).choice(len(pairs), min(args.faces, len(pairs)), replace=False)
        records = run([pairs[i] for i in sorted(pick)], args.weights, args.sizes, args.conditions, args.k,
                      args.bpp, args.seed)
    except (FileNotFoundError, ValueError) as error:
        print(f"fusionbench: error: {error}", file=sys.stderr)
        return 2
    rows = table(records)
    text = markdown(rows)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({
            "data": str(Path(args.data).resolve()), "faces": len(pick), "seed": args.seed, "sizes": args.sizes,
            "k": args.k, "conditions": args.conditions, "weights": args.weights, "bpp": args.bpp,
            "seconds": time.perf_counter() - started, "table": rows, "markdown": text}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
