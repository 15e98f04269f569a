"""Many streams on a Ray cluster: one actor per stream, shared model replicas (``pip install "jasr-video[ray]"``).

    from jasr_video.cluster import RayRunner
    from jasr_video.multistream import OutputSpec, stream_specs
    runner = RayRunner(PipelineConfig(device="cpu"), stream_specs(["rtsp://cam1/s", "lobby.mp4"]),
                       OutputSpec(json="/shared/out/{stream}.jsonl"), replicas=2, address="auto")
    for report in runner.run():          # blocks until every stream has ended
        print(report.name, report.status, report.frames, report.gaps, report.error)

The same streams, options, outputs and :class:`~jasr_video.multistream.StreamReport` as
:class:`~jasr_video.multistream.MultiStreamRunner`, spread over a Ray cluster (docs/cluster.md):

- :class:`StreamWorker` (one Ray actor per stream) decodes, detects (MTCNN, near the camera), tracks,
  crops, smooths and writes that stream's outputs. It routes each face as one process does (x8 / x4 / x2,
  ``--sr-factor``) and sends only the LR faces its route feeds the model (x8: 16x16, ``lr_dtype`` float32
  3,072 bytes per face, the same input as one process; uint8 768 bytes, landmarks within a pixel or so, see
  docs/cluster.md; x4 / x2: about the face's own size) to a model replica, and gets back landmarks and
  confidences (and the 128x128 super-resolved faces only when a video or crops are written).
- :class:`ModelReplica` (``replicas`` actors) runs JASRNet on the crops of many streams, gathering the
  requests that arrive within ``gather`` seconds into one forward.

Failures: both actors are restarted by Ray (``max_restarts``; their running calls are retried,
``max_task_retries``). A restarted stream worker carries on: it appends to the stream's JSON Lines
(every earlier line kept), writes a ``stream_gap`` record for the outage (``reason``: "stream worker
restarted") and, for a file input, resumes after the last frame written; a live input is reopened (frame
numbers go on from the last one written).
Tracks start afresh after the gap, as after a live reconnect. The annotated video of the frames before a
restart is left as ``NAME.restartN.partial`` (an MP4 cut by a crash is not playable; MKV is) and the video
goes on in ``NAME`` from the restart. While a replica restarts, stream workers wait for it (and try the
other replicas) up to ``model_timeout`` seconds.

Length: the two Ray actors, the runner that places and restarts them and its CLI entry stay together so that
nothing outside this module imports Ray (its benchmark, :mod:`jasr_video.tools.cluster_bench`, goes through
it too).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .config import LIVE_FRAME_BATCH, live_frame_batch
from .multistream import MultiStreamRunner, OutputSpec, StreamReport, StreamSpec, _Batcher, _Request
from .source import StreamInfo, redact

log = logging.getLogger(__name__)

RESTART_REASON = "stream worker restarted"


def _ray():
    try:
        import ray
    except ImportError:
        raise ImportError('Ray is not installed: pip install "jasr-video[ray]" (or pip install "ray>=2.9")') from None
    return ray


# ---------------------------------------------------------------------------------------------
# the model replica


class ModelReplica:
    """JASRNet for many stream workers: ``enhance`` calls arriving within ``gather`` seconds (or as soon as
    ``expect`` are waiting) go through one forward. Run as a threaded Ray actor (``max_concurrency``).
    Faces are routed to the x8 / x4 / x2 weights as in one process (:class:`~jasr_video.route.RoutedEnhancer`,
    ``config.sr_factor``)."""

    def __init__(self, config: Any, threads: int | None = None, gather: float = 0.01, expect: int = 1) -> None:
        import torch

        from .route import RoutedEnhancer

        if threads:
            torch.set_num_threads(threads)
        self.enhancer = RoutedEnhancer.from_config(config)
        self.gather, self.expect = gather, max(1, expect)
        self._cv = threading.Condition()
        self._batcher = _Batcher(self._cv, self._forward, self._ready, 0.002)
        self.stats = {"requests": 0, "forwards": 0, "faces": 0}

    def info(self) -> dict[str, Any]:
        e = self.enhancer
        return {"crop_margin": e.crop_margin, "device": str(e.device), "pid": os.getpid(),
                "routing": {"mode": e.mode, "factors": sorted(e.by_factor), "ranges": dict(e.ranges)}}

    def get_stats(self) -> dict[str, int]:
        with self._cv:
            return dict(self.stats)

    def enhance(self, groups: Sequence[tuple[int, np.ndarray]] | np.ndarray,
                want_sr: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """groups: (factor, LR faces (n, m, m, 3) RGB, uint8 or float in [0, 1]) per route, or one array of
        16x16 faces for x8 -> (sr: (N, 128, 128, 3) uint8, or None unless `want_sr`; landmarks (N, 68, 2);
        confidence (N, 68)), faces in the order given."""
        if isinstance(groups, np.ndarray):
            groups = [(8, groups)]
        return self._batcher.submit(list(groups), wants_sr=want_sr)  # _forward leaves sr None unless wanted

    def _ready(self, pending: list[_Request]) -> bool:
        return len(pending) >= self.expect or time.monotonic() - min(r.since for r in pending) >= self.gather

    def _forward(self, batch: list[_Request]) -> None:
        import torch

        from .route import RoutedCrops

        def tensor(a: np.ndarray) -> torch.Tensor:
            a = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a
            return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float()

        sizes = [sum(len(a) for _, a in r.payload) for r in batch]
        out = self.enhancer(RoutedCrops.from_lr([(f, tensor(a)) for r in batch for f, a in r.payload if len(a)]),
                            sr=any(r.wants_sr for r in batch))
        for r, part in zip(batch, out.split(sizes, [r.wants_sr for r in batch])):
            r.result = (part.sr, part.landmarks, part.confidence)
        with self._cv:
            self.stats["requests"] += len(batch)
            self.stats["forwards"] += 1
            self.stats["faces"] += sum(sizes)


class RemoteModel:
    """What a stream's Pipeline sees as its enhancer (and ``.detector``): a local MTCNN, and JASRNet on a
    :class:`ModelReplica`. Faces are routed here as the replica routes them (``route``, from its ``routing``
    info) and sent as their LR images (x8: 16x16; x4 / x2: about their own size) in ``lr_dtype`` (float32
    or uint8); faces that keep their native crop take it from here, not over the network."""

    def __init__(self, replicas: Sequence[Any], first: int, detector: Any, crop_margin: float, want_sr: bool,
                 timeout: float = 120.0, lr_dtype: str = "float32", routing: dict[str, Any] | None = None) -> None:
        import torch

        if lr_dtype not in ("float32", "uint8"):
            raise ValueError("lr_dtype must be float32 or uint8")
        self.lr_dtype = lr_dtype
        self.replicas, self.first = list(replicas), first
        self.detector, self.crop_margin, self.want_sr, self.timeout = detector, crop_margin, want_sr, timeout
        routing = routing or {"mode": "8", "factors": [8], "ranges": {}}
        self.mode, self.factors = routing["mode"], tuple(routing["factors"])
        self.ranges = {int(f): tuple(r) for f, r in routing["ranges"].items()}
        self.device = torch.device("cpu")
        self.stats = {"requests": 0, "forwards": 0, "faces": 0, "max_streams": 1, "bytes_sent": 0,
                      "bytes_received": 0, "retries": 0}

    def register(self) -> None:
        pass

    def unregister(self) -> None:
        pass

    def route(self, side: float) -> Any:
        """The route of a face whose crop side is ``side`` px, as the replica's RoutedEnhancer chooses it."""
        from .model.routing import choose_route

        return choose_route(side, self.mode, self.factors, self.ranges)

    def _wire(self, lr: Any) -> np.ndarray:
        """(n, 3, m, m) in [0, 1] -> (n, m, m, 3) float32 or uint8, as sent to the replica."""
        import torch

        if self.lr_dtype == "uint8":
            return np.ascontiguousarray((lr.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())
        return np.ascontiguousarray(lr.float().permute(0, 2, 3, 1).numpy())

    def __call__(self, crops: Any, sr: bool = True) -> Any:
        """As a RoutedEnhancer; SR faces come back only when ``sr`` and ``want_sr`` (else ``sr`` None)."""
        import torch

        from .enhance import EnhancedFaces
        from .model.config import LR_SIZE
        from .model.data import degrade
        from .route import RoutedCrops

        if isinstance(crops, RoutedCrops):
            by_route: dict[tuple[int, int], list[int]] = {}
            for i, r in enumerate(crops.routes):
                by_route.setdefault((r.sr_factor, r.model_input_px), []).append(i)
            order = [i for index in by_route.values() for i in index]
            groups = [(factor, self._wire(torch.stack([crops.lr[i] for i in index])))
                      for (factor, _), index in by_route.items()]
        else:
            lr = degrade(crops.float(), LR_SIZE) if crops.shape[-1] != LR_SIZE else crops
            order, groups = list(range(len(lr))), [(8, self._wire(lr))]
        n = len(order)
        want = self.want_sr and sr
        sent_sr, sent_lm, sent_conf = self._call(groups, want) if n else (None, np.zeros((0, 68, 2), np.float32),
                                                                           np.zeros((0, 68), np.float32))
        lm, conf = np.empty_like(sent_lm), np.empty_like(sent_conf)
        lm[order], conf[order] = sent_lm, sent_conf
        sr = None  # JSON only: no super-resolved faces cross the network
        if want:
            sr = np.empty((n, 128, 128, 3), np.uint8)
            if sent_sr is not None:
                sr[order] = sent_sr
            for i, image in enumerate(crops.native if isinstance(crops, RoutedCrops) else ()):
                if image is not None:
                    sr[i] = image
        self.stats["requests"] += 1
        self.stats["forwards"] += 1
        self.stats["faces"] += n
        self.stats["bytes_sent"] += sum(a.nbytes for _, a in groups)
        self.stats["bytes_received"] += lm.nbytes + conf.nbytes + (0 if sent_sr is None else sent_sr.nbytes)
        return EnhancedFaces(sr, lm, conf)

    def _call(self, groups: list[tuple[int, np.ndarray]], want_sr: bool):
        """Ask a replica; while it is down (being restarted) try the next ones, up to ``timeout`` seconds."""
        ray = _ray()
        deadline = time.monotonic() + self.timeout
        attempt = 0
        while True:
            replica = self.replicas[(self.first + attempt) % len(self.replicas)]
            try:
                return ray.get(replica.enhance.remote(groups, want_sr), timeout=max(1.0, deadline - time.monotonic()))
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as exc:
                attempt += 1
                self.stats["retries"] += 1
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"no model replica answered within {self.timeout:g} s ({type(exc).__name__})") from None
                log.warning("model replica unavailable (%s); retrying", type(exc).__name__)
                time.sleep(min(2.0, 0.2 * attempt))


