"""Several streams in one process: one worker thread per stream, one shared model.

    from jasr_video.multistream import MultiStreamRunner, OutputSpec, stream_specs
    runner = MultiStreamRunner(PipelineConfig(), stream_specs(["rtsp://cam1/s", "lobby.mp4"]),
                               OutputSpec(json="out/{stream}.jsonl"), source_options={"open_timeout": 5})
    for report in runner.run():          # blocks until every stream has ended
        print(report.name, report.status, report.frames, report.error)

Each stream has its own source (decode thread and bounded queue, :mod:`jasr_video.source`), its own
:class:`~jasr_video.pipeline.Pipeline` (tracker, landmark smoother) and its own sinks. MTCNN and
JASRNet are loaded once and shared through :class:`~jasr_video.shared_model.SharedModel`: detection runs one call at a time,
and face crops waiting for enhancement are gathered from all streams into one batched forward.

A stream that cannot be opened, drops for good (reconnect off or ``max_reconnects`` used up) or fails
inside the pipeline is reported in its :class:`StreamReport`, its outputs are finalised, and the other
streams go on. With ``wait_for_start`` a live input that is down at startup is retried with the
reconnect back-off (:func:`~jasr_video.source.open_source_retrying`) without holding up the others.
"""
from __future__ import annotations

import dataclasses
import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence
from urllib.parse import urlsplit

from .config import LIVE_FRAME_BATCH
from .outputs import STREAM, OutputSpec, close_sinks, is_folder, output_path  # noqa: F401 (re-exported)
from .redact import protect, redact
from .shared_model import SharedModel, _Batcher, _Request, _SharedDetector  # noqa: F401 (re-exported)
from .source import (PtsJump, SourceError, SourceEvent, StreamChange, StreamGap, VideoSource, _is_webcam,
                     _webcam_path, event_line, is_live_uri, open_source, open_source_retrying)
from .types import FrameResult, Sink

if TYPE_CHECKING:  # torch and the model load lazily: naming and validation stay fast for the CLI
    from .pipeline import Pipeline, PipelineConfig

log = protect(logging.getLogger(__name__))  # every log line of this module is redacted



# ---------------------------------------------------------------------------------------------
# stream labels and output paths


def stream_label(uri: str) -> str:
    """A file-name-safe label: the file name without extension, the camera device (video0), or the
    URL's last path part (the host when the path is empty); never credentials."""
    if _is_webcam(uri):
        raw = Path(_webcam_path(uri)).name
    elif is_live_uri(uri):
        parts = urlsplit(redact(uri))  # a password holding '/' or '@' must not end up in the label
        last = parts.path.rstrip("/").rsplit("/", 1)[-1]
        raw = Path(last).stem if last else (parts.hostname or "stream")
    else:
        raw = Path(uri[7:] if uri.startswith("file://") else uri).stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw).strip("._") or "stream"


def unique_labels(uris: Sequence[str]) -> list[str]:
    """stream_label of each input; repeated labels get -2, -3, ... in input order."""
    labels, seen = [], {}
    for uri in uris:
        base = stream_label(uri)
        seen[base] = seen.get(base, 0) + 1
        label = base if seen[base] == 1 else f"{base}-{seen[base]}"
        while label in labels:  # e.g. inputs "a", "a", "a-2"
            seen[base] += 1
            label = f"{base}-{seen[base]}"
        labels.append(label)
    return labels


