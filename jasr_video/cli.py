"""`jasr-video`: the command line, a thin layer over :class:`jasr_video.pipeline.Pipeline`.

One input runs in the main thread; several inputs (``jasr-video a.mp4 rtsp://cam/s`` or
``--streams FILE``) run as streams of one process sharing one model (:mod:`jasr_video.multistream`).
``--demo`` renders the shared demo clip (:mod:`jasr_video.demo`).

Exit codes: 0 done; 2 bad input or options (one line saying the problem and the fix; with several
streams: any stream that could not be opened or failed, after the others finished);
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
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:
    from .multistream import StreamSpec
    from .pipeline import Pipeline, PipelineConfig

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


def _whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= minimum, with a one-line message otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be >= {minimum}")
        return value

    return parse


_non_negative = _whole_number(0)
_positive = _whole_number(1)


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
            "  jasr-video rtsp://cam1/s rtsp://cam2/s --json out/{stream}.jsonl --out out/ --reconnect\n"
            "  jasr-video --streams cameras.txt --json out/ --live\n"
            "  jasr-video --demo\n"
            "Outputs are written as NAME.partial and renamed when finished (or stopped with Ctrl-C);\n"
            "exit codes: 0 ok, 2 bad input/options (or a stream that failed), 1 internal error,\n"
            "130/143 stopped by Ctrl-C/SIGTERM."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="video file, rtsp:// / http(s):// / tcp:// URL, or webcam "
                   "(/dev/video0); several inputs run as streams of one process sharing one model")
    p.add_argument("--streams", metavar="FILE", help="read more inputs from FILE, one per line (# comments)")
    p.add_argument("--demo", action="store_true", help="render the demo clip (../shared/data or $JASR_VIDEO_DATA) "
                   "to demo/ and print where the outputs are")
    out = p.add_argument_group(
        "outputs (at least one)",
        "with several inputs each output is a path holding {stream} (replaced by the stream's label: file name "
        "without extension, camera device, or the URL's last path part; repeats get -2, -3) or a folder "
        "(ending in / or existing)")
    out.add_argument("--out", metavar="VIDEO", help="annotated video (.mp4/.mov/.mkv, H.264): boxes, track ids, landmarks "
                     "and a super-resolved inset per face; same size, frame count, timestamps and audio as the input")
    out.add_argument("--json", metavar="JSONL", help="JSON Lines, one object per frame: frame, pts (s), faces with track_id, "
                     "box, score, 68 raw and smoothed landmarks, landmark_confidence, face_px, below_16px, sr_factor, "
                     "model_input_px")
    out.add_argument("--save-crops", metavar="DIR", help="write each face's 128x128 super-resolved crop as "
                     "DIR/track_NNNN/frame_NNNNNN.png")
    out.add_argument("--even-size", action="store_true", help="for odd frame sizes (e.g. 641x479) pad the video by one "
                     "pixel to encode widely playable yuv420p instead of keeping the exact size in yuv444p")
    out.add_argument("--no-inset", action="store_true", help="do not draw the super-resolved inset beside each face")
    out.add_argument("--crf", type=int, default=20, help="H.264 quality, lower is better/bigger (default: 20)")
    out.add_argument("--sink-thread", choices=("auto", "on", "off"), default="auto",
                     help="annotate and encode in a thread of their own, overlapping detection (auto: on when "
                     "the model runs on CUDA, 1.5x end to end on an H100; off on CPU, where it measured no reliable gain)")
    model = p.add_argument_group("model")
    model.add_argument("--weights", default="jasr-cpu", help="shipped weights name (in models/) or a checkpoint path "
                       "(default: jasr-cpu)")
    model.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                       help="where MTCNN and JASRNet run; auto picks cuda when available (default: auto)")
    model.add_argument("--precision", choices=("auto", "fp32", "fp16", "bf16", "int8"), default="auto",
                       help="JASRNet precision (default auto: fp16 on CUDA; on CPU int8 where the CPU has int8 dot "
                            "products (VNNI/AMX) and the weights carry an int8 calibration, as the shipped ones do, "
                            "else bf16 on CPUs with native bf16, else fp32)")
    model.add_argument("--sr-factor", choices=("auto", "8", "4", "2"), default="auto",
                       help="which JASRNet serves each face: auto routes by face size (small faces x8 at 16x16, larger "
                            "ones x4 / x2 at their own size, the largest keep their native crop), so no face loses "
                            "real pixels; 8 sends every face at 16x16 to x8; 4 / 2 send every face to that model "
                            "(default: auto)")
    model.add_argument("--batch-size", type=_positive, default=32, help="faces per JASRNet forward pass (default: 32)")
    model.add_argument("--frame-batch", type=_non_negative, default=0, help="frames gathered per step, so detection and "
                       "enhancement batch across frames; adds that many frames of latency (default 0: 16 on CUDA, 4 on "
                       "CPU; live inputs 1)")
    model.add_argument("--threads", type=_positive, help="CPU threads for torch (default: torch's choice)")
    det = p.add_argument_group("detection and tracking")
    det.add_argument("--detect-every", type=_positive, default=1, metavar="N", help="run MTCNN on every N-th frame; "
                     "boxes in between come from the tracker's Kalman prediction (default: 1)")
    det.add_argument("--full-scan-every", type=_non_negative, default=None, metavar="K",
                     help="MTCNN on the full frame every K-th frame only, and on the frames between on regions "
                     "around the tracks' predicted boxes (a region frame costs ~1/10 of a full scan; new faces "
                     "appear at the next full scan); 0 or 1: full frame every time (default: 5 on CPU, 1 on CUDA "
                     "or with --detect-every)")
    det.add_argument("--min-face-size", type=_positive, default=12, metavar="PX", help="smallest face MTCNN looks for, "
                     "in pixels; 12 finds faces down to ~10-12 px, larger is faster (default: 12)")
    det.add_argument("--thresholds", type=_thresholds, default=(0.6, 0.7, 0.7), metavar="P,R,O",
                     help="MTCNN P-, R- and O-net score thresholds (default: 0.6,0.7,0.7)")
    det.add_argument("--detector-precision", choices=("fp32", "fp16", "bf16"), default="fp32",
                     help="MTCNN P-net precision (R-/O-net stay fp32); bf16/fp16 measured no faster on a 2-core CPU "
                     "or an H100 (default: fp32)")
    det.add_argument("--min-score", type=float, default=0.9, help="drop detections below this probability (default: 0.9)")
    det.add_argument("--max-age", type=_positive, default=12, help="frames a track survives without a detection (default: 12)")
    det.add_argument("--min-hits", type=_positive, default=2, help="detections before a track is shown (default: 2)")
    det.add_argument("--no-smooth", action="store_true", help="do not Kalman-smooth landmarks (smoothed = raw)")
    det.add_argument("--smooth-noise", type=float, default=None, metavar="R", help="landmark measurement noise as a "
                     "fraction of face size; larger smooths more but lags more (default: 0.05, lag ~0.9 frame)")
    det.add_argument("--smooth-process", type=float, default=None, metavar="Q", help="landmark acceleration noise as a "
                     "fraction of face size; smaller smooths more but lags more (default: 0.003)")
    run = p.add_argument_group("run")
    run.add_argument("--max-frames", type=_positive, metavar="N", help="stop after N frames")
    run.add_argument("--live", action="store_true", help="latest-frame mode: drop frames when processing is slower than "
                     "the source (default for live URLs)")
    run.add_argument("--open-timeout", type=float, default=10.0, help="seconds to wait when opening / reading a "
                     "stream (default: 10)")
    run.add_argument("--rtsp-transport", choices=("tcp", "udp"), default="tcp",
                     help="RTSP transport (default: tcp; udp has lower latency but loses packets on busy networks)")
    run.add_argument("--reconnect", action=argparse.BooleanOptionalAction, default=None,
                     help="--reconnect: also wait for a live input that is down at startup (retried with back-off "
                     "0.5 s doubling to 30 s; implied by --live); --no-reconnect: end a live input when it drops "
                     "(default: reconnect after a drop, fail at once when down at startup)")
    run.add_argument("--max-reconnects", type=_positive, metavar="N", help="give up on a live input after N failed "
                     "attempts in a row (default: never)")
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
    from .source import SourceError, is_live_uri, open_source, open_source_retrying

    if not is_live_uri(args.input):
        path = Path(args.input[7:] if args.input.startswith("file://") else args.input)
        if not path.exists():
            raise UserError(f"input file not found: {args.input} (check the path)")
        if path.is_dir():
            raise UserError(f"input is a directory, not a video: {args.input} (give a video file)")
        if path.stat().st_size == 0:
            raise UserError(f"input file is empty: {args.input} (give a video file)")
    opts = _source_options(args)
    try:
        if _wait_for_start(args):
            source = open_source_retrying(args.input, **opts)
            if source is None:
                raise KeyboardInterrupt
            return source
        return open_source(args.input, **opts)
    except SourceError as exc:
        raise UserError(str(exc)) from None


def _source_options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {"open_timeout": args.open_timeout, "transport": args.rtsp_transport}
    if args.live:
        opts["live"] = True
    if args.reconnect is not None:
        opts["reconnect"] = args.reconnect
    if args.max_reconnects is not None:
        opts["max_reconnects"] = args.max_reconnects
    return opts


def _wait_for_start(args: argparse.Namespace) -> bool:
    """Retry a live input that is down at startup: --reconnect, or --live unless --no-reconnect."""
    return bool(args.reconnect or (args.live and args.reconnect is None))


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


def _inputs(args: argparse.Namespace) -> list[str]:
    """Positional inputs plus those of --streams FILE (or the demo clip for --demo)."""
    from .multistream import read_streams_file

    inputs = list(args.inputs)
    if args.streams:
        try:
            inputs += read_streams_file(args.streams)
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"--streams {args.streams}: cannot read it ({type(exc).__name__}: "
                            f"{getattr(exc, 'strerror', None) or exc}; give a text file with one input per line)") from None
        if len(inputs) == len(args.inputs):
            raise UserError(f"--streams {args.streams} lists no input (write one file path or URL per line)")
    if args.demo:
        if inputs:
            raise UserError("--demo takes no INPUT or --streams (it renders the demo clip; drop --demo to run your own)")
        inputs = [_demo_input(args)]
    if not inputs:
        raise UserError("no INPUT given (give a video file or URL, several of them, --streams FILE, or --demo)")
    return inputs


def _demo_input(args: argparse.Namespace) -> str:
    """The demo clip (or the built-in stand-in); sets default outputs in demo/."""
    from . import demo

    folder = demo.DEMO_DIR
    clip = demo.find_clip()
    if clip is None:
        image = demo.fallback_image()
        if image is None:
            raise UserError(demo.missing_message())
        print(f"jasr-video: {demo.missing_message()}; rendering the built-in stand-in made from {image.name} "
              f"(matplotlib's public-domain sample portrait) instead", file=sys.stderr)
        folder.mkdir(exist_ok=True)
        clip = demo.make_fallback_clip(image, folder / "grace_hopper_zoom.mp4")
    folder.mkdir(exist_ok=True)
    args.out = args.out or str(folder / f"{clip.stem}_annotated.mp4")
    args.json = args.json or str(folder / f"{clip.stem}.jsonl")
    return str(clip)


def _main(args: argparse.Namespace) -> int:
    inputs = _inputs(args)
    args.input = inputs[0]
    if not (args.out or args.json or args.save_crops):
        raise UserError(
            f"no output asked for, nothing would be written; add --out VIDEO and/or --json JSONL, e.g. {_suggest(args)}"
        )
    if len(inputs) > 1:
        return _run_streams(args, inputs)
    _stream_outputs(args)
    _check_outputs(args)
    source = _open(args)  # before loading models: bad input fails fast
    try:
        code = _run(args, source)
    finally:
        source.close()
    if args.demo and code == EXIT_OK:
        print("demo outputs: " + ", ".join(str(Path(p).resolve()) for p in (args.out, args.json) if p))
    return code


def _stream_outputs(args: argparse.Namespace) -> None:
    """One input: a {stream} placeholder or a folder in --out / --json / --save-crops names its outputs."""
    from .multistream import STREAM, OutputSpec, stream_label

    spec = OutputSpec(out=args.out, json=args.json)
    paths = spec.paths(stream_label(args.input))
    args.out = str(paths["out"]) if "out" in paths else None
    args.json = str(paths["json"]) if "json" in paths else None
    if args.save_crops and STREAM in args.save_crops:
        args.save_crops = args.save_crops.replace(STREAM, stream_label(args.input))


def _config(args: argparse.Namespace, live: bool) -> "PipelineConfig":
    from .pipeline import PipelineConfig

    cfg = PipelineConfig(
        weights=args.weights, device=args.device, precision=args.precision, batch_size=args.batch_size,
        sr_factor=args.sr_factor, detector_precision=args.detector_precision,
        frame_batch=1 if live and args.frame_batch == 0 else args.frame_batch,
        detect_every=args.detect_every, full_scan_every=args.full_scan_every, min_face_size=args.min_face_size,
        thresholds=tuple(args.thresholds),
        min_score=args.min_score, max_age=args.max_age, min_hits=args.min_hits, smooth=not args.no_smooth,
        max_frames=args.max_frames,
    )
    if args.smooth_noise is not None:
        cfg.measurement_noise = args.smooth_noise
    if args.smooth_process is not None:
        cfg.process_noise = args.smooth_process
    try:
        cfg.validate()
    except ValueError as exc:
        raise UserError(f"bad option: {exc}") from None
    return cfg


def _load(args: argparse.Namespace, cfg: "PipelineConfig") -> "Pipeline":
    """Build the pipeline (loads MTCNN and JASRNet); a bad --weights is a UserError."""
    from .pipeline import Pipeline

    try:
        return Pipeline(cfg)
    except FileNotFoundError as exc:
        raise UserError(f"weights not found: {args.weights} ({str(exc).splitlines()[0]}; give a shipped name or a .pt path)") from None
    except (ValueError, RuntimeError) as exc:
        raise UserError(f"cannot load the model: {str(exc).splitlines()[0]}") from None


def _run(args: argparse.Namespace, source) -> int:
    import torch
    from rich.console import Console

    from .sinks import BackgroundWriter, CropSink, JsonlSink, VideoSink, write_event
    from .source import StreamGap

    console = Console(stderr=True, quiet=args.quiet)
    if args.threads:
        torch.set_num_threads(args.threads)
    pipeline = _load(args, _config(args, source.info.is_live))

    info = source.info
    sinks: list[Any] = []
    writer: BackgroundWriter | None = None
    stop = {"signal": None}

    def write(result: Any) -> None:
        if writer is not None:
            writer.write(result)
        else:
            for sink in sinks:
                sink.write(result)

    def event(line: dict[str, Any]) -> None:
        if writer is not None:
            writer.write_event(line)
        else:
            write_event(sinks, line)

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
        threaded = args.sink_thread == "on" or (args.sink_thread == "auto" and pipeline.enhancer.device.type == "cuda")
        if threaded and sinks:
            writer = BackgroundWriter(sinks)
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
                    event({"event": "stream_gap", "stream": result.stream, "start_pts": result.start_pts,
                           "duration": round(result.duration, 3), "reason": result.reason})
                    continue
                write(result)
                frames += 1
                faces += len(result.faces)
                elapsed = max(time.monotonic() - started, 1e-6)
                progress.update(task, completed=frames, fps=frames / elapsed, faces=len(result.faces),
                                tracks=pipeline.tracks_seen())
        if frames and getattr(source, "error", None) and stop["signal"] is None:  # why the stream ended early
            event({"event": "stream_error", "stream": source.name, "reason": source.error})
        if frames == 0 and stop["signal"] is None:
            reason = getattr(source, "error", None) or "no frame could be decoded"
            raise UserError(f"{args.input}: {reason} (check that the file is a playable video)")
        complete = True
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        failed: BaseException | None = None
        if writer is not None:
            try:
                writer.finish()  # the frames still queued
            except BaseException as exc:  # noqa: BLE001 - a sink failed, or a second Ctrl-C: close as incomplete
                complete, failed = False, exc
                writer.abandon()
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
        if failed is not None:
            raise failed  # after the outputs are closed, as when a sink fails in this thread
    _summary(console, args, pipeline, sinks, frames, faces, stop["signal"])
    if stop["signal"] == signal.SIGINT:
        return EXIT_SIGINT
    if stop["signal"] == signal.SIGTERM:
        return EXIT_SIGTERM
    return EXIT_OK


def _check_stream_outputs(args: argparse.Namespace, inputs: list[str], specs: list["StreamSpec"]) -> None:
    """Several inputs: every output must name one file per stream; files must exist; nothing is overwritten."""
    from .multistream import STREAM, OutputSpec, is_folder
    from .source import is_live_uri

    for opt, value in (("--out", args.out), ("--json", args.json)):
        if not value:
            continue
        if STREAM not in value and not is_folder(value):
            raise UserError(f"{opt} {value}: {len(inputs)} inputs cannot share one output file; put {STREAM} in "
                            f"the name (e.g. {opt} out/{STREAM}{Path(value).suffix}) or give a folder (e.g. {opt} out/)")
        if STREAM not in value and not Path(value).is_dir():
            raise UserError(f"{opt} {value}: folder does not exist (create it first)")
    for uri in inputs:
        if not is_live_uri(uri):
            path = Path(uri[7:] if uri.startswith("file://") else uri)
            if not path.is_file():
                raise UserError(f"input file not found: {uri} (check the path)")
            if path.stat().st_size == 0:
                raise UserError(f"input file is empty: {uri} (give a video file)")
    spec = OutputSpec(out=args.out, json=args.json, crops=args.save_crops)
    seen: dict[Path, str] = {}
    inputs_resolved = {Path(u).resolve() for u in inputs if "://" not in u}
    for s in specs:
        for kind, path in spec.paths(s.name).items():
            opt = {"out": "--out", "json": "--json", "crops": "--save-crops"}[kind]
            if kind == "out" and path.suffix.lower() not in (".mp4", ".m4v", ".mov", ".mkv"):
                raise UserError(f"--out {path}: unsupported extension (use .mp4, .mov or .mkv)")
            if kind != "crops" and not path.resolve().parent.is_dir():
                raise UserError(f"{opt} {path}: folder {path.resolve().parent} does not exist (create it first)")
            if path.resolve() in inputs_resolved:
                raise UserError(f"{opt} {path} would overwrite an input (choose another name)")
            if path.resolve() in seen:
                raise UserError(f"{opt} {path}: streams {seen[path.resolve()]} and {s.name} would write the same file "
                                f"(put {STREAM} in the name)")
            seen[path.resolve()] = s.name


def _run_streams(args: argparse.Namespace, inputs: list[str]) -> int:
    """Several inputs in one process, one shared model (see jasr_video.multistream)."""
    import torch
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .multistream import MultiStreamRunner, OutputSpec, SharedModel, stream_specs

    specs = stream_specs(inputs)
    _check_stream_outputs(args, inputs, specs)
    console = Console(stderr=True, quiet=args.quiet)
    if args.threads:
        torch.set_num_threads(args.threads)
    pipeline = _load(args, _config(args, live=False))  # MTCNN + JASRNet, loaded once for every stream
    outputs = OutputSpec(out=args.out, json=args.json, crops=args.save_crops, crf=args.crf,
                         even_size=args.even_size, inset=not args.no_inset)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed} frames"),
               TextColumn("{task.fields[fps]:.1f} fps"), TextColumn("faces {task.fields[faces]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=args.quiet) as progress:
        tasks = {s.name: progress.add_task(s.name, total=args.max_frames, fps=0.0, faces=0) for s in specs}
        started = time.monotonic()

        def on_result(name: str, result) -> None:
            task = tasks[name]
            done = progress.tasks[task].completed + 1
            progress.update(task, completed=done, faces=len(result.faces),
                            fps=done / max(time.monotonic() - started, 1e-6))

        runner = MultiStreamRunner(
            pipeline.config, specs, outputs, source_options=_source_options(args), wait_for_start=_wait_for_start(args),
            live_frame_batch=1 if args.frame_batch == 0 else args.frame_batch,
            model=SharedModel(pipeline.enhancer, pipeline.detector), on_result=on_result)
        stop = {"signal": None}

        def on_signal(signum, _frame) -> None:
            if stop["signal"] is not None:
                raise KeyboardInterrupt
            stop["signal"] = signum
            runner.stop()

        old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            reports = runner.run()
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
    _streams_summary(console, runner, reports, time.monotonic() - started)
    for r in reports:
        if r.status == "failed":
            print(f"jasr-video: error: stream {r.name}: {r.error}", file=sys.stderr)
    if stop["signal"] == signal.SIGINT:
        return EXIT_SIGINT
    if stop["signal"] == signal.SIGTERM:
        return EXIT_SIGTERM
    return EXIT_USAGE if any(r.status == "failed" for r in reports) else EXIT_OK


def _streams_summary(console, runner, reports, elapsed: float) -> None:
    from rich.table import Table

    table = Table(title=f"jasr-video: {len(reports)} streams, {elapsed:.1f}s")
    for col in ("stream", "status", "frames", "faces", "tracks", "gaps"):
        table.add_column(col)
    for r in reports:
        table.add_row(r.name, r.status, str(r.frames), str(r.faces), str(r.tracks), str(r.gaps))
    console.print(table)
    for r in reports:
        if r.outputs:
            console.print(f"{r.name}: wrote " + ", ".join(str(p) for p in r.outputs), soft_wrap=True)
    m = runner.model.stats
    console.print(f"model: one JASRNet shared by {len(reports)} streams; {m['faces']} faces in {m['forwards']} "
                  f"forwards for {m['requests']} requests (up to {m['max_streams']} streams per forward)")


def _summary(console, args, pipeline, sinks, frames: int, faces: int, signum) -> None:
    from rich.table import Table

    s = pipeline.summary()
    table = Table(title="jasr-video summary", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    status = {None: "complete", signal.SIGINT: "stopped by Ctrl-C", signal.SIGTERM: "stopped by SIGTERM"}[signum]
    table.add_row("status", status)
    table.add_row("frames", f"{frames} ({s['fps']:.2f} fps overall)")
    table.add_row("faces", f"{faces} on {frames} frames; {s['faces_below_16px']} below 16 px")
    if s.get("routes"):
        table.add_row("routes", ", ".join(f"{name} {n}" for name, n in sorted(s["routes"].items())))
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
