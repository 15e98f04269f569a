"""Per-track landmark smoothing: a smoother per name in :data:`SMOOTHERS` (``PipelineConfig.smoother``,
``jasr-video --smoother``), each a :class:`~jasr_video.types.Smoother`.

``kalman`` (default, :class:`LandmarkSmoother`): each of the 136 landmark coordinates of a track follows the
same constant-velocity model with the same noise, so they share one covariance: a filterpy ``KalmanFilter``
(state: position, velocity) keeps the covariance and gain, and the gain is applied to all 136 coordinates at
once. Measurement and process noise are proportional to the face size (a 20 px face gets 4x less pixel noise
than an 80 px one).

``one-euro`` (:class:`OneEuroSmoother`): the One Euro filter (Casiez, Roussel and Vogel, CHI 2012), an
adaptive low-pass filter per coordinate whose cut-off rises with the speed, so slow motion is smoothed hard
and fast motion passes with little lag.

With either, a track that is lost, or unseen for more than ``max_gap`` frames, starts afresh. Jitter and lag
are measured by ``python -m jasr_video.tools.jitter`` (docs/pipeline.md, "Smoothing").
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .types import registered

if TYPE_CHECKING:  # filterpy (and scipy behind it) load when a Kalman smoother is made, not on import
    from filterpy.kalman import KalmanFilter

    from .types import Smoother

# Defaults chosen by `python -m jasr_video.tools.jitter --measure ../shared/data/video/royal_opera_house_1080p25.mp4
# --sweep --threads 1` (docs/pipeline.md, "Smoothing"): frame-to-frame jitter must go down, not only the shake
# about the motion, with the lag under one frame. People walk on that clip: that motion must be kept.
MEASUREMENT_NOISE = 0.05  # landmark measurement std, as a fraction of face size
PROCESS_NOISE = 0.003  # acceleration std per frame, as a fraction of face size
SHAPE_FACTOR = 3.0  # the shape (landmarks about their centroid) gets this x more measurement noise


@dataclass
class _Group:
    """Coordinates sharing one constant-velocity model: filterpy keeps covariance and gain, x is (2, n)."""

    kf: "KalmanFilter"
    x: np.ndarray  # row 0 positions, row 1 velocities


def _group(values: np.ndarray, r: float, v0: float) -> _Group:
    from filterpy.kalman import KalmanFilter

    kf = KalmanFilter(dim_x=2, dim_z=1)
    kf.F = np.array([[1.0, 1.0], [0.0, 1.0]])
    kf.H = np.array([[1.0, 0.0]])
    kf.P = np.diag([r ** 2, v0 ** 2])
    return _Group(kf, np.stack([values, np.zeros_like(values)]))


def _step(g: _Group, z: np.ndarray, r: float, q: float, steps: int) -> np.ndarray:
    from filterpy.common import Q_discrete_white_noise

    kf = g.kf
    kf.R = np.array([[r ** 2]])
    kf.Q = Q_discrete_white_noise(dim=2, dt=1.0, var=q ** 2)
    for _ in range(steps):
        kf.x = np.zeros((2, 1))
        kf.predict()  # covariance, shared by every coordinate of the group
        g.x = kf.F @ g.x
    kf.x = np.zeros((2, 1))
    kf.update(np.zeros((1, 1)))  # covariance and gain; the gain does not depend on the state
    g.x = g.x + kf.K @ (z.reshape(1, -1) - kf.H @ g.x)
    return g.x[0]


@dataclass
class _TrackState:
    centre: _Group  # landmark centroid (2 coordinates), frame pixels
    shape: _Group  # landmarks minus centroid (136 coordinates), frame pixels
    last_frame: int


class LandmarkSmoother:
    """Kalman smoothing of each track's 68 landmarks (``kalman``); call :meth:`update` once per frame per track.

    The landmarks are split into where the face is (their centroid) and its shape (each point minus the
    centroid). Both follow a constant-velocity model with noise proportional to the face size; the
    shape, which changes slowly, gets ``shape_factor`` x more measurement noise, so it is smoothed
    harder without delaying the face's motion.
    """

    def __init__(self, measurement_noise: float = MEASUREMENT_NOISE, process_noise: float = PROCESS_NOISE,
                 max_gap: int = 2, shape_factor: float = SHAPE_FACTOR) -> None:
        self.r = measurement_noise
        self.q = process_noise
        self.shape_factor = shape_factor
        self.max_gap = max_gap
        self.tracks: dict[int, _TrackState] = {}

    def update(self, track_id: int, landmarks: np.ndarray, face_size: float, frame: int) -> np.ndarray:
        """Filter one track's raw landmarks (K, 2) in frame pixels on frame `frame`; returns smoothed (K, 2)."""
        points = np.asarray(landmarks, np.float64)
        size = max(float(face_size), 1.0)
        centre = points.mean(axis=0)
        shape = (points - centre).reshape(-1)
        state = self.tracks.get(track_id)
        if state is None or not (0 < frame - state.last_frame <= self.max_gap):
            self.tracks[track_id] = _TrackState(_group(centre, self.r * size, 0.1 * size),
                                                _group(shape, self.r * self.shape_factor * size, 0.02 * size), frame)
            return points.copy()
        steps = frame - state.last_frame
        c = _step(state.centre, centre, self.r * size, self.q * size, steps)
        sh = _step(state.shape, shape, self.r * self.shape_factor * size, self.q * size, steps)
        state.last_frame = frame
        return (sh.reshape(points.shape) + c).copy()

    def reset(self, track_id: int) -> None:
        """Forget a track (call when the tracker drops it)."""
        self.tracks.pop(track_id, None)

    @classmethod
    def from_config(cls, config: Any) -> "LandmarkSmoother":
        """The smoother a :class:`~jasr_video.pipeline.PipelineConfig` asks for (``measurement_noise``,
        ``process_noise``, then ``smoother_options``)."""
        return cls(config.measurement_noise, config.process_noise, **config.smoother_options)


