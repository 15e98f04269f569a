"""One face per track from several of its frames: keep the best K, register them, fuse them.

    from jasr_video.fusion import FrameKeeper, TrackFuser

    keeper = FrameKeeper(k=8)                          # per track, the K best frames (bounded: K per track)
    keeper.offer(track_id, quality, frame_index, lambda: KeptFrame(...))   # the frame is built only if kept
    fused = TrackFuser(enhancer, method="sr-trim").fuse(keeper.frames(track_id))
    fused.sr, fused.landmarks, fused.frames, fused.note

Each kept frame holds its face's LR image (what JASRNet is fed, before the bicubic upsampling), its 68
landmarks in its own 128x128 crop pixels, and its quality (:func:`jasr_video.gallery.quality`).

Registration (estimated, never given): the frame with the highest quality is the reference; every other frame
is mapped onto it by a similarity transform fitted to its 68 JASRNet landmarks (least median of squares), then
refined by ECC (``cv2.findTransformECC``, affine) on the bicubic-upsampled LR faces inside the reference's face
region. A frame is rejected, not blended, when its landmarks do not fit a similarity (a face turned away),
when ECC fails or moves the face far from the landmark fit, or when, once warped, it differs from the median
of the warped frames far more than the others do, or by more than ``ERROR_MAX`` (a misregistered or unrelated
face).

Methods (:data:`METHODS`):

- ``sr-median`` / ``sr-trim``: JASRNet on each frame, the SR faces warped onto the reference and averaged
  per pixel (median / mean without the lowest and highest quarter); landmarks: per-point median of the warped
  landmarks;
- ``lr-median`` / ``lr-trim``: the LR faces, bicubic-upsampled to the network's 128x128 input grid, warped
  onto the reference and averaged there (a finer grid than the LR one: the frames' sub-pixel offsets fill it),
  then one JASRNet pass on the fused input; landmarks from that pass.

With one usable frame (K = 1, or every other frame rejected) the result is that frame's own SR face and
landmarks, exactly. Benchmark: ``python -m jasr_video.tools.fusionbench`` (docs/benchmarks.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import cv2
import heapq
import numpy as np
import torch

from .model.config import HR_SIZE
from .model.data import upsample
from .model.landmarks import LEFT_EYE_OUTER, RIGHT_EYE_OUTER
from .model.routing import Route

METHODS = ("lr-median", "lr-trim", "sr-median", "sr-trim")
DEFAULT_METHOD = "sr-trim"
DEFAULT_KEEP = 8
MIN_FRAMES = 2  # fewer usable frames: the best single frame is kept (and the note says why)
MAX_LANDMARK_RESIDUAL = 0.08  # RMS landmark misfit of the similarity, x the inter-ocular distance
MAX_ERROR_RATIO = 3.0  # a frame's error against the median of the warped frames, x the median of those errors
ERROR_FLOOR = 6.0 / 255  # errors below this (RMS, [0, 1] units) are never grounds for rejection
ERROR_MAX = 12.0 / 255  # errors above this always are
MAX_REFINE_PX = 4.0  # ECC may move the face's corners this far (128x128 px) from the landmark fit, no more


@dataclass
class KeptFrame:
    """One frame of a track as fusion needs it."""

    frame: int
    quality: float
    lr: torch.Tensor  # (3, m, m) float in [0, 1]: the LR face fed to JASRNet (before bicubic to 128)
    landmarks: np.ndarray  # (68, 2) in this frame's 128x128 crop pixels
    route: Route
    crop: Any = None  # the frame's CropGeometry (jasr_video.crop), for the caller
    native: np.ndarray | None = None  # the 128x128 native crop (uint8 RGB) of a route that keeps it, else None


class FrameKeeper:
    """Per track, the ``k`` frames of highest quality seen so far (a min-heap each: memory is k frames per track).

    ``offer`` builds the frame (``make()``) only when it is kept, so the LR crop of a frame that would be dropped
    at once is never cut."""

    def __init__(self, k: int = DEFAULT_KEEP) -> None:
        if k < 1:
            raise ValueError(f"keep must be >= 1 frame, not {k}")
        self.k = k
        self._heaps: dict[int, list[tuple[float, int, KeptFrame]]] = {}

    def offer(self, track_id: int, quality: float, frame: int, make: Callable[[], KeptFrame]) -> bool:
        heap = self._heaps.setdefault(track_id, [])
        if len(heap) >= self.k and quality <= heap[0][0]:
            return False
        item = (float(quality), -int(frame), make())  # ties: the earlier frame is kept
        if len(heap) < self.k:
            heapq.heappush(heap, item)
        else:
            heapq.heapreplace(heap, item)
        return True

    def frames(self, track_id: int) -> list[KeptFrame]:
        """The kept frames of a track, best first."""
        return [f for _, _, f in sorted(self._heaps.get(track_id, ()), key=lambda t: (-t[0], -t[1]))]

    def __len__(self) -> int:
        return sum(len(h) for h in self._heaps.values())


@dataclass
class Registration:
    """Frame -> reference in 128x128 crop pixels: ``matrix`` (2x3, forward), or None when it was rejected."""

    matrix: np.ndarray | None
    landmark_residual: float
    error: float = 0.0
    reason: str = ""


@dataclass
class FusedFace:
    """A track's fused face: SR (128x128 RGB uint8) and landmarks (68, 2) in the reference frame's crop pixels."""

    sr: np.ndarray = field(repr=False)
    landmarks: np.ndarray = field(repr=False)
    confidence: np.ndarray = field(repr=False)
    reference: int  # frame index of the reference (the best frame)
    frames: list[int]  # frame indices fused (the reference first)
    rejected: list[int]
    method: str  # a METHODS name, or "single frame"
    note: str = ""  # why a single frame, or ""


def inter_ocular(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(landmarks[LEFT_EYE_OUTER] - landmarks[RIGHT_EYE_OUTER]))


def similarity(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, float]:
    """Similarity (2x3) taking landmarks ``src`` onto ``dst`` (least median of squares) and its RMS misfit
    over the inter-ocular distance of ``dst``."""
    matrix, _ = cv2.estimateAffinePartial2D(src.astype(np.float64), dst.astype(np.float64), method=cv2.LMEDS)
    if matrix is None:
        return np.array([[1.0, 0, 0], [0, 1.0, 0]]), float("inf")
    moved = src @ matrix[:, :2].T + matrix[:, 2]
    rms = float(np.sqrt(np.mean(np.sum((moved - dst) ** 2, axis=1))))
    return matrix, rms / max(inter_ocular(dst), 1e-6)


def face_mask(landmarks: np.ndarray, size: int = HR_SIZE, grow: int = 6) -> np.ndarray:
    """uint8 mask of the landmarks' convex hull, grown by ``grow`` px (the face, without the background)."""
    mask = np.zeros((size, size), np.uint8)
    hull = cv2.convexHull(np.round(landmarks).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 255)
    if grow:
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    return mask