def read_streams_file(path: str | Path) -> list[str]:
    """Inputs listed one per line; blank lines and lines starting with # are skipped."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [s.strip() for s in lines if s.strip() and not s.strip().startswith("#")]


@dataclass
class StreamSpec:
    """One input and its label (used in output names and logs)."""

    name: str
    uri: str


def stream_specs(uris: Sequence[str]) -> list[StreamSpec]:
    return [StreamSpec(name, uri) for name, uri in zip(unique_labels(uris), uris)]


# ---------------------------------------------------------------------------------------------
# running several streams


@dataclass
class StreamReport:
    """How one stream went. status: pending, running, complete, stopped (by stop()) or failed."""

    name: str
    uri: str  # credentials redacted
    status: str = "pending"
    frames: int = 0
    faces: int = 0
    tracks: int = 0
    gaps: int = 0
    stream_changes: int = 0  # changes of frame size / pixel format mid-stream
    pts_jumps: int = 0  # breaks in the input's own timestamps
    error: str | None = None  # one line: why the stream failed or ended early
    outputs: list[Path] = field(default_factory=list)


class MultiStreamRunner:
    """Run several inputs through one shared model; see the module docstring.

    source_options go to open_source (open_timeout, live, reconnect, max_reconnects, ...).
    wait_for_start: retry live inputs that are down at startup (reconnect back-off).
    live_frame_batch: frame_batch used for live inputs (``LIVE_FRAME_BATCH``, 1, keeps latency low; the CLI passes
    :func:`jasr_video.config.live_frame_batch` of its --frame-batch).
    on_result(name, result): called from the stream's worker thread for every frame.
    """

    def __init__(self, config: PipelineConfig, streams: Sequence[StreamSpec], outputs: OutputSpec | None = None,
                 source_options: dict[str, Any] | None = None, wait_for_start: bool = False,
                 live_frame_batch: int | None = LIVE_FRAME_BATCH, model: SharedModel | None = None,
                 on_result: Callable[[str, FrameResult], None] | None = None) -> None:
        names = [s.name for s in streams]
        if len(set(names)) != len(names):
            raise ValueError(f"stream names must be unique: {names}")
        self.config = config
        self.streams = list(streams)
        self.outputs = outputs or OutputSpec()
        self.source_options = dict(source_options or {})
        self.wait_for_start = wait_for_start
        self.live_frame_batch = live_frame_batch
        if model is None:
            from .pipeline import Pipeline

            template = Pipeline(config)  # loads MTCNN and JASRNet once
            model = SharedModel(template.enhancer, template.detector)
        self.model = model
        self.on_result = on_result
        self.reports = {s.name: StreamReport(s.name, redact(s.uri)) for s in self.streams}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[str, tuple[Pipeline | None, VideoSource | None]] = {}

    def stop(self) -> None:
        """Finish every stream after its current frames (safe from signal handlers and other threads)."""
        self._stop.set()
        with self._lock:
            running = list(self._running.values())
        for pipeline, source in running:
            if pipeline is not None:
                pipeline.stop()
            if source is not None:
                source.close()

    def run(self) -> list[StreamReport]:
        """Process every stream until all have ended; returns their reports in input order."""
        threads = [threading.Thread(target=self._worker, args=(s,), name=f"jasr-stream:{s.name}", daemon=True)
                   for s in self.streams]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.2)  # short joins keep the main thread responsive to signals
        return [self.reports[s.name] for s in self.streams]

    def _open(self, spec: StreamSpec) -> VideoSource | None:
        options = dict(self.source_options, name=spec.name)
        if self.wait_for_start:
            return open_source_retrying(spec.uri, stop=self._stop, **options)
        return open_source(spec.uri, **options)

    def _worker(self, spec: StreamSpec) -> None:
        from .pipeline import Pipeline
        from .sinks import write_event

        report = self.reports[spec.name]
        self.model.register()
        sinks: list[Sink] = []
        source: VideoSource | None = None
        complete = False
        try:
            try:
                source = self._open(spec)
            except SourceError as exc:
                report.status, report.error = "failed", str(exc)
                return
            if source is None:  # stopped while waiting for the input
                report.status = "stopped"
                return
            cfg = self.config
            if source.info.is_live and self.live_frame_batch:
                cfg = dataclasses.replace(cfg, frame_batch=self.live_frame_batch)
            pipeline = Pipeline(cfg, enhancer=self.model, detector=self.model.detector)
            with self._lock:
                self._running[spec.name] = (pipeline, source)
            if self._stop.is_set():
                source.close()
            sinks = self.outputs.make_sinks(spec.name, source.info, spec.uri)
            report.status = "running"
            self._process(spec.name, pipeline, source, sinks, report)
            if source.error and not self._stop.is_set():
                report.status, report.error = "failed", source.error
                write_event(sinks, {"event": "stream_error", "stream": spec.name, "reason": source.error})
            else:
                report.status = "stopped" if self._stop.is_set() else "complete"
            complete = True
        except OSError as exc:  # e.g. an output that cannot be written
            report.status, report.error = "failed", str(exc).strip().splitlines()[0]
        except Exception as exc:  # noqa: BLE001 - one stream failing never stops the others
            line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            report.status, report.error = "failed", f"internal error: {type(exc).__name__}: {line}".rstrip(": ")
            log.debug("stream %s failed", spec.name, exc_info=True)
        finally:
            errors: list[str] = []
            report.outputs = close_sinks(sinks, complete, report.frames, errors)
            if errors:  # an output that could not be finalised fails the stream
                report.status, report.error = "failed", report.error or errors[0]
            if source is not None:
                source.close()
            with self._lock:
                self._running.pop(spec.name, None)
            self.model.unregister()

    def _process(self, name: str, pipeline: Pipeline, source: VideoSource, sinks: Sequence[Sink],
                 report: StreamReport) -> None:
        from .sinks import write_event

        for item in pipeline.run(source, events=True):
            if isinstance(item, SourceEvent):  # a live outage, a new frame size, a timestamp jump
                report.gaps += isinstance(item, StreamGap)
                report.stream_changes += isinstance(item, StreamChange)
                report.pts_jumps += isinstance(item, PtsJump)
                write_event(sinks, {**event_line(item), "stream": name})
                continue
            for sink in sinks:
                sink.write(item)
            report.frames += 1
            report.faces += len(item.faces)
            report.tracks = pipeline.tracks_seen()
            if self.on_result is not None:
                self.on_result(name, item)
