"""Face + 68-landmark data: 300-W `.pts` reading, HR crops with augmentation, and the LR protocol
(anti-aliased bicubic x1/8 to 16x16, then bicubic x8 back to 128x128)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .config import HR_SIZE, LR_SIZE
from .landmarks import FLIP_PERMUTATION

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def read_pts(path: str | Path) -> np.ndarray:
    """Read a 300-W `.pts` file -> (N, 2) float32 array of x, y."""
    lines = Path(path).read_text().split("\n")
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "{") + 1
        end = next(i for i, line in enumerate(lines) if line.strip() == "}")
        points = np.array([[float(v) for v in lines[i].split()] for i in range(start, end)], dtype=np.float32)
    except (StopIteration, ValueError) as error:
        raise ValueError(f"{path}: not a 300-W .pts file ({error})") from None
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"{path}: expected one 'x y' pair per line")
    return points


def find_pairs(folder: str | Path) -> list[tuple[Path, Path]]:
    """All (image, .pts) pairs in a folder (recursively), sorted by path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of image + .pts pairs")
    pairs = []
    for pts in sorted(folder.rglob("*.pts")):
        for suffix in IMAGE_SUFFIXES:
            image = pts.with_suffix(suffix)
            if image.exists():
                pairs.append((image, pts))
                break
    if not pairs:
        raise FileNotFoundError(f"{folder}: holds no image + .pts pairs")
    return pairs


def degrade(hr: torch.Tensor, lr_size: int = LR_SIZE) -> torch.Tensor:
    """HR faces (B, 3, S, S) in [0, 1] -> LR faces (B, 3, lr, lr): anti-aliased bicubic down-sampling."""
    return F.interpolate(hr, size=(lr_size, lr_size), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)


def upsample(lr: torch.Tensor, hr_size: int = HR_SIZE) -> torch.Tensor:
    """LR faces -> the network's input: bicubic interpolation up to (hr_size, hr_size), clamped to [0, 1]."""
    return F.interpolate(lr, size=(hr_size, hr_size), mode="bicubic", align_corners=False).clamp(0, 1)


def lr_inputs(hr: torch.Tensor, sizes: list[int] | np.ndarray, hr_size: int = HR_SIZE) -> torch.Tensor:
    """The network inputs of HR faces (B, 3, S, S), face i reduced to sizes[i] px (anti-aliased bicubic)
    and brought back up to (hr_size, hr_size) (bicubic): the LR protocol at any per-face LR size."""
    out = torch.empty(hr.shape[0], hr.shape[1], hr_size, hr_size, dtype=hr.dtype, device=hr.device)
    sizes = [int(s) for s in sizes]
    for size in sorted(set(sizes)):
        index = torch.tensor([i for i, s in enumerate(sizes) if s == size], device=hr.device)
        out[index] = upsample(degrade(hr[index], size), hr_size)
    return out


def crop_transform(
    points: np.ndarray, margin: float, size: int = HR_SIZE, scale: float = 1.0, angle: float = 0.0,
    shift: tuple[float, float] = (0.0, 0.0), flip: bool = False,
) -> np.ndarray:
    """2x3 affine matrix taking an image to a size x size crop about the landmark box.

    The crop side is `margin` x the landmark box's longer side (divided by `scale`), centred on the
    box, rotated by `angle` degrees, shifted by `shift` (fraction of the side), mirrored if `flip`.
    """
    low, high = points.min(axis=0), points.max(axis=0)
    centre = (low + high) / 2
    side = margin * float((high - low).max()) / scale
    zoom = size / side
    rad = math.radians(angle)
    cos, sin = math.cos(rad) * zoom, math.sin(rad) * zoom
    out_centre = np.array([(size - 1) / 2 + shift[0] * size, (size - 1) / 2 + shift[1] * size])
    matrix = np.array([[cos, sin, 0.0], [-sin, cos, 0.0]])
    matrix[:, 2] = out_centre - matrix[:, :2] @ centre
    if flip:
        matrix = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0]]) @ np.vstack([matrix, [0, 0, 1]])
    return matrix


def apply_affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


BORDERS = {"reflect101": cv2.BORDER_REFLECT101, "reflect": cv2.BORDER_REFLECT, "edge": cv2.BORDER_REPLICATE}
UPRIGHT_DEGREES = 15.0  # the "upright" share of rotation augmentation stays within this


@dataclass(frozen=True)
class View:
    """How a face is cropped: scale (> 1 zooms in), rotation in degrees, centre shift (fraction of the side), mirror."""

    scale: float = 1.0
    angle: float = 0.0
    shift: tuple[float, float] = (0.0, 0.0)
    flip: bool = False


@dataclass
class FaceSample:
    hr: np.ndarray  # (128, 128, 3) uint8 RGB
    landmarks: np.ndarray  # (68, 2) float32, HR pixel coordinates
    name: str


