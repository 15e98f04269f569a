"""End-to-end benchmark on a real clip: a facenet-pytorch-style baseline against the pipeline and its variants.

    python -m jasr_video.bench --threads 2 --json bench.json

All runs happen in one process on the same frames of the same clip, so their ratios can be compared even
on a shared machine (absolute figures move with the load). Each run decodes the clip, processes it and
writes an annotated H.264 video and a JSON Lines file through the real sinks (:mod:`jasr_video.sinks`):

* ``baseline``: facenet-pytorch's own approach: MTCNN on every frame, no tracking, each face crop upscaled
  bicubically to 128x128 (no JASRNet); min face 12 px, thresholds 0.6/0.7/0.7, min score 0.9;
* ``default``: :class:`~jasr_video.pipeline.PipelineConfig` defaults;
* variants, each changing one setting of ``default``: ``facenet-detector`` (``detector="mtcnn"``: facenet's
  R-/O-net weights), ``mtcnn-cctv``, ``yunet`` and ``yunet-up2`` (that detector; YuNet on the frame as it is, and enlarged x2;
  each when it is not the default), ``strict-starts`` (``new_track_score=0.9``: only
  detections of probability >= 0.9 start a track, weaker ones only continue one), ``x8-only`` (``sr_factor="8"``: every face at 16x16
  through the x8 JASRNet, instead of routing by face size), ``json-only`` (JSON Lines only, no video:
  ``sr_faces=False``, as the CLI runs when no output shows SR faces; JASRNet finds the landmarks only), ``one-pass`` (``upright=0``: no second JASRNet pass
  for tilted heads), ``every-frame`` (full-frame MTCNN on every frame, when
  the default scans the full frame less often: ``PipelineConfig.full_scan_every``, auto 5 on CPU),
  ``detect-every`` (MTCNN on every 3rd frame with Kalman-predicted boxes in between), ``regions`` (run name
  ``regions-10``: full-frame MTCNN every 10th frame, MTCNN on regions around the tracks' predicted boxes on
  the frames between), ``batch-1`` (one face per JASRNet forward), ``fp32`` (JASRNet in fp32, when the
  default precision is not fp32), ``bf16`` (JASRNet in bf16, when the default is int8), ``detector-reduced``
  (run name ``detector-bf16`` on CPU, ``detector-fp16`` on CUDA: MTCNN's P-net in reduced precision),
  ``reference-mtcnn`` (facenet-pytorch's own MTCNN code in the pipeline, with ``mtcnn-cctv``'s weights when the
  default detector is not MTCNN), ``threaded-sinks`` (annotation and
  encoding in a writer thread, :class:`~jasr_video.sinks.BackgroundWriter`), ``one-lane`` (``lanes=1``: no CPU
  lanes, :mod:`jasr_video.lanes`; every stage runs in the pipeline's thread on all torch threads).

``--streams N ...``: N copies of the clip at once in one process (:func:`run_streams`).

Per run: frames/s end to end, ms per frame in each stage (decode = waiting for the decode thread; detect,
track, crop, enhance, smooth from :meth:`Pipeline.stage_seconds`; annotate, encode, json from the sinks),
faces per output frame, recall of the baseline's MTCNN faces (IoU >= 0.5; also per face size), peak memory, and for variants
with the same detections the SR / landmark deviation from ``default``. It also prints JASRNet faces/s
(model only, :mod:`jasr_video.model.bench`). Benchmarks print figures; they are not tests.

Length: one benchmark (its runs, measures and report) in one file, a tool outside the library.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import torch

from ..crop import DEFAULT_MARGIN, HR_SIZE, LR_SIZE, CropGeometry
from ..pipeline import STAGES, FaceResult, FrameResult, Pipeline, PipelineConfig
from ..track import iou_matrix

DEFAULT_CLIP = Path(__file__).resolve().parents[3] / "shared/data/video/royal_opera_house_1080p25.mp4"
DEFAULT_FACES = Path(__file__).resolve().parents[3] / "shared/data/faces68/test"
SINK_STAGES = ("annotate", "encode", "json")
STRICT_START = 0.9  # the strict-starts variant's new_track_score
VARIANTS = ("baseline", "default", "facenet-detector", "mtcnn-cctv", "yunet", "yunet-up2", "strict-starts", "x8-only", "json-only", "one-pass", "every-frame",
            "detect-every", "regions", "batch-1", "fp32", "bf16", "detector-reduced", "reference-mtcnn", "threaded-sinks",
            "one-lane")
FULL_SCAN_EVERY = 10  # the ``regions`` variant: full-frame MTCNN every 10th frame, regions around the tracks between


# ---------------------------------------------------------------------------------------------
# memory


def reset_peak_memory(device: torch.device) -> None:
    """Reset the peak-RSS mark (Linux: /proc/self/clear_refs) and CUDA's peak allocation counter."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # other systems: ru_maxrss is a whole-process peak
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> dict[str, float]:
    """Peak resident memory since the last reset (VmHWM), and peak CUDA allocation on CUDA, in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1]) / 1024.0
    except OSError:
        pass
    out = {"peak_rss_mb": rss}
    if device.type == "cuda":
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


# ---------------------------------------------------------------------------------------------
# runs


@dataclass
class Run:
    """One timed pass over the clip."""

    name: str
    frames: int = 0
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage
    faces: int = 0
    memory: dict[str, float] = field(default_factory=dict)
    boxes: list[np.ndarray] = field(default_factory=list)  # per frame (N, 4)
    outputs: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # (frame, track) -> (landmarks, sr)
    config: dict[str, Any] = field(default_factory=dict)
    routes: dict[str, int] = field(default_factory=dict)  # faces per JASRNet route (jasr_video.route)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        per_frame = {k: 1000.0 * v / max(self.frames, 1) for k, v in self.stages.items()}
        return {"name": self.name, "frames": self.frames, "seconds": self.seconds, "fps": self.fps,
                "faces": self.faces, "faces_per_frame": self.faces / max(self.frames, 1),
                "ms_per_frame": per_frame, **self.memory, "routes": self.routes, "config": self.config}


def _record(run: Run, result: FrameResult, keep_outputs: bool) -> None:
    run.frames += 1
    run.faces += len(result.faces)
    run.boxes.append(np.array([f.box for f in result.faces], np.float32).reshape(-1, 4))
    if keep_outputs:
        for f in result.faces:
            run.outputs[(result.index, f.track_id)] = (f.landmarks_raw, f.sr)


def _make_sinks(info: Any, clip: Path, out_dir: Path, name: str, video: bool = True) -> list[Any]:
    """The CLI's sinks with their defaults: an annotated video (unless not `video`) and JSON Lines."""
    from ..outputs import OutputSpec, build_sinks

    paths = {"out": out_dir / f"{name}.mp4"} if video else {}
    return build_sinks(OutputSpec(), {**paths, "json": out_dir / f"{name}.jsonl"}, info, str(clip))