# ---------------------------------------------------------------------------------------------
# the stream worker


@dataclasses.dataclass
class _Resume:
    """What a restarted worker found in the stream's JSON Lines."""

    frames: int = 0  # frame lines already written
    last_frame: int = -1
    last_pts: float | None = None
    gaps: int = 0
    stream_changes: int = 0
    pts_jumps: int = 0
    faces: int = 0
    written_at: float = 0.0  # the file's modification time (when the last line was written)


def read_progress(path: Path) -> _Resume:
    """Frames and gaps of a (partial) JSON Lines file; a line cut by the crash is dropped."""
    state = _Resume()
    if not path.exists():
        return state
    state.written_at = path.stat().st_mtime
    good = 0
    with open(path, "rb") as f:
        data = f.read()
    for raw in data.split(b"\n"):
        if not raw.endswith(b"}"):
            break
        try:
            row = json.loads(raw)
        except ValueError:
            break
        good += len(raw) + 1
        if "frame" in row:
            state.frames += 1
            state.faces += len(row.get("faces", ()))
            state.last_frame, state.last_pts = int(row["frame"]), row.get("pts")
        elif row.get("event") == "stream_gap":
            state.gaps += 1
        elif row.get("event") in ("stream_change", "pts_jump"):
            key = "stream_changes" if row["event"] == "stream_change" else "pts_jumps"
            setattr(state, key, getattr(state, key) + 1)
    if good < len(data):  # keep whole lines only
        with open(path, "r+b") as f:
            f.truncate(good)
    return state


