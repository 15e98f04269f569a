"""Landmark smoothers (Kalman, One Euro) on synthetic trajectories, the registry, and the jitter / lag measures."""
from __future__ import annotations

import numpy as np

import math

import pytest

from jasr_video.config import PipelineConfig
from jasr_video.smooth import SMOOTHERS, LandmarkSmoother, OneEuroSmoother, make_smoother
from jasr_video.tools.jitter import Trajectory, jitter, lag_frames, summarize

RNG = np.random.default_rng(0)
BASE = RNG.uniform(-0.4, 0.4, (68, 2))


def trajectory(n: int, size: float, speed: float, noise: float, rng=RNG) -> tuple[np.ndarray, np.ndarray]:
    clean = np.stack([BASE * size + np.array([100 + speed * f, 80]) for f in range(n)])
    return clean, clean + rng.normal(0, noise * size, clean.shape)


def run(smoother: LandmarkSmoother, raw: np.ndarray, size: float, tid: int = 1, start: int = 0) -> np.ndarray:
    return np.stack([smoother.update(tid, p, size, start + f) for f, p in enumerate(raw)])


def test_reduces_jitter_without_lag():
    clean, raw = trajectory(80, 40.0, speed=1.5, noise=0.03)
    sm = run(LandmarkSmoother(), raw, 40.0)
    sizes = [40.0] * len(raw)
    j_raw, _ = jitter(raw, sizes)
    j_sm, _ = jitter(sm, sizes)
    j_clean, _ = jitter(clean, sizes)
    assert j_sm < 0.8 * j_raw
    assert abs(j_sm - j_clean) < abs(j_raw - j_clean)
    err_raw = np.linalg.norm(raw[10:] - clean[10:], axis=-1).mean()
    err_sm = np.linalg.norm(sm[10:] - clean[10:], axis=-1).mean()
    assert err_sm < err_raw  # closer to the truth, not just flatter
    tau, _ = lag_frames(list(raw), list(sm))
    assert abs(tau) < 0.5  # constant-velocity model: no lag on steady motion


def test_noise_scales_with_face_size():
    rng = np.random.default_rng(1)
    _, raw_small = trajectory(40, 20.0, speed=1.0, noise=0.03, rng=rng)
    sm_small = run(LandmarkSmoother(), raw_small, 20.0)
    sm_big = run(LandmarkSmoother(), raw_small * 4, 80.0)  # the same scene 4x bigger
    assert np.allclose(sm_big, sm_small * 4, atol=1e-6)


def test_reset_and_gap_restart_track():
    s = LandmarkSmoother(max_gap=2)
    _, raw = trajectory(10, 30.0, speed=2.0, noise=0.05)
    run(s, raw, 30.0)
    far = raw[-1] + 500.0
    # after reset the first measurement is returned as is (no pull towards the old state)
    s.reset(1)
    assert np.allclose(s.update(1, far, 30.0, 10), far)
    # a gap longer than max_gap restarts too
    assert np.allclose(s.update(1, far + 200, 30.0, 20), far + 200)
    # a short gap predicts across it instead
    out = s.update(1, far + 200.0 + 1.0, 30.0, 21)
    assert not np.allclose(out, far + 201.0)


def test_tracks_are_independent():
    s = LandmarkSmoother()
    _, a = trajectory(20, 30.0, speed=1.0, noise=0.05)
    alone = run(LandmarkSmoother(), a, 30.0, tid=1)
    mixed = []
    for f, p in enumerate(a):
        mixed.append(s.update(1, p, 30.0, f))
        s.update(2, p + 300 + RNG.normal(0, 5, p.shape), 30.0, f)
    assert np.allclose(np.stack(mixed), alone)


def test_lag_measure_detects_a_delay():
    t = np.arange(60)
    clean = BASE[None] * 40 + np.stack([100 + 20 * np.sin(t / 6), 80 + 10 * np.cos(t / 9)], 1)[:, None, :]
    delayed = np.concatenate([clean[:3], clean[:-3]])  # 3 frames late
    tau, xc = lag_frames(list(clean[5:]), list(delayed[5:]))
    assert abs(tau - 3) < 0.2 and xc == 3