def _sink_seconds(sinks: list[Any]) -> dict[str, float]:
    out = dict.fromkeys(SINK_STAGES, 0.0)
    for sink in sinks:
        for k, v in getattr(sink, "seconds", {}).items():
            out[k] += v
    return out


def bicubic_face(image: np.ndarray, geometry: CropGeometry, size: int = HR_SIZE) -> np.ndarray:
    """The baseline's "enhancement": the square face crop resampled to size x size with bicubic interpolation."""
    import cv2

    return cv2.warpAffine(image, geometry.matrix(size), (size, size), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REPLICATE)


def reference_detector(config: PipelineConfig, device: torch.device) -> Any:
    """facenet-pytorch's own MTCNN code (``detect_face``) with the pipeline's detector settings and weights
    (``mtcnn-cctv``'s when the pipeline's detector is not MTCNN)."""
    from ..detect import DETECTORS, FaceDetector

    if not config.detector.startswith("mtcnn"):
        config = replace(config, detector="mtcnn-cctv")

    return FaceDetector(config.min_face_size, config.thresholds, config.pyramid_factor, device, config.scores()[0],
                        fast=False, refine_weights=DETECTORS[config.detector].refine_weights_default)


def run_baseline(clip: Path, frames: int, config: PipelineConfig, out_dir: Path, device: torch.device) -> Run:
    """MTCNN on every frame, no tracking, each face crop upscaled bicubically; decoded and written like the pipeline."""
    from ..source import open_source

    from ..detect import FaceDetector

    # facenet's own code with the settings the pipeline had before tiny-face support (fixed, so the baseline does
    # not follow the pipeline's defaults): min face 12 px, thresholds 0.6/0.7/0.7, min score 0.9
    detector = FaceDetector(12, (0.6, 0.7, 0.7), 0.709, device, 0.9, fast=False)
    run = Run("baseline", config={"detector": "MTCNN every frame", "enhance": "bicubic x8 crop, no JASRNet"})
    stages = dict.fromkeys(("decode", "detect", "crop"), 0.0)
    empty2, empty1 = np.zeros((0, 2), np.float32), np.zeros(0, np.float32)
    with open_source(str(clip), loop=True) as src:  # loop: runs may be longer than the clip
        sinks = _make_sinks(src.info, clip, out_dir, "baseline")
        reset_peak_memory(device)
        start = time.perf_counter()
        items = iter(src)
        while run.frames < frames:
            t0 = time.perf_counter()
            frame = next(items, None)
            t1 = time.perf_counter()
            if frame is None:
                break
            dets = detector.detect([frame.image])[0]
            t2 = time.perf_counter()
            faces = []
            for k, d in enumerate(dets):
                g = CropGeometry.from_detection(d.box, DEFAULT_MARGIN)
                faces.append(FaceResult(k + 1, d.box, d.score, True, empty2, empty2, empty1, d.size,
                                        bicubic_face(frame.image, g), g))
            t3 = time.perf_counter()
            result = FrameResult(frame.index, frame.pts, frame.image, faces)
            for sink in sinks:
                sink.write(result)
            stages["decode"] += t1 - t0
            stages["detect"] += t2 - t1
            stages["crop"] += t3 - t2
            _record(run, result, keep_outputs=False)
        for sink in sinks:
            sink.close()
        run.seconds = time.perf_counter() - start
    run.stages = {**stages, **_sink_seconds(sinks)}
    run.memory = peak_memory_mb(device)
    return run


