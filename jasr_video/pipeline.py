"""The video pipeline as a library: source -> detect -> track -> crop -> enhance -> smooth.

    from jasr_video import Pipeline, PipelineConfig

    for result in Pipeline(PipelineConfig(detect_every=2)).run("video.mp4"):
        for face in result.faces:
            print(result.index, result.pts, face.track_id, face.box, face.landmarks_smoothed[36])

``run`` yields one :class:`FrameResult` per decoded frame, in order (and, with ``events=True``,
the source's :class:`~jasr_video.source.StreamGap` events of live streams). Frames are gathered in
small groups (``frame_batch``) so MTCNN and JASRNet run batched across frames.

On a CPU with 2 or more torch threads (``PipelineConfig.lanes``, :mod:`jasr_video.lanes`), a file's frames go
through in three overlapping steps: while the caller handles one batch's results, JASRNet runs on the next
batch and detection and tracking on the one after, each on its share of the threads; results come out in the
same order, two batches later. Live inputs keep one step at a time (their latency stays one frame batch).

Per-stage wall-clock seconds of the last run are in :meth:`Pipeline.stage_seconds` (decode: waiting for
the source's decode thread; detect, track, crop, enhance, smooth; with lanes the stages overlap, so they add up
to more than the run); ``python -m jasr_video.bench`` uses them.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from .config import AUTO_FULL_SCAN_EVERY_CPU, PipelineConfig, config_dict  # noqa: F401 (config_dict re-exported)
from .crop import LR_SIZE, CropGeometry
from .detect import make_detector
from .enhance import BatchEnhancer
from .layout import clip_box
from .model.routing import Route
from .route import RoutedCrops, RoutedEnhancer, cut_face
from .smooth import make_smoother
from .source import StreamGap, StreamInfo, VideoSource, open_source
from .track import make_tracker
from .types import Detection, Detector, FaceResult, Frame, FrameResult, Smoother, TrackedFace, Tracker


def auto_full_scan_every(config: PipelineConfig, device: torch.device) -> int:
    """`config.full_scan_every`, with None (auto) resolved: on CPU a full-frame scan every 5th frame and regions
    around the tracks between (new faces are found up to 4 frames later; speed and recall against a scan on
    every frame: docs/benchmarks.md), on CUDA every frame (batched full-frame MTCNN is cheap there); every frame
    when ``detect_every`` > 1 (the two do not combine)."""
    if config.full_scan_every is not None:
        return config.full_scan_every
    if config.detect_every > 1 or device.type != "cpu":
        return 1
    return AUTO_FULL_SCAN_EVERY_CPU


STAGES = ("decode", "detect", "track", "crop", "enhance", "smooth")  # timed in stats as "<stage>_s"


@dataclass
class _Batch:
    """Frames detected and tracked, their faces cut (``Pipeline._prepare``), waiting for JASRNet."""

    frames: list[Frame]
    detections: dict[int, list[Detection]]  # full-scan detections by position in ``frames``
    per_frame: list[tuple[list[TrackedFace], list[Detection] | None, list[int]]] = field(default_factory=list)
    geoms: list[CropGeometry] = field(default_factory=list)  # per face, in order
    routes: list[Route] = field(default_factory=list)  # per face (routed enhancers; empty otherwise)
    inputs: Any = None  # RoutedCrops or a (N, 3, 16, 16) tensor of x8 LR faces; None without faces


class Pipeline:
    """Detect, track, super-resolve and align faces in a video; see the module docstring."""

    def __init__(self, config: PipelineConfig | None = None, enhancer: BatchEnhancer | None = None,
                 detector: Detector | None = None) -> None:
        self.config = config or PipelineConfig()
        self.config.validate()
        cfg = self.config
        self.enhancer = enhancer or RoutedEnhancer.from_config(cfg)
        self.margin = cfg.margin if cfg.margin is not None else self.enhancer.crop_margin
        det_device = self.enhancer.device if cfg.device != "cpu" else torch.device("cpu")
        # GPUs gain from detecting many frames per MTCNN call (docs/benchmarks.md)
        self.frame_batch = cfg.frame_batch or (16 if self.enhancer.device.type == "cuda" else 4)
        self.detector: Detector = detector or make_detector(cfg, det_device)
        self.full_scan_every = auto_full_scan_every(cfg, det_device)
        self._stop = threading.Event()
        self._waiter: ThreadPoolExecutor | None = None
        self.info: StreamInfo | None = None
        self.source: VideoSource | None = None
        self.stats: dict[str, Any] = {}
        self._reset_state()

    # -- control ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask a running ``run`` to finish after the current frames (safe from signal handlers/threads)."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _reset_state(self) -> None:
        cfg = self.config
        if self.stats:  # tracks in hand end with the old tracker
            self.stats["tracks_ended"] += len(self.stats["track_ids"])
            self.stats["track_ids"].clear()
        self.tracker: Tracker = make_tracker(cfg)
        self.smoother: Smoother = make_smoother(cfg)

    # -- main loop ----------------------------------------------------------------------------

    def run(self, source: str | Path | VideoSource, events: bool = False) -> Iterator[FrameResult]:
        """Process a source (a VideoSource, or a path/URL opened with open_source) frame by frame."""
        cfg = self.config
        self._stop.clear()
        own = not isinstance(source, VideoSource)
        src = open_source(str(source), **cfg.source_options) if own else source
        self.source, self.info = src, src.info
        self.stats = {"frames": 0, "faces": 0, **{f"{stage}_s": 0.0 for stage in STAGES}, "detections": 0,
                      "region_frames": 0, "track_ids": set(), "tracks_ended": 0, "faces_below_16px": 0, "gaps": 0,
                      "routes": {}, "started": time.monotonic()}
        self._reset_state()
        self._counter = 0
        self._scan_from = 0  # frame count at the last (re)start: detection frames are counted from there
        buffer: list[Frame] = []
        items = iter(src)
        # CPU lanes (jasr_video.lanes): while the caller writes a batch's results, the next batch's JASRNet and the
        # one after's detection run in the lanes, so results come two batches later; not for live inputs, whose
        # latency is kept to their frame batch
        lanes = None if src.info.is_live else getattr(self.enhancer, "lanes", None)
        prepared: _Batch | None = None  # detected and tracked, JASRNet not yet run
        enhanced: tuple[_Batch, Any] | None = None  # JASRNet done, results not yet given out

        def step(frames: list[Frame]) -> Iterator[FrameResult]:
            nonlocal prepared, enhanced
            if lanes is None:
                yield from self._process(frames)
                return
            if prepared is None:  # nothing in flight to run beside: all threads in this one
                prepared = self._prepare(frames)
                return
            detecting = lanes.submit(self._prepare, frames)  # first in the lanes' queue: the longest chain
            enhancing = self._background().submit(self._enhance, prepared)
            try:
                if enhanced is not None:  # the caller's sinks run here, beside the two above
                    yield from self._emit(*enhanced)
            finally:  # also when the caller stops iterating or one of them fails: nothing runs on after this
                wait([detecting, enhancing])
            enhanced, prepared = (prepared, enhancing.result()), detecting.result()

        def flush() -> Iterator[FrameResult]:
            nonlocal prepared, enhanced
            done, batch, enhanced, prepared = enhanced, prepared, None, None
            if done is not None:
                yield from self._emit(*done)
            if batch is not None:
                yield from self._emit(batch, self._enhance(batch))

        try:
            while True:
                t0 = time.perf_counter()
                item = next(items, None)
                self.stats["decode_s"] += time.perf_counter() - t0
                if item is None:
                    break
                if isinstance(item, StreamGap):
                    yield from flush()
                    yield from self._process(buffer)
                    buffer = []
                    self._reset_state()  # the scene may have changed: fresh tracks and smoothing
                    self._scan_from = self._counter  # and the next frame is a full-frame scan
                    self.stats["gaps"] += 1
                    if events:
                        yield item  # type: ignore[misc]
                    continue
                buffer.append(item)
                full = cfg.max_frames is not None and self._counter + len(buffer) >= cfg.max_frames
                if len(buffer) >= self.frame_batch or full or self._stop.is_set():
                    yield from step(buffer)
                    buffer = []
                if full or self._stop.is_set():
                    break
            yield from flush()  # frames already detected are always finished
            if not self._stop.is_set():
                yield from self._process(buffer)
        finally:
            if own:
                src.close()

    def _background(self) -> ThreadPoolExecutor:
        """One thread that waits on JASRNet's lanes while the pipeline's own thread gives out results."""
        if self._waiter is None:
            self._waiter = ThreadPoolExecutor(1, thread_name_prefix="jasr-enhance")
        return self._waiter

    def _process(self, frames: Sequence[Frame]) -> Iterator[FrameResult]:
        """Detect, track, enhance and smooth `frames` in the calling thread."""
        batch = self._prepare(frames)
        if batch is not None:
            yield from self._emit(batch, self._enhance(batch))

    def _prepare(self, frames: Sequence[Frame]) -> "_Batch | None":
        """Detection, tracking and crops of `frames` (the tracker's state moves on; None: no frames)."""
        if not frames:
            return None
        cfg = self.config
        stats = self.stats
        regions = self.full_scan_every > 1  # frames between full scans: MTCNN on regions around the tracks
        every = self.full_scan_every if regions else cfg.detect_every
        det_pos = [i for i in range(len(frames)) if (self._counter - self._scan_from + i) % every == 0]
        t0 = time.perf_counter()
        detections = dict(zip(det_pos, self.detector.detect([frames[i].image for i in det_pos]))) if det_pos else {}
        t1 = time.perf_counter()
        stats["detect_s"] += t1 - t0
        self._counter += len(frames)

        batch = _Batch(list(frames), detections)
        route_of = getattr(self.enhancer, "route", None)  # None: a plain (x8) BatchEnhancer
        crops = []
        crop_s = region_s = 0.0
        for i, frame in enumerate(frames):
            dets = detections.get(i)
            if dets is None and regions:  # needs this frame's track predictions, so one frame at a time
                tr = time.perf_counter()
                dets = self.detector.detect_regions(frame.image, self.tracker.predicted_boxes())
                region_s += time.perf_counter() - tr
                stats["region_frames"] += 1
            if dets is None:
                tracked = self.tracker.update(None)
            else:
                boxes = np.array([d.box for d in dets], np.float32).reshape(-1, 4)
                tracked = self.tracker.update(boxes, [d.score for d in dets])
                self.stats["detections"] += len(dets)
            batch.per_frame.append((tracked, dets, list(self.tracker.lost)))
            tc = time.perf_counter()
            for face in tracked:
                crop_box = face.filtered if cfg.stable_crops and face.filtered is not None else face.box
                g, route, crop = cut_face(frame.image, crop_box, self.margin, route_of)
                batch.geoms.append(g)
                crops.append(crop)
                if route is not None:
                    batch.routes.append(route)
            crop_s += time.perf_counter() - tc
        t2 = time.perf_counter()
        stats["track_s"] += t2 - t1 - crop_s - region_s
        stats["detect_s"] += region_s
        if crops and batch.routes:
            batch.inputs = RoutedCrops.from_crops(crops, batch.routes)
        elif crops:
            batch.inputs = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div_(255.0)
        stats["crop_s"] += crop_s + time.perf_counter() - t2
        return batch

    def _enhance(self, batch: "_Batch") -> Any:
        """JASRNet on the batch's faces (an EnhancedFaces; None without faces)."""
        t3 = time.perf_counter()
        out = self.enhancer(batch.inputs, sr=self.config.sr_faces) if batch.inputs is not None else None
        self.stats["enhance_s"] += time.perf_counter() - t3
        return out

    def _emit(self, batch: "_Batch", out: Any) -> Iterator[FrameResult]:
        """The batch's FrameResults: landmarks to frame pixels, smoothed per track."""
        cfg = self.config
        stats = self.stats
        geoms, routes = batch.geoms, batch.routes
        k = 0
        for i, frame in enumerate(batch.frames):
            tracked, dets, lost = batch.per_frame[i]
            faces: list[FaceResult] = []
            t4 = time.perf_counter()
            for face in tracked:
                g = geoms[k]
                raw = g.to_frame(out.landmarks[k]).astype(np.float32)
                size = float(max(face.box[2] - face.box[0], face.box[3] - face.box[1]))
                smoothed = (self.smoother.update(face.track_id, raw, size, frame.index).astype(np.float32)
                            if cfg.smooth else raw.copy())
                box, at_edge = clip_box(face.box, frame.image.shape[1], frame.image.shape[0])
                route = routes[k] if routes else None
                faces.append(FaceResult(face.track_id, box, face.score, face.detected,
                                        raw, smoothed, out.confidence[k], size,
                                        out.sr[k] if out.sr is not None else None, g, at_edge,
                                        face.track_score,
                                        *((route.sr_factor, route.model_input_px) if route else ())))
                if route:
                    self.stats["routes"][route.name] = self.stats["routes"].get(route.name, 0) + 1
                k += 1
                self.stats["track_ids"].add(face.track_id)
                self.stats["faces_below_16px"] += size < LR_SIZE
            for tid in lost:  # after this frame's updates: a batch holds earlier frames of these tracks
                self.smoother.reset(tid)
                if tid in self.stats["track_ids"]:  # only live ids are kept, so long runs stay bounded
                    self.stats["track_ids"].discard(tid)
                    self.stats["tracks_ended"] += 1
            self.stats["faces"] += len(faces)
            self.stats["frames"] += 1
            stats["smooth_s"] += time.perf_counter() - t4
            scan = "full" if i in batch.detections else "regions" if dets is not None else "none"
            yield FrameResult(frame.index, frame.pts, frame.image, faces, dets is not None, frame.stream, lost, scan)

    def stage_seconds(self) -> dict[str, float]:
        """Wall-clock seconds per stage of the last run (see STAGES); sinks are timed by their caller."""
        return {stage: float(self.stats.get(f"{stage}_s", 0.0)) for stage in STAGES}

    def tracks_seen(self) -> int:
        """Tracks output so far in the last run (ended ones are counted, not kept)."""
        return self.stats.get("tracks_ended", 0) + len(self.stats.get("track_ids", ()))

    def summary(self) -> dict[str, Any]:
        """Counters of the last run (frames, faces, tracks, timings)."""
        s = dict(self.stats)
        s.pop("track_ids", None)
        s.pop("tracks_ended", None)
        s["tracks"] = self.tracks_seen()
        started = s.pop("started", None)
        s["elapsed_s"] = time.monotonic() - started if started else 0.0
        s["fps"] = s["frames"] / s["elapsed_s"] if s.get("elapsed_s") else 0.0
        if self.source is not None:
            s["source"] = {k: v for k, v in getattr(self.source, "stats", {}).items() if not isinstance(v, (list, dict))}
        return s