class FaceDataset(torch.utils.data.Dataset):
    """Faces from image + `.pts` pairs, cropped to 128x128 HR with optional random augmentation.

    Items are (hr float tensor (3, 128, 128) in [0, 1], landmarks (68, 2) in HR pixels, visibility (68,)):
    visibility is 1 for points inside the crop, 0 outside, times `landmark_weight` (e.g. < 1 for
    machine-made points), and weights each point's heatmap loss. `border`: how the crop is padded where it
    leaves the image ("reflect101", or "edge" for tight crops such as faces-utk: closest to the real
    surroundings, models/README.md).
    The LR input is made from the HR batch with `degrade` and `upsample`, on the training device.
    """

    def __init__(
        self, pairs: list[tuple[Path, Path]], margin: float = 1.4, augment: bool = False,
        aug_scale: float = 0.1, aug_rotation: float = 15.0, aug_shift: float = 0.05, aug_flip: bool = True,
        seed: int = 0, aug_rotation_upright: float = 0.0, border: str = "reflect101", landmark_weight: float = 1.0,
        views: list[View] | None = None,
    ) -> None:
        if border not in BORDERS:
            raise ValueError(f"border must be one of {', '.join(BORDERS)}, not {border!r}")
        if views is not None and len(views) != len(pairs):
            raise ValueError("views must give one view per face")
        self.pairs = pairs
        self.margin = margin
        self.augment = augment
        self.aug = (aug_scale, aug_rotation, aug_shift, aug_flip)
        self.aug_rotation_upright = aug_rotation_upright
        self.border = border
        self.landmark_weight = landmark_weight
        self.views = views
        self.rng = np.random.default_rng(seed)
        self.images: list[np.ndarray] = []
        self.points: list[np.ndarray] = []
        for image_path, pts_path in pairs:
            image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f"{image_path}: cannot be read as an image")
            self.images.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
            self.points.append(read_pts(pts_path))

    def __len__(self) -> int:
        return len(self.pairs)

    def random_view(self, rng: np.random.Generator) -> View:
        """One random augmentation: scale, rotation (a share `aug_rotation_upright` of faces within
        +-UPRIGHT_DEGREES, the rest within +-aug_rotation), shift and flip."""
        s, r, t, f = self.aug
        scale = float(rng.uniform(1 - s, 1 + s))
        limit = r
        if self.aug_rotation_upright and rng.random() < self.aug_rotation_upright:
            limit = min(r, UPRIGHT_DEGREES)
        angle = float(rng.uniform(-limit, limit))
        shift = (float(rng.uniform(-t, t)), float(rng.uniform(-t, t)))
        flip = bool(f and rng.random() < 0.5)
        return View(scale, angle, shift, flip)

    def sample(self, index: int, rng: np.random.Generator | None = None) -> FaceSample:
        """The HR crop and landmarks of face `index`: its fixed view if the dataset has views, else
        randomly augmented when the dataset augments, else the plain crop."""
        if self.views is not None:
            view = self.views[index]
        elif self.augment:
            view = self.random_view(rng or self.rng)
        else:
            view = View()
        return self.crop(index, view)

    def crop(self, index: int, view: View) -> FaceSample:
        """The HR crop of face `index` seen as `view`, with its landmarks moved (and re-ordered if flipped)."""
        points = self.points[index]
        matrix = crop_transform(points, self.margin, HR_SIZE, view.scale, view.angle, view.shift, view.flip)
        hr = cv2.warpAffine(
            self.images[index], matrix, (HR_SIZE, HR_SIZE), flags=cv2.INTER_LINEAR, borderMode=BORDERS[self.border]
        )
        landmarks = apply_affine(points, matrix).astype(np.float32)
        if view.flip:
            landmarks = landmarks[list(FLIP_PERMUTATION)]
        return FaceSample(hr, landmarks, self.pairs[index][0].stem)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        face = self.sample(index)
        hr = torch.from_numpy(face.hr).permute(2, 0, 1).float() / 255.0
        landmarks = torch.from_numpy(face.landmarks)
        visible = ((landmarks >= 0) & (landmarks <= HR_SIZE - 1)).all(dim=1).float() * self.landmark_weight
        return hr, landmarks, visible


def face_box(landmarks: np.ndarray, size: int = HR_SIZE) -> tuple[int, int, int, int]:
    """Integer landmark bounding box (x0, y0, x1, y1), exclusive end, clipped to the image."""
    low = np.floor(landmarks.min(axis=0)).astype(int)
    high = np.ceil(landmarks.max(axis=0)).astype(int) + 1
    x0, y0 = np.clip(low, 0, size - 1)
    x1, y1 = np.clip(high, 1, size)
    return int(x0), int(y0), int(x1), int(y1)