def run_pipeline(name: str, clip: Path, frames: int, config: PipelineConfig, out_dir: Path, threaded_sinks: bool = False,
                 warmup: int = 4, keep_outputs: bool = False, use_reference_detector: bool = False,
                 video: bool = True) -> Run:
    """The pipeline with `config` on the first `frames` frames, writing through the real sinks; models are
    loaded and warmed up on `warmup` frames before the clock starts. use_reference_detector: facenet-pytorch's
    own MTCNN code instead of the fast path (:func:`reference_detector`); `video`: False writes JSON Lines only."""
    from ..model.inference import pick_device
    from ..sinks import BackgroundWriter
    from ..source import open_source

    detector = reference_detector(config, pick_device(config.device)) if use_reference_detector else None
    pipeline = Pipeline(replace(config, max_frames=warmup), detector=detector)
    for _ in pipeline.run(str(clip)):
        pass
    pipeline.config = replace(config, max_frames=frames)
    device = pipeline.enhancer.device
    run = Run(name, config={"detect_every": config.detect_every, "full_scan_every": pipeline.full_scan_every,
                            "detector": "facenet detect_face" if use_reference_detector else config.detector,
                            "detector_precision": pipeline.detector.precision,
                            "batch_size": config.batch_size,
                            "frame_batch": pipeline.frame_batch,
                            "lanes": getattr(pipeline.enhancer.lanes, "count", 1), "precision": pipeline.enhancer.enhancer.precision,
                            "min_face_size": config.min_face_size, "threaded_sinks": threaded_sinks})
    with open_source(str(clip), loop=True) as src:
        sinks = _make_sinks(src.info, clip, out_dir, name, video)
        writer = BackgroundWriter(sinks) if threaded_sinks else None
        reset_peak_memory(device)
        start = time.perf_counter()
        for result in pipeline.run(src):
            if writer is not None:
                writer.write(result)
            else:
                for sink in sinks:
                    sink.write(result)
            _record(run, result, keep_outputs)
        if writer is not None:
            writer.close()
        else:
            for sink in sinks:
                sink.close()
        run.seconds = time.perf_counter() - start
    run.stages = {**pipeline.stage_seconds(), **_sink_seconds(sinks)}
    run.memory = peak_memory_mb(device)
    run.routes = dict(pipeline.stats.get("routes", {}))
    return run


