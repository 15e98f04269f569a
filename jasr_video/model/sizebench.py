"""Per-face-size benchmark of scale-aware routing: real test faces reduced to each size, enhanced by the
routed JASRNet (:mod:`.routing`), by each of x8 / x4 / x2 alone, and plain bicubic of the reduced face.

    python -m jasr_video.model.sizebench --data ../shared/data/faces68/test --sizes 16 24 32 40 48 64 96

Every face is the 128x128 training crop (the truth); "size s" = that crop reduced to s x s (anti-aliased
bicubic), i.e. a face whose crop side is s px in the source. PSNR / SSIM (Y, inside the landmark box) of
the 128x128 output against the truth, NME (inter-ocular) of the 68 landmarks. Bicubic has no landmarks.
Each model gets the face the way the pipeline feeds it: x8 at 16 px, x4 / x2 at the face's own size
clamped to the weights' training sizes; the routed output is the route's model, or for faces above the
largest route the native face resized to 128 (bicubic) with the x2 landmarks.

``--protocol cctv`` reduces each face as ``jasr-eval --protocol cctv`` does (detector-box jitter, then
`degradations.CCTV_EVAL` drawn per face: the same draw at every size), to the size shown, so bicubic and
every model get the same blurred, noisy, H.264-compressed face; the truth keeps the colour cast. Compare
weight families on it: ``--weights jasr-cpu-robust --weights-x4 jasr-cpu-robust-x4 ...``.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from .checkpoint import DEFAULT_WEIGHTS
from .data import FaceDataset, degrade, face_box, find_pairs, upsample
from .degradations import CCTV_EVAL, CCTV_EVAL_SEED, DegradationConfig, degrade_each, sample_params
from .evaluate import protocol_views
from .inference import FaceEnhancer
from .metrics import face_psnr_ssim, nme
from .routing import DEFAULT_RANGES, choose_route, network_inputs
from .upright import DEFAULT_UPRIGHT_DEGREES, check_upright

DEFAULT_SIZES = (16, 24, 32, 40, 48, 64, 96)
METHODS = ("bicubic", "x8", "x4", "x2", "routed")


def weights_range(enhancer: FaceEnhancer, factor: int) -> tuple[int, int]:
    low, high = enhancer.checkpoint.get("meta", {}).get("lr_size_range") or DEFAULT_RANGES[factor]
    return int(low), int(high)


def per_size_table(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-face records {"size", "method", "psnr", "ssim"[, "nme"]} -> one row per size, ascending:
    {"size", "faces", METHOD: {"psnr", "ssim", "nme_percent" (None without landmarks)}, ...,
    "routed_minus_x8_db", "best_psnr"} (means over the faces; infinite PSNRs left out)."""
    grouped: dict[int, dict[str, list[dict[str, Any]]]] = {}
    for r in records:
        grouped.setdefault(int(r["size"]), {}).setdefault(r["method"], []).append(r)
    rows = []
    for size in sorted(grouped):
        row: dict[str, Any] = {"size": size, "faces": max(len(v) for v in grouped[size].values())}
        for method, rs in grouped[size].items():
            psnrs = [r["psnr"] for r in rs if math.isfinite(r["psnr"])]
            nmes = [r["nme"] for r in rs if r.get("nme") is not None]
            row[method] = {"psnr": float(np.mean(psnrs)) if psnrs else None,
                           "ssim": float(np.mean([r["ssim"] for r in rs])),
                           "nme_percent": 100 * float(np.mean(nmes)) if nmes else None}
            if "route" in rs[0]:
                row[method]["route"] = rs[0]["route"]
        if "routed" in row and "x8" in row:
            row["routed_minus_x8_db"] = row["routed"]["psnr"] - row["x8"]["psnr"]
        models = [m for m in ("x8", "x4", "x2", "bicubic") if m in row and row[m]["psnr"] is not None]
        row["best_psnr"] = max(models, key=lambda m: row[m]["psnr"]) if models else None
        rows.append(row)
    return rows


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown table: per size, PSNR / SSIM / NME of each method (x4 / x2 alone where measured)."""
    methods = [m for m in METHODS if any(m in r for r in rows)]
    head = "| size (px) | " + " | ".join(f"{m} PSNR / SSIM / NME %" for m in methods) + " | routed - x8 (dB) | route |"
    lines = [head, "|" + "---|" * (len(methods) + 3)]

    def cell(v: dict[str, Any] | None) -> str:
        if not v:
            return "-"
        nme_text = f"{v['nme_percent']:.2f}" if v.get("nme_percent") is not None else "-"
        return f"{v['psnr']:.2f} / {v['ssim']:.3f} / {nme_text}"

    for r in rows:
        gain = f"{r['routed_minus_x8_db']:+.2f}" if "routed_minus_x8_db" in r else "-"
        route = r.get("routed", {}).get("route", "-")
        lines.append(f"| {r['size']} | " + " | ".join(cell(r.get(m)) for m in methods) + f" | {gain} | {route} |")
    return "\n".join(lines)


def _image(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


@torch.inference_mode()
def run(dataset: FaceDataset, enhancers: dict[int, FaceEnhancer], sizes: Sequence[int],
        batch_size: int = 16, degradation: DegradationConfig | None = None,
        seed: int = CCTV_EVAL_SEED) -> list[dict[str, Any]]:
    """Per-face records of every method at every size (see :func:`per_size_table`); faces reduced by the
    paper's protocol, or by `degradation` drawn for face i from default_rng([seed, i]) at every size."""
    ranges = {f: weights_range(e, f) for f, e in enhancers.items()}
    records: list[dict[str, Any]] = []
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        clean_hr = torch.stack([it[0] for it in items])
        truth = torch.stack([it[1] for it in items]).numpy()
        boxes = [face_box(t) for t in truth]
        params = ([sample_params(np.random.default_rng([seed, i]), degradation)
                   for i in range(start, start + len(items))] if degradation else [])

        def add(size: int, method: str, sr: torch.Tensor, landmarks: np.ndarray | None, **extra: Any) -> None:
            for j in range(len(items)):
                p, s = face_psnr_ssim(_image(sr[j]), hr_images[j], boxes[j])
                rec = {"size": size, "method": method, "psnr": p, "ssim": s, **extra}
                if landmarks is not None:
                    rec["nme"] = nme(landmarks[j], truth[j])
                records.append(rec)

        for size in sizes:
            if degradation is None:
                hr, lr = clean_hr, degrade(clean_hr, size)
                bicubic = upsample(lr)
            else:
                bicubic, hr, lr = degrade_each(clean_hr, size, params)
            hr_images = [_image(h) for h in hr]
            add(size, "bicubic", bicubic, None)
            outputs: dict[tuple[int, int], Any] = {}

            def forward(factor: int, model_px: int) -> Any:
                if (factor, model_px) not in outputs:
                    pred = enhancers[factor].enhance_inputs(network_inputs(lr, model_px))
                    outputs[factor, model_px] = (pred.sr, pred.landmarks.float().cpu().numpy())
                return outputs[factor, model_px]

            for factor in enhancers:
                route = choose_route(size, str(factor), tuple(enhancers), ranges)
                add(size, f"x{factor}", *forward(factor, route.model_input_px))
            route = choose_route(size, "auto", tuple(enhancers), ranges)
            sr, landmarks = forward(route.sr_factor, route.model_input_px)
            add(size, "routed", bicubic if route.keep_native else sr, landmarks,
                route=f"{route.name} at {route.model_input_px} px")
    return records


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """--precision, --limit, --threads and --report, shared with the frame-path benchmark."""
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16", "int8"), default="fp32",
                        help="arithmetic of every model (default fp32; auto: what the CPU pipeline runs)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N faces (0 = all)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    parser.add_argument("--report", help="also write the table and settings to this JSON file")


