"""Face detection: facenet-pytorch MTCNN, batched over frames, offline (its weights ship in its wheel).

Two implementations of MTCNN's three stages over the same facenet networks and weights
(``FaceDetector(fast=...)``): facenet's own ``detect_face`` (``fast=False``, the reference), and
:func:`run_mtcnn` (the default), the same algorithm made cheaper (measured gains in docs/benchmarks.md):
channels-last networks; on CPU the image pyramid built level from level with OpenCV's area filter, P-net
over the large levels in cache-sized strips (exactly the same output), and the R-/O-net face crops resampled
by OpenCV instead of one torch call per crop; on CUDA the crops of a frame in one ``grid_sample`` call and frames
uploaded from a reused pinned buffer. Its detections match the reference within the tolerance that
``tests/test_detect.py`` checks on real frames.

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
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .config import DETECTOR_PRECISIONS
from .types import Detection  # re-exported: it used to live here

# which torchvision facenet_pytorch was imported against: "torchvision" or "stand-in"
TORCHVISION_USED: str | None = None
# CPU: P-net runs over large pyramid levels in strips of about this many input pixels (0: whole levels)
STRIP_PIXELS = 262144
_STANDIN_MODULES = (
    "torchvision", "torchvision.ops", "torchvision.ops.boxes", "torchvision.transforms",
    "torchvision.transforms.functional",
)


# ---------------------------------------------------------------------------------------------
# torchvision stand-in


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression with torchvision's semantics (area = (x2-x1)*(y2-y1)), by OpenCV's
    ``cv2.dnn.NMSBoxes`` (C++; same greedy rule, ties kept in input order; 5x the Python loop's speed on 500
    boxes). Returns the kept indices (int64) sorted by decreasing score.
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


# ---------------------------------------------------------------------------------------------
# MTCNN stages (fast path)


def _pyramid_level(previous: list[np.ndarray] | None, images: torch.Tensor,
                   size: tuple[int, int]) -> tuple[torch.Tensor, list[np.ndarray] | None]:
    """One pyramid level (B, 3, h, w) float, channels-last, of `images`.

    On CPU: OpenCV's area filter applied to `previous` (the level before, as float32 HWC arrays; the frames
    for the first level), returned too for the next level: each level costs a fraction of the one before
    instead of a pass over the full frame (14 levels at 1080p: 69 -> 16 ms, ``scripts/profile_detect.py
    --parts``; facenet's torch resampling: 143 ms). Elsewhere: torch's
    ``interpolate(mode="area")`` on `images`, as facenet does (`previous` unused, None returned)."""
    if previous is None:
        return F.interpolate(images, size=size, mode="area"), None
    import cv2

    levels = [cv2.resize(f, (size[1], size[0]), interpolation=cv2.INTER_AREA) for f in previous]
    stacked = levels[0][None] if len(levels) == 1 else np.stack(levels)
    return torch.from_numpy(stacked).permute(0, 3, 1, 2), levels


def _pnet_in_strips(pnet: torch.nn.Module, level: torch.Tensor, strip_pixels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """P-net over `level` in horizontal strips of about `strip_pixels` input pixels, stitched to the same output.

    CPU: a strip's feature maps stay in cache, so the time no longer depends on contended memory bandwidth
    (1080p level, ``scripts/profile_detect.py --parts`` on a 2-core VM: one pass 76-182 ms, strips 80-92 ms).

    P-net output row i reads input rows 2i .. 2i+11. A strip of even height S+10 starting at an even row r
    gives output rows r/2 .. r/2 + S/2 - 1 exactly (no partial pooling window at its bottom); the last strip
    runs to the level's bottom edge, as the whole image does.
    """
    height, width = level.shape[2], level.shape[3]
    step = max(16, strip_pixels // max(width, 1) // 2 * 2)
    if height <= step + 10:
        return pnet(level)
    regs, probs = [], []
    start = 0
    while True:
        last = start + step + 10 >= height
        strip = level[:, :, start:] if last else level[:, :, start:start + step + 10]
        reg, prob = pnet(strip.contiguous(memory_format=torch.channels_last))
        regs.append(reg if last else reg[:, :, :step // 2])
        probs.append(prob if last else prob[:, :, :step // 2])
        if last:
            return torch.cat(regs, dim=2), torch.cat(probs, dim=2)
        start += step


def _face_crops(images: torch.Tensor, image_inds: np.ndarray, boxes: torch.Tensor, size: int, width: int,
                height: int, arrays: list[np.ndarray] | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """The square candidate boxes cut out of `images` and resampled to size x size, as facenet does.

    Returns (N', 3, size, size) and the mask of usable boxes (facenet's padding; boxes wholly outside the
    frame are not usable). With `arrays` (CPU: the frames as HWC arrays, uint8 or float32) each crop is resampled in float32 by
    OpenCV's area filter, a few microseconds a crop where facenet makes one torch call per crop; without,
    each output pixel is the mean of 4x4 bilinear samples spread over its area, all crops of a frame in one
    ``grid_sample`` call (GPUs: few kernel launches).
    """
    from facenet_pytorch.models.utils.detect_face import pad

    y, ey, x, ex = pad(boxes, width, height)
    valid = (ey > y - 1) & (ex > x - 1)
    keep = np.flatnonzero(valid)
    if arrays is not None:
        import cv2

        crops = np.empty((len(keep), size, size, 3), np.float32)
        for j, k in enumerate(keep):
            cut = arrays[int(image_inds[k])][y[k] - 1:ey[k], x[k] - 1:ex[k]].astype(np.float32, copy=False)
            crops[j] = cv2.resize(cut, (size, size), interpolation=cv2.INTER_AREA)
        return torch.from_numpy(crops).permute(0, 3, 1, 2), valid
    out = torch.empty((len(keep), 3, size, size), device=images.device)
    k = 4
    _, _, h, w = images.shape
    steps = (torch.arange(size * k, device=images.device, dtype=torch.float32) + 0.5) / (size * k)
    x0, y0 = torch.as_tensor(x[keep] - 1.0, device=images.device), torch.as_tensor(y[keep] - 1.0, device=images.device)
    cw = torch.as_tensor(ex[keep] - x[keep] + 1.0, device=images.device)
    ch = torch.as_tensor(ey[keep] - y[keep] + 1.0, device=images.device)
    gx = ((x0[:, None] + steps * cw[:, None]) / w * 2 - 1).float()  # (N, size*k), grid_sample's [-1, 1]
    gy = ((y0[:, None] + steps * ch[:, None]) / h * 2 - 1).float()
    inds = image_inds[keep]
    for b in np.unique(inds):
        rows = np.flatnonzero(inds == b)
        r = torch.as_tensor(rows, device=images.device)
        grid = torch.stack(torch.broadcast_tensors(gx[r][:, None, :], gy[r][:, :, None]), dim=-1)
        grid = grid.reshape(1, len(rows) * size * k, size * k, 2)
        samples = F.grid_sample(images[int(b):int(b) + 1], grid, mode="bilinear", align_corners=False)
        samples = samples.reshape(3, len(rows), size * k, size * k).transpose(0, 1)
        out[r] = F.avg_pool2d(samples, k)
    return out, valid


def pyramid_scales(height: int, width: int, min_face_size: int, factor: float) -> list[float]:
    """MTCNN's image pyramid: the scales at which P-net's 12 px window covers faces from `min_face_size` up."""
    m = 12.0 / min_face_size
    scales, minl = [], min(height, width) * m
    while minl >= 12:
        scales.append(m)
        m, minl = m * factor, minl * factor
    return scales


def _net_input(pixels: torch.Tensor) -> torch.Tensor:
    """0..255 pixels to the networks' input range, as facenet does."""
    return (pixels - 127.5) * 0.0078125


def _pnet_stage(images: torch.Tensor, previous: list[np.ndarray] | None, scales: Sequence[float],
                pnet: torch.nn.Module, threshold: float, device: torch.device,
                pnet_dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """MTCNN stage 1: P-net over the pyramid of `images` (B, 3, H, W) at `scales` (`previous`: the same images
    as float32 HWC arrays on CPU, see :func:`_pyramid_level`). Returns candidate boxes (N, 5: x0, y0, x1, y1,
    score) in `images` pixels after NMS per scale and image, then per image, box regression and squaring; and
    each box's image index."""
    from facenet_pytorch.models.utils import detect_face as fd

    _, _, h, w = images.shape
    boxes_all, inds_all = [], []
    for scale in scales:
        level, previous = _pyramid_level(previous, images, (int(h * scale + 1), int(w * scale + 1)))
        with torch.autocast(device.type, dtype=pnet_dtype, enabled=pnet_dtype != torch.float32):
            if device.type == "cpu" and STRIP_PIXELS:
                reg, probs = _pnet_in_strips(pnet, _net_input(level), STRIP_PIXELS)
            else:
                reg, probs = pnet(_net_input(level))
        reg, probs = reg.float(), probs.float()
        boxes, inds = fd.generateBoundingBox(reg, probs[:, 1], scale, threshold)
        pick = fd.batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.5)
        boxes_all.append(boxes[pick])
        inds_all.append(inds[pick])
    boxes, inds = torch.cat(boxes_all), torch.cat(inds_all)
    pick = fd.batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
    boxes, inds = boxes[pick], inds[pick]
    regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    boxes = torch.stack([boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh,
                         boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh, boxes[:, 4]], dim=1)
    return fd.rerec(boxes), inds


CropFn = Callable[[torch.Tensor, torch.Tensor, int], tuple[torch.Tensor, np.ndarray]]


def _refine_stages(boxes: torch.Tensor, inds: torch.Tensor, crop: CropFn, rnet: torch.nn.Module,
                   onet: torch.nn.Module, thresholds: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MTCNN stages 2 and 3 on stage-1 candidates (N, 5) grouped by `inds` (NMS runs within a group):
    R-net on 24x24 and O-net on 48x48 crops cut by ``crop(boxes, inds, size)`` -> (crops in 0..255, usable-box
    mask; boxes wholly outside the frame are not usable). Returns boxes (M, 5), key points (M, 5, 2), groups."""
    from facenet_pytorch.models.utils import detect_face as fd

    def crops_of(boxes: torch.Tensor, inds: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        crops, valid = crop(boxes, inds, size)
        mask = torch.as_tensor(valid, device=boxes.device)
        return _net_input(crops), boxes[mask], inds[mask]

    if len(boxes):  # stage 2: R-net
        crops, boxes, inds = crops_of(boxes, inds, 24)
    if len(boxes):
        reg, probs = fd.fixed_batch_process(crops, rnet)
        score = probs[:, 1]
        ipass = score > thresholds[1]
        boxes = torch.cat((boxes[ipass, :4], score[ipass].unsqueeze(1)), dim=1)
        inds, reg = inds[ipass], reg[ipass]
        pick = fd.batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
        boxes = fd.rerec(fd.bbreg(boxes[pick], reg[pick]))
        inds = inds[pick]

    # stage 3: O-net: probabilities, box refinement, five key points
    points = torch.zeros(0, 5, 2, device=boxes.device)
    if len(boxes):
        crops, boxes, inds = crops_of(boxes, inds, 48)
    if len(boxes):
        reg, pts, probs = fd.fixed_batch_process(crops, onet)
        score = probs[:, 1]
        ipass = score > thresholds[2]
        boxes = torch.cat((boxes[ipass, :4], score[ipass].unsqueeze(1)), dim=1)
        inds, reg, pts = inds[ipass], reg[ipass], pts[ipass]
        w_i = (boxes[:, 2] - boxes[:, 0] + 1).unsqueeze(1)
        h_i = (boxes[:, 3] - boxes[:, 1] + 1).unsqueeze(1)
        points = torch.stack((w_i * pts[:, :5] + boxes[:, :1] - 1, h_i * pts[:, 5:10] + boxes[:, 1:2] - 1), dim=2)
        boxes = fd.bbreg(boxes, reg)
        pick = fd.batched_nms_numpy(boxes[:, :4], boxes[:, 4], inds, 0.7, "Min")
        boxes, inds, points = boxes[pick], inds[pick], points[pick]
    return boxes, points, inds


def _frame_tensor(frames: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """(B, H, W, 3) uint8 frames (array or CPU tensor, e.g. a pinned staging buffer: the upload overlaps the
    host) as a float (B, 3, H, W) view with channels-last strides on `device`."""
    if isinstance(frames, torch.Tensor):
        return frames.to(device, non_blocking=True).permute(0, 3, 1, 2).float()
    return torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float()


def run_mtcnn(frames: np.ndarray | torch.Tensor, min_face_size: int, pnet: torch.nn.Module, rnet: torch.nn.Module,
              onet: torch.nn.Module, thresholds: Sequence[float], factor: float,
              device: torch.device, pnet_dtype: torch.dtype = torch.float32,
              sampled_crops: bool = False) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """MTCNN on a batch of same-sized RGB frames (B, H, W, 3) uint8 (array or CPU tensor), the algorithm of facenet-pytorch's
    ``detect_face``: per frame, boxes (N, 5: x0, y0, x1, y1, probability) and key points (N, 5, 2).
    sampled_crops: on CPU too, the R-/O-net crops that CUDA uses (:func:`_face_crops` without arrays; tests)."""
    images = _frame_tensor(frames, device)
    # CPU: the pyramid is built with OpenCV from float32 HWC views of the frames
    previous = list(images.permute(0, 2, 3, 1).numpy()) if device.type == "cpu" else None
    batch, _, h, w = images.shape
    frame_arrays = None if sampled_crops else previous  # CPU: crops resampled by OpenCV
    scales = pyramid_scales(h, w, min_face_size, factor)
    if not scales:  # frames smaller than the smallest face searched for
        return [np.zeros((0, 5), np.float32)] * batch, [np.zeros((0, 5, 2), np.float32)] * batch
    boxes, inds = _pnet_stage(images, previous, scales, pnet, thresholds[0], device, pnet_dtype)
    boxes, points, inds = _refine_stages(
        boxes, inds, lambda b, i, size: _face_crops(images, i.cpu().numpy(), b, size, w, h, frame_arrays),
        rnet, onet, thresholds)
    boxes_np, points_np, inds_np = boxes.cpu().numpy(), points.cpu().numpy(), inds.cpu().numpy()
    return ([boxes_np[inds_np == b] for b in range(batch)], [points_np[inds_np == b] for b in range(batch)])


# ---------------------------------------------------------------------------------------------
# detector


class FaceDetector:
    """MTCNN over batches of same-sized RGB frames.

    min_face_size: smallest face (px) searched for on a full frame (P-net's 12 px window at scale 12 / min_face_size).
    thresholds: P-, R-, O-net score thresholds. factor: image pyramid scale step.
    min_score: drop final detections below this probability.
    fast: :func:`run_mtcnn` (default) or facenet-pytorch's own ``detect_face`` (the reference).
    precision: P-net's arithmetic in the fast path (the R- and O-nets that decide stay fp32): "fp32" (default),
    "bf16", "fp16", or "auto" (bf16 on CPUs with native bf16, fp16 on CUDA). Reduced precision measured no
    faster: on a 2-core CPU P-net in strips runs fp32 as fast as bf16, on an H100 fp16 gained nothing.
    """

    def __init__(
        self, min_face_size: int = 12, thresholds: Sequence[float] = (0.6, 0.7, 0.7), factor: float = 0.709,
        device: str | torch.device = "cpu", min_score: float = 0.0, fast: bool = True, precision: str = "fp32",
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
        # On CPU one frame per MTCNN call: batching 1080p frames measured ~25 % slower per frame there
        # (python -m jasr_video.bench: 924 vs 722 ms per frame); GPUs gain from the batch.
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

    @torch.inference_mode()
    def detect_regions(self, frame: np.ndarray, boxes: np.ndarray, expand: float = 2.0, min_side: int = 48,
                       min_face_ratio: float = 0.5, nms_iou: float = 0.4) -> list[Detection]:
        """MTCNN on square regions of one frame around `boxes` (N, 4), e.g. the tracker's predicted face boxes.

        Each region is a square of at least ``expand`` x the box's longer side: the next size on a fixed ladder
        (``min_side`` x sqrt(2)^k, multiples of 16), centred on the box and shifted to lie inside the frame.
        Within a region MTCNN looks for faces down to ``min_face_ratio`` x side / expand (never below the
        detector's min_face_size), which skips the costly fine pyramid levels; around a box smaller than twice
        min_face_size, down to ``min_face_ratio`` x its size (at least 6 px: the region is upsampled): a region is scaled so that
        this smallest face is P-net's 12 px window (48 px for the defaults), so regions of every size go
        through P-net together in one batch, and R- and O-net judge all their candidates as one frame's, on
        crops cut from the frame (so a face partly inside a region is seen whole). With ``fast=False``
        facenet's own code runs on each region, zero-padded at its edges: faces cut by a region edge that is
        not a frame edge are dropped there. Duplicates from overlapping regions are removed by NMS; sorted by
        score.
        """
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        h, w = frame.shape[:2]
        base = int(self.mtcnn.min_face_size)
        regions: list[tuple[int, int, int, int]] = []  # (x0, y0, side, smallest face searched for)
        for x0, y0, x1, y1 in boxes[np.all(np.isfinite(boxes), axis=1)]:
            need = max(x1 - x0, y1 - y0, 1.0) * expand
            k = max(0, int(np.ceil(2 * np.log2(need / min_side) - 1e-9)))
            side = int(min(-(-min_side * 2 ** (k / 2) // 16) * 16, h, w))
            rx = int(round(np.clip((x0 + x1 - side) / 2, 0, w - side)))
            ry = int(round(np.clip((y0 + y1 - side) / 2, 0, h - side)))
            box = max(x1 - x0, y1 - y0, 1.0)
            # faces tracked below 2x min_face_size: the region is zoomed so P-net sees down to half their size
            smallest = max(6, int(box * min_face_ratio)) if box < 2 * base else max(base, int(side / expand * min_face_ratio))
            region = (rx, ry, side, smallest)
            if region not in regions:
                regions.append(region)
        if self.fast:
            scaled = [round(side * 12 / min_face) for _, _, side, min_face in regions]
            found = [d for size in sorted(set(scaled))  # one batch per scaled size (one for the defaults)
                     for d in self._regions_fast(frame, [r for r, s in zip(regions, scaled) if s == size], size)]
        else:  # facenet's own code on each region (crops outside a region are zero-padded there)
            found = []
            for rx, ry, side, min_face in regions:
                for d in self.detect([frame[ry:ry + side, rx:rx + side]], min_face_size=min_face)[0]:
                    x0, y0, x1, y1 = d.box  # a face cut by a region edge that is not a frame edge: a neighbour's
                    if not ((x0 < 1 and rx > 0) or (y0 < 1 and ry > 0) or (x1 > side - 1 and rx + side < w)
                            or (y1 > side - 1 and ry + side < h)):
                        found.append(Detection(d.box + np.tile([rx, ry], 2).astype(np.float32), d.score,
                                               d.points + np.array([rx, ry], np.float32)))
        found = [d for d in found if d.score >= self.min_score]
        if len(found) > 1:
            keep = nms(torch.from_numpy(np.stack([d.box for d in found])), torch.tensor([d.score for d in found]),
                       nms_iou)
            found = [found[int(i)] for i in keep]
        found.sort(key=lambda d: -d.score)
        return found

    def _regions_fast(self, frame: np.ndarray, regions: list[tuple[int, int, int, int]],
                      scaled: int) -> list[Detection]:
        """detect_regions' MTCNN for regions (x0, y0, side, min face) that share one `scaled` size: P-net over
        the regions resized to `scaled` px as one batch (faces from 12 px there up); its candidates, mapped to
        frame pixels, then go through R- and O-net as those of one full-frame image (crops cut from the frame,
        NMS across regions)."""
        import cv2

        m = self.mtcnn
        h, w = frame.shape[:2]
        scales = pyramid_scales(scaled, scaled, 12, m.factor)
        if not scales:
            return []
        arrays = [cv2.resize(frame[ry:ry + side, rx:rx + side].astype(np.float32), (scaled, scaled),
                             interpolation=cv2.INTER_AREA) for rx, ry, side, _ in regions]
        images = torch.from_numpy(np.stack(arrays)).to(self.device).permute(0, 3, 1, 2)
        previous = arrays if self.device.type == "cpu" else None
        boxes, inds = _pnet_stage(images, previous, scales, m.pnet, m.thresholds[0], self.device, self._pnet_dtype)
        if not len(boxes):
            return []
        geometry = torch.tensor([(rx, ry, side / scaled) for rx, ry, side, _ in regions], dtype=torch.float32,
                                device=boxes.device)[inds]  # region's scaled px -> frame px
        boxes = torch.cat((boxes[:, :4] * geometry[:, 2:3] + geometry[:, :2].repeat(1, 2), boxes[:, 4:]), dim=1)
        if self.sampled_crops:  # CUDA: crops sampled from the frame on the device
            full = _frame_tensor(frame[None], self.device)
            crop: CropFn = lambda b, i, size: _face_crops(full, np.zeros(len(b), np.int64), b, size, w, h)
        else:  # crops cut by OpenCV from the uint8 frame itself
            crop = lambda b, i, size: _face_crops(images, np.zeros(len(b), np.int64), b, size, w, h, [frame])
        boxes, points, _ = _refine_stages(boxes, torch.zeros_like(inds), crop, m.rnet, m.onet, m.thresholds)
        return [Detection(box[:4].astype(np.float32), float(box[4]), pts.astype(np.float32))
                for box, pts in zip(boxes.cpu().numpy(), points.cpu().numpy())]
