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
import atexit
import logging
import signal
import sys
import warnings
from pathlib import Path
from typing import Sequence

from .cli_options import EXIT_ERROR, EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM, EXIT_USAGE, build_parser  # noqa: F401
from .cli_run import (_check_output_options, _check_outputs, _config, _load, _open, _run, _run_streams,  # noqa: F401
                      _source_options, _stream_outputs, _wait_for_start, output_spec)
from .outputs import UserError, check_outputs_writable  # noqa: F401 (re-exported: used by jasr_video.cluster, tests)
from .redact import RedactFilter, redact


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="jasr-video: %(message)s")
    for handler in logging.getLogger().handlers:  # every log line (also other libraries') is redacted
        handler.addFilter(RedactFilter())
    warnings.formatwarning = lambda message, *_, **__: f"jasr-video: warning: {redact(message)}\n"  # one line each
    try:
        code = _main(args)
        if code in (EXIT_SIGINT, EXIT_SIGTERM):  # stopped, outputs finalised: a further Ctrl-C / SIGTERM while the
            atexit.register(_ignore_stop_signals)  # interpreter exits (torch's finalizers) would print a traceback
        return code
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


def _ignore_stop_signals() -> None:
    """At interpreter exit after a stop (atexit runs it before torch's own exit handlers, registered earlier)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


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


def _suggest(args: argparse.Namespace) -> str:
    stem = Path(args.input).stem if "://" not in args.input else "stream"
    return f"jasr-video {args.input} --out {stem}_annotated.mp4 --json {stem}.jsonl"


def _main(args: argparse.Namespace) -> int:
    inputs = _inputs(args)
    args.input = inputs[0]
    if not (args.out or args.json or args.save_crops or args.csv or args.tracks or args.report or args.find):
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


if __name__ == "__main__":
    sys.exit(main())
