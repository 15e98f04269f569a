"""Batched JASRNet enhancement of face crops gathered across frames, order kept."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .lanes import cpu_lanes, run_all, split
from .model import DEFAULT_WEIGHTS, FaceEnhancer, TrainConfig
from .model.backends import make_enhancer

# faces per part when a batch is cut for the lanes: parts small enough to keep every lane busy while another runs
# detection, large enough that each forward is still a batch
LANE_PART_FACES = 4


@dataclass
class EnhancedFaces:
    """Model outputs for N faces, in the order they were given."""

    sr: np.ndarray | None  # (N, 128, 128, 3) uint8 RGB super-resolved faces; None: landmarks only (sr=False)
    landmarks: np.ndarray  # (N, 68, 2) float32 in 128x128 crop pixels
    confidence: np.ndarray  # (N, 68) float32 in [0, 1]

    def __len__(self) -> int:
        return len(self.landmarks)

    def split(self, sizes: Sequence[int], with_sr: Sequence[bool]) -> list["EnhancedFaces"]:
        """Consecutive parts of ``sizes[i]`` faces (one per request of a shared batch); part i keeps its SR
        faces only where ``with_sr[i]``."""
        parts, k = [], 0
        for n, keep in zip(sizes, with_sr):
            sr = self.sr[k:k + n] if self.sr is not None and keep else None
            parts.append(EnhancedFaces(sr, self.landmarks[k:k + n], self.confidence[k:k + n]))
            k += n
        return parts


class BatchEnhancer:
    """Runs crops (N, 3, S, S) in [0, 1] through a FaceEnhancer in chunks of ``batch_size``.

    Crops are the x8 model's 16x16 LR faces as the pipeline cuts them (:func:`jasr_video.route.cut_face`); larger
    crops are brought down to 16x16 (anti-aliased bicubic, the training protocol) on the model's device. Then up
    x8 to 128x128 (bicubic), inside ``FaceEnhancer.enhance``. ``upright``: the
    enhancer's tilt threshold for the landmarks' second pass (:mod:`jasr_video.model.upright`; None: as it is).
    ``lanes``: on CPU with torch, a batch is cut into this many parts run side by side (:mod:`jasr_video.lanes`;
    0: automatic, 1: one call over the whole batch).
    """

    def __init__(self, weights: str | Path = DEFAULT_WEIGHTS, device: str = "auto", precision: str = "fp32",
                 batch_size: int = 32, enhancer: FaceEnhancer | None = None, backend: str = "torch",
                 upright: float | None = None, lanes: int = 0) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.enhancer = enhancer or make_enhancer(weights, device=device, precision=precision, backend=backend)
        if upright is not None:  # else the enhancer's own (FaceEnhancer.upright)
            self.enhancer.upright = upright
        self.batch_size = batch_size
        self.faces_done = 0
        # torch only: ONNX Runtime spreads each call over its own threads
        self.lanes = cpu_lanes(self.device, lanes) if getattr(self.enhancer, "backend", "torch") == "torch" else None

    @property
    def device(self) -> torch.device:
        return self.enhancer.device

    @property
    def crop_margin(self) -> float:
        meta = self.enhancer.checkpoint.get("meta", {}) if isinstance(self.enhancer.checkpoint, dict) else {}
        return float(meta.get("train_config", {}).get("crop_margin", TrainConfig.crop_margin))

    def __call__(self, crops: torch.Tensor, prepared: bool = False, sr: bool = True) -> EnhancedFaces:
        """``prepared``: the crops already are the network's 128x128 inputs (:mod:`jasr_video.route`).
        ``sr=False``: landmarks only (``EnhancedFaces.sr`` None); JASRNet skips its SR branch."""
        n = int(crops.shape[0])
        if n == 0:
            return EnhancedFaces(np.zeros((0, 128, 128, 3), np.uint8) if sr else None,
                                 np.zeros((0, 68, 2), np.float32), np.zeros((0, 68), np.float32))
        parts = self.parts(n)
        done = run_all(self.lanes, lambda part: self.run_inputs(crops[part], sr, prepared), parts)
        self.faces_done += n
        return EnhancedFaces(np.concatenate([d[0] for d in done]) if sr else None,
                             np.concatenate([d[1] for d in done]).astype(np.float32),
                             np.concatenate([d[2] for d in done]).astype(np.float32))

    def parts(self, n: int) -> list[slice]:
        """`n` faces cut for the lanes: parts of about :data:`LANE_PART_FACES`, at least one per lane (one part
        without lanes)."""
        if self.lanes is None:
            return split(n, 1)
        return split(n, max(self.lanes.count, -(-n // LANE_PART_FACES)))

    def run_inputs(self, crops: torch.Tensor, sr: bool = True, prepared: bool = True
                   ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """`crops` through the network in chunks of ``batch_size``, in the calling thread: (SR faces (N, 128, 128, 3)
        uint8 or None, landmarks (N, 68, 2), confidence (N, 68)). ``prepared`` and ``sr`` as for ``__call__``."""
        images, lm, conf = [], [], []
        for start in range(0, int(crops.shape[0]), self.batch_size):
            chunk = crops[start:start + self.batch_size]
            if self.device.type == "cuda":
                chunk = chunk.pin_memory()
            pred = self.enhancer.enhance_inputs(chunk, sr) if prepared else self.enhancer.enhance(chunk, sr)
            if sr:
                images.append((pred.sr.permute(0, 2, 3, 1) * 255.0).round().to(torch.uint8).cpu().numpy())
            lm.append(pred.landmarks.float().cpu().numpy())
            conf.append(pred.confidence.float().cpu().numpy())
        return np.concatenate(images) if sr else None, np.concatenate(lm), np.concatenate(conf)
