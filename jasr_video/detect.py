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
    def detect(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        """frames: HxWx3 uint8 RGB arrays -> one list of detections per frame (sorted by score)."""
        results: list[list[Detection]] = [[] for _ in frames]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, f in enumerate(frames):  # MTCNN batches need equal sizes
            groups.setdefault(f.shape, []).append(i)
        # On CPU one frame per MTCNN call: batching 1080p frames measured ~25 % slower per frame there
        # (python -m jasr_video.bench: 924 vs 722 ms per frame); GPUs gain from the batch.
        step = 1 if self.device.type == "cpu" else len(frames)
        chunks = [idx[k:k + step] for idx in groups.values() for k in range(0, len(idx), step)]
        for indices in chunks:
            batch = np.stack([frames[i] for i in indices])
            boxes, probs, points = self.mtcnn.detect(batch, landmarks=True)
            for j, i in enumerate(indices):
                if boxes[j] is None:
                    continue
                for box, prob, pts in zip(boxes[j], probs[j], points[j]):
                    if prob is None or float(prob) < self.min_score:
                        continue
                    results[i].append(Detection(np.asarray(box, np.float32), float(prob), np.asarray(pts, np.float32)))
                results[i].sort(key=lambda d: -d.score)
        return results