def _grey(image: np.ndarray) -> np.ndarray:
    """(128, 128, 3) float [0, 1] -> float32 luma."""
    return np.ascontiguousarray(image @ np.array([0.299, 0.587, 0.114], np.float32))


def ecc_refine(reference: np.ndarray, image: np.ndarray, matrix: np.ndarray, mask: np.ndarray,
               iterations: int = 60) -> np.ndarray | None:
    """``matrix`` (image -> reference, 2x3) refined by ECC (affine) on the two grey images inside ``mask``;
    None when ECC does not converge."""
    warp = cv2.invertAffineTransform(matrix).astype(np.float32)  # ECC's warp maps reference pixels into `image`
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, 1e-5)
    try:
        _, warp = cv2.findTransformECC(reference, image, warp, cv2.MOTION_AFFINE, criteria, mask, 5)
    except cv2.error:
        return None
    return cv2.invertAffineTransform(warp.astype(np.float64))


def corner_shift(a: np.ndarray, b: np.ndarray, size: int = HR_SIZE) -> float:
    """Largest distance between where two 2x3 maps send the corners of the crop's central half."""
    q = np.array([[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]) * size
    return float(np.linalg.norm(q @ a[:, :2].T + a[:, 2] - (q @ b[:, :2].T + b[:, 2]), axis=1).max())


def warp(image: np.ndarray, matrix: np.ndarray, size: int = HR_SIZE) -> np.ndarray:
    """An image (H, W, C) in frame-crop pixels moved onto the reference by the forward 2x3 ``matrix``."""
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def robust_mean(stack: np.ndarray, average: str) -> np.ndarray:
    """Per-pixel median, or mean without the lowest and highest quarter ("trim"), over axis 0."""
    if average == "median" or len(stack) < 4:
        return np.median(stack, axis=0)
    cut = len(stack) // 4
    ordered = np.sort(stack, axis=0)
    return ordered[cut:len(stack) - cut].mean(axis=0)


def register(inputs: Sequence[np.ndarray], landmarks: Sequence[np.ndarray], refine: bool = True
             ) -> list[Registration]:
    """Register frames 1.. onto frame 0 (the reference). inputs[i]: (128, 128, 3) float32 network input (the LR
    face bicubic-upsampled); landmarks[i]: its 68 landmarks. Rejected frames get ``matrix`` None and a reason."""
    ref_lm = landmarks[0]
    mask = face_mask(ref_lm)
    ref_grey = _grey(inputs[0])
    regs = [Registration(np.array([[1.0, 0, 0], [0, 1.0, 0]]), 0.0)]
    for image, lm in zip(inputs[1:], landmarks[1:]):
        matrix, residual = similarity(lm, ref_lm)
        if residual > MAX_LANDMARK_RESIDUAL:
            regs.append(Registration(None, residual, reason="landmarks do not fit a similarity"))
            continue
        if refine:
            refined = ecc_refine(ref_grey, _grey(image), matrix, mask)
            if refined is None:
                regs.append(Registration(None, residual, reason="ECC did not converge"))
                continue
            if corner_shift(refined, matrix) > MAX_REFINE_PX:
                regs.append(Registration(None, residual, reason="ECC and the landmarks disagree"))
                continue
            matrix = refined
        regs.append(Registration(matrix, residual))
    # photometric check: each frame against the median of the warped frames, inside the face
    index = [i for i, r in enumerate(regs) if r.matrix is not None]
    if len(index) >= 2:
        warped = np.stack([warp(inputs[i], regs[i].matrix) for i in index])
        median = np.median(warped, axis=0)
        inside = mask > 0
        errors = [float(np.sqrt(np.mean((w - median)[inside] ** 2))) for w in warped]
        typical = float(np.median(errors))
        for i, e in zip(index, errors):
            regs[i].error = e
            if i and (e > ERROR_MAX or e > max(MAX_ERROR_RATIO * typical, ERROR_FLOOR)):
                regs[i].matrix, regs[i].reason = None, "differs from the other frames once registered"
    return regs


class TrackFuser:
    """Fuses a track's kept frames into one face with ``enhancer`` (a :class:`~jasr_video.route.RoutedEnhancer`
    or a plain x8 :class:`~jasr_video.enhance.BatchEnhancer`); ``method``: one of :data:`METHODS`."""

    def __init__(self, enhancer: Any, method: str = DEFAULT_METHOD, min_frames: int = MIN_FRAMES,
                 refine: bool = True) -> None:
        if method not in METHODS:
            raise ValueError(f"fusion method must be one of {', '.join(METHODS)}, not {method!r}")
        self.enhancer, self.method, self.min_frames, self.refine = enhancer, method, max(1, min_frames), refine

    def _run(self, inputs: torch.Tensor, routes: list[Route], sr: bool = True) -> Any:
        from .route import RoutedCrops

        if hasattr(self.enhancer, "route"):
            return self.enhancer(RoutedCrops(inputs, routes, [None] * len(routes)), sr=sr)
        return self.enhancer(inputs, prepared=True, sr=sr)

    def fuse(self, frames: Sequence[KeptFrame], single: Any = None) -> FusedFace:
        """frames: best first (:meth:`FrameKeeper.frames`). ``single``: the frames' per-frame JASRNet outputs
        (an EnhancedFaces of the same order, with SR faces) when the caller has them; else they are computed
        when needed. Only frames served by the reference's model (x8, x4 or x2) are fused, each brought from its own
        LR side to the 128x128 input grid; the others are listed as rejected."""
        if not frames:
            raise ValueError("fusion needs at least one frame")
        ref = frames[0]
        pick = [i for i, f in enumerate(frames) if f.route.sr_factor == ref.route.sr_factor and not f.route.keep_native]
        pick = pick if pick and pick[0] == 0 else [0]
        usable = [frames[i] for i in pick]
        skipped = [f.frame for i, f in enumerate(frames) if i not in pick]
        if single is not None and len(pick) < len(frames):
            single = type(single)(None if single.sr is None else single.sr[pick], single.landmarks[pick],
                                  single.confidence[pick])
        inputs = torch.cat([upsample(f.lr.float()[None], HR_SIZE) for f in usable])  # LR sides may differ (x4 / x2)
        routes = [f.route for f in usable]
        needs_all = self.method.startswith("sr") or single is not None
        if single is None:
            single = self._run(inputs if needs_all else inputs[:1], routes if needs_all else routes[:1],
                               sr=True) if needs_all or len(usable) < self.min_frames else None

        def one(note: str, rejected: list[int]) -> FusedFace:
            out = single if single is not None else self._run(inputs[:1], routes[:1])
            return FusedFace(out.sr[0], out.landmarks[0], out.confidence[0], ref.frame, [ref.frame], rejected,
                             "single frame", note)

        if ref.route.keep_native:
            return one("face large enough to keep its native pixels", skipped)
        if len(usable) < self.min_frames:
            return one(f"{len(usable)} usable frame{'s' * (len(usable) != 1)}, fusion needs {self.min_frames}",
                       skipped)
        images = [inputs[i].permute(1, 2, 0).numpy().astype(np.float32) for i in range(len(usable))]
        regs = register(images, [f.landmarks for f in usable], self.refine)
        kept = [i for i, r in enumerate(regs) if r.matrix is not None]
        rejected = skipped + [usable[i].frame for i, r in enumerate(regs) if r.matrix is None]
        if len(kept) < self.min_frames:
            return one(f"{len(kept)} frame{'s' * (len(kept) != 1)} left after registration, fusion needs "
                       f"{self.min_frames}", rejected)
        average = "median" if self.method.endswith("median") else "trim"
        if self.method.startswith("sr"):
            faces = np.stack([warp(single.sr[i].astype(np.float32), regs[i].matrix) for i in kept])
            sr = np.clip(np.round(robust_mean(faces, average)), 0, 255).astype(np.uint8)
            moved = np.stack([single.landmarks[i] @ regs[i].matrix[:, :2].T + regs[i].matrix[:, 2] for i in kept])
            landmarks = np.median(moved, axis=0).astype(np.float32)
            confidence = np.median(np.stack([single.confidence[i] for i in kept]), axis=0).astype(np.float32)
        else:
            fused = robust_mean(np.stack([warp(images[i], regs[i].matrix) for i in kept]), average)
            tensor = torch.from_numpy(np.ascontiguousarray(fused, np.float32)).permute(2, 0, 1)[None].clamp(0, 1)
            out = self._run(tensor, routes[:1])
            sr, landmarks, confidence = out.sr[0], out.landmarks[0], out.confidence[0]
        return FusedFace(sr, landmarks, confidence, ref.frame, [usable[i].frame for i in kept], rejected, self.method)