class _WorkerOutputs(OutputSpec):
    """OutputSpec whose sinks continue a stream after a worker restart."""

    def __init__(self, base: OutputSpec, resume: _Resume | None, restarts: int) -> None:
        super().__init__(**{f.name: getattr(base, f.name) for f in dataclasses.fields(OutputSpec)})
        self.resume, self.restarts = resume, restarts

    def make_sinks(self, label: str, info: StreamInfo, uri: str) -> list[Any]:
        if self.resume is None:
            return super().make_sinks(label, info, uri)
        from .outputs import build_sinks
        from .sinks import partial_path, write_event

        paths = self.paths(label)
        if "out" in paths:  # an MP4 cut by a crash does not play: kept aside, the video goes on in a new file
            old = partial_path(paths["out"])
            if old.exists():
                os.replace(old, paths["out"].with_name(f"{paths['out'].name}.restart{self.restarts}.partial"))
        # JSON Lines (and CSV) go on with their .partial files; no audio after a restart
        spec = OutputSpec(**{**{f.name: getattr(self, f.name) for f in dataclasses.fields(OutputSpec)}, "append": True})
        sinks = build_sinks(spec, paths, info, None)
        r = self.resume
        write_event(sinks, {"event": "stream_gap", "stream": label, "start_pts": r.last_pts,
                            "duration": round(max(0.0, time.time() - r.written_at), 3) if r.written_at else 0.0,
                            "reason": RESTART_REASON})
        return sinks


