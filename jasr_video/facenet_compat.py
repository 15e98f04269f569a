"""facenet-pytorch without a matching torchvision: the stand-in for the two torchvision functions it imports.

facenet-pytorch imports two torchvision functions at import time (``torchvision.ops.boxes.batched_nms``
and ``torchvision.transforms.functional.to_tensor``). A CPU torch often has no torchvision, or one
built for another torch ("operator torchvision::nms does not exist"). :func:`import_facenet` uses the
real torchvision when it imports cleanly and otherwise puts a minimal stand-in providing exactly those
two functions into ``sys.modules`` for the duration of the facenet import only, then removes it.
:func:`nms` (OpenCV's greedy NMS with torchvision's semantics) is also used by the detector.
"""
from __future__ import annotations

import importlib
import sys
import types
from typing import Any

import numpy as np
import torch

# which torchvision facenet_pytorch was imported against: "torchvision" or "stand-in"
TORCHVISION_USED: str | None = None
_STANDIN_MODULES = (
    "torchvision", "torchvision.ops", "torchvision.ops.boxes", "torchvision.transforms",
    "torchvision.transforms.functional",
)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression with torchvision's semantics (area = (x2-x1)*(y2-y1)), by OpenCV's
    ``cv2.dnn.NMSBoxes`` (C++; same greedy rule, ties kept in input order). Returns the kept indices (int64) sorted by decreasing score.
    """
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    import cv2

    b = boxes.detach().double().cpu().numpy()
    rects = np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)
    s = scores.detach().double().cpu().numpy()
    s = s - s.min() + 1.0  # OpenCV keeps scores above a threshold >= 0: shift, order unchanged
    keep = np.asarray(cv2.dnn.NMSBoxes(rects, s, 0.0, float(iou_threshold)), np.int64).reshape(-1)
    return torch.from_numpy(keep).to(boxes.device)


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
