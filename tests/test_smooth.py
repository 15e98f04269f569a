"""Landmark smoother on synthetic trajectories and the jitter / lag measures."""
from __future__ import annotations

import numpy as np

from jasr_video.smooth import LandmarkSmoother, Trajectory, jitter, lag_frames, summarize

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
