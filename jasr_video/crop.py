"""Square face crops that match the training crop, and the way back from crop to frame coordinates.

Training crop (``jasr_video.model.data.crop_transform``): side = margin (1.4) x the longer side of the
68-landmark box, centred on the landmark-box centre, resized to 128x128. At run time there are no
landmarks yet, only an MTCNN box, so the landmark box is estimated from the MTCNN box with constants
measured on real faces (300-W / HELEN test faces, at full size and down-scaled to tiny faces) by

    python -m jasr_video.tools.calibrate --calibrate            (see :func:`jasr_video.tools.calibrate.calibrate`)

A face is cut from the frame once, at the size its model takes (:func:`crop_face`), with the resampling
the model was trained on: anti-aliased bicubic when shrinking (the LR protocol of every training recipe,
``model.data.degrade``), bicubic when enlarging. It is never enlarged and then shrunk again.
:class:`CropBatch` records which faces were below / above 16 px.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .model.config import HR_SIZE, LR_SIZE, TrainConfig

DEFAULT_MARGIN = TrainConfig.crop_margin  # the training crop's side / landmark-box side (1.4)

# Measured by `python -m jasr_video.tools.calibrate --calibrate --output docs/calibration.json` (MTCNN,
# min_face_size 12, on all 330 HELEN test faces of ../shared/data/faces68/test at scales 1, 1/4 and
# 1/8; 986 of 990 faces matched; medians). Per MTCNN-box size (longer side, px): landmark-box centre =
# MTCNN-box centre + (offset_x x box width, offset_y x box height); landmark-box longer side =
# size_ratio x MTCNN-box longer side. The relation drifts with size (MTCNN's integer box rounding
# weighs more on tiny faces), so values are interpolated linearly in log(size), clamped at the ends.
#               (mtcnn box px, offset_x, offset_y, size_ratio)
CALIBRATION = (
    (18.6, -0.0533, 0.0843, 0.8596),
    (38.6, -0.0202, 0.1094, 0.8297),
    (160.5, 0.0051, 0.1275, 0.7977),
)


def calibration_at(size: float) -> tuple[float, float, float]:
    """(offset_x, offset_y, size_ratio) for an MTCNN box of this size (px), interpolated in log size."""
    xs = np.log([row[0] for row in CALIBRATION])
    s = np.log(max(float(size), 1e-3))
    return tuple(float(np.interp(s, xs, [row[k] for row in CALIBRATION])) for k in (1, 2, 3))  # type: ignore[return-value]


def landmark_box_from_detection(box: Sequence[float]) -> tuple[float, float, float]:
    """MTCNN box (x0, y0, x1, y1) -> estimated landmark-box (centre x, centre y, longer side)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    ox, oy, ratio = calibration_at(max(w, h))
    return (x0 + x1) / 2 + ox * w, (y0 + y1) / 2 + oy * h, ratio * max(w, h)


@dataclass
class CropGeometry:
    """Square crop: centre (cx, cy) and side in frame pixels; maps 128-crop pixels <-> frame pixels."""

    cx: float
    cy: float
    side: float

    @classmethod
    def from_detection(cls, box: Sequence[float], margin: float = DEFAULT_MARGIN) -> "CropGeometry":
        cx, cy, lm_side = landmark_box_from_detection(box)
        return cls(cx, cy, max(margin * lm_side, 1.0))

    def detection_box(self, margin: float = DEFAULT_MARGIN) -> list[float]:
        """The square detection box whose crop (:meth:`from_detection`) is this one: the inverse of the
        calibration, for benchmarks and tests that place faces at known positions."""
        low, high = 1e-3, 4.0 * self.side / margin
        for _ in range(80):  # the crop side grows with the box side: bisection
            b = (low + high) / 2
            low, high = (b, high) if margin * calibration_at(b)[2] * b < self.side else (low, b)
        b = high
        while True:  # a crop not smaller than this one, float rounding included (the routes' bands compare sides)
            ox, oy, _ = calibration_at(b)
            x, y = self.cx - ox * b, self.cy - oy * b
            box = [x - b / 2, y - b / 2, x + b / 2, y + b / 2]
            if CropGeometry.from_detection(box, margin).side >= self.side:
                return box
            b *= 1 + 1e-12

    def matrix(self, size: int = HR_SIZE) -> np.ndarray:
        """2x3 affine frame -> size x size crop (same convention as training's crop_transform)."""
        zoom = size / self.side
        c = (size - 1) / 2
        return np.array([[zoom, 0.0, c - zoom * self.cx], [0.0, zoom, c - zoom * self.cy]])

    def to_frame(self, points: np.ndarray, size: int = HR_SIZE) -> np.ndarray:
        """Points in size x size crop pixels (..., 2) -> frame pixels."""
        zoom = size / self.side
        c = (size - 1) / 2
        return (np.asarray(points, np.float64) - c) / zoom + np.array([self.cx, self.cy])

    def to_crop(self, points: np.ndarray, size: int = HR_SIZE) -> np.ndarray:
        zoom = size / self.side
        c = (size - 1) / 2
        return (np.asarray(points, np.float64) - np.array([self.cx, self.cy])) * zoom + c


