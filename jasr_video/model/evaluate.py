"""`jasr-eval`: PSNR / SSIM (Y, face box) and NME / AUC / failure rate of JASRNet beside bicubic,
a JSON report and a PNG sheet of LR / bicubic / SR / HR with predicted vs true landmarks.

Protocols (`--protocol`), all on the same faces, each fixed by a seed:

- `clean`: the paper's — the landmark-box crop at the checkpoint's margin, anti-aliased bicubic to 16x16.
- `cctv`: each face's crop jittered as a detector box would be (scale 0.95-1.05, centre shift up to 4 % of the
  side), then degraded by `degradations.CCTV_EVAL` (colour cast, Gaussian or motion blur, a random
  down-sampling kernel, sensor noise, H.264 at quantiser 26-34), drawn per face index from seed 0. The truth is
  the jittered crop with its colour cast; bicubic is the same degraded LR face upsampled.
- `rotated`: each face's crop rotated by a seeded angle of random sign in 15-30 deg and, separately, in 30-45
  deg (clean LR protocol); PSNR and NME per bucket.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from .backends import make_enhancer
from .checkpoint import DEFAULT_WEIGHTS, load_model
from .config import HR_SIZE, LR_SIZE
from .data import FaceDataset, View, degrade, face_box, find_pairs, upsample
from .degradations import CCTV_EVAL, CCTV_EVAL_SEED, DegradationConfig, degrade_each, sample_params
from .inference import Prediction, pick_device
from .landmarks import heatmap_landmarks
from .metrics import auc_and_failure, face_psnr_ssim, nme
from .network import JASRNet
from .upright import DEFAULT_UPRIGHT_DEGREES, check_upright, upright_landmarks

NME_THRESHOLD = 0.08
PROTOCOLS = ("clean", "cctv", "rotated")
ROTATION_BUCKETS = ((15.0, 30.0), (30.0, 45.0))  # degrees, |angle| drawn uniformly inside, random sign


def _to_image(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


@torch.inference_mode()
def evaluate(
    model: JASRNet, dataset: FaceDataset, device: torch.device | str = "cpu", batch_size: int = 16,
    keep: int = 0, input_dtype: torch.dtype = torch.float32, lr_size: int = LR_SIZE,
    degradation: DegradationConfig | None = None, seed: int = CCTV_EVAL_SEED, upright: float = 0.0,
) -> dict[str, Any]:
    """Per-face metrics of the model and of bicubic on every face of `dataset` (no augmentation).

    `model`: a JASRNet or what FaceEnhancer runs (e.g. int8), fed `input_dtype`; faces reduced to `lr_size` px,
    by the paper's protocol, or by `degradation` drawn for face i from numpy's default_rng([seed, i]).
    `upright` > 0: landmarks of faces tilted beyond that many degrees from a second pass on the face turned
    level, as the pipeline runs them (:mod:`.upright`); 0: the network's one pass.
    Returns a summary dict; with keep > 0 also the first `keep` faces' images for a sheet.
    """
    model.eval()
    per_face: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        hr = torch.stack([it[0] for it in items]).to(device)
        truth = torch.stack([it[1] for it in items]).numpy()
        if degradation is None:
            lr = degrade(hr, lr_size)
            bicubic = upsample(lr)
        else:
            params = [sample_params(np.random.default_rng([seed, i]), degradation) for i in range(start, start + len(items))]
            bicubic, hr, lr = degrade_each(hr, lr_size, params)
        out = model(bicubic.to(input_dtype))
        out = out._replace(sr=out.sr.float() if out.sr is not None else None,
                           heatmaps=[h.float() for h in out.heatmaps])
        landmarks = None
        if out.heatmaps:
            points, confidence = heatmap_landmarks(out.heatmaps[-1], model.config.num_landmarks)
            if upright and out.sr is not None:
                first = Prediction(out.sr, points, confidence)
                points = upright_landmarks(_one_pass(model, input_dtype), bicubic, first, upright).landmarks
            landmarks = points.cpu().numpy()
        for j in range(len(items)):
            box = face_box(truth[j])
            record: dict[str, Any] = {"face": dataset.pairs[start + j][0].name}
            hr_img, bic_img = _to_image(hr[j]), _to_image(bicubic[j])
            record["bicubic_psnr"], record["bicubic_ssim"] = face_psnr_ssim(bic_img, hr_img, box)
            if out.sr is not None:
                record["psnr"], record["ssim"] = face_psnr_ssim(_to_image(out.sr[j]), hr_img, box)
            if landmarks is not None:
                record["nme"] = nme(landmarks[j], truth[j])
            per_face.append(record)
            if len(kept) < keep:
                kept.append({
                    "lr": _to_image(lr[j]), "bicubic": bic_img, "hr": hr_img, "truth": truth[j],
                    "sr": _to_image(out.sr[j]) if out.sr is not None else None,
                    "landmarks": landmarks[j] if landmarks is not None else None,
                })
    return {"summary": summarise(per_face), "faces": per_face, "kept": kept}


def _one_pass(model: JASRNet, input_dtype: torch.dtype):
    """The network's one pass as a Prediction (for :func:`upright.upright_landmarks`)."""
    def predict(x: torch.Tensor, sr: bool = True) -> Prediction:
        out = model(x.to(input_dtype), sr=sr)
        points, confidence = heatmap_landmarks(out.heatmaps[-1].float(), model.config.num_landmarks)
        return Prediction(out.sr.float() if out.sr is not None else None, points, confidence)
    return predict


