"""`jasr-video`: the command line, a thin layer over :class:`jasr_video.pipeline.Pipeline`.

One input runs in the main thread; several inputs (``jasr-video a.mp4 rtsp://cam/s`` or
``--streams FILE``) run as streams of one process sharing one model (:mod:`jasr_video.multistream`).
``--demo`` renders the shared demo clip (:mod:`jasr_video.demo`).

Exit codes: 0 done; 2 bad input or options (one line saying the problem and the fix, before the model
loads), an input that ended early (a file cut short, a read error, a live input given up or frozen with
reconnect off; its outputs are finalised with the frames read) or an output that could not be finalised;
with several streams any stream that could not be opened or failed, after the others finished;
1 an unexpected internal error (one line; --debug shows the traceback); 130 / 143 stopped by
Ctrl-C / SIGTERM after finalising the outputs written so far. Every line written (errors, logs, JSON
events, the summary) has passwords and tokens of input URLs redacted (:mod:`jasr_video.redact`).
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .config import (AUTO_FULL_SCAN_EVERY_CPU, BACKENDS, DETECTOR_PRECISIONS, DEVICES, LIVE_FRAME_BATCH, PRECISIONS,
                     SR_FACTORS, PipelineConfig, live_frame_batch)
from .outputs import OutputSpec, UserError, check_outputs, check_outputs_writable  # noqa: F401 (re-exported)
from .redact import RedactFilter, redact
from .smooth import SMOOTHERS

if TYPE_CHECKING:
    from .multistream import StreamSpec
    from .pipeline import Pipeline

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_SIGINT, EXIT_SIGTERM = 0, 1, 2, 130, 143


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
            "exit codes: 0 ok, 2 bad input/options, an input that ended early or an output that could\n"
            "not be finalised (or a stream that failed), 1 internal error, 130/143 stopped by Ctrl-C/SIGTERM."
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
                     "and a super-resolved inset per face, never over another face (see --draw, --inset); same size, frame count, timestamps and audio as the input")
    out.add_argument("--json", metavar="JSONL", help="JSON Lines, one object per frame: frame, pts (s), faces with track_id, "
                     "box (clipped to the frame), at_edge, score, 68 raw and smoothed landmarks, landmark_confidence, face_px, "
                     "below_16px, sr_factor, model_input_px (see --json-decimals, --json-landmarks)")
    out.add_argument("--csv", metavar="CSV", help="one row per face per frame: frame, pts, track_id, box (x0, y0, x1, "
                     "y1), score, track_score, detected, at_edge, face_px, below_16px, sr_factor, model_input_px and "
                     "the mean landmark confidence")
    out.add_argument("--save-crops", metavar="DIR", help="write each face's 128x128 super-resolved crop as "
                     "DIR/track_NNNN/frame_NNNNNN.png")
    out.add_argument("--even-size", action="store_true", help="for odd frame sizes (e.g. 641x479) pad the video by one "
                     "pixel to encode widely playable yuv420p instead of keeping the exact size in yuv444p")
    out.add_argument("--tracks", metavar="DIR", help="one result per person: per track its best face (DIR/track_NNNN_sr.png, "
                     "the super-resolved face, and DIR/track_NNNN_native.png, the crop at the video's resolution) and "
                     "DIR/tracks.csv + DIR/tracks.jsonl (first/last frame and time, frames seen, detected share, mean "
                     "size and confidence, best frame, file names)")
    out.add_argument("--report", metavar="DIR", help="DIR/index.html: one self-contained page (no network) with the run "
                     "summary, every person's best face (super-resolved beside native), a timeline of the tracks, faces "
                     "per frame and frames/s over the run; its images go to DIR/tracks/ unless --tracks is given")
    out.add_argument("--inset", choices=("auto", "side", "off"), default="auto",
                     help="super-resolved insets in the video: auto places each beside its face where there is room, "
                     "never over a face (none when there is no room); side puts them in a strip of slots along the "
                     "frame's edges, labelled with the track id; off draws none (default: auto)")
    out.add_argument("--no-inset", action="store_true", help="same as --inset off")
    out.add_argument("--draw", default="boxes,ids,landmarks,insets", metavar="LIST",
                     help="what the video shows, a comma list of boxes, ids, landmarks, insets (or all / none); "
                     "landmarks are left out on faces under 24 px and reduced to 5 key points under 48 px "
                     "(default: boxes,ids,landmarks,insets)")
    out.add_argument("--json-decimals", type=_non_negative, default=2, metavar="N",
                     help="decimal places of coordinates in the JSON Lines; 0 writes whole pixels (default: 2)")
    out.add_argument("--json-landmarks", choices=("both", "smoothed", "raw", "none"), default="both",
                     help="which 68-point landmark sets the JSON Lines hold; none also leaves out landmark_confidence "
                     "(default: both)")
    out.add_argument("--crf", type=int, default=20, help="H.264 quality, lower is better/bigger (default: 20)")
    out.add_argument("--sink-thread", choices=("auto", "on", "off"), default="auto",
                     help="annotate and encode in a thread of their own, overlapping detection (auto: on when "
                     "the model runs on CUDA, off on CPU, where torch's threads already use the cores; "
                     "figures in docs/benchmarks.md)")
    keep = p.add_argument_group(
        "output filters", "which faces the outputs keep (detection and tracking still see every face); faces left "
        "out are not drawn, not written to JSON / crops and not counted per person")
    keep.add_argument("--min-face-px", type=float, default=0.0, metavar="PX", help="leave out faces smaller than PX "
                      "pixels (longer box side) on that frame (default: 0, keep all)")
    keep.add_argument("--min-score-out", type=float, default=0.0, metavar="P", help="leave out faces whose detector "
                      "probability is below P (default: 0; the detector's own cut is --min-score)")
    keep.add_argument("--min-landmark-conf", type=float, default=0.0, metavar="C", help="leave out faces whose mean "
                      "landmark confidence (0-1) is below C (default: 0)")
    keep.add_argument("--min-track-frames", type=_positive, default=1, metavar="N", help="leave out people seen on "
                      "fewer than N frames; per-frame outputs are written without delay, so they show a person from "
                      "the N-th frame on (the first N-1 are left out), --tracks / --report apply it exactly (default: 1)")
    d = PipelineConfig()  # every pipeline option's default comes from the config
    model = p.add_argument_group("model")
    model.add_argument("--weights", default=d.weights, help="shipped weights name (looked up in the package's models/ "
                       "only) or a checkpoint path (anything with a folder part or a .pt suffix, e.g. ./my.pt); read "
                       f"as tensors only (torch weights_only) (default: {d.weights})")
    model.add_argument("--device", choices=DEVICES, default=d.device,
                       help=f"where MTCNN and JASRNet run; auto picks cuda when available (default: {d.device})")
    model.add_argument("--precision", choices=PRECISIONS, default=d.precision,
                       help=f"JASRNet precision (default {d.precision}: fp16 on CUDA; on CPU int8 where the CPU has int8 dot "
                            "products (VNNI/AMX) and the weights carry an int8 calibration, as the shipped ones do, "
                            "else bf16 on CPUs with native bf16, else fp32)")
    model.add_argument("--backend", choices=BACKENDS, default=d.backend,
                       help="JASRNet runtime: torch, or onnx (ONNX Runtime, fp32 or int8; needs the extra jasr-video[onnx]; "
                            f"--weights may then also be an .onnx file from jasr-export --onnx) (default: {d.backend})")
    model.add_argument("--sr-factor", choices=SR_FACTORS, default=d.sr_factor,
                       help="which JASRNet serves each face: auto routes by face size (small faces x8 at 16x16, larger "
                            "ones x4 / x2 at their own size, the largest keep their native crop), so no face loses "
                            "real pixels; 8 sends every face at 16x16 to x8; 4 / 2 send every face to that model "
                            f"(default: {d.sr_factor})")
    model.add_argument("--batch-size", type=_positive, default=d.batch_size,
                       help=f"faces per JASRNet forward pass (default: {d.batch_size})")
    model.add_argument("--frame-batch", type=_non_negative, default=d.frame_batch, help="frames gathered per step, so "
                       "detection and enhancement batch across frames; adds that many frames of latency (default "
                       f"{d.frame_batch}: 16 on CUDA, 4 on CPU; live inputs {LIVE_FRAME_BATCH})")
    model.add_argument("--threads", type=_positive, help="CPU threads for torch (default: torch's choice)")
    det = p.add_argument_group("detection and tracking")
    det.add_argument("--detect-every", type=_positive, default=d.detect_every, metavar="N", help="run MTCNN on every "
                     f"N-th frame; boxes in between come from the tracker's Kalman prediction (default: {d.detect_every})")
    det.add_argument("--full-scan-every", type=_non_negative, default=d.full_scan_every, metavar="K",
                     help="MTCNN on the full frame every K-th frame only, and on the frames between on regions "
                     "around the tracks' predicted boxes (much cheaper than a full scan; new faces appear at the next "
                     f"full scan); 0 or 1: full frame every time (default: {AUTO_FULL_SCAN_EVERY_CPU} on CPU, 1 on CUDA "
                     "or with --detect-every)")
    det.add_argument("--min-face-size", type=_positive, default=d.min_face_size, metavar="PX", help="smallest face MTCNN "
                     "looks for, in pixels; larger is faster; the sizes found in clean and compressed video are in "
                     f"docs/benchmarks.md (default: {d.min_face_size})")
    det.add_argument("--thresholds", type=_thresholds, default=d.thresholds, metavar="P,R,O",
                     help=f"MTCNN P-, R- and O-net score thresholds (default: {','.join(map(str, d.thresholds))})")
    det.add_argument("--detector-precision", choices=DETECTOR_PRECISIONS, default=d.detector_precision,
                     help=f"MTCNN P-net precision (R-/O-net stay fp32) (default: {d.detector_precision})")
    det.add_argument("--min-score", type=float, default=d.min_score, help="drop detections below this probability; "
                     f"those below --new-track-score only continue a track (default: {d.min_score})")
    det.add_argument("--new-track-score", type=float, default=d.new_track_score, help="probability a detection needs "
                     f"to start a new track (default: {d.new_track_score})")
    det.add_argument("--coast", type=_non_negative, default=d.coast, metavar="N", help="frames a missed face is still "
                     f"reported at its predicted box, with detected: false (default: {d.coast})")
    det.add_argument("--max-age", type=_positive, default=d.max_age, help="frames a track keeps its id without a "
                     f"detection (default: {d.max_age})")
    det.add_argument("--min-hits", type=_positive, default=d.min_hits,
                     help=f"detections before a track is shown (default: {d.min_hits})")
    det.add_argument("--no-smooth", action="store_true", help="do not smooth landmarks (smoothed = raw)")
    det.add_argument("--smoother", choices=tuple(SMOOTHERS), default=d.smoother,
                     help="how landmarks are smoothed per track: kalman (constant-velocity Kalman filter, see "
                     "--smooth-noise / --smooth-process) or one-euro (One Euro filter: adaptive low-pass, less lag "
                     f"on fast motion) (default: {d.smoother})")
    det.add_argument("--smooth-noise", type=float, default=d.measurement_noise, metavar="R", help="kalman: landmark "
                     f"measurement noise as a fraction of face size; larger smooths more but lags more (default: "
                     f"{d.measurement_noise})")
    det.add_argument("--smooth-process", type=float, default=d.process_noise, metavar="Q", help="kalman: landmark "
                     "acceleration noise as a fraction of face size; smaller smooths more but lags more (default: "
                     f"{d.process_noise})")
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
    ray = p.add_argument_group("Ray cluster (pip install \"jasr-video[ray]\"; docs/cluster.md)")
    ray.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                     help="run the streams on Ray: one actor per stream (decode, detect, track, outputs) and shared "
                     "model replicas; ADDRESS of a cluster (auto, host:6379, ray://host:10001), or none to start a "
                     "local Ray instance")
    ray.add_argument("--ray-replicas", type=_positive, default=1, metavar="N",
                     help="JASRNet model replicas shared by the streams (default: 1)")
    ray.add_argument("--ray-cpus", type=_positive, metavar="N", help="CPUs of the local Ray instance (default: all)")
    ray.add_argument("--ray-worker-cpus", type=float, default=0.5, metavar="C",
                     help="Ray CPUs reserved per stream actor; fractions let several share a core (default: 0.5)")
    run.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    run.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    return p


def _suggest(args: argparse.Namespace) -> str:
    stem = Path(args.input).stem if "://" not in args.input else "stream"
    return f"jasr-video {args.input} --out {stem}_annotated.mp4 --json {stem}.jsonl"


def _check_output_options(args: argparse.Namespace) -> None:
    """--draw, --inset and the output filters; the style and filter are kept on args."""
    from .filters import OutputFilter
    from .layout import DrawStyle, parse_draw

    try:
        draw = parse_draw(args.draw)
    except ValueError as exc:
        raise UserError(f"--draw {args.draw}: {exc}") from None
    args.style = DrawStyle(draw=draw, inset="off" if args.no_inset else args.inset)
    for opt, value in (("--min-score-out", args.min_score_out), ("--min-landmark-conf", args.min_landmark_conf)):
        if not 0 <= value <= 1:
            raise UserError(f"{opt} {value:g}: give a number from 0 to 1")
    if args.min_face_px < 0:
        raise UserError(f"--min-face-px {args.min_face_px:g}: give a size in pixels >= 0")
    args.filter = OutputFilter(args.min_face_px, args.min_score_out, args.min_landmark_conf, args.min_track_frames)
    for opt, value in (("--tracks", args.tracks), ("--report", args.report)):
        if value and Path(value).exists() and not Path(value).is_dir():
            raise UserError(f"{opt} {value} is a file, not a folder (give a folder; it is created if missing)")
    many = len(args.inputs) > 1 or bool(args.streams) or bool(args.ray)
    if many and (args.tracks or args.report or args.filter.active):
        raise UserError("--tracks, --report and the output filters take one input (run one jasr-video per input)")


def output_spec(args: argparse.Namespace) -> OutputSpec:
    """The per-frame outputs the options ask for (one place for the CLI, several streams and --ray)."""
    return OutputSpec(out=args.out, json=args.json, crops=args.save_crops, csv=args.csv, crf=args.crf,
                      even_size=args.even_size, inset=not args.no_inset, style=args.style,
                      json_decimals=args.json_decimals, json_landmarks=args.json_landmarks)


def _check_outputs(args: argparse.Namespace, inputs: Sequence[str], specs: Sequence["StreamSpec"] | None = None) -> None:
    """Every output check (jasr_video.outputs.check_outputs): one input (``specs`` None) or one per stream."""
    check_outputs(output_spec(args), inputs, None if specs is None else [s.name for s in specs],
                  folders={"--tracks": args.tracks, "--report": args.report})


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
    for handler in logging.getLogger().handlers:  # every log line (also other libraries') is redacted
        handler.addFilter(RedactFilter())
    try:
        return _main(args)
    except UserError as exc:
        print(f"jasr-video: error: {redact(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("jasr-video: interrupted", file=sys.stderr)
        return EXIT_SIGINT
    except Exception as exc:  # noqa: BLE001
        if args.debug:
            import traceback

            print(redact(traceback.format_exc()), file=sys.stderr, end="")
            return EXIT_ERROR
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"jasr-video: internal error: {type(exc).__name__}: {redact(line)} (rerun with --debug for details)",
              file=sys.stderr)
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
    if not (args.out or args.json or args.save_crops or args.csv or args.tracks or args.report):
        raise UserError(
            f"no output asked for, nothing would be written; add --out VIDEO and/or --json JSONL, e.g. {_suggest(args)}"
        )
    _check_output_options(args)
    if args.ray:
        from .cluster import run_cli

        return run_cli(args, inputs, sys.modules[__name__])
    if len(inputs) > 1:
        return _run_streams(args, inputs)
    _stream_outputs(args)
    _check_outputs(args, [args.input])
    source = _open(args)  # before loading models: bad input fails fast
    try:
        code = _run(args, source)
    finally:
        source.close()
    if args.demo and code == EXIT_OK:
        print("demo outputs: " + ", ".join(str(Path(p).resolve()) for p in (args.out, args.json) if p))
    return code


def _stream_outputs(args: argparse.Namespace) -> None:
    """One input: a {stream} placeholder or a folder in --out / --json / --csv / --save-crops names its outputs."""
    from .multistream import STREAM, stream_label

    paths = OutputSpec(out=args.out, json=args.json, csv=args.csv).paths(stream_label(args.input))
    args.out, args.json, args.csv = (str(paths[k]) if k in paths else None for k in ("out", "json", "csv"))
    if args.save_crops and STREAM in args.save_crops:
        args.save_crops = args.save_crops.replace(STREAM, stream_label(args.input))


def _config(args: argparse.Namespace, live: bool) -> PipelineConfig:
    cfg = PipelineConfig(
        weights=args.weights, device=args.device, precision=args.precision, batch_size=args.batch_size,
        backend=args.backend, sr_factor=args.sr_factor,
        detector_precision=args.detector_precision,
        frame_batch=live_frame_batch(args.frame_batch) if live else args.frame_batch,
        detect_every=args.detect_every, full_scan_every=args.full_scan_every, min_face_size=args.min_face_size,
        thresholds=tuple(args.thresholds),
        min_score=args.min_score, new_track_score=args.new_track_score, coast=args.coast, max_age=args.max_age,
        min_hits=args.min_hits, smooth=not args.no_smooth, smoother=args.smoother,
        measurement_noise=args.smooth_noise, process_noise=args.smooth_process,
        max_frames=args.max_frames,
    )
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

    from .gallery import TrackGallery
    from .report import RunLog, write_report
    from .outputs import SINKS, build_sinks
    from .sinks import BackgroundWriter, write_event
    from .source import StreamGap

    console = Console(stderr=True, quiet=args.quiet)
    if args.threads:
        torch.set_num_threads(args.threads)
    pipeline = _load(args, _config(args, source.info.is_live))

    info = source.info
    sinks: list[Any] = []
    writer: BackgroundWriter | None = None
    # signal: the first Ctrl-C / SIGTERM; writing / closing: a second one waits for the frame being written
    # (so every output holds the same frames) and is ignored while the outputs are finalised
    stop: dict[str, Any] = {"signal": None, "writing": False, "pending": False, "closing": False}

    def write(result: Any) -> None:
        result = args.filter(result)  # the output filters: the rest go to result.hidden_faces
        stop["writing"] = True
        try:
            if writer is not None:
                writer.write(result)
            else:
                for sink in sinks:
                    sink.write(result)
        finally:
            stop["writing"] = False
        if stop["pending"]:
            stop["pending"] = False
            raise KeyboardInterrupt

    def event(line: dict[str, Any]) -> None:
        if writer is not None:
            writer.write_event(line)
        else:
            write_event(sinks, line)

    def on_signal(signum, _frame) -> None:
        if stop["closing"]:  # finalising the outputs: let it finish
            stop["signal"] = stop["signal"] or signum
            return
        if stop["signal"] is not None:  # second Ctrl-C: stop now (after the frame being written); outputs are finalised
            if stop["writing"]:
                stop["pending"] = True
                return
            raise KeyboardInterrupt
        stop["signal"] = signum
        pipeline.stop()
        source.close()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    complete = False
    frames = faces = 0
    gallery = run_log = None
    problems: list[str] = []  # lines that make the exit non-zero: an input that ended early, an output not finalised
    try:
        spec = output_spec(args)  # one input: its paths are the outputs themselves (see _stream_outputs)
        sinks.extend(build_sinks(spec, {k: Path(getattr(spec, k)) for k in SINKS if getattr(spec, k)}, info, args.input))
        if args.tracks or args.report:
            gallery = TrackGallery(args.tracks or Path(args.report) / "tracks", output_filter=args.filter)
            sinks.append(gallery)
        if args.report:
            run_log = RunLog()
            sinks.append(run_log)
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
            try:
                for result in pipeline.run(source, events=True):
                    if isinstance(result, StreamGap):  # live source came back after an outage
                        event({"event": "stream_gap", "stream": result.stream, "start_pts": result.start_pts,
                               "duration": round(result.duration, 3), "reason": redact(result.reason)})
                        continue
                    write(result)
                    frames += 1
                    faces += len(result.faces)
                    elapsed = max(time.monotonic() - started, 1e-6)
                    progress.update(task, completed=frames, fps=frames / elapsed, faces=len(result.faces),
                                    tracks=pipeline.tracks_seen())
            except KeyboardInterrupt:
                if stop["signal"] is None:
                    raise
                # a second Ctrl-C: stop now; the frames written so far are finalised as for the first
        if frames and getattr(source, "error", None) and stop["signal"] is None:  # why the stream ended early
            event({"event": "stream_error", "stream": source.name, "reason": redact(source.error)})
            problems.append(redact(source.error))
        if frames == 0 and stop["signal"] is None:
            reason = getattr(source, "error", None) or "no frame could be decoded"
            raise UserError(f"{args.input}: {reason} (check that the file is a playable video)")
        complete = True
    finally:
        stop["closing"] = True  # a Ctrl-C from here on no longer interrupts (handlers restored below)
        failed: BaseException | None = None
        if writer is not None:
            try:
                writer.finish()  # the frames still queued
            except BaseException as exc:  # noqa: BLE001 - a sink failed, or a second Ctrl-C: close as incomplete
                complete, failed = False, exc
                writer.abandon()
        written = []
        for sink in sinks:
            if sink is run_log:
                continue
            try:
                written.append(sink.close(complete=complete and frames > 0))
            except Exception as exc:  # noqa: BLE001 - never hidden (not even by --quiet): the exit is non-zero
                name = getattr(sink, "path", None) or getattr(sink, "folder", sink)
                line = (f"could not finalise {name}: {type(exc).__name__}: {exc} (check free space and permissions; "
                        f"what was written is in {getattr(sink, 'tmp', name)})")
                print(f"jasr-video: error: {redact(line)}", file=sys.stderr)
                problems.append(line)
        if not complete:
            for path in written:
                if frames == 0 and Path(path).name.endswith(".partial"):
                    Path(path).unlink(missing_ok=True)
                elif Path(path).exists():
                    console.print(f"[yellow]incomplete output kept:[/] {path}")
        for s, h in old.items():
            signal.signal(s, h)
        if failed is not None:
            raise failed  # after the outputs are closed, as when a sink fails in this thread
    rows = _summary(console, args, pipeline, sinks, frames, faces, stop["signal"], problems)
    if args.report and run_log is not None and gallery is not None:
        page = write_report(args.report, run_log, gallery.tracks(), gallery.folder, rows,
                            title=f"jasr-video: {Path(args.input).name if '://' not in args.input else redact(info.uri)}")
        console.print(f"report: {page}", soft_wrap=True)
    if stop["signal"] == signal.SIGINT:
        return EXIT_SIGINT
    if stop["signal"] == signal.SIGTERM:
        return EXIT_SIGTERM
    return EXIT_USAGE if problems else EXIT_OK


def _run_streams(args: argparse.Namespace, inputs: list[str]) -> int:
    """Several inputs in one process, one shared model (see jasr_video.multistream)."""
    import torch
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .multistream import MultiStreamRunner, SharedModel, stream_specs

    specs = stream_specs(inputs)
    _check_outputs(args, inputs, specs)
    console = Console(stderr=True, quiet=args.quiet)
    if args.threads:
        torch.set_num_threads(args.threads)
    pipeline = _load(args, _config(args, live=False))  # MTCNN + JASRNet, loaded once for every stream
    outputs = output_spec(args)
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
            live_frame_batch=live_frame_batch(args.frame_batch),
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
            print(f"jasr-video: error: stream {r.name}: {redact(r.error)}", file=sys.stderr)
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


def _summary_rows(args, pipeline, sinks, frames: int, faces: int, signum,
                  problems: Sequence[str] = ()) -> list[tuple[str, str]]:
    """The run summary in plain words, as (label, text) rows (printed, and the report's first table)."""
    s = pipeline.summary()
    status = {None: "complete", signal.SIGINT: "stopped by Ctrl-C", signal.SIGTERM: "stopped by SIGTERM"}[signum]
    if problems and signum is None:  # the input ended early (its error comes first) or an output was not finalised
        error = getattr(pipeline.source, "error", None)
        status = ("ended early: " if error and problems[0] == redact(error) else "failed: ") + redact(problems[0])
    rows = [("status", status), ("frames", f"{frames} frames processed at {s['fps']:.2f} frames per second overall")]
    small = s["faces_below_16px"]
    rows.append(("faces", f"{s['faces']} face images found on {frames} frames (one person on one frame is one face "
                 f"image); {args.filter.counts['kept']} written after the output filters"))
    rows.append(("face size", f"{small} of the faces were smaller than 16 pixels across: the smallest model works on "
                 f"16x16 pixel faces, so these were enlarged first and their super-resolved detail is more guessed than "
                 f"seen (treat them with care); {s['faces'] - small} were 16 pixels or larger"))
    routes = s.get("routes") or {}
    if routes:
        rows.append(("models", ", ".join(f"{n} faces by {name}" for name, n in sorted(routes.items()))
                     + " (x8: brought to 16x16; x4 / x2: at about their own size; native: the face's own pixels "
                       "kept, landmarks by x2)"))
    rows.append(("people", f"{s['tracks']} tracks (a track is one person followed from frame to frame; a person who "
                 f"leaves and comes back, or is hidden for long, gets a new track)"))
    rows.append(("output filters", args.filter.describe()))
    rows.append(("time", f"detection {s['detect_s']:.1f} s, super-resolution {s['enhance_s']:.1f} s, "
                 f"total {s['elapsed_s']:.1f} s"))
    src = s.get("source", {})
    if src.get("corrupt_skipped") or src.get("dropped") or src.get("reconnects") or src.get("frames_missing"):
        rows.append(("source", f"{src.get('corrupt_skipped', 0)} damaged frames skipped, {src.get('frames_missing', 0)} "
                     f"frames missing from the file, {src.get('dropped', 0)} frames dropped to keep up with a live "
                     f"source, {src.get('reconnects', 0)} reconnects"))
    for sink in sinks:
        path = getattr(sink, "path", None) or getattr(sink, "folder", None)
        if path is None:
            continue
        extra = f" (audio: {sink.audio_mode}, {sink.pix_fmt})" if hasattr(sink, "audio_mode") else ""
        if hasattr(sink, "tracks"):
            extra = f" ({len(sink.tracks())} people: best faces, tracks.csv, tracks.jsonl)"
        rows.append(("wrote", f"{path}{extra}"))
    return rows


def _summary(console, args, pipeline, sinks, frames: int, faces: int, signum,
             problems: Sequence[str] = ()) -> list[tuple[str, str]]:
    from rich.table import Table

    rows = _summary_rows(args, pipeline, sinks, frames, faces, signum, problems)
    table = Table(title="jasr-video summary", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    for label, text in rows:
        table.add_row(label, text)
    console.print(table)
    return rows


if __name__ == "__main__":
    sys.exit(main())
