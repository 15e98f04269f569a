"""Evaluation metrics of the paper's protocol: PSNR / SSIM on Y (BT.601) inside the face box,
NME (inter-ocular), AUC and failure rate at a threshold."""
from __future__ import annotations

import math

import cv2
import numpy as np

from .landmarks import LEFT_EYE_OUTER, RIGHT_EYE_OUTER


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """RGB float image in [0, 1] (H, W, 3) -> Y channel of ITU-R BT.601 in [16, 235] (float64)."""
    image = image.astype(np.float64)
    return 16.0 + 65.481 * image[..., 0] + 128.553 * image[..., 1] + 24.966 * image[..., 2]


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB between two arrays of equal shape; inf for identical inputs."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(peak**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """SSIM (Wang et al. 2004) of two single-channel images: Gaussian window 11, sigma 1.5, valid region."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    kernel = cv2.getGaussianKernel(11, 1.5)
    window = kernel @ kernel.T

    def filt(x: np.ndarray) -> np.ndarray:
        return cv2.filter2D(x, -1, window)[5:-5, 5:-5]

    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a**2
    var_b = filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def face_psnr_ssim(estimate: np.ndarray, truth: np.ndarray, box: tuple[int, int, int, int]) -> tuple[float, float]:
    """PSNR and SSIM on Y inside box (x0, y0, x1, y1) of two RGB float images in [0, 1]."""
    x0, y0, x1, y1 = box
    if x1 - x0 < 11 or y1 - y0 < 11:
        raise ValueError(f"face box {box} is smaller than the 11x11 SSIM window")
    ye = rgb_to_y(np.clip(estimate, 0, 1))[y0:y1, x0:x1]
    yt = rgb_to_y(np.clip(truth, 0, 1))[y0:y1, x0:x1]
    return psnr(ye, yt), ssim(ye, yt)


def nme(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Mean point-to-point error of (68, 2) landmarks over the inter-ocular distance (points 36, 45)."""
    inter_ocular = float(np.linalg.norm(truth[LEFT_EYE_OUTER] - truth[RIGHT_EYE_OUTER]))
    if inter_ocular <= 0:
        raise ValueError("inter-ocular distance is zero")
    return float(np.linalg.norm(predicted - truth, axis=1).mean() / inter_ocular)


def auc_and_failure(errors: np.ndarray, threshold: float = 0.08, steps: int = 1000) -> tuple[float, float]:
    """Area under the cumulative error curve up to threshold (normalised to [0, 1]) and failure rate."""
    errors = np.asarray(errors, dtype=np.float64)
    grid = np.linspace(0.0, threshold, steps + 1)
    cumulative = (errors[None, :] <= grid[:, None]).mean(axis=1)
    auc = float(np.trapezoid(cumulative, grid) / threshold)
    return auc, float((errors > threshold).mean())
