"""JASRNet throughput: faces/s per model size, batch size and precision, with each reduced precision's
deviation from the fp32 reference on the same faces.

    python -m jasr_video.model.bench --device cpu --threads 2 --json bench-model.json

With onnxruntime installed (extra ``jasr-video[onnx]``) the same run also times the ONNX Runtime backend
(:mod:`.onnx_backend`: fp32, and int8 where the weights have a ``NAME.int8.onnx``) on the same faces and
batch sizes (``--backends torch onnx``). ``--repeat N`` times every configuration N times round-robin and keeps
the best, for ratios that hold on a loaded machine.

Benchmarks print figures; they are not tests. On CUDA it also times a large bf16 matrix product in
the same run, so achieved TFLOP/s can be read against a measured roofline, not a datasheet.
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from .checkpoint import load_model, resolve_weights
from .config import HR_SIZE, model_config
from .data import FaceDataset, degrade, find_pairs, upsample
from .inference import FaceEnhancer, pick_device
from .network import JASRNet, count_parameters


def forward_flops(model: JASRNet, sr: bool = True) -> float:
    """FLOPs of one face's forward pass (multiply-add = 2 FLOPs; ``sr=False``: the landmarks-only pass), counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    probe = JASRNet(model.config).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        probe(torch.zeros(1, 3, HR_SIZE, HR_SIZE), sr=sr)
    return float(counter.get_total_flops())


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn, device: torch.device, min_seconds: float, min_calls: int = 3) -> float:
    """Mean seconds per call after one warm-up call, over at least min_seconds and min_calls."""
    fn()
    synchronize(device)
    calls, start = 0, time.perf_counter()
    while calls < min_calls or time.perf_counter() - start < min_seconds:
        fn()
        calls += 1
    synchronize(device)
    return (time.perf_counter() - start) / calls