class _WorkerRunner(MultiStreamRunner):
    """MultiStreamRunner for one stream in a StreamWorker: a restarted file stream skips the frames done; a
    restarted live stream numbers its frames on from the last one written."""

    skip_to: int = -1
    index_offset: int = 0

    def _process(self, name: str, pipeline: Any, source: Any, sinks: Sequence[Any], report: StreamReport) -> None:
        if self.index_offset:
            from .source import SourceEvent

            run, offset = pipeline.run, self.index_offset

            def numbered(src: Any, events: bool = False):
                for item in run(src, events=events):
                    if not isinstance(item, SourceEvent):
                        item.index += offset
                    yield item

            pipeline.run = numbered
        super()._process(name, pipeline, source, sinks, report)

    def _open(self, spec: StreamSpec):
        source = super()._open(spec)
        if source is not None and source.info.is_live:
            self.index_offset = max(self.skip_to, 0)
        if source is None or self.skip_to <= 0 or source.info.is_live:
            return source
        from .source import Frame

        while True:  # frames come in order from 0: drop them up to the last one written (skip_to - 1)
            item = source._get(timeout=0.5)
            if item is None and source.finished:
                break
            if isinstance(item, Frame) and item.index >= self.skip_to - 1:
                break
        return source


class StreamWorker:
    """One stream: decode, detect, track, crop, smooth, outputs (a Ray actor; see the module docstring)."""

    def __init__(self, config: Any, spec: StreamSpec, outputs: OutputSpec, source_options: dict[str, Any],
                 wait_for_start: bool, live_frame_batch: int | None, replicas: Sequence[str], index: int,
                 threads: int | None = None, model_timeout: float = 120.0, lr_dtype: str = "float32") -> None:
        import torch

        from .detect import make_detector

        if threads:
            torch.set_num_threads(threads)
        ray = _ray()
        self.spec = spec
        restarted = ray.get_runtime_context().was_current_actor_reconstructed
        resume = None
        paths = outputs.paths(spec.name)
        if restarted:
            resume = read_progress(paths["json"].with_name(paths["json"].name + ".partial")) if "json" in paths else _Resume()
        self.resume = resume
        replicas = [ray.get_actor(name) for name in replicas]  # by name: small, inlined constructor arguments
        info = ray.get(replicas[index % len(replicas)].info.remote(), timeout=model_timeout)
        margin = config.margin if config.margin is not None else info["crop_margin"]
        # MTCNN on the worker's GPU when Ray gave it one (worker_gpus), else on its CPU
        dev = "cuda" if config.device in ("cuda", "auto") and torch.cuda.is_available() else "cpu"
        detector = make_detector(config, torch.device(dev))
        self.model = RemoteModel(replicas, index, detector, margin, want_sr=outputs.shows_sr(),
                                 timeout=model_timeout, lr_dtype=lr_dtype, routing=info.get("routing"))
        cfg = dataclasses.replace(config, margin=margin, device=dev)
        if resume is not None and cfg.max_frames is not None:
            cfg = dataclasses.replace(cfg, max_frames=max(1, cfg.max_frames - resume.frames))
        restarts = (resume.gaps + 1) if resume is not None else 0
        self.runner = _WorkerRunner(cfg, [spec], _WorkerOutputs(outputs, resume, restarts), source_options,
                                    wait_for_start, live_frame_batch, model=self.model)
        if resume is not None:
            self.runner.skip_to = resume.last_frame + 1

    def run(self) -> dict[str, Any]:
        """Process the stream until it ends (or stop()); returns its StreamReport as a dict, plus stats."""
        r = self.resume
        report = self.runner.run()[0]
        if r is not None:
            report.frames += r.frames
            report.faces += r.faces
            report.gaps += r.gaps + 1
            report.stream_changes += r.stream_changes
            report.pts_jumps += r.pts_jumps
        out = dataclasses.asdict(report)
        out["outputs"] = [str(p) for p in report.outputs]
        out["model"] = dict(self.model.stats)
        out["restarted"] = r is not None
        return out

    def stop(self) -> None:
        self.runner.stop()

    def pid(self) -> int:
        return os.getpid()