def test_summarize_reports_reduction():
    _, raw = trajectory(50, 40.0, speed=1.0, noise=0.04)
    sm = run(LandmarkSmoother(), raw, 40.0)
    t = Trajectory(list(range(50)), list(raw), list(sm), [40.0] * 50)
    s = summarize([t])
    assert s["tracks"] == 1 and s["jitter_smoothed"] < s["jitter_raw"] and 0 < s["jitter_reduction"] < 1


# ---------------------------------------------------------------------------------------------
# One Euro smoother and the registry


def one_euro_reference(xs: list[float], size: float, min_cutoff: float, beta: float, d_cutoff: float) -> list[float]:
    """The One Euro filter of Casiez et al. (CHI 2012) on one scalar, written from the paper, one frame apart."""

    def alpha(cutoff: float) -> float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau)

    out, x_hat, dx_hat = [xs[0]], xs[0], 0.0
    for x in xs[1:]:
        dx_hat = dx_hat + alpha(d_cutoff) * ((x - x_hat) - dx_hat)
        x_hat = x_hat + alpha(min_cutoff + beta * abs(dx_hat) / size) * (x - x_hat)
        out.append(x_hat)
    return out


def test_one_euro_matches_the_paper_on_known_inputs():
    # a step of 10 px on frame 1, 100 px face: by hand, alpha_d = 1 / (1 + 1 / (2 pi 0.2)) = 0.55686, speed 5.5686,
    # cut-off 0.1 + 5 x 5.5686 / 100 = 0.37843, alpha = 1 / (1 + 1 / (2 pi 0.37843)) = 0.70394: 7.0394 px
    sm = OneEuroSmoother(min_cutoff=0.1, beta=5.0, d_cutoff=0.2)
    first = sm.update(1, np.zeros((68, 2)), 100.0, 0)
    assert np.array_equal(first, np.zeros((68, 2)))  # the first frame passes unchanged
    second = sm.update(1, np.full((68, 2), 10.0), 100.0, 1)
    assert np.allclose(second, 7.0394, atol=1e-4)
    # every coordinate follows the scalar filter of the paper
    clean, raw = trajectory(40, 30.0, speed=2.0, noise=0.05, rng=np.random.default_rng(1))
    got = run(OneEuroSmoother(0.05, 8.0, 0.3), raw, 30.0)
    for k, axis in ((0, 0), (17, 1), (67, 0)):
        want = one_euro_reference(list(raw[:, k, axis]), 30.0, 0.05, 8.0, 0.3)
        assert np.allclose(got[:, k, axis], want, atol=1e-9)


def test_one_euro_reduces_jitter_and_speed_cuts_lag():
    clean, raw = trajectory(80, 40.0, speed=1.5, noise=0.03)
    sizes = [40.0] * len(raw)
    sm = run(OneEuroSmoother(), raw, 40.0)
    assert jitter(sm, sizes)[0] < 0.8 * jitter(raw, sizes)[0]
    still = run(OneEuroSmoother(beta=0.0), raw, 40.0)  # a fixed low-pass: lags more on the moving face
    assert lag_frames(raw, sm)[0] < lag_frames(raw, still)[0]
    steady = np.tile(BASE * 40.0, (10, 1, 1))
    assert np.allclose(run(OneEuroSmoother(), steady, 40.0), steady)  # a still face stays where it is


def test_one_euro_restarts_after_a_gap_and_on_reset():
    sm = OneEuroSmoother(max_gap=2)
    sm.update(1, np.zeros((68, 2)), 40.0, 0)
    jump = np.full((68, 2), 50.0)
    assert np.array_equal(sm.update(1, jump, 40.0, 5), jump)  # 5 frames later: a fresh start
    sm.reset(1)
    assert np.array_equal(sm.update(1, np.zeros((68, 2)), 40.0, 6), np.zeros((68, 2)))
    with pytest.raises(ValueError):
        OneEuroSmoother(min_cutoff=0.0)


def test_registry_builds_the_configured_smoother():
    assert set(SMOOTHERS) == {"kalman", "one-euro"}
    kalman = make_smoother(PipelineConfig(measurement_noise=0.08))
    assert isinstance(kalman, LandmarkSmoother) and kalman.r == 0.08
    euro = make_smoother(PipelineConfig(smoother="one-euro", smoother_options={"beta": 2.0}))
    assert isinstance(euro, OneEuroSmoother) and euro.beta == 2.0
    with pytest.raises(ValueError, match="smoother must be"):
        PipelineConfig(smoother="median").validate()
