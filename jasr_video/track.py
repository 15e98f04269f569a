"""SORT tracking: a filterpy Kalman filter per face box, Hungarian matching (scipy) on IoU.

State (standard SORT, 7-dim): [cx, cy, area, aspect, d cx, d cy, d area], constant velocity, aspect
constant. Every frame is a predict step; frames with detections are also an update step, so with
``detect_every`` N the boxes in between come from the Kalman prediction. A track keeps its id through
misses of up to ``max_age`` frames; it is reported once it has ``min_hits`` matched detections.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from filterpy.kalman import KalmanFilter
from scipy.optimize import linear_sum_assignment


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between boxes a (N, 4) and b (M, 4), (x0, y0, x1, y1)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _box_to_z(box: Sequence[float]) -> np.ndarray:
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = max(x1 - x0, 1e-3), max(y1 - y0, 1e-3)
    return np.array([[x0 + w / 2], [y0 + h / 2], [w * h], [w / h]])


def _x_to_box(x: np.ndarray) -> np.ndarray:
    area, aspect = max(float(x[2, 0]), 1e-6), max(float(x[3, 0]), 1e-6)
    w = np.sqrt(area * aspect)
    h = area / w
    return np.array([x[0, 0] - w / 2, x[1, 0] - h / 2, x[0, 0] + w / 2, x[1, 0] + h / 2], np.float32)


class KalmanBoxTracker:
    """One track's Kalman filter (the parameters of the SORT paper's reference implementation)."""

    def __init__(self, box: Sequence[float], track_id: int) -> None:
        kf = KalmanFilter(dim_x=7, dim_z=4)
        kf.F = np.eye(7)
        kf.F[0, 4] = kf.F[1, 5] = kf.F[2, 6] = 1.0
        kf.H = np.zeros((4, 7))
        kf.H[:4, :4] = np.eye(4)
        kf.R[2:, 2:] *= 10.0
        kf.P[4:, 4:] *= 1000.0  # unobserved velocities: high uncertainty
        kf.P *= 10.0
        kf.Q[-1, -1] *= 0.01
        kf.Q[4:, 4:] *= 0.01
        kf.x[:4] = _box_to_z(box)
        self.kf = kf
        self.id = track_id
        self.hits = 1
        self.hit_streak = 1
        self.age = 0
        self.frames_since_update = 0
        self.last_round_hit = True  # matched on the latest detection frame

    def predict(self) -> np.ndarray:
        if self.kf.x[6, 0] + self.kf.x[2, 0] <= 0:
            self.kf.x[6, 0] = 0.0
        self.kf.predict()
        self.age += 1
        if self.frames_since_update > 0:
            self.hit_streak = 0
        self.frames_since_update += 1
        return self.box

    def peek(self) -> np.ndarray:
        """The box the next :meth:`predict` will return, without changing the filter."""
        x = self.kf.x.copy()
        if x[6, 0] + x[2, 0] <= 0:
            x[6, 0] = 0.0
        return _x_to_box(self.kf.F @ x)

    def update(self, box: Sequence[float]) -> None:
        self.frames_since_update = 0
        self.hits += 1
        self.hit_streak += 1
        self.kf.update(_box_to_z(box))

    @property
    def box(self) -> np.ndarray:
        return _x_to_box(self.kf.x)


@dataclass
class TrackedFace:
    """A reported track on one frame."""

    track_id: int
    box: np.ndarray  # (x0, y0, x1, y1): the detection on detection frames, else the Kalman prediction
    score: float  # MTCNN probability of the last matched detection
    detected: bool  # matched to a detection on this very frame (False: Kalman prediction)
    detection_index: int | None  # index into this frame's detections, when detected
    new: bool  # first frame this track is reported
    filtered: np.ndarray | None = None  # the Kalman filter's box after this frame (steadier than the detection)


class SortTracker:
    """SORT multi-face tracker.

    max_age: frames a track survives without a matched detection (then it is deleted).
    min_hits: matched detections before a track is reported.
    iou_threshold: minimum IoU between a prediction and a detection to match them.
    """

    def __init__(self, max_age: int = 12, min_hits: int = 2, iou_threshold: float = 0.3) -> None:
        self.max_age = max_age
        self.min_hits = min_hits
        self.iou_threshold = iou_threshold
        self.tracks: list[KalmanBoxTracker] = []
        self._scores: dict[int, float] = {}
        self._reported: set[int] = set()
        self._next_id = 1
        self.frame_count = 0
        self.lost: list[int] = []  # ids deleted during the last update

    def update(self, boxes: np.ndarray | None, scores: Sequence[float] | None = None) -> list[TrackedFace]:
        """Advance one frame. boxes: (N, 4) detections of this frame, or None on a frame without detection."""
        self.frame_count += 1
        predicted = np.array([t.predict() for t in self.tracks]).reshape(-1, 4)
        ok = np.all(np.isfinite(predicted), axis=1)
        if not ok.all():
            self.tracks = [t for t, good in zip(self.tracks, ok) if good]
            predicted = predicted[ok]
        matched_det: dict[int, int] = {}  # track position -> detection index
        if boxes is not None:
            boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
            scores = list(scores) if scores is not None else [1.0] * len(boxes)
            matched_det, unmatched = self._associate(boxes, predicted)
            for pos, j in matched_det.items():
                self.tracks[pos].update(boxes[j])
                self._scores[self.tracks[pos].id] = float(scores[j])
            for j in unmatched:
                track = KalmanBoxTracker(boxes[j], self._next_id)
                self._scores[track.id] = float(scores[j])
                self._next_id += 1
                self.tracks.append(track)
                matched_det[len(self.tracks) - 1] = j
            for pos, t in enumerate(self.tracks):
                t.last_round_hit = pos in matched_det
        out: list[TrackedFace] = []
        for pos, t in enumerate(self.tracks):
            confirmed = t.hits >= self.min_hits or self.frame_count <= self.min_hits
            if not confirmed:
                continue
            if boxes is not None:
                if pos not in matched_det:
                    continue  # missed on a detection frame: coast silently, keep the id
                j = matched_det[pos]
                face = TrackedFace(t.id, boxes[j].copy(), self._scores[t.id], True, j, t.id not in self._reported, t.box)
            else:
                if not t.last_round_hit:
                    continue  # missed on the last detection frame: not reported until matched again
                face = TrackedFace(t.id, t.box, self._scores[t.id], False, None, t.id not in self._reported, t.box)
            self._reported.add(t.id)
            out.append(face)
        self.lost = [t.id for t in self.tracks if t.frames_since_update > self.max_age]
        self.tracks = [t for t in self.tracks if t.frames_since_update <= self.max_age]
        for tid in self.lost:
            self._scores.pop(tid, None)
        return out

    def _associate(self, boxes: np.ndarray, predicted: np.ndarray) -> tuple[dict[int, int], list[int]]:
        if len(predicted) == 0 or len(boxes) == 0:
            return {}, list(range(len(boxes)))
        iou = iou_matrix(predicted, boxes)
        rows, cols = linear_sum_assignment(-iou)
        matched = {int(r): int(c) for r, c in zip(rows, cols) if iou[r, c] >= self.iou_threshold}
        used = set(matched.values())
        return matched, [j for j in range(len(boxes)) if j not in used]

    def predicted_boxes(self) -> np.ndarray:
        """(N, 4) boxes every live track (reported or not) is predicted at on the next frame; state unchanged.

        Region detection (``PipelineConfig.full_scan_every``) searches around these before :meth:`update`.
        """
        boxes = np.array([t.peek() for t in self.tracks], np.float32).reshape(-1, 4)
        return boxes[np.all(np.isfinite(boxes), axis=1)]

    @property
    def active_ids(self) -> list[int]:
        return [t.id for t in self.tracks]