def protocol_views(count: int, protocol: str, bucket: tuple[float, float] | None = None, seed: int = 0) -> list[View]:
    """The fixed crop of each of `count` faces under a protocol: none for clean, detector-box jitter for cctv,
    a rotation of random sign with |angle| in `bucket` for rotated (drawn from default_rng([seed, i, ...]))."""
    views = []
    for i in range(count):
        if protocol == "cctv":
            rng = np.random.default_rng([seed, i, 1])
            views.append(View(scale=float(rng.uniform(0.95, 1.05)), shift=tuple(rng.uniform(-0.04, 0.04, 2).tolist())))
        elif protocol == "rotated":
            rng = np.random.default_rng([seed, i, int(bucket[0]), int(bucket[1])])
            angle = float(rng.uniform(*bucket)) * (1 if rng.random() < 0.5 else -1)
            views.append(View(angle=angle))
        else:
            views.append(View())
    return views


def run_protocol(
    model: JASRNet, pairs: list, margin: float, protocol: str, device: torch.device | str = "cpu",
    batch_size: int = 16, keep: int = 0, input_dtype: torch.dtype = torch.float32, lr_size: int = LR_SIZE,
    upright: float = 0.0,
) -> dict[str, dict[str, Any]]:
    """Evaluate one protocol: {part name: evaluate()'s result}; one part ("clean", "cctv"), or one per
    rotation bucket ("rotated 15-30", "rotated 30-45")."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    if protocol == "rotated":
        return {f"rotated {lo:.0f}-{hi:.0f}": evaluate(
            model, FaceDataset(pairs, margin, views=protocol_views(len(pairs), "rotated", (lo, hi))), device,
            batch_size, keep, input_dtype, lr_size, upright=upright) for lo, hi in ROTATION_BUCKETS}
    views = protocol_views(len(pairs), protocol)
    degradation = CCTV_EVAL if protocol == "cctv" else None
    return {protocol: evaluate(model, FaceDataset(pairs, margin, views=views), device, batch_size, keep,
                               input_dtype, lr_size, degradation=degradation, upright=upright)}


def summarise(per_face: list[dict[str, Any]]) -> dict[str, Any]:
    def mean(key: str) -> float | None:
        values = [r[key] for r in per_face if key in r and math.isfinite(r[key])]
        return float(np.mean(values)) if values else None

    summary: dict[str, Any] = {"faces": len(per_face)}
    for method, prefix in (("bicubic", "bicubic_"), ("model", "")):
        psnr, ssim = mean(prefix + "psnr"), mean(prefix + "ssim")
        if psnr is not None:
            summary[method] = {"psnr_y_face": psnr, "ssim_y_face": ssim}
    if "model" in summary and "bicubic" in summary:
        summary["psnr_gain_db"] = summary["model"]["psnr_y_face"] - summary["bicubic"]["psnr_y_face"]
    if per_face and "nme" in per_face[0]:
        errors = np.array([r["nme"] for r in per_face])
        auc, failure = auc_and_failure(errors, NME_THRESHOLD)
        summary.setdefault("model", {}).update(
            {"nme_percent": 100 * float(errors.mean()), "auc_at_8_percent": auc, "failure_rate_at_8_percent": failure}
        )
    return summary


def draw_sheet(kept: list[dict[str, Any]], path: str | Path, cell: int = 160) -> None:
    """PNG grid: one row per face, columns LR / bicubic / SR / HR; landmarks: green predicted, red true."""
    columns = ["LR 16x16", "bicubic x8", "JASRNet SR", "HR 128x128"]
    label_h = 24
    sheet = np.full((label_h + cell * len(kept), cell * len(columns), 3), 255, np.uint8)
    for c, name in enumerate(columns):
        cv2.putText(sheet, name, (c * cell + 6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for r, face in enumerate(kept):
        images = [face["lr"], face["bicubic"], face["sr"] if face["sr"] is not None else face["bicubic"], face["hr"]]
        for c, image in enumerate(images):
            tile = cv2.resize((image * 255).round().astype(np.uint8), (cell, cell), interpolation=cv2.INTER_NEAREST)
            tile = cv2.cvtColor(tile, cv2.COLOR_RGB2BGR)
            if c in (2, 3):
                k = cell / HR_SIZE
                for x, y in face["truth"]:
                    cv2.circle(tile, (int(x * k), int(y * k)), 2, (0, 0, 255), -1, cv2.LINE_AA)
                if face["landmarks"] is not None:
                    for x, y in face["landmarks"]:
                        cv2.circle(tile, (int(x * k), int(y * k)), 2, (0, 200, 0), -1, cv2.LINE_AA)
            sheet[label_h + r * cell:label_h + (r + 1) * cell, c * cell:(c + 1) * cell] = tile
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), sheet)


def main(argv: list[str] | None = None) -> int:
    """`jasr-eval`: evaluate weights on a folder of image + .pts faces, beside bicubic."""
    parser = argparse.ArgumentParser(prog="jasr-eval", description=main.__doc__)
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS, help=f"shipped name or checkpoint path (default {DEFAULT_WEIGHTS})")
    parser.add_argument("--data", required=True, help="folder of image + .pts pairs, e.g. ../shared/data/faces68/test")
    parser.add_argument("--report", default="eval_report.json", help="JSON report to write")
    parser.add_argument("--sheet", default="eval_sheet.png", help="PNG sheet of examples to write")
    parser.add_argument("--sheet-faces", type=int, default=6, help="faces shown in the sheet")
    parser.add_argument("--limit", type=int, default=0, help="evaluate only the first N faces (0 = all)")
    parser.add_argument("--margin", type=float, default=None, help="crop margin (default: the checkpoint's)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16", "int8"), default="fp32",
                        help="arithmetic to evaluate (default fp32; int8: CPU, weights calibrated by jasr-quantize)")
    parser.add_argument("--backend", choices=("torch", "onnx"), default="torch",
                        help="torch, or onnx (ONNX Runtime: fp32, or int8 with the weights' NAME.int8.onnx)")
    parser.add_argument("--protocol", choices=(*PROTOCOLS, "all"), default="clean",
                        help="clean (the paper's, default), cctv (jittered crop, blur, noise, H.264; seeded), rotated "
                             "(faces rotated 15-30 and 30-45 deg), or all three")
    parser.add_argument("--upright", type=float, default=0.0, metavar="DEG",
                        help="landmarks of faces tilted beyond DEG degrees from a second pass on the face turned level, "
                             f"as the pipeline runs them (its default: {DEFAULT_UPRIGHT_DEGREES:g}); default 0: the network's one pass")
    parser.add_argument("--lr-size", type=int, metavar="PX",
                        help="side the faces are reduced to (default: the weights' own, 16 / 32 / 64 for x8 / x4 / x2)")
    args = parser.parse_args(argv)

    try:
        check_upright(args.upright)
        device = pick_device(args.device)
        if args.precision == "fp32" and args.backend == "torch":  # any checkpoint, single-task ones too
            (model, checkpoint), dtype = load_model(args.weights, device), torch.float32
        else:
            enhancer = make_enhancer(args.weights, str(device), args.precision, args.backend)
            model, checkpoint, dtype = enhancer.model, enhancer.checkpoint, enhancer.dtype
        pairs = find_pairs(args.data)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"jasr-eval: error: {error}", file=sys.stderr)
        return 2
    if args.limit:
        pairs = pairs[: args.limit]
    lr_size = args.lr_size or int(checkpoint["meta"].get("lr_size", LR_SIZE))
    if not 4 <= lr_size <= HR_SIZE:
        print(f"jasr-eval: error: --lr-size must be between 4 and {HR_SIZE} px, not {lr_size}", file=sys.stderr)
        return 2
    margin = args.margin or checkpoint["meta"].get("train_config", {}).get("crop_margin", 1.4)
    started = time.perf_counter()
    protocols = PROTOCOLS if args.protocol == "all" else (args.protocol,)
    results: dict[str, dict[str, Any]] = {}
    for protocol in protocols:
        results.update(run_protocol(model, pairs, margin, protocol, device, args.batch_size,
                                    keep=args.sheet_faces if not results else 0, input_dtype=dtype,
                                    lr_size=lr_size, upright=args.upright))
    first = next(iter(results.values()))
    report = {
        "weights": checkpoint["path"],
        "precision": args.precision,
        "backend": args.backend,
        "data": str(Path(args.data).resolve()),
        "crop_margin": margin,
        "lr_size": lr_size,
        "upright_degrees": args.upright,
        "protocol": args.protocol,
        "seconds": time.perf_counter() - started,
        "summary": first["summary"],
        "faces": first["faces"],
    }
    if len(results) > 1 or args.protocol != "clean":
        report["protocols"] = {name: {"summary": r["summary"], "faces": r["faces"]} for name, r in results.items()}
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text(json.dumps(report, indent=1))
    if args.sheet and first["kept"]:
        draw_sheet(first["kept"], args.sheet)
    print(f"faces reduced to {lr_size} px" + (f"; upright pass beyond {args.upright:g} deg" if args.upright else ""))
    for name, result in results.items():
        if len(results) > 1 or args.protocol != "clean":
            print(f"protocol: {name}")
        print(format_summary(result["summary"]))
    print(f"report: {args.report}  sheet: {args.sheet}")
    return 0


def format_summary(summary: dict[str, Any]) -> str:
    lines = [f"faces: {summary['faces']}", f"{'method':<10}{'PSNR':>8}{'SSIM':>8}{'NME%':>8}{'AUC@8%':>8}{'fail@8%':>9}"]
    for method in ("bicubic", "model"):
        m = summary.get(method, {})

        def fmt(key: str, spec: str) -> str:
            return format(m[key], spec) if m.get(key) is not None else "-"

        lines.append(
            f"{method:<10}{fmt('psnr_y_face', '.2f'):>8}{fmt('ssim_y_face', '.4f'):>8}{fmt('nme_percent', '.2f'):>8}"
            f"{fmt('auc_at_8_percent', '.3f'):>8}{fmt('failure_rate_at_8_percent', '.3f'):>9}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