def run_streams(clip: Path, frames: int, config: PipelineConfig, count: int, out_dir: Path, model: Any,
                video: bool) -> dict[str, Any]:
    """`count` copies of the clip at once through :class:`~jasr_video.multistream.MultiStreamRunner` (one
    shared MTCNN + JASRNet, faces batched across streams), each stream `frames` frames read as fast as they
    decode; JSON Lines per stream, plus an annotated video each when `video` (without it JASRNet finds the
    landmarks only, as the CLI runs JSON-only streams). Real time when every stream
    keeps up with the clip's frame rate."""
    from ..multistream import MultiStreamRunner, OutputSpec, StreamSpec

    specs = [StreamSpec(f"s{k + 1}", str(clip)) for k in range(count)]
    outputs = OutputSpec(json=str(out_dir / f"streams{count}-{{stream}}.jsonl"),
                         out=str(out_dir / f"streams{count}-{{stream}}.mp4") if video else None)
    # SR faces only with video, as the CLI runs (PipelineConfig.sr_faces)
    runner = MultiStreamRunner(replace(config, max_frames=frames, sr_faces=outputs.shows_sr()), specs, outputs,
                               source_options={"loop": True}, model=model)
    device = model.device
    reset_peak_memory(device)
    start = time.perf_counter()
    reports = runner.run()
    seconds = time.perf_counter() - start
    done = [r.frames for r in reports]
    failed = [f"{r.name}: {r.error}" for r in reports if r.status != "complete"]
    slowest = min(done) / seconds if seconds else 0.0
    return {"streams": count, "video_out": video, "frames": sum(done), "seconds": seconds,
            "fps_total": sum(done) / seconds if seconds else 0.0, "fps_per_stream_min": slowest,
            "faces": sum(r.faces for r in reports), "failed": failed, **peak_memory_mb(device)}


# ---------------------------------------------------------------------------------------------
# comparisons


def recall(reference: list[np.ndarray], other: list[np.ndarray], iou: float = 0.5) -> dict[str, Any]:
    """Share of the reference's faces (per frame) that `other` also outputs (IoU >= iou); plus unmatched extras,
    and the share per size of the reference face (``by_size``: tinybench's buckets, longer box side)."""
    from .tinybench import BUCKETS, bucket_of, box_size

    found = total = extra = 0
    sizes: dict[str, list[int]] = {b[0]: [0, 0] for b in BUCKETS}  # bucket -> [found, total]
    for ref, out in zip(reference, other):
        total += len(ref)
        hit = np.zeros(len(ref), bool)
        if len(ref) and len(out):
            m = iou_matrix(ref, out)
            hit = m.max(axis=1) >= iou
            found += int(hit.sum())
            extra += int((m.max(axis=0) < iou).sum())
        else:
            extra += len(out)
        for size, ok in zip(box_size(ref), hit):
            sizes[bucket_of(size)][0] += int(ok)
            sizes[bucket_of(size)][1] += 1
    return {"recall": found / total if total else 1.0, "matched": found, "reference_faces": total, "extra": extra,
            "by_size": {b: (f / n if n else None, n) for b, (f, n) in sizes.items()}}


