"""Face detection: facenet-pytorch MTCNN, batched over frames, offline (its weights ship in its wheel).

:class:`FaceDetector` (a :class:`~jasr_video.types.Detector`, registered in :data:`DETECTORS`) runs MTCNN's
three stages over facenet's networks and weights in one of two ways (``FaceDetector(fast=...)``): facenet's
own ``detect_face`` (``fast=False``, the reference), or :func:`jasr_video.mtcnn.run_mtcnn` (the default), the
same algorithm made cheaper; on CUDA frames are uploaded from a reused pinned buffer. ``detect_regions`` looks
only around given boxes (:mod:`jasr_video.regions`). :class:`CctvFaceDetector` (``mtcnn-cctv``) is the same with R-net and O-net weights tuned on compressed tiny faces (``models/detector/``).
:class:`~jasr_video.yunet.YuNetDetector` (``yunet``, the pipeline's default) is YuNet, a detector trained on WIDER
FACE, run by OpenCV.
facenet-pytorch is imported through :func:`jasr_video.facenet_compat.import_facenet` (with a stand-in for
torchvision where that is absent).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .config import DETECTOR_PRECISIONS
from .facenet_compat import batched_nms, import_facenet, nms, to_tensor  # noqa: F401 (re-exported)
from .mtcnn import STRIP_PIXELS, pyramid_scales, run_mtcnn  # noqa: F401 (re-exported)
from .types import Detection, registered  # Detection re-exported: it used to live here
from .yunet import YuNetDetector


def __getattr__(name: str) -> Any:  # the facenet import state lives in jasr_video.facenet_compat
    if name == "TORCHVISION_USED":
        from . import facenet_compat

        return facenet_compat.TORCHVISION_USED
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class FaceDetector:
    """MTCNN over batches of same-sized RGB frames.

    min_face_size: smallest face (px) searched for on a full frame (P-net's 12 px window at scale 12 / min_face_size).
    thresholds: P-, R-, O-net score thresholds. factor: image pyramid scale step.
    min_score: drop final detections below this probability.
    fast: :func:`run_mtcnn` (default) or facenet-pytorch's own ``detect_face`` (the reference).
    precision: P-net's arithmetic in the fast path (the R- and O-nets that decide stay fp32): "fp32" (default),
    "bf16", "fp16", or "auto" (bf16 on CPUs with native bf16, fp16 on CUDA); reduced precision is no faster
    (docs/benchmarks.md).
    refine_weights: R-net and O-net weights to use instead of facenet's (a name in ``models/detector/``, e.g.
    "mtcnn-cctv", or a path; see :func:`load_refine_weights`); None: the class's ``refine_weights_default``
    (here facenet's own).
    """

    refine_weights_default: str | None = None  # subclasses: tuned R-/O-net weights

    def __init__(
        self, min_face_size: int = 12, thresholds: Sequence[float] = (0.6, 0.7, 0.7), factor: float = 0.709,
        device: str | torch.device = "cpu", min_score: float = 0.0, fast: bool = True, precision: str = "fp32",
        refine_weights: str | None = None,
    ) -> None:
        if min_face_size < 1:
            raise ValueError("min_face_size must be >= 1")
        if len(thresholds) != 3 or not all(0.0 <= t <= 1.0 for t in thresholds):
            raise ValueError("thresholds must be three numbers in [0, 1] (P-, R-, O-net)")
        facenet = import_facenet()
        self.device = torch.device(device)
        self.min_score = min_score
        self.mtcnn = facenet.MTCNN(
            min_face_size=int(min_face_size), thresholds=list(thresholds), factor=factor, keep_all=True,
            select_largest=False, device=self.device,
        ).eval()
        self.refine_weights = refine_weights or self.refine_weights_default
        if self.refine_weights:
            load_refine_weights(self.mtcnn, self.refine_weights)
        from .model.inference import resolve_precision

        if precision not in ("auto", *DETECTOR_PRECISIONS):
            raise ValueError(f"precision must be auto, {', '.join(DETECTOR_PRECISIONS)}")
        self.fast = fast
        # R-/O-net crops: one grid_sample per frame (CUDA), else OpenCV per crop; settable on CPU (tests)
        self.sampled_crops = self.device.type != "cpu"
        self._pinned: torch.Tensor | None = None  # CUDA staging buffer (see _stage)
        self.precision = resolve_precision(precision, self.device) if fast else "fp32"
        self._pnet_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]
        if fast:  # the same weights, laid out for faster convolutions
            self.mtcnn.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def detect(self, frames: Sequence[np.ndarray], batch: bool | None = None,
               min_face_size: int | None = None) -> list[list[Detection]]:
        """frames: HxWx3 uint8 RGB arrays -> one list of detections per frame (sorted by score).

        batch: one MTCNN call per group of same-sized frames; None: only off the CPU (see below).
        min_face_size: smallest face searched for in this call (default: the detector's).
        """
        from facenet_pytorch.models.utils.detect_face import detect_face

        m = self.mtcnn
        minsize = int(min_face_size or m.min_face_size)
        results: list[list[Detection]] = [[] for _ in frames]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, f in enumerate(frames):  # MTCNN batches need equal sizes
            groups.setdefault(f.shape, []).append(i)
        # On CPU one frame per MTCNN call: batching 1080p frames is slower per frame there (docs/benchmarks.md);
        # GPUs gain from the batch.
        if batch is None:
            batch = self.device.type != "cpu"
        step = max(len(frames), 1) if batch else 1
        chunks = [idx[k:k + step] for idx in groups.values() for k in range(0, len(idx), step)]
        for indices in chunks:
            stacked = self._stage([frames[i] for i in indices])
            # what MTCNN.detect calls, with this call's minimum face size
            if self.fast:
                boxes, points = run_mtcnn(stacked, minsize, m.pnet, m.rnet, m.onet, m.thresholds, m.factor, m.device,
                                          self._pnet_dtype, self.sampled_crops)
            else:
                boxes, points = detect_face(np.asarray(stacked), minsize, m.pnet, m.rnet, m.onet, m.thresholds, m.factor, m.device)
            for j, i in enumerate(indices):
                for box, pts in zip(np.asarray(boxes[j]).reshape(-1, 5), np.asarray(points[j]).reshape(-1, 5, 2)):
                    if float(box[4]) < self.min_score:
                        continue
                    results[i].append(Detection(box[:4].astype(np.float32), float(box[4]), pts.astype(np.float32)))
                results[i].sort(key=lambda d: -d.score)
        return results

    def _stage(self, frames: list[np.ndarray]) -> np.ndarray | torch.Tensor:
        """Frames stacked for one MTCNN call: on CUDA (fast path) into a reused pinned-memory buffer, so the
        upload is one DMA copy without fresh page faults; elsewhere a NumPy stack."""
        if not (self.fast and self.device.type == "cuda"):
            return np.stack(frames)
        shape = (len(frames), *frames[0].shape)
        size = int(np.prod(shape))
        if self._pinned is None or self._pinned.numel() < size:  # grows to the largest batch seen, then reused
            self._pinned = torch.empty(size, dtype=torch.uint8).pin_memory()
        else:
            torch.cuda.current_stream(self.device).synchronize()  # the last upload from it has finished
        batch = self._pinned[:size].view(shape)
        staging = batch.numpy()
        for i, frame in enumerate(frames):
            staging[i] = frame
        return batch

    def detect_regions(self, frame: np.ndarray, boxes: np.ndarray, expand: float = 2.0, min_side: int = 48,
                       min_face_ratio: float = 0.5, nms_iou: float = 0.4) -> list[Detection]:
        """MTCNN on square regions of one frame around `boxes` (N, 4), e.g. the tracker's predicted face boxes;
        see :func:`jasr_video.regions.detect_regions`."""
        from .regions import detect_regions

        return detect_regions(self, frame, boxes, expand, min_side, min_face_ratio, nms_iou)

    @classmethod
    def from_config(cls, config: Any, device: torch.device) -> "FaceDetector":
        """The detector a :class:`~jasr_video.pipeline.PipelineConfig` asks for, on `device`."""
        return cls(config.min_face_size, config.thresholds, config.pyramid_factor, device, config.scores()[0],
                   precision=config.detector_precision)


class CctvFaceDetector(FaceDetector):
    """MTCNN with R-net and O-net tuned to score compressed tiny faces as facenet's networks score clean ones
    (``models/detector/mtcnn-cctv.pt``, made by :mod:`jasr_video.tools.tune_detector`); P-net and the algorithm
    are facenet's. Recall and false positives against facenet's weights: docs/benchmarks.md, "Tiny faces"."""

    refine_weights_default = "mtcnn-cctv"


def detector_weights_path(name_or_path: str) -> Path:
    """A name of shipped detector weights (``models/detector/<name>.pt``) or a path to such a file."""
    from .model.checkpoint import is_weights_name, models_dir

    folder = models_dir() / "detector"
    path = folder / f"{name_or_path}.pt" if is_weights_name(name_or_path) else Path(name_or_path)
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in folder.glob("*.pt"))) if folder.is_dir() else "none found"
        raise FileNotFoundError(f"detector weights {name_or_path!r} not found: give a path or a name from {folder} "
                                f"({shipped})")
    return path


def load_refine_weights(mtcnn: torch.nn.Module, name_or_path: str) -> None:
    """Load tuned MTCNN weights into facenet's MTCNN: a file with ``rnet`` and ``onet`` state dicts, and a ``pnet``
    one where P-net was tuned too."""
    state = torch.load(detector_weights_path(name_or_path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not {"rnet", "onet"} <= set(state):
        raise ValueError(f"{name_or_path}: not MTCNN R-net / O-net weights (no 'rnet' and 'onet' entries)")
    for stage in ("pnet", "rnet", "onet"):
        if stage in state:
            getattr(mtcnn, stage).load_state_dict({k: v.float() for k, v in state[stage].items()})


# name -> detector class (``PipelineConfig.detector``): a new detector is one class with ``detect``,
# ``detect_regions`` (jasr_video.types.Detector) and ``from_config(config, device)``, and one entry here.
DETECTORS: dict[str, type] = {"mtcnn": FaceDetector, "mtcnn-cctv": CctvFaceDetector, "yunet": YuNetDetector}


def make_detector(config: Any, device: torch.device) -> "FaceDetector":
    """The detector named by ``config.detector`` (a :class:`~jasr_video.pipeline.PipelineConfig`) on `device`."""
    return registered(DETECTORS, "detector", config.detector).from_config(config, device)
