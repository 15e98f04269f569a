"""`jasr-video`'s runs: one input in the main thread (:func:`_run`: progress, sinks, Ctrl-C / SIGTERM handling,
finalising the outputs) and several inputs as streams of one process (:func:`_run_streams`), with what both
need from the options (pipeline config and loading, source options, output spec and checks)."""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .cli_options import EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM, EXIT_USAGE
from .cli_summary import _streams_summary, _summary
from .config import PipelineConfig, live_frame_batch
from .outputs import OutputSpec, UserError, check_outputs
from .redact import redact

if TYPE_CHECKING:
    from .multistream import StreamSpec
    from .pipeline import Pipeline


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
    if many and (args.tracks or args.report or args.filter.active or args.identity or args.find):
        raise UserError("--tracks, --report, --identity, --find and the output filters take one input (run one "
                        "jasr-video per input)")
    for photo in args.find:
        if not Path(photo).is_file():
            raise UserError(f"--find {photo}: photo not found (give the path of a JPEG or PNG photo)")
    if args.identity and not (args.tracks or args.report or args.find):
        raise UserError("--identity writes each track's descriptor to tracks.jsonl: add --tracks DIR or --report DIR")
    args.identity = bool(args.identity or args.find)


def output_spec(args: argparse.Namespace) -> OutputSpec:
    """The per-frame outputs the options ask for (one place for the CLI, several streams and --ray)."""
    return OutputSpec(out=args.out, json=args.json, crops=args.save_crops, csv=args.csv, crf=args.crf,
                      even_size=args.even_size, inset=not args.no_inset and args.inset != "off",
                      style=getattr(args, "style", None),  # set by _check_output_options
                      json_decimals=args.json_decimals, json_landmarks=args.json_landmarks)


def _check_outputs(args: argparse.Namespace, inputs: Sequence[str], specs: Sequence["StreamSpec"] | None = None) -> None:
    """Every output check (jasr_video.outputs.check_outputs): one input (``specs`` None) or one per stream."""
    check_outputs(output_spec(args), inputs, None if specs is None else [s.name for s in specs],
                  folders={"--tracks": args.tracks, "--report": args.report})


def _stream_outputs(args: argparse.Namespace) -> None:
    """One input: a {stream} placeholder or a folder in --out / --json / --csv / --save-crops names its outputs."""
    from .multistream import STREAM, stream_label

    paths = OutputSpec(out=args.out, json=args.json, csv=args.csv).paths(stream_label(args.input))
    args.out, args.json, args.csv = (str(paths[k]) if k in paths else None for k in ("out", "json", "csv"))
    if args.save_crops and STREAM in args.save_crops:
        args.save_crops = args.save_crops.replace(STREAM, stream_label(args.input))


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


def _config(args: argparse.Namespace, live: bool) -> PipelineConfig:
    cfg = PipelineConfig(
        weights=args.weights, device=args.device, precision=args.precision, batch_size=args.batch_size,
        lanes=args.lanes, backend=args.backend, sr_factor=args.sr_factor, upright=args.upright,
        detector=args.detector, detector_precision=args.detector_precision, detector_upscale=args.detector_upscale,
        frame_batch=live_frame_batch(args.frame_batch) if live else args.frame_batch,
        detect_every=args.detect_every, full_scan_every=args.full_scan_every, min_face_size=args.min_face_size,
        thresholds=tuple(args.thresholds),
        min_score=args.min_score, new_track_score=args.new_track_score, coast=args.coast, max_age=args.max_age,
        min_hits=args.min_hits, smooth=not args.no_smooth, smoother=args.smoother,
        measurement_noise=args.smooth_noise, process_noise=args.smooth_process,
        max_frames=args.max_frames,
        # SR faces only when an output shows them (video insets, crops, the best faces of --tracks / --report /
        # --identity); with --fusion the gallery super-resolves its best faces itself at the end, from the frames it keeps
        sr_faces=output_spec(args).shows_sr() or (bool(getattr(args, "tracks", None) or getattr(args, "report", None)
                                                       or getattr(args, "identity", False))
                                                  and getattr(args, "fusion", "off") == "off"),
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


def _recognizer(args: argparse.Namespace) -> Any:
    """The face recogniser of --identity / --find (None without them); a missing extra is a UserError."""
    if not args.identity:
        return None
    from .identity import IdentityUnavailable, Recognizer

    try:
        return Recognizer()
    except IdentityUnavailable as exc:
        raise UserError(f"--identity / --find: {exc}") from None


def _photos(args: argparse.Namespace, pipeline: "Pipeline", recognizer: Any) -> dict[str, Any]:
    """--find: photo name -> descriptor of the person in it."""
    if not args.find:
        return {}
    from .find import photo_descriptors

    try:
        return photo_descriptors(args.find, pipeline, recognizer)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _run(args: argparse.Namespace, source) -> int:
    import torch
    from rich.console import Console

    from .gallery import TrackGallery
    from .report import RunLog, write_report
    from .outputs import SINKS, build_sinks
    from .sinks import BackgroundWriter, write_event
    from .source import SourceEvent, event_line

    console = Console(stderr=True, quiet=args.quiet)
    if args.threads:
        torch.set_num_threads(args.threads)
    recognizer = _recognizer(args)
    pipeline = _load(args, _config(args, source.info.is_live))
    photos = _photos(args, pipeline, recognizer)

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
        if args.tracks or args.report or args.identity:
            from .fusion import TrackFuser

            fuser = None if args.fusion == "off" else TrackFuser(pipeline.enhancer, args.fusion)
            folder = args.tracks or (Path(args.report) / "tracks" if args.report else None)
            gallery = TrackGallery(folder, output_filter=args.filter, recognizer=recognizer, find=photos, fuser=fuser,
                                   keep=args.fusion_frames)
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
                    if isinstance(result, SourceEvent):  # a live outage, a new frame size, a timestamp jump
                        event(event_line(result))
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
        page = write_report(args.report, run_log, gallery.identify(), gallery.folder, rows,
                            matches=gallery.matches() if photos else None, threshold=gallery.threshold,
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
        reports, signum = run_until_signal(runner)
    _streams_summary(console, runner, reports, time.monotonic() - started)
    return streams_exit(reports, signum)


def run_until_signal(runner: Any) -> tuple[list, int | None]:
    """``runner.run()`` with Ctrl-C / SIGTERM stopping every stream (a second one interrupts); returns the
    reports and the signal that stopped the run (None: the streams ended)."""
    stop: dict[str, int | None] = {"signal": None}

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
    return reports, stop["signal"]


def streams_exit(reports: Sequence[Any], signum: int | None) -> int:
    """Print each failed stream's error (redacted) and return the exit status of a several-stream run."""
    for r in reports:
        if r.status == "failed":
            print(f"jasr-video: error: stream {r.name}: {redact(r.error)}", file=sys.stderr)
    if signum == signal.SIGINT:
        return EXIT_SIGINT
    if signum == signal.SIGTERM:
        return EXIT_SIGTERM
    return EXIT_USAGE if any(r.status == "failed" for r in reports) else EXIT_OK
