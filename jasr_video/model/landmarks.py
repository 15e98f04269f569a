"""68-point landmark helpers: heatmap targets, sub-pixel decoding with confidence, flip permutation."""
from __future__ import annotations

import numpy as np
import torch

from .config import HR_SIZE, SCALE

# Index permutation that maps the 300-W 68-point scheme onto its horizontal mirror (0-based).
FLIP_PERMUTATION: tuple[int, ...] = (
    *range(16, -1, -1),  # jaw
    *range(26, 16, -1),  # eyebrows
    27, 28, 29, 30,  # nose bridge
    35, 34, 33, 32, 31,  # nostrils
    45, 44, 43, 42, 47, 46,  # right eye <- left eye
    39, 38, 37, 36, 41, 40,  # left eye <- right eye
    54, 53, 52, 51, 50, 49, 48,  # outer lip, top
    59, 58, 57, 56, 55,  # outer lip, bottom
    64, 63, 62, 61, 60,  # inner lip, top
    67, 66, 65,  # inner lip, bottom
)
LEFT_EYE_OUTER, RIGHT_EYE_OUTER = 36, 45  # inter-ocular normalisation points


def pixels_to_cells(points: np.ndarray | torch.Tensor, scale: int = SCALE):
    """128x128 pixel coordinates -> 16x16 heatmap cell coordinates (cell centre i at pixel i*8+3.5)."""
    return (points - (scale - 1) / 2) / scale


def cells_to_pixels(cells: np.ndarray | torch.Tensor, scale: int = SCALE):
    """16x16 heatmap cell coordinates -> 128x128 pixel coordinates (x * 8 + 3.5)."""
    return cells * scale + (scale - 1) / 2


def gaussian_heatmaps(
    points: torch.Tensor, size: int, sigma: float, background: bool = True
) -> torch.Tensor:
    """Gaussian targets for points (B, K, 2) given in heatmap cells -> (B, K(+1), size, size).

    The optional background channel is 1 - max over landmarks (CPM convention).
    """
    grid = torch.arange(size, dtype=points.dtype, device=points.device)
    dx = grid.view(1, 1, 1, size) - points[..., 0].unsqueeze(-1).unsqueeze(-1)
    dy = grid.view(1, 1, size, 1) - points[..., 1].unsqueeze(-1).unsqueeze(-1)
    maps = torch.exp(-(dx**2 + dy**2) / (2 * sigma**2))
    if background:
        maps = torch.cat([maps, 1 - maps.amax(dim=1, keepdim=True)], dim=1)
    return maps


def decode_heatmaps(heatmaps: torch.Tensor, num_landmarks: int = 68) -> tuple[torch.Tensor, torch.Tensor]:
    """Heatmaps (B, K(+1), H, W) -> landmarks (B, K, 2) in heatmap cells and confidence (B, K).

    The argmax is refined to sub-pixel precision by fitting a parabola to the log-heatmap along x
    and y through the peak and its neighbours (exact for Gaussian peaks, as in DARK, Zhang et al. 2020).
    Confidence is the peak value, clamped to [0, 1].
    """
    maps = heatmaps[:, :num_landmarks].float()
    batch, count, height, width = maps.shape
    flat = maps.reshape(batch, count, -1)
    peak, index = flat.max(dim=-1)
    y = torch.div(index, width, rounding_mode="floor")
    x = index % width

    log_flat = flat.clamp_min(1e-6).log()

    def refine(along_x: bool) -> torch.Tensor:
        # Three consecutive samples through the peak (shifted inwards at the border), parabola vertex.
        pos, size = (x, width) if along_x else (y, height)
        first = (pos - 1).clamp(0, size - 3)
        samples = []
        for step in range(3):
            idx = y * width + first + step if along_x else (first + step) * width + x
            samples.append(log_flat.gather(-1, idx.unsqueeze(-1)).squeeze(-1))
        a, b, c = samples
        curvature = a - 2 * b + c
        safe = torch.where(curvature < -1e-6, curvature, torch.full_like(curvature, -1.0))
        vertex = first.float() + 1 + 0.5 * (a - c) / safe
        refined = torch.minimum(torch.maximum(vertex, pos.float() - 1), pos.float() + 1)
        return torch.where((curvature < -1e-6) & (peak > 1e-6), refined, pos.float())

    fx = refine(along_x=True)
    fy = refine(along_x=False)
    return torch.stack([fx, fy], dim=-1), peak.clamp(0.0, 1.0)


def heatmap_landmarks(
    heatmaps: torch.Tensor, num_landmarks: int = 68, image_size: int = HR_SIZE
) -> tuple[torch.Tensor, torch.Tensor]:
    """Final-stage heatmaps (B, K(+1), h, w) of an image_size-pixel input -> landmarks (B, K, 2) in its
    pixels and confidence (B, K); a cell is image_size / h pixels (8 for 16x16 maps, 4 for 32x32)."""
    cells, confidence = decode_heatmaps(heatmaps, num_landmarks)
    return cells_to_pixels(cells, image_size // heatmaps.shape[-1]), confidence


def flip_landmarks(points: np.ndarray, width: float) -> np.ndarray:
    """Mirror (K, 2) pixel landmarks of an image `width` pixels wide and permute indices."""
    flipped = points.copy()
    flipped[:, 0] = (width - 1) - flipped[:, 0]
    return flipped[list(FLIP_PERMUTATION)]
