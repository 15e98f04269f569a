"""Scale-aware routing: which JASRNet (x8, x4 or x2) and which input size serve a face of a given size.

Every JASRNet takes the LR face bicubic-upsampled to 128x128, so the x8 / x4 / x2 weights share one
architecture and differ in the LR faces they were trained on (``jasr-train --sr-factor``); the shipped x4
and x2 weights add a small full-resolution detail head (``ModelConfig.detail_width``). A face
goes to the model whose training sizes hold its real pixels best; the bands below were chosen from
``python -m jasr_video.model.sizebench`` (table in docs/benchmarks.md). "Face size" is the side, in
source pixels, of the square training-style crop (1.4 x the landmark box), i.e. the LR side itself.

Per face (``side`` px), with ``auto`` routing:

- side < ``X4_FROM_PX``: x8 at 16 px (the face is cut at 16x16, as the x8 model was trained);
- ``X4_FROM_PX`` <= side < ``X2_FROM_PX``: x4 at its own side (clamped to the x4 training range);
- ``X2_FROM_PX`` <= side <= ``NATIVE_FROM_PX``: x2 at its own side (clamped to the x2 training range);
- side > ``NATIVE_FROM_PX``: landmarks from x2 at ``NATIVE_FROM_PX`` px; the face image is the native
  crop resized to 128x128 (its real pixels are kept, no model output replaces them).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch

from .config import HR_SIZE, LR_SIZE
from .data import degrade, upsample

X4_FROM_PX = 20.0
X2_FROM_PX = 44.0
NATIVE_FROM_PX = 96.0

# Training LR sides (min, max) of each factor's shipped weights; checkpoints carry their own
# (meta "lr_size_range"), these are the defaults for weights that do not.
DEFAULT_RANGES: dict[int, tuple[int, int]] = {8: (LR_SIZE, LR_SIZE), 4: (20, 46), 2: (42, 96)}
MODES = ("auto", "8", "4", "2")


@dataclass(frozen=True)
class Route:
    """Where one face goes: the model's factor, the LR side fed to it (then bicubic to 128), the side of
    the crop cut from the frame, and whether the face image is the native crop instead of the model's.
    The crop is cut at the model's input size (``crop_px == model_input_px``), except for a face that keeps
    its native crop: that one is cut at 128x128 and the model's input made from it."""

    sr_factor: int
    model_input_px: int
    crop_px: int
    keep_native: bool = False

    @property
    def name(self) -> str:
        return f"x{self.sr_factor}" + ("-native" if self.keep_native else "")


def _clamp(side: float, low: int, high: int) -> int:
    return int(min(max(round(side), low), high))


def choose_route(side: float, mode: str = "auto", factors: Sequence[int] = (8, 4, 2),
                 ranges: Mapping[int, tuple[int, int]] | None = None) -> Route:
    """The route of a face whose crop side is ``side`` px. ``mode``: "auto" or a forced factor "8" / "4" /
    "2". ``factors``: the factors with weights; "auto" without x4 and x2 weights routes everything to x8."""
    ranges = {**DEFAULT_RANGES, **(ranges or {})}
    if mode not in MODES:
        raise ValueError(f"sr_factor must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "auto" and not {4, 2} <= set(factors):
        mode = "8"
    if mode == "8":
        return Route(8, LR_SIZE, LR_SIZE)
    if mode != "auto":
        factor = int(mode)
        m = _clamp(side, *ranges[factor])
        return Route(factor, m, m)
    if side < X4_FROM_PX:
        return Route(8, LR_SIZE, LR_SIZE)
    if side < X2_FROM_PX:
        m = _clamp(side, *ranges[4])
        return Route(4, m, m)
    if side <= NATIVE_FROM_PX:
        m = _clamp(side, *ranges[2])
        return Route(2, m, m)
    return Route(2, _clamp(NATIVE_FROM_PX, *ranges[2]), HR_SIZE, keep_native=True)


def lr_faces(faces: torch.Tensor, model_input_px: int) -> torch.Tensor:
    """Square faces (B, 3, S, S) in [0, 1] brought to model_input_px (anti-aliased bicubic; a no-op when S
    already is that size): the LR faces of the training protocol."""
    faces = faces.float()
    return faces if faces.shape[-1] == model_input_px else degrade(faces, model_input_px)


def network_inputs(faces: torch.Tensor, model_input_px: int) -> torch.Tensor:
    """Square faces (B, 3, S, S) in [0, 1] -> the network input: :func:`lr_faces`, then bicubic up to
    128x128: the training protocol."""
    return upsample(lr_faces(faces, model_input_px), HR_SIZE)