def crop_face(image: np.ndarray, geometry: CropGeometry, size: int = HR_SIZE) -> np.ndarray:
    """Square crop resampled to size x size (uint8 HxWx3) in one step; outside the frame the edge is replicated.

    One resampling from the frame's own pixels to the crop, with Pillow's bicubic filter over the crop's
    exact (sub-pixel) window: anti-aliased (the filter widened by the reduction factor) when the crop is
    smaller than its side in the frame, which is the training protocol's ``degrade`` (torch's anti-aliased
    bicubic follows Pillow's filter), and plain bicubic when it is larger. Same pixel convention as
    :meth:`CropGeometry.matrix`.
    """
    side = float(geometry.side)
    reach = 2.0 * max(side / size, 1.0) + 2.0  # the bicubic filter's half-width in frame pixels, and a margin
    x0, y0 = geometry.cx - side / 2, geometry.cy - side / 2  # the crop's outer edge, frame pixel-centre coords
    rx0, ry0 = int(np.floor(x0 - reach)), int(np.floor(y0 - reach))
    rx1, ry1 = int(np.ceil(x0 + side + reach)) + 1, int(np.ceil(y0 + side + reach)) + 1
    region = _region(image, rx0, ry0, rx1, ry1)
    box = (x0 + 0.5 - rx0, y0 + 0.5 - ry0, x0 + side + 0.5 - rx0, y0 + side + 0.5 - ry0)  # Pillow: pixel edges
    return np.asarray(Image.fromarray(region).resize((size, size), Image.BICUBIC, box=box))


def snap(geometry: CropGeometry, size: int) -> CropGeometry:
    """The crop to cut at size x size: where the face's crop side rounds to `size` (the crop would be at the
    frame's own scale), the window on whole frame pixels (centre moved by up to half a pixel, side = size),
    so the crop is the frame's own pixels, not an interpolation between them; otherwise ``geometry``."""
    if round(geometry.side) != size:
        return geometry
    half = size / 2  # the window's first edge moves to the nearest pixel edge (k - 0.5 in pixel-centre coordinates)
    return CropGeometry(float(np.round(geometry.cx - half + 0.5)) - 0.5 + half,
                        float(np.round(geometry.cy - half + 0.5)) - 0.5 + half, float(size))


def resize_face(face: np.ndarray, size: int) -> np.ndarray:
    """A square face crop (uint8) brought to size x size with :func:`crop_face`'s resampling (itself when it has
    that size already)."""
    side = face.shape[0]
    if side == size and face.shape[1] == size:
        return face
    return crop_face(face, CropGeometry((face.shape[1] - 1) / 2, (side - 1) / 2, float(side)), size)


def _region(image: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """image[y0:y1, x0:x1] as a new contiguous array, the frame's edge replicated where the window leaves it."""
    h, w = image.shape[:2]
    if x0 >= 0 and y0 >= 0 and x1 <= w and y1 <= h:
        return np.ascontiguousarray(image[y0:y1, x0:x1])
    rows = np.clip(np.arange(y0, y1), 0, h - 1)
    cols = np.clip(np.arange(x0, x1), 0, w - 1)
    return image[rows[:, None], cols]


@dataclass
class CropBatch:
    """Faces ready for FaceEnhancer.enhance: (N, 3, 128, 128) float in [0, 1] plus their geometry."""

    tensor: torch.Tensor
    geometries: list[CropGeometry]
    face_px: list[float]  # face size in frame pixels (longer side of the detection box)

    @property
    def below_16px(self) -> list[bool]:
        return [px < LR_SIZE for px in self.face_px]


def make_crops(image: np.ndarray, boxes: Sequence[Sequence[float]], margin: float = DEFAULT_MARGIN) -> CropBatch:
    """Crops for every box in one frame, as a float batch (the model brings them to 16x16 itself)."""
    geoms = [CropGeometry.from_detection(b, margin) for b in boxes]
    if not geoms:
        return CropBatch(torch.zeros(0, 3, HR_SIZE, HR_SIZE), [], [])
    crops = np.stack([crop_face(image, g) for g in geoms])
    tensor = torch.from_numpy(crops).permute(0, 3, 1, 2).float().div_(255.0)
    face_px = [float(max(b[2] - b[0], b[3] - b[1])) for b in boxes]
    return CropBatch(tensor, geoms, face_px)
