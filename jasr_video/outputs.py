"""Where results go: the sink registry, the output spec, the one function that builds sinks, and the output checks.

* :data:`SINKS`: name -> :class:`SinkEntry` (the sink class, its CLI option, the name a stream gets inside an
  output folder, how it is made from an :class:`OutputSpec`). A new per-frame output is one sink class (a
  :class:`~jasr_video.types.Sink`) plus one entry here, a field of that name in :class:`OutputSpec` and its
  CLI option (docs/pipeline.md, "Adding a stage"; :mod:`jasr_video.csv_sink` was added that way).
* :class:`OutputSpec`: the outputs of one or several streams (paths holding ``{stream}``, or folders).
* :func:`build_sinks`: the sinks for one stream, used by the CLI, :mod:`jasr_video.multistream` and the
  benchmarks; :func:`close_sinks` finalises them.
* :func:`check_outputs`: every check on output paths (extension, folder, not an input, one file per stream,
  writable), run by the CLI for one or several inputs before anything loads; a :class:`UserError` says what
  to fix in one line.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from .csv_sink import CsvSink
from .redact import protect, redact
from .sinks import CropSink, JsonlSink, VideoSink
from .source import StreamInfo, is_live_uri
from .types import Sink

log = protect(logging.getLogger(__name__))  # every log line of this module is redacted

STREAM = "{stream}"  # placeholder in output paths, replaced by the stream's label
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")


class UserError(Exception):
    """A problem the user can fix; str() is the one line shown."""


@dataclass(frozen=True)
class SinkEntry:
    """One kind of per-frame output."""

    cls: type  # the sink class
    option: str  # its jasr-video option
    default_name: str  # what a stream's output is called inside a folder given as the output ({stream} replaced)
    make: Callable[[Path, StreamInfo, "str | None", "OutputSpec"], Sink]  # (path, stream info, input URI, spec)
    folder: bool = False  # the output is a folder (created when missing)


# name (= the OutputSpec field) -> sink; sinks are built, written and closed in this order
SINKS: dict[str, SinkEntry] = {
    "out": SinkEntry(VideoSink, "--out", f"{STREAM}_annotated.mp4", lambda path, info, uri, spec: VideoSink(
        path, info, audio_from=uri, crf=spec.crf, even_size=spec.even_size, inset=spec.inset, style=spec.style)),
    "json": SinkEntry(JsonlSink, "--json", f"{STREAM}.jsonl", lambda path, info, uri, spec: JsonlSink(
        path, decimals=spec.json_decimals, landmarks=spec.json_landmarks, append=spec.append)),
    "crops": SinkEntry(CropSink, "--save-crops", STREAM, lambda path, info, uri, spec: CropSink(path), folder=True),
    "csv": SinkEntry(CsvSink, "--csv", f"{STREAM}.csv", lambda path, info, uri, spec: CsvSink(
        path, decimals=spec.json_decimals, append=spec.append)),
}


def is_folder(path: str) -> bool:
    """An output given as a folder: ends with a slash or is an existing directory."""
    return path.endswith(("/", os.sep)) or Path(path).is_dir()


def output_path(template: str, label: str, default_name: str) -> Path:
    """``{stream}`` replaced by the label; a folder gets ``default_name`` (which may hold {stream}) inside it."""
    if STREAM in template:
        return Path(template.replace(STREAM, label))
    if is_folder(template):
        return Path(template) / default_name.replace(STREAM, label)
    return Path(template)


@dataclass
class OutputSpec:
    """Per-stream outputs: each a path holding ``{stream}`` or a folder (None: not written)."""

    out: str | None = None  # annotated video; a folder gets {stream}_annotated.mp4
    json: str | None = None  # JSON Lines; a folder gets {stream}.jsonl
    crops: str | None = None  # super-resolved crops; {stream} replaced, else a {stream} subfolder
    csv: str | None = None  # one CSV row per face; a folder gets {stream}.csv
    crf: int = 20
    even_size: bool = False
    inset: bool = True
    style: Any = None  # a jasr_video.layout.DrawStyle (overrides inset)
    json_decimals: int = 2
    json_landmarks: str = "both"
    append: bool = False  # JSON Lines and CSV go on with an existing .partial file (a restarted Ray stream worker)

    def shows_sr(self) -> bool:
        """Whether an output shows super-resolved faces: the annotated video with insets, or the crops (JSON and
        CSV carry landmarks only, so without these the pipeline can skip SR: ``PipelineConfig.sr_faces``)."""
        from .layout import DrawStyle

        style = self.style or DrawStyle(inset="auto" if self.inset else "off")
        return bool(self.crops) or (bool(self.out) and style.insets != "off")

    def paths(self, label: str) -> dict[str, Path]:
        """The outputs of the stream `label`, by sink name."""
        paths = {}
        for kind, entry in SINKS.items():
            template = getattr(self, kind)
            if not template:
                continue
            if entry.folder:  # a folder output always gets a folder per stream
                paths[kind] = (Path(template.replace(STREAM, label)) if STREAM in template
                               else Path(template) / entry.default_name.replace(STREAM, label))
            else:
                paths[kind] = output_path(template, label, entry.default_name)
        return paths

    def make_sinks(self, label: str, info: StreamInfo, uri: str) -> list[Sink]:
        """The sinks of the stream `label` (see :func:`build_sinks`)."""
        return build_sinks(self, self.paths(label), info, uri)


def build_sinks(spec: OutputSpec, paths: dict[str, Path], info: StreamInfo, uri: str | None) -> list[Sink]:
    """The sinks writing `paths` (sink name -> path, as :meth:`OutputSpec.paths` gives) with the settings of
    `spec`, in :data:`SINKS` order; `uri`: the input (the video keeps its audio). When one cannot be made, those
    already made are closed (their partial files removed) and the error is raised."""
    sinks: list[Sink] = []
    try:
        for kind, entry in SINKS.items():
            if kind in paths:
                sinks.append(entry.make(Path(paths[kind]), info, uri, spec))
    except BaseException:
        close_sinks(sinks, complete=False, frames=0)
        raise
    return sinks


def close_sinks(sinks: Sequence[Sink], complete: bool, frames: int, errors: list[str] | None = None) -> list[Path]:
    """Close every sink (renamed to its final name when `complete`); drop empty partial files.
    A sink that cannot be finalised is logged and its one-line reason appended to `errors`."""
    written = []
    for sink in sinks:
        try:
            path = Path(sink.close(complete=complete and frames > 0))
        except Exception as exc:  # noqa: BLE001 - one sink failing must not keep the others open
            line = f"could not finalise {getattr(sink, 'path', sink)}: {exc}"
            log.error("%s", line)
            if errors is not None:
                errors.append(redact(line))
            continue
        if frames == 0 and path.name.endswith(".partial"):
            path.unlink(missing_ok=True)
        else:
            written.append(path)
    return written


# ---------------------------------------------------------------------------------------------
# checks (before anything loads)


def _file_path(uri: str) -> Path:
    return Path(uri[7:] if uri.startswith("file://") else uri)


def check_outputs(spec: OutputSpec, inputs: Sequence[str], labels: Sequence[str] | None = None,
                  folders: dict[str, str | None] | None = None) -> None:
    """Check every output before the run: a UserError (one line) for the first problem.

    ``labels`` None: one input, and the spec's paths are the outputs themselves. Otherwise one stream per label:
    each file output must hold ``{stream}`` or be an existing folder, input files must exist and not be empty,
    and no two streams may write the same file. Then, per stream: the video's extension, the folder of each file
    output exists, no output overwrites an input; and (:func:`check_outputs_writable`) all outputs, with the
    extra ``folders`` (option -> folder, e.g. ``--tracks``), are distinct and can be written.
    """
    if labels is None:
        streams = {"": {kind: Path(getattr(spec, kind)) for kind in SINKS if getattr(spec, kind)}}
    else:
        for kind, entry in SINKS.items():
            value = getattr(spec, kind)
            if not value or entry.folder:
                continue
            if STREAM not in value and not is_folder(value):
                raise UserError(f"{entry.option} {value}: {len(inputs)} inputs cannot share one output file; put "
                                f"{STREAM} in the name (e.g. {entry.option} out/{STREAM}{Path(value).suffix}) or give "
                                f"a folder (e.g. {entry.option} out/)")
            if STREAM not in value and not Path(value).is_dir():
                raise UserError(f"{entry.option} {value}: folder does not exist (create it first)")
        for uri in inputs:
            if not is_live_uri(uri):
                path = _file_path(uri)
                if not path.is_file():
                    raise UserError(f"input file not found: {uri} (check the path)")
                if path.stat().st_size == 0:
                    raise UserError(f"input file is empty: {uri} (give a video file)")
        streams = {label: spec.paths(label) for label in labels}
    sources = {_file_path(u).resolve() for u in inputs if "://" not in u}
    the = "the input" if labels is None else "an input"
    seen: dict[Path, str] = {}
    for label, paths in streams.items():
        for kind, path in paths.items():
            entry = SINKS[kind]
            if kind == "out" and path.suffix.lower() not in VIDEO_SUFFIXES:
                raise UserError(f"--out {path}: unsupported extension (use .mp4, .mov or .mkv)")
            if not entry.folder and not path.resolve().parent.is_dir():
                raise UserError(f"{entry.option} {path}: folder {path.resolve().parent} does not exist (create it first)")
            if path.resolve() in sources:
                raise UserError(f"{entry.option} {path} would overwrite {the} (choose another name)")
            if labels is not None:
                if path.resolve() in seen:
                    raise UserError(f"{entry.option} {path}: streams {seen[path.resolve()]} and {label} would write "
                                    f"the same file (put {STREAM} in the name)")
                seen[path.resolve()] = label
        outputs: dict[str, str | None] = {SINKS[kind].option: str(path) for kind, path in paths.items()}
        check_outputs_writable({**outputs, **(folders or {})}, inputs)


def _write_probe(folder: Path) -> str | None:
    """Create and delete a file in `folder`: None when that works, else the reason (works for root too)."""
    probe = folder / f".jasr-video-write-test-{os.getpid()}"
    try:
        with open(probe, "x"):
            pass
        probe.unlink()
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


# outputs that are folders (created when missing)
FOLDER_OUTPUTS = (*(e.option for e in SINKS.values() if e.folder), "--tracks", "--report")


def check_outputs_writable(outputs: dict[str, str | None], inputs: Sequence[str]) -> None:
    """Every output (option -> path) is distinct from the others and the inputs, is not an existing folder (files)
    and can be created: a UserError (one line) otherwise. Run before the model loads."""
    seen: dict[Path, str] = {}
    sources = {_file_path(u).resolve(): u for u in inputs if "://" not in u or u.startswith("file://")}
    suffixes = {e.option: Path(e.default_name).suffix for e in SINKS.values()}
    for opt, value in outputs.items():
        if not value:
            continue
        path = Path(value).resolve()
        if path in sources:
            raise UserError(f"{opt} {value} would overwrite the input (choose another name)")
        if path in seen:
            raise UserError(f"{opt} {value} and {seen[path]} name the same file or folder (give each output "
                            f"its own name)")
        seen[path] = opt
        if opt in FOLDER_OUTPUTS:
            folder = path
            while not folder.exists() and folder != folder.parent:
                folder = folder.parent  # the crops folder is created: its nearest existing ancestor must be writable
            if not folder.is_dir():
                raise UserError(f"{opt} {value}: {folder} is a file, not a folder (give a folder path)")
        else:
            if path.is_dir():
                raise UserError(f"{opt} {value} is a folder (give a file name, e.g. {Path(value) / 'out'}"
                                f"{suffixes.get(opt) or '.jsonl'})")
            folder = path.parent
        reason = _write_probe(folder)
        if reason is not None:
            raise UserError(f"{opt} {value}: cannot write in {folder} ({reason}; choose a writable folder)")