def output_deviation(reference: Run, other: Run) -> dict[str, float] | None:
    """SR (8-bit levels) and landmark (frame px) deviation on the faces both runs output (same frame and track)."""
    from ..model.bench import deviation

    keys = sorted(set(reference.outputs) & set(other.outputs))
    if not keys:
        return None

    def stack(run: Run) -> SimpleNamespace:
        lm = torch.from_numpy(np.stack([run.outputs[k][0] for k in keys]).astype(np.float32))
        if any(run.outputs[k][1] is None for k in keys):  # a run without SR faces (json-only)
            return SimpleNamespace(sr=None, landmarks=lm)
        sr = torch.from_numpy(np.stack([run.outputs[k][1] for k in keys])).float().div(255.0)
        return SimpleNamespace(sr=sr, landmarks=lm)

    return {**deviation(stack(reference), stack(other)), "faces_compared": len(keys)}


# ---------------------------------------------------------------------------------------------
# report


def environment(device: torch.device, clip: Path) -> dict[str, Any]:
    import av
    import cv2

    from .. import detect
    from ..source import open_source

    detect.import_facenet()
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
    with open_source(str(clip)) as src:
        info = src.info

    return {"device": name, "device_type": device.type, "cpu_cores": os.cpu_count(),
            "threads": torch.get_num_threads(), "torch": torch.__version__, "av": av.__version__, "opencv": cv2.__version__,
            "facenet_pytorch": version("facenet-pytorch"), "torchvision": detect.TORCHVISION_USED, "python": platform.python_version(),
            "clip": str(clip), "frame_size": [info.width, info.height], "clip_fps": info.fps, "clip_frames": info.frame_count}


