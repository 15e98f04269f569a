"""Batched JASRNet enhancement of face crops gathered across frames, order kept."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .model import DEFAULT_WEIGHTS, FaceEnhancer, TrainConfig
from .model.inference import make_enhancer


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

    Each crop is brought down to 16x16 (anti-aliased bicubic) and up x8 to 128x128 (bicubic) on the
    model's device, exactly the training protocol, inside ``FaceEnhancer.enhance``. ``upright``: the
    enhancer's tilt threshold for the landmarks' second pass (:mod:`jasr_video.model.upright`; None: as it is).
    """

    def __init__(self, weights: str | Path = DEFAULT_WEIGHTS, device: str = "auto", precision: str = "fp32",
                 batch_size: int = 32, enhancer: FaceEnhancer | None = None, backend: str = "torch",
                 upright: float | None = None) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.enhancer = enhancer or make_enhancer(weights, device=device, precision=precision, backend=backend)
        if upright is not None:  # else the enhancer's own (FaceEnhancer.upright)
            self.enhancer.upright = upright
        self.batch_size = batch_size
        self.faces_done = 0

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
        images, lm, conf = [], [], []
        for start in range(0, n, self.batch_size):
            chunk = crops[start:start + self.batch_size]
            if self.device.type == "cuda":
                chunk = chunk.pin_memory()
            pred = self.enhancer.enhance_inputs(chunk, sr) if prepared else self.enhancer.enhance(chunk, sr)
            if sr:
                images.append((pred.sr.permute(0, 2, 3, 1) * 255.0).round().to(torch.uint8).cpu().numpy())
            lm.append(pred.landmarks.float().cpu().numpy())
            conf.append(pred.confidence.float().cpu().numpy())
        self.faces_done += n
        return EnhancedFaces(np.concatenate(images) if sr else None, np.concatenate(lm).astype(np.float32),
                             np.concatenate(conf).astype(np.float32))
