"""One detector and one JASRNet shared by the stream threads of one process (:mod:`jasr_video.multistream`).

:class:`SharedModel` is each stream pipeline's ``enhancer`` and (``model.detector``) its detector: face crops
waiting for enhancement are gathered from all streams into one batched forward, and on a GPU frames that
several streams submit at nearly the same time go through one MTCNN call.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .types import Detector

if TYPE_CHECKING:
    import torch

    from .enhance import EnhancedFaces


@dataclass
class _Request:
    payload: Any  # face crops (enhancement) or frames (detection)
    thread: int
    since: float
    wants_sr: bool = True  # enhancement: the asking stream uses SR faces
    result: Any = None
    error: BaseException | None = None
    done: bool = False


class _Batcher:
    """Requests from several threads, run together.

    ``submit`` queues a request and waits. When no batch is running and ``ready(pending)`` says go, the
    waiting thread that sees it takes every pending request and runs them in one ``run(batch)`` call (which
    sets each request's ``result``), then wakes the others; an error in ``run`` reaches every request of
    that batch. ``cv`` is the condition the caller's other state lives under; ``poll``: seconds between checks.
    """

    def __init__(self, cv: threading.Condition, run: Callable[[list[_Request]], None],
                 ready: Callable[[list[_Request]], bool], poll: float) -> None:
        self._cv, self._run, self._ready, self._poll = cv, run, ready, poll
        self._pending: list[_Request] = []
        self._running = False

    def submit(self, payload: Any, on_queued: Callable[[_Request], None] | None = None, wants_sr: bool = True) -> Any:
        """Run `payload` in the next batch and return its result (`on_queued` is called under ``cv``)."""
        req = _Request(payload, threading.get_ident(), time.monotonic(), wants_sr)
        batch: list[_Request] = []
        with self._cv:
            self._pending.append(req)
            if on_queued is not None:
                on_queued(req)
            self._cv.notify_all()
            while not req.done:
                if not self._running and self._pending and self._ready(self._pending):
                    batch, self._pending, self._running = self._pending, [], True
                    break
                self._cv.wait(self._poll)
        if batch:
            try:
                self._run(batch)
            except BaseException as exc:  # noqa: BLE001 - handed to every request of the batch
                for r in batch:
                    r.error = exc
            finally:
                with self._cv:
                    for r in batch:
                        r.done = True
                    self._running = False
                    self._cv.notify_all()
        if req.error is not None:
            raise req.error
        return req.result


class _SharedDetector:
    """The shared detector (a :class:`~jasr_video.types.Detector`) for the stream workers; tells the SharedModel
    who is detecting.

    On a GPU, frames that several streams ask about at nearly the same time go through one MTCNN call (a GPU
    detects larger batches at a lower cost per frame): a request waits at most
    ``gather`` seconds for the other running streams' requests (None: 0.02 s on CUDA, 0 elsewhere). On CPU,
    MTCNN runs one frame per call anyway, so there requests simply take turns.
    """

    def __init__(self, model: "SharedModel", detector: Detector, gather: float | None = None) -> None:
        self._model, self._detector = model, detector
        self._lock = threading.Lock()
        if gather is None:  # automatic: gather on GPUs only
            device = getattr(detector, "device", None)
            gather = 0.02 if device is not None and device.type == "cuda" else 0.0
        self.gather = gather
        self._batcher = _Batcher(model._cv, self._detect_batch, self._ready, 0.005)
        self.stats = {"requests": 0, "calls": 0}

    def detect(self, frames: Sequence[Any]) -> list:
        self._model._set_state("detecting")
        try:
            if not self.gather:
                with self._lock:
                    self.stats["requests"] += 1
                    self.stats["calls"] += 1
                    return self._detector.detect(frames)
            return self._batcher.submit(frames)
        finally:
            self._model._set_state("detected")

    def _ready(self, pending: list[_Request]) -> bool:
        """Every running stream has asked, or the oldest request has waited ``gather`` seconds."""
        waited = time.monotonic() - min(r.since for r in pending)
        return waited >= self.gather or len(pending) >= len(self._model._state)

    def _detect_batch(self, batch: list[_Request]) -> None:
        try:
            with self._lock:
                found = self._detector.detect([f for r in batch for f in r.payload])
            k = 0
            for r in batch:
                r.result, k = found[k:k + len(r.payload)], k + len(r.payload)
        finally:
            self.stats["requests"] += len(batch)
            self.stats["calls"] += 1

    def detect_regions(self, frame: Any, boxes: Any) -> list:
        """FaceDetector.detect_regions under the same lock (``full_scan_every``)."""
        self._model._set_state("detecting")
        try:
            with self._lock:
                return self._detector.detect_regions(frame, boxes)
        finally:
            self._model._set_state("detected")

    @property
    def device(self) -> Any:
        """The shared detector's device."""
        return getattr(self._detector, "device", None)

    @property
    def precision(self) -> Any:
        """The shared detector's P-net precision."""
        return getattr(self._detector, "precision", None)


class SharedModel:
    """One detector and one JASRNet (a BatchEnhancer) shared by the stream workers.

    Used as a Pipeline's ``enhancer`` (``model``) and ``detector`` (``model.detector``). An enhancement
    request waits while another stream is detecting, or finished detecting less than ``grace`` seconds
    ago (it is about to ask too), so the faces of all streams go through one forward; ``max_wait``
    bounds the wait. ``detect_gather``: see :class:`_SharedDetector` (frames of several streams in one MTCNN call).
    ``stats``: requests, forwards, faces, max_streams (most streams in one forward).
    """

    def __init__(self, enhancer: Any, detector: Detector, grace: float = 0.25, max_wait: float = 10.0,
                 detect_gather: float | None = None) -> None:
        self.enhancer = enhancer
        self._cv = threading.Condition()
        self._state: dict[int, tuple[str, float]] = {}  # thread -> (idle|detecting|detected|waiting, since)
        self.detector = _SharedDetector(self, detector, detect_gather)
        self.grace, self.max_wait = grace, max_wait
        self._batcher = _Batcher(self._cv, self._forward, self._should_run, 0.02)
        self.stats = {"requests": 0, "forwards": 0, "faces": 0, "max_streams": 0}

    @property
    def device(self) -> "torch.device":
        return self.enhancer.device

    @property
    def crop_margin(self) -> float:
        return self.enhancer.crop_margin

    def route(self, side: float) -> Any:
        """The shared enhancer's route for a face of this crop side (x8 when it does not route)."""
        from .model.routing import choose_route

        return self.enhancer.route(side) if hasattr(self.enhancer, "route") else choose_route(side, "8")

    def register(self) -> None:
        """Call from a stream worker thread before it starts."""
        self._set_state("idle")

    def unregister(self) -> None:
        """Call from a stream worker thread when it ends (others stop waiting for it)."""
        with self._cv:
            self._state.pop(threading.get_ident(), None)
            self._cv.notify_all()

    def _set_state(self, state: str) -> None:
        with self._cv:
            self._state[threading.get_ident()] = (state, time.monotonic())
            self._cv.notify_all()

    def _should_run(self, pending: list[_Request]) -> bool:
        """Run the pending requests now, or wait for a stream that is about to add faces?"""
        now = time.monotonic()
        if now - min(r.since for r in pending) >= self.max_wait:
            return True
        asking = {r.thread for r in pending}
        for thread, (state, since) in self._state.items():
            if thread in asking:
                continue
            if state == "detecting" or (state == "detected" and now - since < self.grace):
                return False
        return True

    def __call__(self, crops: Any, sr: bool = True) -> EnhancedFaces:
        """Enhance crops (N, 3, S, S) in [0, 1] or RoutedCrops; batched with other streams' crops. ``sr=False``:
        no SR faces for this stream (the batch skips JASRNet's SR branch when no stream in it wants them)."""
        me = threading.get_ident()
        try:
            return self._batcher.submit(crops, on_queued=lambda r: self._state.__setitem__(me, ("waiting", r.since)),
                                        wants_sr=sr)
        finally:
            with self._cv:
                self._state[me] = ("idle", time.monotonic())

    def _forward(self, batch: list[_Request]) -> None:
        import torch

        from .route import RoutedCrops

        try:
            payloads = [r.payload for r in batch]
            crops = (payloads[0] if len(batch) == 1 else RoutedCrops.concat(payloads)
                     if isinstance(payloads[0], RoutedCrops) else torch.cat(payloads))
            out = self.enhancer(crops, sr=any(r.wants_sr for r in batch))
            for r, part in zip(batch, out.split([len(r.payload) for r in batch], [r.wants_sr for r in batch])):
                r.result = part
        finally:
            with self._cv:
                self.stats["requests"] += len(batch)
                self.stats["forwards"] += 1
                self.stats["faces"] += sum(len(r.payload) for r in batch)
                self.stats["max_streams"] = max(self.stats["max_streams"], len({r.thread for r in batch}))
