"""`jasr-video`'s run summary: the table printed at the end of a run (also the report's first table), in words."""
from __future__ import annotations

import signal
from typing import Sequence

from .redact import redact


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
    guessed = "super-resolved detail is" if pipeline.config.sr_faces else "landmarks are"
    rows.append(("face size", f"{small} of the faces were smaller than 16 pixels across: the smallest model works on "
                 f"16x16 pixel faces, so these were enlarged first and their {guessed} more guessed than "
                 f"seen (treat them with care); {s['faces'] - small} were 16 pixels or larger"))
    routes = s.get("routes") or {}
    if routes:
        rows.append(("models", ", ".join(f"{n} faces by {name}" for name, n in sorted(routes.items()))
                     + " (x8: brought to 16x16; x4 / x2: at about their own size; native: the face's own pixels "
                       "kept, landmarks by x2)"))
    if not pipeline.config.sr_faces and (getattr(args, "tracks", None) or getattr(args, "report", None)):
        rows.append(("super-resolution", "on demand: JASRNet found the landmarks only on every frame, and "
                     "super-resolved each person's best face (and the frames fused, --fusion) at the end; "
                     "--save-crops or a video with insets super-resolve every face"))
    elif not pipeline.config.sr_faces:
        rows.append(("super-resolution", "skipped: no output shows super-resolved faces (JSON / CSV only, or a video "
                     "without insets), so JASRNet found the landmarks only; --save-crops, --tracks or a video with "
                     "insets turn it on"))
    rows.append(("people", f"{s['tracks']} tracks (a track is one person followed from frame to frame; a person who "
                 f"leaves and comes back, or is hidden for long, gets a new track)"))
    rows.append(("output filters", args.filter.describe()))
    jasr = "super-resolution" if pipeline.config.sr_faces else "landmarks (JASRNet)"
    rows.append(("time", f"detection {s['detect_s']:.1f} s, {jasr} {s['enhance_s']:.1f} s, "
                 f"total {s['elapsed_s']:.1f} s"))
    src = s.get("source", {})
    if src.get("corrupt_skipped") or src.get("dropped") or src.get("reconnects") or src.get("frames_missing"):
        rows.append(("source", f"{src.get('corrupt_skipped', 0)} damaged frames skipped, {src.get('frames_missing', 0)} "
                     f"frames missing from the file, {src.get('dropped', 0)} frames dropped to keep up with a live "
                     f"source, {src.get('reconnects', 0)} reconnects"))
    if s.get("stream_changes") or s.get("pts_jumps"):
        info = pipeline.info
        rows.append(("stream changes", f"{s.get('stream_changes', 0)} changes of frame size or pixel format mid-stream "
                     f"(tracks started afresh; an annotated video keeps {info.width}x{info.height}, other sizes scaled "
                     f"to fit, aspect kept, padded), {s.get('pts_jumps', 0)} jumps in the input's timestamps (pts go "
                     f"on increasing; pts_jump lines in the JSON Lines)"))
    for sink in sinks:
        path = getattr(sink, "path", None) or getattr(sink, "folder", None)
        if path is None:
            continue
        extra = f" (audio: {sink.audio_mode}, {sink.pix_fmt})" if hasattr(sink, "audio_mode") else ""
        if hasattr(sink, "tracks"):
            extra = f" ({len(sink.tracks())} people: best faces, tracks.csv, tracks.jsonl)"
        rows.append(("wrote", f"{path}{extra}"))
    for sink in sinks:
        if getattr(sink, "find", None):
            from .find import summary_rows

            rows += summary_rows(sink)
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


def streams_table(console, title: str, reports) -> None:
    """One row per stream (status, frames, faces, tracks, gaps), then what each stream wrote."""
    from rich.table import Table

    table = Table(title=title)
    for col in ("stream", "status", "frames", "faces", "tracks", "gaps"):
        table.add_column(col)
    for r in reports:
        table.add_row(r.name, r.status, str(r.frames), str(r.faces), str(r.tracks), str(r.gaps))
    console.print(table)
    for r in reports:
        if r.outputs:
            console.print(f"{r.name}: wrote " + ", ".join(str(p) for p in r.outputs), soft_wrap=True)


def _streams_summary(console, runner, reports, elapsed: float) -> None:
    streams_table(console, f"jasr-video: {len(reports)} streams, {elapsed:.1f}s", reports)
    m = runner.model.stats
    console.print(f"model: one JASRNet shared by {len(reports)} streams; {m['faces']} faces in {m['forwards']} "
                  f"forwards for {m['requests']} requests (up to {m['max_streams']} streams per forward)")