@dataclass
class _EuroState:
    x: np.ndarray  # filtered landmarks (K, 2), frame pixels
    dx: np.ndarray  # filtered velocity (K, 2), pixels per frame
    last_frame: int


def _alpha(cutoff: np.ndarray | float, frames: float) -> np.ndarray | float:
    """Smoothing factor of a first-order low-pass with this cut-off (cycles per frame) over `frames` frames."""
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / frames)


class OneEuroSmoother:
    """One Euro filter (Casiez, Roussel and Vogel, CHI 2012) on each landmark coordinate (``one-euro``).

    Per coordinate: the speed is low-pass filtered at ``d_cutoff``; the position is low-pass filtered at
    ``min_cutoff + beta * |speed| / face size``. Cut-offs are in cycles per frame (0.5 is the frame rate's
    Nyquist limit); the speed is taken in face sizes per frame, so ``beta`` does not depend on the face size.
    The first frame of a track passes unchanged.
    """

    def __init__(self, min_cutoff: float = 0.1, beta: float = 5.0, d_cutoff: float = 0.2, max_gap: int = 2) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("min_cutoff and d_cutoff must be > 0 and beta >= 0")
        self.min_cutoff, self.beta, self.d_cutoff, self.max_gap = min_cutoff, beta, d_cutoff, max_gap
        self.tracks: dict[int, _EuroState] = {}

    def update(self, track_id: int, landmarks: np.ndarray, face_size: float, frame: int) -> np.ndarray:
        """Filter one track's raw landmarks (K, 2) in frame pixels on frame `frame`; returns smoothed (K, 2)."""
        points = np.asarray(landmarks, np.float64)
        state = self.tracks.get(track_id)
        if state is None or not (0 < frame - state.last_frame <= self.max_gap):
            self.tracks[track_id] = _EuroState(points.copy(), np.zeros_like(points), frame)
            return points.copy()
        frames = float(frame - state.last_frame)
        speed = (points - state.x) / frames
        state.dx = state.dx + _alpha(self.d_cutoff, frames) * (speed - state.dx)
        cutoff = self.min_cutoff + self.beta * np.abs(state.dx) / max(float(face_size), 1.0)
        state.x = state.x + _alpha(cutoff, frames) * (points - state.x)
        state.last_frame = frame
        return state.x.copy()

    def reset(self, track_id: int) -> None:
        """Forget a track (call when the tracker drops it)."""
        self.tracks.pop(track_id, None)

    @classmethod
    def from_config(cls, config: Any) -> "OneEuroSmoother":
        """The smoother a :class:`~jasr_video.pipeline.PipelineConfig` asks for (``smoother_options``)."""
        return cls(**config.smoother_options)


# name -> smoother class: ``PipelineConfig.smoother`` / ``jasr-video --smoother``. A new smoother is one class with
# ``update``, ``reset`` and ``from_config`` (see jasr_video.types.Smoother) and one entry here.
SMOOTHERS: dict[str, type] = {"kalman": LandmarkSmoother, "one-euro": OneEuroSmoother}


def make_smoother(config: Any) -> "Smoother":
    """The smoother named by ``config.smoother`` (a :class:`~jasr_video.pipeline.PipelineConfig`)."""
    return registered(SMOOTHERS, "smoother", config.smoother).from_config(config)