def model_throughput(device: torch.device, batch: int, data: Path | None, seconds: float) -> list[dict[str, Any]]:
    """JASRNet faces/s at fp32, the default precision and, when that is int8, bf16 (model only), via
    jasr_video.model.bench."""
    from ..model.bench import bench_model, load_for_bench, real_inputs
    from ..model.inference import resolve_precision

    name, model, checkpoint = load_for_bench(PipelineConfig().weights)
    default = resolve_precision(PipelineConfig().precision, device, bool(checkpoint.get("int8")))
    precisions = sorted({"fp32", default} | ({"bf16"} if default == "int8" else set()),
                        key=["fp32", "bf16", "fp16", "int8"].index)
    faces = real_inputs(str(data) if data and data.exists() else None, LR_SIZE, DEFAULT_MARGIN).to(device)
    return bench_model(name, model, device, precisions, sorted({1, batch}), seconds, faces, checkpoint=checkpoint)


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 190))  # the stage table needs the width, also when piped
    env = report["environment"]
    runs = report["runs"]
    base = next((r for r in runs if r["name"] == "baseline"), None)
    w, h = env["frame_size"]
    if runs:
        table = Table(title=f"jasr-video end to end: {Path(env['clip']).name} {w}x{h}, {runs[0]['frames']} frames, "
                            f"{env['device']} ({env['threads']} threads), torch {env['torch']}")
        stages = ["decode", *STAGES[1:], *SINK_STAGES]
        for col in ("run", "fps", "x baseline", "faces/frame", "recall", *stages, "peak RSS MiB"):
            table.add_column(col, justify="right")
        for r in runs:
            ratio = f"{r['fps'] / base['fps']:.2f}x" if base and base["fps"] else "-"
            rec = r.get("vs_baseline", {}).get("recall")
            table.add_row(r["name"], f"{r['fps']:.2f}", ratio, f"{r['faces_per_frame']:.2f}",
                          "-" if rec is None else f"{100 * rec:.1f}%",
                          *[f"{r['ms_per_frame'][s]:.0f}" if s in r["ms_per_frame"] else "-" for s in stages],
                          f"{r['peak_rss_mb']:.0f}" + (f" / {r['peak_cuda_mb']:.0f} GPU" if "peak_cuda_mb" in r else ""))
        console.print(table)
        console.print("stage columns: ms per frame (decode: waiting for the decode thread; with threaded-sinks the "
                      "annotate/encode/json times overlap the other stages; with CPU lanes (all CPU runs but one-lane) detect, "
                      "track and crop overlap enhance)")
        for r in runs:
            by_size = r.get("vs_baseline", {}).get("by_size")
            if by_size:
                console.print(f"{r['name']}: {r['fps']:.2f} fps, recall of the baseline's faces by size: " + ", ".join(
                    f"{b} px {100 * v:.0f} % of {n}" for b, (v, n) in by_size.items() if n))
        default = next((r for r in runs if r["name"] == "default"), None)
        if default:
            for r in runs:
                if r["name"] not in ("baseline", "default"):
                    dev = r.get("vs_default")
                    sr = (f"SR max {dev['sr_max_levels']:.1f} / mean {dev['sr_mean_levels']:.3f} levels, "
                          if dev and "sr_max_levels" in dev else "no SR faces, ")
                    text = (f"{sr}landmarks mean {dev['landmark_mean_px']:.3f} / max {dev['landmark_max_px']:.2f} px "
                            f"over {dev['faces_compared']} faces"
                            if dev else "outputs not compared (different detections or same settings)")
                    console.print(f"[bold]{r['name']}[/] vs default: {default['fps'] / r['fps']:.2f}x faster with default; {text}")
    if report.get("streams"):
        st = Table(title=f"Simultaneous streams (each {Path(env['clip']).name}, {env['clip_fps']:g} fps, read as fast "
                         "as it decodes; one shared model)")
        for col in ("streams", "video out", "frames/s total", "slowest stream fps", "real time", "peak RSS MiB"):
            st.add_column(col, justify="right")
        for row in report["streams"]:
            st.add_row(str(row["streams"]), "yes" if row["video_out"] else "JSON only", f"{row['fps_total']:.1f}",
                       f"{row['fps_per_stream_min']:.1f}", "yes" if row["fps_per_stream_min"] >= env["clip_fps"] else "no",
                       f"{row['peak_rss_mb']:.0f}" + (f" / {row['peak_cuda_mb']:.0f} GPU" if "peak_cuda_mb" in row else ""))
            for line in row["failed"]:
                st.add_row("", "", "", "", f"failed: {line}", "")
        console.print(st)
    if report.get("model"):
        mt = Table(title="JASRNet only (jasr_video.model.bench helpers)")
        for col in ("precision", "batch", "faces/s", "ms/face", "vs fp32: SR max / landmarks mean"):
            mt.add_column(col, justify="right")
        for row in report["model"]:
            n = row.get("vs_fp32")
            mt.add_row(row["precision"], str(row["batch"]), f"{row['faces_per_s']:.1f}", f"{row['ms_per_face']:.1f}",
                       f"{n['sr_max_levels']:.1f} lv / {n['landmark_mean_px']:.3f} px" if n else "-")
        console.print(mt)