# ---------------------------------------------------------------------------------------------
# the driver


class RayRunner:
    """Run streams on Ray, like :class:`~jasr_video.multistream.MultiStreamRunner` (see the module docstring).

    address: a Ray cluster ("auto", "ray://host:10001", "host:6379") or None to start a local Ray instance
    (``num_cpus`` CPUs; default: the machine's). replicas: ModelReplica actors (stream i uses replica
    i mod replicas first). worker_cpus / worker_gpus / replica_cpus / replica_gpus: Ray resources reserved
    per actor (fractions allowed, so several actors share a core or a GPU; a stream worker detects on a GPU
    only when given one); threads: torch threads in each actor.
    max_restarts: restarts per actor (-1: unlimited). model_timeout: seconds a stream waits for a replica.
    lr_dtype: how faces cross the network, float32 (3,072 bytes per face, exactly the one-process input) or
    uint8 (768 bytes). gather: seconds a replica waits for more streams' faces before a forward.
    """

    def __init__(self, config: Any, streams: Sequence[StreamSpec], outputs: OutputSpec | None = None,
                 source_options: dict[str, Any] | None = None, wait_for_start: bool = False,
                 live_frame_batch: int | None = LIVE_FRAME_BATCH, replicas: int = 1, address: str | None = None,
                 num_cpus: int | None = None, worker_cpus: float = 0.5, replica_cpus: float = 1.0,
                 replica_gpus: float = 0.0, worker_gpus: float = 0.0, threads: int | None = 1, max_restarts: int = -1,
                 model_timeout: float = 120.0, gather: float = 0.01, lr_dtype: str = "float32") -> None:
        names = [s.name for s in streams]
        if len(set(names)) != len(names):
            raise ValueError(f"stream names must be unique: {names}")
        if replicas < 1:
            raise ValueError("replicas must be >= 1")
        self.config, self.streams = config, list(streams)
        self.outputs = outputs or OutputSpec()
        self.source_options = dict(source_options or {})
        self.wait_for_start, self.live_frame_batch = wait_for_start, live_frame_batch
        self.n_replicas, self.address, self.num_cpus = replicas, address, num_cpus
        self.worker_cpus, self.replica_cpus, self.replica_gpus = worker_cpus, replica_cpus, replica_gpus
        self.worker_gpus = worker_gpus
        self.threads, self.max_restarts, self.model_timeout, self.gather = threads, max_restarts, model_timeout, gather
        self.lr_dtype = lr_dtype
        self.reports = {s.name: StreamReport(s.name, redact(s.uri)) for s in self.streams}
        self.replicas: list[Any] = []
        self.workers: dict[str, Any] = {}
        self.model_stats: dict[str, int] = {}
        self._stop = threading.Event()
        self._started_ray = False

    def start(self) -> None:
        """Connect to (or start) Ray and create the replicas and stream workers (``run`` calls it)."""
        ray = _ray()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.ERROR,
                                      "log_to_driver": log.isEnabledFor(logging.DEBUG)}  # --debug: actor logs too
            if self.address is None:
                kwargs["num_cpus"] = self.num_cpus or os.cpu_count() or 1
            ray.init(address=self.address, **kwargs)
            self._started_ray = True
        restarts = dict(max_restarts=self.max_restarts, max_task_retries=-1 if self.max_restarts != 0 else 0)
        replica_cls = ray.remote(ModelReplica)
        tag = uuid.uuid4().hex[:12]
        names = [f"jasr-replica-{tag}-{i}" for i in range(self.n_replicas)]
        self.replicas = [replica_cls.options(name=names[i], num_cpus=self.replica_cpus, num_gpus=self.replica_gpus,
                                             max_concurrency=max(4, 2 * len(self.streams)), **restarts)
                         .remote(self.config, self.threads, self.gather, max(1, len(self.streams) // self.n_replicas))
                         for i in range(self.n_replicas)]
        worker_cls = ray.remote(StreamWorker)
        for i, spec in enumerate(self.streams):
            self.workers[spec.name] = worker_cls.options(num_cpus=self.worker_cpus, num_gpus=self.worker_gpus,
                                                         max_concurrency=2, **restarts).remote(
                self.config, spec, self.outputs, self.source_options, self.wait_for_start, self.live_frame_batch,
                names, i, self.threads, self.model_timeout, self.lr_dtype)

    def stop(self) -> None:
        """Finish every stream after its current frames and finalise its outputs (safe from signal handlers)."""
        self._stop.set()
        for worker in list(self.workers.values()):
            try:
                worker.stop.remote()
            except Exception:  # noqa: BLE001 - a worker that is gone has nothing to finalise
                pass

    def run(self, timeout: float | None = None) -> list[StreamReport]:
        """Process every stream until all have ended; returns their reports in input order.

        timeout: seconds after which the streams are stopped (outputs finalised); None: no limit."""
        ray = _ray()
        if not self.workers:
            self.start()
        started = time.monotonic()
        pending = {w.run.remote(): name for name, w in self.workers.items()}
        for name in self.workers:
            self.reports[name].status = "running"
        stopped_at = None
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
                for ref in done:
                    self._collect(pending.pop(ref), ref)
                if timeout is not None and not self._stop.is_set() and time.monotonic() - started > timeout:
                    self.stop()
                if self._stop.is_set() and stopped_at is None:
                    stopped_at = time.monotonic()
                if stopped_at is not None and time.monotonic() - stopped_at > 60:
                    for ref, name in pending.items():
                        self.reports[name].status, self.reports[name].error = "failed", "did not stop within 60 s"
                    break
            self._model_stats()
        finally:
            self.close()
        return [self.reports[s.name] for s in self.streams]

    def close(self) -> None:
        """End the actors (and the local Ray instance this runner started); ``run`` calls it."""
        ray = _ray()
        for actor in [*self.workers.values(), *self.replicas]:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.workers, self.replicas = {}, []
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False

    def _collect(self, name: str, ref: Any) -> None:
        ray = _ray()
        report = self.reports[name]
        try:
            out = ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - one stream failing never stops the others
            line = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            report.status, report.error = "failed", f"stream worker failed: {line}"
            return
        model = out.pop("model", {})
        out.pop("restarted", None)
        for key, value in out.items():
            setattr(report, key, [Path(p) for p in value] if key == "outputs" else value)
        for key, value in model.items():
            self.model_stats[key] = self.model_stats.get(key, 0) + value

    def _model_stats(self) -> None:
        ray = _ray()
        total = {"requests": 0, "forwards": 0, "faces": 0}
        for replica in self.replicas:
            try:
                s = ray.get(replica.get_stats.remote(), timeout=10)
            except Exception:  # noqa: BLE001
                continue
            for key in total:
                total[key] += s[key]
        self.model_stats.update({f"replica_{k}": v for k, v in total.items()})


# ---------------------------------------------------------------------------------------------
# the command line (jasr-video --ray)


def _check_reachable(address: str, error: type[Exception], timeout: float = 5.0) -> None:
    """A HOST:PORT Ray address must accept a connection (ray.init would otherwise retry for minutes)."""
    import socket

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise error(f"--ray {address}: give the head node as HOST:PORT (e.g. 10.0.0.5:6379), ray://HOST:10001 or auto")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise error(f"--ray {address}: no Ray head answers there ({exc.strerror or type(exc).__name__}); start one "
                    "with `ray start --head --port 6379` or check the address") from None


def run_cli(args: Any, inputs: list[str], cli: Any = None) -> int:
    """``jasr-video --ray [ADDRESS] ...``: the multi-stream options and outputs, streams on Ray.

    cli: unused (kept for callers that pass the calling jasr_video.cli module)."""
    from rich.console import Console

    from . import cli_run as cli  # the CLI's option handling (jasr_video.cli itself is the caller)
    from .cli_summary import streams_table
    from .multistream import stream_specs
    from .outputs import UserError

    try:
        _ray()
    except ImportError as exc:
        raise UserError(str(exc)) from None
    if args.ray != "local" and (Path(args.ray).exists() or args.ray.split("://")[0] in ("rtsp", "rtsps", "http", "https", "file")):
        raise UserError(f"--ray {args.ray}: that is an input, not a Ray address (put --ray after the inputs, "
                            "or write --ray auto / --ray HOST:6379)")
    if args.ray not in ("local", "auto") and not args.ray.startswith("ray://"):
        _check_reachable(args.ray, UserError)
    specs = stream_specs(inputs)
    if args.csv:
        raise UserError("--csv does not run with --ray (use --json, whose lines hold the same fields)")
    cli._check_outputs(args, inputs, specs)
    console = Console(stderr=True, quiet=args.quiet)
    config = cli._config(args, live=False)
    outputs = cli.output_spec(args)
    address = None if args.ray == "local" else args.ray
    runner = RayRunner(config, specs, outputs, source_options=cli._source_options(args),
                       wait_for_start=cli._wait_for_start(args),
                       live_frame_batch=live_frame_batch(args.frame_batch),
                       replicas=args.ray_replicas, address=address, num_cpus=args.ray_cpus,
                       worker_cpus=args.ray_worker_cpus, replica_gpus=1.0 if args.device == "cuda" else 0.0,
                       threads=args.threads or 1)
    started = time.monotonic()
    try:
        runner.start()
    except ConnectionError as exc:
        raise UserError(f"--ray {args.ray}: cannot connect to the Ray cluster ({str(exc).splitlines()[0]}; "
                            "start one with `ray start --head` or give its address)") from None
    # after ray.init, which installs handlers of its own: Ctrl-C / SIGTERM stop the streams and finalise outputs
    reports, signum = cli.run_until_signal(runner)
    streams_table(console, f"jasr-video on Ray: {len(reports)} streams, {args.ray_replicas} model replicas, "
                           f"{time.monotonic() - started:.1f}s", reports)
    m = runner.model_stats
    if m.get("faces"):
        console.print(f"model: {m.get('faces', 0)} faces sent to the replicas, {m.get('bytes_sent', 0) / 1e3:.1f} kB "
                      f"sent, {m.get('bytes_received', 0) / 1e3:.1f} kB received")
    return cli.streams_exit(reports, signum)
