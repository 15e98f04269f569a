"""Metric code checked against values known in closed form, not against its own output."""
from __future__ import annotations

import math

import numpy as np
import pytest

from jasr_video.model.metrics import auc_and_failure, face_psnr_ssim, nme, psnr, rgb_to_y, ssim


def test_identical_images_give_infinite_psnr_and_unit_ssim():
    image = np.random.default_rng(0).random((128, 128, 3))
    value_psnr, value_ssim = face_psnr_ssim(image, image, (20, 20, 100, 110))
    assert value_psnr == math.inf and value_ssim == pytest.approx(1.0)


def test_psnr_of_a_known_grey_shift():
    # Equal R=G=B: Y = 16 + 219 * v, so a shift of d in every channel shifts Y by 219 d.
    grey = np.full((64, 64, 3), 0.4)
    d = 0.01
    expected = 20 * math.log10(255 / (219 * d))
    assert face_psnr_ssim(grey + d, grey, (0, 0, 64, 64))[0] == pytest.approx(expected, rel=1e-9)


def test_bt601_luma_range():
    assert rgb_to_y(np.zeros((1, 1, 3)))[0, 0] == pytest.approx(16)
    assert rgb_to_y(np.ones((1, 1, 3)))[0, 0] == pytest.approx(235)


def test_ssim_of_flat_images_matches_the_closed_form():
    # Flat images: variances and covariance vanish, SSIM = (2 a b + C1) / (a^2 + b^2 + C1).
    a, b = 100.0, 130.0
    c1 = (0.01 * 255) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert ssim(np.full((32, 32), a), np.full((32, 32), b)) == pytest.approx(expected, rel=1e-9)


def test_ssim_drops_with_noise_and_is_symmetric():
    rng = np.random.default_rng(1)
    clean = rng.random((64, 64)) * 255
    noisy = clean + rng.normal(0, 20, clean.shape)
    assert ssim(clean, noisy) == pytest.approx(ssim(noisy, clean))
    # i.i.d. signal of variance s2 plus noise of variance n2: SSIM ~ 2 s2 / (2 s2 + n2).
    s2, n2 = 255**2 / 12, 20**2
    assert ssim(clean, noisy) == pytest.approx(2 * s2 / (2 * s2 + n2), abs=0.01)
    assert psnr(clean, noisy) == pytest.approx(20 * math.log10(255 / 20), abs=0.2)


def test_nme_of_a_known_shift():
    truth = np.random.default_rng(2).random((68, 2)) * 100
    truth[36], truth[45] = (30.0, 50.0), (80.0, 50.0)  # inter-ocular distance 50
    assert nme(truth + np.array([3.0, 4.0]), truth) == pytest.approx(5.0 / 50.0)


def test_auc_and_failure_rate():
    assert auc_and_failure(np.zeros(5)) == (1.0, 0.0)
    auc, failure = auc_and_failure(np.full(5, 0.04))
    assert auc == pytest.approx(0.5, abs=2e-3) and failure == 0.0
    auc, failure = auc_and_failure(np.array([0.0, 0.0, 0.1, 0.2]))
    assert auc == pytest.approx(0.5, abs=2e-3) and failure == 0.5
