"""Scale-aware enhancement: each face goes to the JASRNet (x8, x4 or x2) that uses its real pixels best.

Routes (sizes -> factor and input size) are defined in :mod:`jasr_video.model.routing`. Here:
:class:`RoutedCrops` (faces cut from frames at their route's size, turned into network inputs) and
:class:`RoutedEnhancer`, a :class:`~jasr_video.enhance.BatchEnhancer` over the x8 weights that also holds
the x4 / x2 weights, runs each factor's faces as one batch and returns outputs in the order given.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .crop import CropGeometry, crop_face, resize_face
from .enhance import BatchEnhancer, EnhancedFaces
from .lanes import run_all
from .model import DEFAULT_WEIGHTS, FaceEnhancer, resolve_weights
from .model.config import HR_SIZE, LR_SIZE
from .model.data import upsample
from .model.routing import DEFAULT_RANGES, MODES, Route, choose_route, lr_faces


def sibling_weights(weights: str | Path, factor: int) -> str | None:
    """The x4 / x2 weights that go with ``weights``: ``NAME-x4`` for a shipped name, ``PATH-x4.pt`` beside a
    checkpoint file; None when there are none."""
    path = Path(weights)
    candidate = str(path.with_name(f"{path.stem}-x{factor}{path.suffix}")) if path.suffix else f"{weights}-x{factor}"
    try:
        resolve_weights(candidate)
    except FileNotFoundError:
        return None
    return candidate


def _factor_and_range(enhancer: FaceEnhancer) -> tuple[int, tuple[int, int]]:
    meta = enhancer.checkpoint.get("meta", {}) if isinstance(enhancer.checkpoint, dict) else {}
    factor = int(meta.get("sr_factor", 8))
    low, high = meta.get("lr_size_range") or DEFAULT_RANGES.get(factor, (16, 16))
    return factor, (int(low), int(high))


@dataclass
class RoutedCrops:
    """N faces ready for a RoutedEnhancer: network inputs (N, 3, 128, 128) in [0, 1], each face's route,
    the native 128x128 crop (uint8 RGB) of the faces whose route keeps it, and each face's LR image
    (3, model_input_px, model_input_px) in [0, 1] before the bicubic upsampling (what a remote model is sent)."""

    inputs: torch.Tensor
    routes: list[Route]
    native: list[np.ndarray | None]
    lr: list[torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.routes)

    @classmethod
    def from_crops(cls, crops: Sequence[np.ndarray], routes: Sequence[Route]) -> "RoutedCrops":
        """crops[i]: square uint8 RGB face cut at routes[i].crop_px (see :func:`cut`). A crop cut at its model's
        input size is that model's LR face as it is; a native 128x128 crop is brought to the input size
        (anti-aliased bicubic)."""
        routes = list(routes)
        inputs = torch.empty(len(routes), 3, 128, 128)
        lr: list[torch.Tensor] = [torch.empty(0)] * len(routes)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, r in enumerate(routes):
            groups.setdefault((r.crop_px, r.model_input_px), []).append(i)
        for (_, model_px), index in groups.items():  # one interpolation per (crop size, input size)
            faces = torch.from_numpy(np.stack([crops[i] for i in index])).permute(0, 3, 1, 2).float().div_(255.0)
            small = lr_faces(faces, model_px)
            inputs[index] = upsample(small, HR_SIZE)
            for j, i in enumerate(index):
                lr[i] = small[j]
        native = [np.asarray(c) if r.keep_native else None for c, r in zip(crops, routes)]
        return cls(inputs, routes, native, lr)

    @classmethod
    def concat(cls, parts: Sequence["RoutedCrops"]) -> "RoutedCrops":
        lr = None if any(p.lr is None for p in parts) else [t for p in parts for t in p.lr]
        return cls(torch.cat([p.inputs for p in parts]), [r for p in parts for r in p.routes],
                   [n for p in parts for n in p.native], lr)

    @classmethod
    def from_lr(cls, groups: Sequence[tuple[int, torch.Tensor]]) -> "RoutedCrops":
        """Faces given as LR images, in groups of (factor, (n, 3, m, m) in [0, 1]); no native crops."""
        inputs = [upsample(small.float(), HR_SIZE) for _, small in groups]
        routes = [Route(factor, int(small.shape[-1]), int(small.shape[-1])) for factor, small in groups
                  for _ in range(len(small))]
        return cls(torch.cat(inputs) if inputs else torch.zeros(0, 3, HR_SIZE, HR_SIZE), routes, [None] * len(routes))


def cut(image: np.ndarray, geometry: CropGeometry, route: Route) -> np.ndarray:
    """The face's crop at its route's size, cut from the frame in one resampling (:func:`crop_face`): the x8
    model's 16x16 LR face, for x4 / x2 their input at about the face's native size (its real pixels)."""
    return crop_face(image, geometry, route.crop_px)


def cut_face(image: np.ndarray, box: Sequence[float], margin: float,
             route_of: Callable[[float], Route] | None = None) -> tuple[CropGeometry, Route | None, np.ndarray]:
    """A face as the pipeline feeds it to JASRNet: the square crop around `box` (`margin` x its landmark box),
    cut at its route's size when `route_of` (an enhancer's ``route``) is given, else at the x8 model's 16x16.
    Returns (geometry, route or None, uint8 RGB crop)."""
    geometry = CropGeometry.from_detection(box, margin)
    if route_of is None:
        return geometry, None, crop_face(image, geometry, LR_SIZE)
    route = route_of(geometry.side)
    return geometry, route, cut(image, geometry, route)


class RoutedEnhancer(BatchEnhancer):
    """A BatchEnhancer (x8 ``weights``) that routes faces by size to x8, x4 or x2 weights.

    ``sr_factor``: "auto" (route by size), or "8" / "4" / "2" to send every face to one model ("8" is the
    x8-only behaviour: every face at 16x16). x4 / x2 weights: ``weights_x4`` / ``weights_x2``, else the
    siblings of ``weights`` (``jasr-cpu-x4``, ``jasr-cpu-x2``); "auto" without them routes everything to x8
    (``routing`` says so). ``backend`` (torch or onnx) and ``upright`` apply to every factor. Called with a
    tensor of crops it is a plain x8 BatchEnhancer; called with :class:`RoutedCrops` it routes. ``route_counts`` counts faces per route name.
    """

    def __init__(self, weights: str | Path = DEFAULT_WEIGHTS, device: str = "auto", precision: str = "fp32",
                 batch_size: int = 32, sr_factor: str = "auto", weights_x4: str | None = None,
                 weights_x2: str | None = None, enhancer: FaceEnhancer | None = None, backend: str = "torch",
                 upright: float | None = None, lanes: int = 0) -> None:
        super().__init__(weights, device, precision, batch_size, enhancer, backend, upright, lanes)
        sr_factor = str(sr_factor)
        if sr_factor not in MODES:
            raise ValueError(f"sr_factor must be one of {', '.join(MODES)}, not {sr_factor!r}")
        self.mode = sr_factor
        base_factor, base_range = _factor_and_range(self.enhancer)
        self.by_factor: dict[int, BatchEnhancer] = {base_factor: self}
        self.ranges: dict[int, tuple[int, int]] = {base_factor: base_range}
        wanted = {"auto": (4, 2), "8": (), "4": (4,), "2": (2,)}[sr_factor]
        explicit = {4: weights_x4, 2: weights_x2}
        missing = []
        for factor in wanted:
            if factor in self.by_factor:
                continue
            name = explicit[factor] or sibling_weights(weights, factor)
            if name is None:
                missing.append(factor)
                continue
            other = BatchEnhancer(name, str(self.device), precision, batch_size, backend=backend, upright=upright,
                                  lanes=lanes)
            got, self.ranges[factor] = _factor_and_range(other.enhancer)
            if got != factor:
                raise ValueError(f"{name}: weights for x{got}, not x{factor}")
            self.by_factor[factor] = other
        if missing and sr_factor != "auto":
            raise ValueError(f"--sr-factor {sr_factor} needs x{missing[0]} weights: none found beside {weights} "
                             f"(name-x{missing[0]} / path-x{missing[0]}.pt)")
        self.routing = (f"auto: x8 only (no x4 / x2 weights for {weights})" if sr_factor == "auto" and missing
                        else sr_factor)
        self.route_counts: Counter[str] = Counter()

    @classmethod
    def from_config(cls, config: Any) -> "RoutedEnhancer":
        """The enhancer a :class:`~jasr_video.config.PipelineConfig` asks for (weights, device, precision, batch
        size, routing, backend, upright pass, lanes)."""
        return cls(config.weights, config.device, config.precision, config.batch_size,
                   sr_factor=str(config.sr_factor), backend=config.backend, upright=config.upright,
                   lanes=config.lanes)

    def route(self, side: float) -> Route:
        """The route of a face whose crop side is ``side`` frame pixels."""
        return choose_route(side, self.mode, tuple(self.by_factor), self.ranges)

    def __call__(self, crops: torch.Tensor | RoutedCrops, prepared: bool = False, sr: bool = True) -> EnhancedFaces:
        """Faces whose route keeps the native crop get a landmarks-only pass (the SR branch skipped), and so
        does every face with ``sr=False`` (``EnhancedFaces.sr`` None)."""
        if not isinstance(crops, RoutedCrops):
            return super().__call__(crops, prepared, sr)
        n = len(crops)
        images = np.empty((n, 128, 128, 3), np.uint8) if sr else None
        landmarks = np.empty((n, 68, 2), np.float32)
        confidence = np.empty((n, 68), np.float32)
        factors = np.array([r.sr_factor for r in crops.routes], int)
        wants_sr = np.array([sr and crops.native[i] is None for i in range(n)], bool)
        jobs = []  # (enhancer, face indices, SR wanted): one batch per factor and need of SR, cut for the lanes
        for factor in sorted(set(factors.tolist()), reverse=True):
            for need in (True, False):
                index = np.flatnonzero((factors == factor) & (wants_sr == need))
                for part in self.parts(len(index)):
                    jobs.append((self.by_factor[factor], index[part], need))
        outs = run_all(self.lanes, lambda job: job[0].run_inputs(crops.inputs[torch.from_numpy(job[1])], job[2]), jobs)
        for (enhancer, index, need), (faces, lm, conf) in zip(jobs, outs):
            landmarks[index], confidence[index] = lm, conf
            if need:
                images[index] = faces
            enhancer.faces_done += len(index)
        if images is not None:
            for i, image in enumerate(crops.native):
                if image is not None:
                    images[i] = image
        self.route_counts.update(r.name for r in crops.routes)
        return EnhancedFaces(images, landmarks, confidence)

    def enhance_faces(self, faces: Sequence[np.ndarray]) -> tuple[EnhancedFaces, list[Route]]:
        """Library entry point: square uint8 RGB face crops of any size (training-style crop, 1.4 x the
        landmark box), each routed by its side and brought to its route's size in one resampling, as the
        pipeline cuts faces from frames (:func:`~jasr_video.crop.resize_face`); landmarks in 128x128 crop
        pixels, order kept."""
        routes = [self.route(face.shape[0]) for face in faces]
        crops = [resize_face(face, r.crop_px) for face, r in zip(faces, routes)]
        if not crops:
            return super().__call__(torch.zeros(0, 3, 128, 128)), []
        return self(RoutedCrops.from_crops(crops, routes)), routes