def checked_sizes(prog: str, args: argparse.Namespace) -> bool:
    """Applies --threads; False (after one error line) when a --sizes value is out of range."""
    if args.threads:
        torch.set_num_threads(args.threads)
    if any(s < 4 or s > 128 for s in args.sizes):
        print(f"{prog}: error: --sizes must be between 4 and 128 px", file=sys.stderr)
        return False
    return True


def write_report(path: str | None, report: dict[str, Any]) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(report, indent=1))


def main(argv: list[str] | None = None) -> int:
    """Per-size PSNR / SSIM / NME of routed, x8-only, x4-only, x2-only and bicubic output on real faces."""
    parser = argparse.ArgumentParser(prog="python -m jasr_video.model.sizebench", description=main.__doc__)
    parser.add_argument("--data", required=True, help="folder of image + .pts pairs, e.g. ../shared/data/faces68/test")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="face sizes, px")
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS, help=f"x8 weights (default {DEFAULT_WEIGHTS})")
    parser.add_argument("--weights-x4", default=f"{DEFAULT_WEIGHTS}-x4", help="x4 weights")
    parser.add_argument("--weights-x2", default=f"{DEFAULT_WEIGHTS}-x2", help="x2 weights")
    parser.add_argument("--protocol", choices=("clean", "cctv"), default="clean",
                        help="clean (the paper's reduction, default) or cctv (jasr-eval's CCTV degradation)")
    parser.add_argument("--upright", type=float, default=DEFAULT_UPRIGHT_DEGREES, metavar="DEG",
                        help="upright pass for faces tilted beyond DEG degrees, as the pipeline (default "
                             f"{DEFAULT_UPRIGHT_DEGREES:g}); 0: one network pass per face")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    if not checked_sizes("sizebench", args):
        return 2
    try:
        check_upright(args.upright)
        enhancers = {f: FaceEnhancer(w, "cpu", args.precision)
                     for f, w in ((8, args.weights), (4, args.weights_x4), (2, args.weights_x2))}
        for enhancer in enhancers.values():
            enhancer.upright = args.upright
        pairs = find_pairs(args.data)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"sizebench: error: {error}", file=sys.stderr)
        return 2
    if args.limit:
        pairs = pairs[: args.limit]
    margin = enhancers[8].checkpoint.get("meta", {}).get("train_config", {}).get("crop_margin", 1.4)
    started = time.perf_counter()
    dataset = FaceDataset(pairs, margin=margin, views=protocol_views(len(pairs), args.protocol))
    degradation = CCTV_EVAL if args.protocol == "cctv" else None
    rows = per_size_table(run(dataset, enhancers, args.sizes, degradation=degradation))
    table = format_table(rows)
    print(table)
    write_report(args.report, {"data": str(Path(args.data).resolve()), "faces": len(pairs), "sizes": args.sizes,
                               "protocol": args.protocol, "upright_degrees": args.upright,
                               "precision": {f: e.precision for f, e in enhancers.items()},
                               "weights": {f: e.checkpoint.get("path") for f, e in enhancers.items()},
                               "seconds": time.perf_counter() - started, "table": rows, "markdown": table})
    return 0


if __name__ == "__main__":
    sys.exit(main())