# ---------------------------------------------------------------------------------------------
# main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jasr_video.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--input", default=str(DEFAULT_CLIP), help="video file (default: the shared 1080p25 clip)")
    p.add_argument("--frames", type=int, default=100, help="frames per run (default: 100; the clip loops if shorter)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--variants", nargs="*", choices=VARIANTS, default=list(VARIANTS),
                   help="runs to do (default: all; none with --streams alone)")
    p.add_argument("--streams", nargs="*", type=int, default=[], metavar="N",
                   help="also run N copies of the clip at once, for each N given (e.g. --streams 1 2 4)")
    p.add_argument("--streams-video", action="store_true", help="streams runs also write an annotated video per stream")
    p.add_argument("--frame-batch", type=int, help="frames gathered per pipeline step (default: PipelineConfig's)")
    p.add_argument("--full-scan-every", type=int, metavar="K",
                   help="PipelineConfig.full_scan_every for every pipeline run (default: auto, 5 on CPU, 1 on CUDA)")
    p.add_argument("--warmup", type=int, default=4, help="untimed frames per pipeline run to load and warm the models")
    p.add_argument("--model-seconds", type=float, default=2.0, help="seconds per model-only figure (0: skip)")
    p.add_argument("--data", default=str(DEFAULT_FACES), help="real faces for the model-only numerics check")
    p.add_argument("--keep", metavar="DIR", help="keep the written videos / JSONL here (default: a temporary folder)")
    p.add_argument("--json", metavar="FILE", help="write every figure to this JSON file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ..model.inference import pick_device

    clip = Path(args.input)
    if not clip.is_file():
        print(f"jasr-video bench: error: input not found: {clip} (give --input VIDEO)", file=sys.stderr)
        return 2
    try:
        device = pick_device(args.device)
    except RuntimeError as exc:
        print(f"jasr-video bench: error: {exc}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    # no cudnn.benchmark: MTCNN's R-/O-net batches change size every frame, and each new shape would be re-tuned
    config = PipelineConfig(device=args.device)
    if args.frame_batch:
        config = replace(config, frame_batch=args.frame_batch)
    if args.full_scan_every is not None:
        config = replace(config, full_scan_every=args.full_scan_every)
    every = 3 if config.detect_every == 1 else 1
    reduced = "fp16" if device.type == "cuda" else "bf16"  # the detector-reduced variant's P-net precision
    report: dict[str, Any] = {"environment": environment(device, clip), "default_config": {
        k: v for k, v in vars(config).items() if k != "source_options"}, "runs": []}
    plans: dict[str, Callable[[Path], Run]] = {
        "baseline": lambda d: run_baseline(clip, args.frames, config, d, device),
        "default": lambda d: run_pipeline("default", clip, args.frames, config, d, warmup=args.warmup, keep_outputs=True),
        "facenet-detector": lambda d: run_pipeline("facenet-detector", clip, args.frames,
                                                   replace(config, detector="mtcnn"), d, warmup=args.warmup),
        "mtcnn-cctv": lambda d: run_pipeline("mtcnn-cctv", clip, args.frames, replace(config, detector="mtcnn-cctv"), d,
                                             warmup=args.warmup),
        "yunet": lambda d: run_pipeline("yunet", clip, args.frames, replace(config, detector="yunet", detector_upscale=1.0),
                                        d, warmup=args.warmup),
        "yunet-up2": lambda d: run_pipeline("yunet-up2", clip, args.frames,
                                            replace(config, detector="yunet", detector_upscale=2.0), d, warmup=args.warmup),
        "strict-starts": lambda d: run_pipeline("strict-starts", clip, args.frames,
                                                replace(config, new_track_score=STRICT_START), d, warmup=args.warmup),
        "x8-only": lambda d: run_pipeline("x8-only", clip, args.frames, replace(config, sr_factor="8"), d,
                                          warmup=args.warmup),
        "json-only": lambda d: run_pipeline("json-only", clip, args.frames, replace(config, sr_faces=False), d,
                                            warmup=args.warmup, keep_outputs=True, video=False),
        "one-pass": lambda d: run_pipeline("one-pass", clip, args.frames, replace(config, upright=0.0), d,
                                           warmup=args.warmup, keep_outputs=True),
        "every-frame": lambda d: run_pipeline("every-frame", clip, args.frames, replace(config, full_scan_every=1), d,
                                              warmup=args.warmup),
        "detect-every": lambda d: run_pipeline(f"detect-every-{every}", clip, args.frames,
                                               replace(config, detect_every=every), d, warmup=args.warmup),
        "regions": lambda d: run_pipeline(f"regions-{FULL_SCAN_EVERY}", clip, args.frames,
                                          replace(config, full_scan_every=FULL_SCAN_EVERY), d, warmup=args.warmup),
        "batch-1": lambda d: run_pipeline("batch-1", clip, args.frames, replace(config, batch_size=1), d,
                                          warmup=args.warmup, keep_outputs=True),
        "fp32": lambda d: run_pipeline("fp32", clip, args.frames, replace(config, precision="fp32"), d,
                                       warmup=args.warmup, keep_outputs=True),
        "bf16": lambda d: run_pipeline("bf16", clip, args.frames, replace(config, precision="bf16"), d,
                                       warmup=args.warmup, keep_outputs=True),
        "detector-reduced": lambda d: run_pipeline(f"detector-{reduced}", clip, args.frames,
                                                   replace(config, detector_precision=reduced), d, warmup=args.warmup),
        "reference-mtcnn": lambda d: run_pipeline("reference-mtcnn", clip, args.frames, config if config.detector.startswith(
            "mtcnn") else replace(config, detector="mtcnn-cctv"), d, warmup=args.warmup,
                                                  use_reference_detector=True),
        "one-lane": lambda d: run_pipeline("one-lane", clip, args.frames, replace(config, lanes=1), d,
                                           warmup=args.warmup, keep_outputs=True),
        "threaded-sinks": lambda d: run_pipeline("threaded-sinks", clip, args.frames, config, d, threaded_sinks=True,
                                                 warmup=args.warmup),
    }
    from ..model.inference import resolve_precision

    from ..model.checkpoint import read_checkpoint
    from ..pipeline import auto_full_scan_every

    names = [n for n in VARIANTS if n in args.variants]
    default_precision = resolve_precision(config.precision, device, bool(read_checkpoint(config.weights).get("int8")))
    skip = {"fp32": default_precision == "fp32",  # variants that would repeat the default
            "bf16": default_precision != "int8", "every-frame": auto_full_scan_every(config, device) <= 1,
            "mtcnn-cctv": config.detector == "mtcnn-cctv", "yunet": config.detector == "yunet" and config.detector_upscale == 1,
            "yunet-up2": config.detector == "yunet" and config.detector_upscale == 2.0}
    if not config.detector.startswith("mtcnn"):  # MTCNN's P-net precision
        skip["detector-reduced"] = True
    names = [n for n in names if not skip.get(n)]
    runs: dict[str, Run] = {}
    with tempfile.TemporaryDirectory(prefix="jasr-bench-") as tmp:
        out_dir = Path(args.keep) if args.keep else Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in names:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            run = plans[name](out_dir)
            runs[run.name] = run
            print(f"  {run.fps:.2f} fps ({run.seconds:.1f}s)", file=sys.stderr, flush=True)
        if args.streams:
            from ..multistream import SharedModel

            template = Pipeline(replace(config, max_frames=args.warmup))
            for _ in template.run(str(clip)):  # loads and warms the models
                pass
            model = SharedModel(template.enhancer, template.detector)
            report["streams"] = []
            for count in args.streams:
                print(f"running {count} stream(s) ...", file=sys.stderr, flush=True)
                row = run_streams(clip, args.frames, config, count, out_dir, model, args.streams_video)
                report["streams"].append(row)
                if args.json:  # after each run: a later one may not finish within the caller's time limit
                    Path(args.json).write_text(json.dumps(report, indent=1, default=float))
                print(f"  {row['fps_total']:.1f} frames/s in all, slowest stream {row['fps_per_stream_min']:.1f} fps",
                      file=sys.stderr, flush=True)
    for name, run in runs.items():
        row = run.summary()
        if "baseline" in runs and name != "baseline":
            row["vs_baseline"] = recall(runs["baseline"].boxes, run.boxes)
            row["fps_ratio_vs_baseline"] = run.fps / runs["baseline"].fps
        if "default" in runs and name not in ("baseline", "default"):
            row["vs_default"] = output_deviation(runs["default"], run) if run.outputs else None
            row["default_speedup"] = runs["default"].fps / run.fps
        report["runs"].append(row)
    if args.model_seconds > 0:
        print("running model-only throughput ...", file=sys.stderr, flush=True)
        report["model"] = model_throughput(device, config.batch_size, Path(args.data), args.model_seconds)
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