def matmul_tflops(device: torch.device, n: int = 8192) -> float:
    """Measured bf16 matrix-product TFLOP/s on this GPU (the roofline the model is read against)."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    seconds = time_calls(lambda: a @ b, device, 1.0, 5)
    return 2 * n**3 / seconds / 1e12


def real_inputs(data: str | None, count: int, margin: float) -> torch.Tensor:
    """Bicubic-upsampled 16x16 faces: real ones from `data` when given, else a fixed random batch."""
    if data:
        pairs = find_pairs(data)[:count]
        if pairs:
            dataset = FaceDataset(pairs, margin=margin)
            hr = torch.stack([dataset[i][0] for i in range(len(dataset))])
            return upsample(degrade(hr))
    return upsample(torch.rand(count, 3, 16, 16, generator=torch.Generator().manual_seed(0)))


def deviation(reference: Any, other: Any) -> dict[str, float]:
    """How far a reduced-precision prediction is from the fp32 one: SR in 8-bit levels (left out when either
    has no SR faces), landmarks in px."""
    points = (reference.landmarks - other.landmarks).norm(dim=-1)
    out = {"landmark_mean_px": float(points.mean()), "landmark_max_px": float(points.max())}
    if reference.sr is None or other.sr is None:
        return out
    sr = (reference.sr - other.sr).abs().mul(255)
    return {"sr_max_levels": float(sr.max()), "sr_mean_levels": float(sr.mean()), **out}


def bench_model(name: str, model: JASRNet, device: torch.device, precisions: list[str], batch_sizes: list[int],
                seconds: float, faces: torch.Tensor, compile_model: bool = False,
                compile_mode: str = "max-autotune-no-cudagraphs", checkpoint: dict | None = None,
                onnx_precisions: tuple[str, ...] | list[str] = (), repeat: int = 1,
                passes: tuple[str, ...] | list[str] = ("full",)) -> list[dict[str, Any]]:
    """Faces/s of one network pass (`FaceEnhancer.predict`: no upright pass) at each precision and batch size
    (inputs already on the device); `checkpoint`:
    the one the network came from (int8 needs its calibration). `onnx_precisions`: also the ONNX Runtime
    backend (:class:`~.onnx_backend.OnnxFaceEnhancer`) at these precisions (fp32: the network exported in
    memory; int8: the checkpoint's NAME.int8.onnx); deviations are always against torch fp32.
    `repeat` > 1: every configuration is timed that many times, round-robin over all of them (so a change in
    the machine's load hits each alike), and the best time is kept. `passes`: "full" (SR and landmarks) and / or
    "landmarks" (``predict(x, sr=False)``: the SR branch skipped, as the pipeline runs faces whose SR image is
    not used)."""
    flops = {kind: forward_flops(model, sr=kind == "full") for kind in passes}
    reference = FaceEnhancer(device=str(device), model=copy.deepcopy(model)).predict(faces)
    runs: list[tuple[str, str, Any, dict[str, float] | None, str]] = []  # backend, precision, enhancer, deviation, pass
    for backend, precision in [("torch", p) for p in precisions] + [("onnx", p) for p in onnx_precisions]:
        if backend == "onnx":
            from .onnx_backend import OnnxFaceEnhancer

            enhancer: Any = (OnnxFaceEnhancer(checkpoint["path"], device=str(device), precision=precision)
                             if precision == "int8" and checkpoint else
                             OnnxFaceEnhancer(device=str(device), precision=precision, model=model, checkpoint=checkpoint))
        else:
            enhancer = FaceEnhancer(device=str(device), precision=precision, model=copy.deepcopy(model),
                                    checkpoint=checkpoint)
        if compile_model:
            enhancer.model = torch.compile(enhancer.model, mode=compile_mode)
        for kind in passes:
            check = enhancer.predict(faces, sr=kind == "full")
            changed = precision != "fp32" or compile_model or backend != "torch" or kind != "full"
            runs.append((backend, precision, enhancer, deviation(reference, check) if changed else None, kind))
    best: dict[tuple[int, int], float] = {}
    for _ in range(max(1, repeat)):
        for index, (_, _, enhancer, _, kind) in enumerate(runs):
            for batch in batch_sizes:
                x = faces.repeat((batch + len(faces) - 1) // len(faces), 1, 1, 1)[:batch].to(device)
                per_call = time_calls(lambda: enhancer.predict(x, sr=kind == "full"), device, seconds)
                best[index, batch] = min(best.get((index, batch), per_call), per_call)
    rows: list[dict[str, Any]] = []
    for index, (backend, precision, _, numerics, kind) in enumerate(runs):
        for batch in batch_sizes:
            per_call = best[index, batch]
            row = {"model": name, "backend": backend, "precision": precision, "pass": kind, "batch": batch,
                   "compiled": compile_mode if compile_model else False,
                   "faces_per_s": batch / per_call, "ms_per_face": 1000 * per_call / batch,
                   "tflops": flops[kind] * batch / per_call / 1e12, "gflop_per_face": flops[kind] / 1e9}
            if numerics:
                row["vs_fp32"] = numerics
            rows.append(row)
    del runs
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def load_for_bench(spec: str) -> tuple[str, JASRNet, dict]:
    """A shipped weights name / checkpoint path, or `preset:NAME[,FIELD=INT...]` for an untrained network of
    that size (e.g. `preset:cpu,width=64,refine_blocks=2`): (name, network, checkpoint; empty for a preset)."""
    if spec.startswith("preset:"):
        preset, *fields = spec.split(":", 1)[1].split(",")
        overrides = {}
        for item in fields:
            key, _, value = item.partition("=")
            if not value.lstrip("-").isdigit():
                raise ValueError(f"{spec}: give preset overrides as FIELD=INTEGER, e.g. preset:cpu,width=64")
            overrides[key] = int(value)
        torch.manual_seed(0)
        try:
            return spec, JASRNet(model_config(preset, **overrides)).eval(), {}
        except TypeError as error:
            raise ValueError(f"{spec}: {error}") from None
    path = resolve_weights(spec)
    model, checkpoint = load_model(path)
    return path.stem, model, checkpoint


def onnxruntime_installed() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jasr_video.model.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["jasr-cpu"],
                   help="weights names/paths, or preset:paper / preset:cpu for untrained networks of that size "
                        "(int8: calibrated on the bench's faces); preset:cpu,width=64 overrides config fields")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--precisions", nargs="+", help="fp32 bf16 fp16 int8 (default: fp32 bf16 on CPU, plus int8 for "
                   "calibrated weights; fp32 bf16 fp16 on CUDA)")
    p.add_argument("--backends", nargs="+", choices=("torch", "onnx"),
                   help="default: torch, plus onnx (fp32, and int8 where the weights have a NAME.int8.onnx) when "
                   "onnxruntime is installed")
    p.add_argument("--batch-sizes", type=int, nargs="+", help="default: 1 8 32 on CPU, 1 32 128 512 on CUDA")
    p.add_argument("--passes", nargs="+", choices=("full", "landmarks"), default=["full"],
                   help="full: SR and landmarks (default); landmarks: the SR branch skipped, as the pipeline runs "
                        "faces whose SR image no output uses")
    p.add_argument("--seconds", type=float, default=2.0, help="minimum timed seconds per configuration")
    p.add_argument("--repeat", type=int, default=1, help="time every configuration N times, round-robin, and keep "
                   "the best (steadier ratios on a loaded machine; default 1)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--data", help="folder of real faces for the numerics check (e.g. ../shared/data/faces68/test)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd models")
    p.add_argument("--compile-mode", default="max-autotune-no-cudagraphs",
                   help="torch.compile mode (default, reduce-overhead, max-autotune, max-autotune-no-cudagraphs)")
    p.add_argument("--json", help="write all figures to this JSON file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    try:
        device = pick_device(args.device)
        if args.threads:
            torch.set_num_threads(args.threads)
        cuda = device.type == "cuda"
        precisions = args.precisions or (["fp32", "bf16", "fp16"] if cuda else ["fp32", "bf16"])
        batch_sizes = args.batch_sizes or ([1, 32, 128, 512] if cuda else [1, 8, 32])
        if cuda:
            torch.backends.cudnn.benchmark = True
        faces = real_inputs(args.data, 16, 1.4).to(device)
        backends = args.backends or ["torch"] + (["onnx"] if onnxruntime_installed() else [])
        report: dict[str, Any] = {
            "device": torch.cuda.get_device_name(device) if cuda else platform.processor() or platform.machine(),
            "torch": torch.__version__, "threads": torch.get_num_threads(), "rows": []}
        if cuda:
            report["bf16_matmul_tflops"] = matmul_tflops(device)
        for spec in args.models:
            name, model, checkpoint = load_for_bench(spec)
            report.setdefault("parameters", {})[name] = count_parameters(model)
            these = precisions + (["int8"] if not (args.precisions or cuda) and checkpoint.get("int8") else [])
            if not checkpoint and "int8" in these:  # an untrained preset: ranges from the bench's own faces
                from .quantize import ENGINE, calibrate

                checkpoint = {"int8": {"engine": ENGINE, "qparams": calibrate(model, [faces.cpu()])}}
            onnx = []
            if "onnx" in backends:
                from .onnx_export import int8_path

                onnx = ["fp32"] + (["int8"] if not cuda and checkpoint and int8_path(checkpoint["path"]).is_file() else [])
            report["rows"] += bench_model(name, model, device, these if "torch" in backends else [], batch_sizes,
                                          args.seconds, faces, checkpoint=checkpoint, onnx_precisions=onnx,
                                          repeat=args.repeat, passes=args.passes)
            if args.compile:
                report["rows"] += bench_model(name, model, device,
                                              [p for p in these if p not in ("fp32", "int8")] or ["fp32"],
                                              batch_sizes[-1:], args.seconds, faces, compile_model=True,
                                              compile_mode=args.compile_mode)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"jasr-video bench: error: {error}", file=sys.stderr)
        return 2
    table = Table(title=f"JASRNet throughput on {report['device']} (torch {report['torch']}, {report['threads']} threads)")
    for column in ("model", "backend", "precision", "pass", "batch", "faces/s", "ms/face", "TFLOP/s",
                   "vs fp32: SR max / landmarks mean"):
        table.add_column(column, justify="right")
    for row in report["rows"]:
        numerics = row.get("vs_fp32")
        table.add_row(row["model"] + (f" (compiled: {row['compiled']})" if row["compiled"] else ""),
                      row.get("backend", "torch"), row["precision"], row.get("pass", "full"), str(row["batch"]),
                      f"{row['faces_per_s']:.1f}", f"{row['ms_per_face']:.2f}", f"{row['tflops']:.2f}",
                      (f"{numerics['sr_max_levels']:.3g} lv / " if "sr_max_levels" in numerics else "no SR / ")
                      + f"{numerics['landmark_mean_px']:.3g} px" if numerics else "-")
    console.print(table)
    if "bf16_matmul_tflops" in report:
        console.print(f"measured bf16 matmul roofline: {report['bf16_matmul_tflops']:.0f} TFLOP/s")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
