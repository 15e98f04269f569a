"""`jasr-video`: the command line, a thin layer over :class:`jasr_video.pipeline.Pipeline`.

Exit codes: 0 done; 2 bad input or options (one line saying the problem and the fix);
1 an unexpected internal error (one line; --debug shows the traceback); 130 / 143 stopped by
Ctrl-C / SIGTERM after finalising the outputs written so far.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Sequence

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_SIGINT, EXIT_SIGTERM = 0, 1, 2, 130, 143


class UserError(Exception):
    """A problem the user can fix; str() is the one line shown."""


def _thresholds(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give three numbers, e.g. 0.6,0.7,0.7") from None
    if len(values) != 3 or not all(0 <= v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: give three numbers in [0, 1], e.g. 0.6,0.7,0.7")
    return values  # type: ignore[return-value]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse's own usage dump is noisy)
        self.exit(EXIT_USAGE, f"jasr-video: error: {message} (see jasr-video --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="jasr-video",
        description=(
            "Detect, track, super-resolve (x8, 16x16 -> 128x128) and align (68 landmarks) the faces in a "
            "video with JASRNet. Every face crop is brought down to 16x16 for the model, as in training; "
            "the outputs say which faces were below / above 16 px."
        ),
        epilog=(
            "examples:\n"
            "  jasr-video clip.mp4 --out clip_annotated.mp4 --json clip.jsonl\n"
            "  jasr-video clip.mp4 --json clip.jsonl --detect-every 3 --max-frames 250\n"
            "  jasr-video rtsp://cam/stream --json events.jsonl --device cuda --precision fp16\n"
            "Outputs are written as NAME.partial and renamed when finished (or stopped with Ctrl-C);\n"
            "exit codes: 0 ok, 2 bad input/options, 1 internal error, 130/143 stopped by Ctrl-C/SIGTERM."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", metavar="INPUT", help="video file, rtsp:// / http(s):// / tcp:// URL, or webcam (/dev/video0)")
    out = p.add_argument_group("outputs (at least one)")
    out.add_argument("--out", metavar="VIDEO", help="annotated video (.mp4/.mov/.mkv, H.264): boxes, track ids, landmarks "
                     "and a super-resolved inset per face; same size, frame count, timestamps and audio as the input")
    out.add_argument("--json", metavar="JSONL", help="JSON Lines, one object per frame: frame, pts (s), faces with track_id, "
                     "box, score, 68 raw and smoothed landmarks, landmark_confidence, face_px, below_16px")
    out.add_argument("--save-crops", metavar="DIR", help="write each face's 128x128 super-resolved crop as "
                     "DIR/track_NNNN/frame_NNNNNN.png")
    out.add_argument("--even-size", action="store_true", help="for odd frame sizes (e.g. 641x479) pad the video by one "
                     "pixel to encode widely playable yuv420p instead of keeping the exact size in yuv444p")
    out.add_argument("--no-inset", action="store_true", help="do not draw the super-resolved inset beside each face")
    out.add_argument("--crf", type=int, default=20, help="H.264 quality, lower is better/bigger (default: 20)")
    model = p.add_argument_group("model")
    model.add_argument("--weights", default="jasr-cpu", help="shipped weights name (in models/) or a checkpoint path "
                       "(default: jasr-cpu)")
    model.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                       help="where MTCNN and JASRNet run; auto picks cuda when available (default: auto)")
    model.add_argument("--precision", choices=("fp32", "fp16", "bf16"), default="fp32",
                       help="JASRNet precision; fp16/bf16 are for GPUs (default: fp32)")
    model.add_argument("--batch-size", type=_positive, default=32, help="faces per JASRNet forward pass (default: 32)")
    model.add_argument("--frame-batch", type=_positive, default=4, help="frames gathered per step, so detection and "
                       "enhancement batch across frames; adds that many frames of latency (default: 4)")
    model.add_argument("--threads", type=_positive, help="CPU threads for torch (default: torch's choice)")
    det = p.add_argument_group("detection and tracking")
    det.add_argument("--detect-every", type=_positive, default=1, metavar="N", help="run MTCNN on every N-th frame; "
                     "boxes in between come from the tracker's Kalman prediction (default: 1)")
    det.add_argument("--min-face-size", type=_positive, default=12, metavar="PX", help="smallest face MTCNN looks for, "
                     "in pixels; 12 finds faces down to ~10-12 px, larger is faster (default: 12)")
    det.add_argument("--thresholds", type=_thresholds, default=(0.6, 0.7, 0.7), metavar="P,R,O",
                     help="MTCNN P-, R- and O-net score thresholds (default: 0.6,0.7,0.7)")
    det.add_argument("--min-score", type=float, default=0.9, help="drop detections below this probability (default: 0.9)")
    det.add_argument("--max-age", type=_positive, default=12, help="frames a track survives without a detection (default: 12)")
    det.add_argument("--min-hits", type=_positive, default=2, help="detections before a track is shown (default: 2)")
    det.add_argument("--no-smooth", action="store_true", help="do not Kalman-smooth landmarks (smoothed = raw)")
    det.add_argument("--smooth-noise", type=float, default=None, metavar="R", help="landmark measurement noise as a "
                     "fraction of face size; larger smooths more but lags more (default: 0.03, lag ~0.4 frame)")
    det.add_argument("--smooth-process", type=float, default=None, metavar="Q", help="landmark acceleration noise as a "
                     "fraction of face size; smaller smooths more but lags more (default: 0.01)")
    run = p.add_argument_group("run")
    run.add_argument("--max-frames", type=_positive, metavar="N", help="stop after N frames")
    run.add_argument("--live", action="store_true", help="latest-frame mode: drop frames when processing is slower than "
                     "the source (default for live URLs)")
    run.add_argument("--open-timeout", type=float, default=10.0, help="seconds to wait when opening / reading a "
                     "stream (default: 10)")
    run.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    run.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    return p


def _suggest(args: argparse.Namespace) -> str:
    stem = Path(args.input).stem if "://" not in args.input else "stream"
    return f"jasr-video {args.input} --out {stem}_annotated.mp4 --json {stem}.jsonl"


def _check_outputs(args: argparse.Namespace) -> None:
    if args.out and Path(args.out).suffix.lower() not in (".mp4", ".m4v", ".mov", ".mkv"):
        raise UserError(f"--out {args.out}: unsupported extension (use .mp4, .mov or .mkv)")
    for opt, value in (("--out", args.out), ("--json", args.json)):
        if value:
            parent = Path(value).resolve().parent
            if not parent.is_dir():
                raise UserError(f"{opt} {value}: folder {parent} does not exist (create it first)")
            if Path(value).resolve() == Path(args.input).resolve():
                raise UserError(f"{opt} {value} would overwrite the input (choose another name)")


def _open(args: argparse.Namespace):
    from .source import SourceError, is_live_uri, open_source

    if not is_live_uri(args.input):
        path = Path(args.input[7:] if args.input.startswith("file://") else args.input)
        if not path.exists():
            raise UserError(f"input file not found: {args.input} (check the path)")
        if path.is_dir():
            raise UserError(f"input is a directory, not a video: {args.input} (give a video file)")
        if path.stat().st_size == 0:
            raise UserError(f"input file is empty: {args.input} (give a video file)")
    opts: dict[str, Any] = {"open_timeout": args.open_timeout}
    if args.live:
        opts["live"] = True
    try:
        return open_source(args.input, **opts)
    except SourceError as exc:
        raise UserError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="jasr-video: %(message)s")
    try:
        return _main(args)
    except UserError as exc:
        print(f"jasr-video: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("jasr-video: interrupted", file=sys.stderr)
        return EXIT_SIGINT
    except Exception as exc:  # noqa: BLE001
        if args.debug:
            raise
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"jasr-video: internal error: {type(exc).__name__}: {line} (rerun with --debug for details)", file=sys.stderr)
        return EXIT_ERROR


def _main(args: argparse.Namespace) -> int:
    if not (args.out or args.json or args.save_crops):
        raise UserError(
            f"no output asked for, nothing would be written; add --out VIDEO and/or --json JSONL, e.g. {_suggest(args)}"
        )
    _check_outputs(args)
    source = _open(args)  # before loading models: bad input fails fast
    try:
        return _run(args, source)
    finally:
        source.close()


def _run(args: argparse.Namespace, source) -> int:
    import torch
    from rich.console import Console

    from .pipeline import Pipeline, PipelineConfig
    from .sinks import CropSink, JsonlSink, VideoSink
    from .source import StreamGap

    console = Console(stderr=True, quiet=args.quiet)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.precision != "fp32" and args.device == "cpu":
        console.print(f"[yellow]note:[/] {args.precision} on CPU is slow or unsupported; fp32 is the CPU default")
    cfg = PipelineConfig(
        weights=args.weights, device=args.device, precision=args.precision, batch_size=args.batch_size,
        frame_batch=1 if source.info.is_live and args.frame_batch == 4 else args.frame_batch,
        detect_every=args.detect_every, min_face_size=args.min_face_size, thresholds=tuple(args.thresholds),
        min_score=args.min_score, max_age=args.max_age, min_hits=args.min_hits, smooth=not args.no_smooth,
        max_frames=args.max_frames,
    )
    if args.smooth_noise is not None:
        cfg.measurement_noise = args.smooth_noise
    if args.smooth_process is not None:
        cfg.process_noise = args.smooth_process
    try:
        pipeline = Pipeline(cfg)
    except FileNotFoundError as exc:
        raise UserError(f"weights not found: {args.weights} ({str(exc).splitlines()[0]}; give a shipped name or a .pt path)") from None
    except (ValueError, RuntimeError) as exc:
        raise UserError(f"cannot load the model: {str(exc).splitlines()[0]}") from None

    info = source.info
    sinks: list[Any] = []
    stop = {"signal": None}

    def on_signal(signum, _frame) -> None:
        if stop["signal"] is not None:  # second Ctrl-C: stop now (outputs are still closed in finally)
            raise KeyboardInterrupt
        stop["signal"] = signum
        pipeline.stop()
        source.close()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    complete = False
    frames = faces = 0
    try:
        if args.out:
            sinks.append(VideoSink(args.out, info, audio_from=args.input, crf=args.crf, even_size=args.even_size,
                                   inset=not args.no_inset))
        if args.json:
            sinks.append(JsonlSink(args.json))
        if args.save_crops:
            sinks.append(CropSink(args.save_crops))
        total = args.max_frames if info.frame_count is None else min(info.frame_count, args.max_frames or info.frame_count)
        started = time.monotonic()
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} frames"),
                      TextColumn("{task.fields[fps]:.1f} fps"), TextColumn("faces {task.fields[faces]}"),
                      TextColumn("tracks {task.fields[tracks]}"), TimeElapsedColumn(), console=console,
                      transient=False, disable=args.quiet) as progress:
            task = progress.add_task(Path(args.input).name if "://" not in args.input else info.uri,
                                     total=total, fps=0.0, faces=0, tracks=0)
            for result in pipeline.run(source, events=True):
                if isinstance(result, StreamGap):  # live source came back after an outage
                    for sink in sinks:
                        if isinstance(sink, JsonlSink):
                            sink.write_event({"event": "stream_gap", "stream": result.stream, "start_pts": result.start_pts,
                                              "duration": round(result.duration, 3), "reason": result.reason})
                    continue
                for sink in sinks:
                    sink.write(result)
                frames += 1
                faces += len(result.faces)
                elapsed = max(time.monotonic() - started, 1e-6)
                progress.update(task, completed=frames, fps=frames / elapsed, faces=len(result.faces),
                                tracks=len(pipeline.stats["track_ids"]))
        if frames == 0 and stop["signal"] is None:
            reason = getattr(source, "error", None) or "no frame could be decoded"
            raise UserError(f"{args.input}: {reason} (check that the file is a playable video)")
        complete = True
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        written = []
        for sink in sinks:
            try:
                written.append(sink.close(complete=complete and frames > 0))
            except Exception as exc:  # noqa: BLE001
                console.print(f"[red]could not finalise {getattr(sink, 'path', sink)}:[/] {exc}")
        if not complete:
            for path in written:
                if frames == 0 and Path(path).name.endswith(".partial"):
                    Path(path).unlink(missing_ok=True)
                elif Path(path).exists():
                    console.print(f"[yellow]incomplete output kept:[/] {path}")
    _summary(console, args, pipeline, sinks, frames, faces, stop["signal"])
    if stop["signal"] == signal.SIGINT:
        return EXIT_SIGINT
    if stop["signal"] == signal.SIGTERM:
        return EXIT_SIGTERM
    return EXIT_OK


def _summary(console, args, pipeline, sinks, frames: int, faces: int, signum) -> None:
    from rich.table import Table

    s = pipeline.summary()
    table = Table(title="jasr-video summary", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    status = {None: "complete", signal.SIGINT: "stopped by Ctrl-C", signal.SIGTERM: "stopped by SIGTERM"}[signum]
    table.add_row("status", status)
    table.add_row("frames", f"{frames} ({s['fps']:.2f} fps overall)")
    table.add_row("faces", f"{faces} on {frames} frames; {s['faces_below_16px']} below 16 px (upsampled), "
                  f"{faces - s['faces_below_16px']} at/above 16 px (reduced to 16x16)")
    table.add_row("tracks", str(s["tracks"]))
    table.add_row("time", f"detect {s['detect_s']:.1f}s, enhance {s['enhance_s']:.1f}s, total {s['elapsed_s']:.1f}s")
    src = s.get("source", {})
    if src.get("corrupt_skipped") or src.get("dropped") or src.get("reconnects"):
        table.add_row("source", f"corrupt skipped {src.get('corrupt_skipped', 0)}, dropped {src.get('dropped', 0)}, "
                      f"reconnects {src.get('reconnects', 0)}")
    for sink in sinks:
        path = getattr(sink, "path", None) or getattr(sink, "folder", None)
        extra = f" (audio: {sink.audio_mode}, {sink.pix_fmt})" if hasattr(sink, "audio_mode") else ""
        table.add_row("wrote", f"{path}{extra}")
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
