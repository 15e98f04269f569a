"""Face detection: facenet-pytorch MTCNN, batched over frames, offline (its weights ship in its wheel).

facenet-pytorch imports two torchvision functions at import time (``torchvision.ops.boxes.batched_nms``
and ``torchvision.transforms.functional.to_tensor``). A CPU torch often has no torchvision, or one
built for another torch ("operator torchvision::nms does not exist"). :func:`import_facenet` uses the
real torchvision when it imports cleanly and otherwise puts a minimal stand-in providing exactly those
two functions into ``sys.modules`` for the duration of the facenet import only, then removes it.
"""
from __future__ import annotations

import importlib
import sys
import types
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

# which torchvision facenet_pytorch was imported against: "torchvision" or "stand-in"
TORCHVISION_USED: str | None = None
_STANDIN_MODULES = (
    "torchvision", "torchvision.ops", "torchvision.ops.boxes", "torchvision.transforms",
    "torchvision.transforms.functional",
)


# ---------------------------------------------------------------------------------------------
# torchvision stand-in


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression with torchvision's semantics (area = (x2-x1)*(y2-y1)).

    Returns the kept indices (int64) sorted by decreasing score.
    """
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    b = boxes.detach().double().cpu().numpy()
    order = np.argsort(-scores.detach().double().cpu().numpy(), kind="stable")
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    keep: list[int] = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = inter / (areas[i] + areas[rest] - inter)
        order = rest[~(iou > iou_threshold)]
    return torch.as_tensor(keep, dtype=torch.int64, device=boxes.device)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS done independently per category ``idxs`` (torchvision's coordinate-offset trick)."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    max_coordinate = boxes.max()
    offsets = idxs.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def to_tensor(pic: Any) -> torch.Tensor:
    """HxWxC (or HxW) ndarray / PIL image -> CxHxW tensor; uint8 is scaled to [0, 1] as in torchvision."""
    arr = np.asarray(pic)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
    return t.float().div(255) if t.dtype == torch.uint8 else t


def _standin_modules() -> dict[str, types.ModuleType]:
    mods = {name: types.ModuleType(name) for name in _STANDIN_MODULES}
    mods["torchvision"].__doc__ = "jasr_video stand-in: only what facenet-pytorch imports"
    mods["torchvision.ops.boxes"].batched_nms = batched_nms
    mods["torchvision.ops.boxes"].nms = nms
    mods["torchvision.ops"].batched_nms = batched_nms
    mods["torchvision.ops"].nms = nms
    mods["torchvision.ops"].boxes = mods["torchvision.ops.boxes"]
    mods["torchvision.transforms.functional"].to_tensor = to_tensor
    mods["torchvision.transforms"].functional = mods["torchvision.transforms.functional"]
    mods["torchvision"].ops = mods["torchvision.ops"]
    mods["torchvision"].transforms = mods["torchvision.transforms"]
    return mods


def _real_torchvision_works() -> bool:
    try:
        importlib.import_module("torchvision")
        from torchvision.ops.boxes import batched_nms as _bn  # noqa: F401
        from torchvision.transforms.functional import to_tensor as _tt  # noqa: F401
    except (ImportError, RuntimeError, AttributeError, OSError):
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        return False
    return True


def import_facenet() -> types.ModuleType:
    """Import facenet_pytorch, with the torchvision stand-in only if the real one is absent or broken."""
    global TORCHVISION_USED
    if "facenet_pytorch" in sys.modules and TORCHVISION_USED is not None:
        return sys.modules["facenet_pytorch"]
    if _real_torchvision_works():
        module = importlib.import_module("facenet_pytorch")
        TORCHVISION_USED = "torchvision"
        return module
    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if name == "facenet_pytorch" or name.startswith("facenet_pytorch.")}
    stand_in = _standin_modules()
    sys.modules.update(stand_in)
    try:
        module = importlib.import_module("facenet_pytorch")
    except BaseException:
        sys.modules.update(saved)
        raise
    finally:
        for name, mod in stand_in.items():
            if sys.modules.get(name) is mod:
                del sys.modules[name]
    TORCHVISION_USED = "stand-in"
    return module


# ---------------------------------------------------------------------------------------------
# detector


@dataclass
class Detection:
    """One face: box (x0, y0, x1, y1) in frame pixels, MTCNN probability, 5 MTCNN key points (5, 2)."""

    box: np.ndarray
    score: float
    points: np.ndarray = field(default_factory=lambda: np.zeros((5, 2), np.float32))

    @property
    def size(self) -> float:
        """Face size in pixels: the longer side of the box."""
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


class FaceDetector:
    """MTCNN over batches of same-sized RGB frames.

    min_face_size: smallest face (px) searched for; 12 finds faces down to about 10-12 px.
    thresholds: P-, R-, O-net score thresholds. factor: image pyramid scale step.
    min_score: drop final detections below this probability.
    """

    def __init__(
        self, min_face_size: int = 12, thresholds: Sequence[float] = (0.6, 0.7, 0.7), factor: float = 0.709,
        device: str | torch.device = "cpu", min_score: float = 0.0,
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
        # On CPU one frame per MTCNN call: batching 1080p frames measured ~25 % slower per frame there
        # (python -m jasr_video.bench: 924 vs 722 ms per frame); GPUs gain from the batch.
        if batch is None:
            batch = self.device.type != "cpu"
        step = max(len(frames), 1) if batch else 1
        chunks = [idx[k:k + step] for idx in groups.values() for k in range(0, len(idx), step)]
        for indices in chunks:
            stacked = np.stack([frames[i] for i in indices])
            # what MTCNN.detect calls, with this call's minimum face size
            boxes, points = detect_face(stacked, minsize, m.pnet, m.rnet, m.onet, m.thresholds, m.factor, m.device)
            for j, i in enumerate(indices):
                for box, pts in zip(np.asarray(boxes[j]).reshape(-1, 5), np.asarray(points[j]).reshape(-1, 5, 2)):
                    if float(box[4]) < self.min_score:
                        continue
                    results[i].append(Detection(box[:4].astype(np.float32), float(box[4]), pts.astype(np.float32)))
                results[i].sort(key=lambda d: -d.score)
        return results

    def detect_regions(self, frame: np.ndarray, boxes: np.ndarray, expand: float = 2.0, min_side: int = 48,
                       min_face_ratio: float = 0.5, nms_iou: float = 0.4, batch: bool = True) -> list[Detection]:
        """MTCNN on square regions of one frame around `boxes` (N, 4), e.g. the tracker's predicted face boxes.

        Each region is a square of at least ``expand`` x the box's longer side: the next size on a fixed ladder
        (``min_side`` x sqrt(2)^k, multiples of 16), centred on the box and shifted to lie inside the frame.
        Within a region MTCNN looks for faces down to ``min_face_ratio`` x side / expand (never below the
        detector's min_face_size), which skips the costly fine pyramid levels. The ladder keeps the set of
        input shapes small (torch on CPU is much slower on the first call at a new shape).
        Regions of one size go through one MTCNN call (``batch``). Detections are mapped back to frame
        pixels; those cut by a region edge that is not a frame edge (a neighbour's face partly inside the
        region) are dropped, and duplicates from overlapping regions are removed by NMS. Sorted by score.
        """
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        h, w = frame.shape[:2]
        base = int(self.mtcnn.min_face_size)
        groups: dict[int, list[tuple[int, int]]] = {}  # side -> region origins (x0, y0)
        for x0, y0, x1, y1 in boxes[np.all(np.isfinite(boxes), axis=1)]:
            need = max(x1 - x0, y1 - y0, 1.0) * expand
            k = max(0, int(np.ceil(2 * np.log2(need / min_side) - 1e-9)))
            side = int(min(-(-min_side * 2 ** (k / 2) // 16) * 16, h, w))
            rx = int(round(np.clip((x0 + x1 - side) / 2, 0, w - side)))
            ry = int(round(np.clip((y0 + y1 - side) / 2, 0, h - side)))
            origins = groups.setdefault(side, [])
            if (rx, ry) not in origins:
                origins.append((rx, ry))
        found: list[Detection] = []
        for side, origins in groups.items():
            crops = [frame[ry:ry + side, rx:rx + side] for rx, ry in origins]
            min_face = max(base, int(side / expand * min_face_ratio))
            for (rx, ry), dets in zip(origins, self.detect(crops, batch=batch, min_face_size=min_face)):
                for d in dets:
                    b = d.box
                    cut = ((b[0] < 1 and rx > 0) or (b[1] < 1 and ry > 0) or (b[2] > side - 1 and rx + side < w)
                           or (b[3] > side - 1 and ry + side < h))
                    if not cut:
                        offset = np.array([rx, ry], np.float32)
                        found.append(Detection(b + np.tile(offset, 2), d.score, d.points + offset))
        if len(found) > 1:
            keep = nms(torch.from_numpy(np.stack([d.box for d in found])), torch.tensor([d.score for d in found]),
                       nms_iou)
            found = [found[int(i)] for i in keep]
        found.sort(key=lambda d: -d.score)
        return found
