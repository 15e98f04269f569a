"""SORT tracking: a filterpy Kalman filter per face box, Hungarian matching (scipy) on IoU.

State (standard SORT, 7-dim): [cx, cy, area, aspect, d cx, d cy, d area], constant velocity, aspect
constant. Every frame is a predict step; frames with detections are also an update step, so with
``detect_every`` N the boxes in between come from the Kalman prediction. A track keeps its id through
misses of up to ``max_age`` frames; it is reported once it has ``min_hits`` matched detections.

Additions for small faces in real footage (each measured in docs/benchmarks.md):

* two score thresholds, as ByteTrack: a detection starts a track only with probability >= ``new_track_score``;
  weaker ones (down to the detector's own minimum) only continue tracks, matched after the strong ones;
* during a miss of up to ``coast`` frames a confirmed track is reported at its Kalman-predicted box
  (``detected`` False), so boxes do not blink; after that it is kept silently up to ``max_age`` frames;
* after IoU matching, a track missed for a frame or more is re-associated with a leftover detection whose
  centre lies within ``gate`` x the track's size of the predicted (or last matched) centre and whose size
  is within a factor 1.5 (motion and size gating, Hungarian on the normalised distance);
* a track that is not yet confirmed is dropped at its first miss.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from filterpy.kalman import KalmanFilter
from scipy.optimize import linear_sum_assignment

from .types import TrackedFace, registered  # TrackedFace re-exported: it used to live here


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
        self.last_box = np.asarray(box, np.float32)  # the last matched detection
        self.best_score = 0.0  # highest detection probability matched so far

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
        self.last_box = np.asarray(box, np.float32)
        self.kf.update(_box_to_z(box))

    @property
    def box(self) -> np.ndarray:
        return _x_to_box(self.kf.x)


class SortTracker:
    """SORT multi-face tracker.

    max_age: frames a track survives without a matched detection (then it is deleted).
    min_hits: matched detections before a track is reported.
    iou_threshold: minimum IoU between a prediction and a detection to match them.
    new_track_score: detections below this probability only continue existing tracks (0: all may start one).
    coast: frames a missed confirmed track is still reported at its predicted box (0: not reported).
    gate: re-association after a miss: largest centre distance, in track sizes (0: IoU matching only).
    """

    def __init__(self, max_age: int = 12, min_hits: int = 2, iou_threshold: float = 0.3,
                 new_track_score: float = 0.0, coast: int = 0, gate: float = 0.0) -> None:
        self.max_age = max_age
        self.min_hits = min_hits
        self.iou_threshold = iou_threshold
        self.new_track_score = new_track_score
        self.coast = coast
        self.gate = gate
        self.tracks: list[KalmanBoxTracker] = []
        self._scores: dict[int, float] = {}
        self._reported: set[int] = set()
        self._next_id = 1
        self.frame_count = 0
        self.lost: list[int] = []  # ids deleted during the last update

    def carry_ids(self, previous: "SortTracker") -> None:
        """Number new tracks on from `previous` (a tracker restarted mid-run never reuses an id of that run)."""
        self._next_id = max(self._next_id, previous._next_id)

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
            strong = [j for j in range(len(boxes)) if scores[j] >= self.new_track_score]
            weak = [j for j in range(len(boxes)) if scores[j] < self.new_track_score]
            free = list(range(len(self.tracks)))
            for group in (strong, weak):  # strong detections first, then weak ones for the tracks left (ByteTrack)
                found = self._associate(boxes, group, predicted, free)
                matched_det.update(found)
                free = [p for p in free if p not in found]
            used = set(matched_det.values())
            if self.gate > 0:  # missed tracks: a leftover detection near the predicted / last position
                found = self._reassociate(boxes, [j for j in range(len(boxes)) if j not in used], predicted,
                                          [p for p in free if self.tracks[p].frames_since_update > 1])
                matched_det.update(found)
                used |= set(found.values())
            for pos, j in matched_det.items():
                self.tracks[pos].update(boxes[j])
                self._note_score(self.tracks[pos], float(scores[j]))
            for j in strong:
                if j in used:
                    continue
                track = KalmanBoxTracker(boxes[j], self._next_id)
                self._note_score(track, float(scores[j]))
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
            if boxes is not None and pos in matched_det:
                j = matched_det[pos]
                face = TrackedFace(t.id, boxes[j].copy(), self._scores[t.id], True, j, t.id not in self._reported, t.box,
                                   t.best_score)
            elif t.frames_since_update <= self.coast or (boxes is None and t.last_round_hit):
                # predicted: a frame without detection after a hit, or a short miss (coasting)
                face = TrackedFace(t.id, t.box, self._scores[t.id], False, None, t.id not in self._reported, t.box,
                                   t.best_score)
            else:
                continue  # missed for longer than `coast`: kept silently, not reported until matched again
            self._reported.add(t.id)
            out.append(face)
        # unconfirmed tracks go at their first miss; confirmed ones after max_age frames
        gone = [t for t in self.tracks if t.frames_since_update > self.max_age
                or (t.hits < self.min_hits and t.frames_since_update > 0 and self.frame_count > self.min_hits
                    and boxes is not None and not t.last_round_hit)]
        self.lost = [t.id for t in gone]
        self.tracks = [t for t in self.tracks if t not in gone]
        for tid in self.lost:
            self._scores.pop(tid, None)
        return out

    def _note_score(self, track: KalmanBoxTracker, score: float) -> None:
        self._scores[track.id] = score
        track.best_score = max(track.best_score, score)

    def _associate(self, boxes: np.ndarray, dets: list[int], predicted: np.ndarray,
                   tracks: list[int]) -> dict[int, int]:
        """IoU matching (Hungarian) of detections `dets` with tracks at positions `tracks` -> {track pos: det}."""
        if not dets or not tracks:
            return {}
        iou = iou_matrix(predicted[tracks], boxes[dets])
        rows, cols = linear_sum_assignment(-iou)
        return {tracks[int(r)]: dets[int(c)] for r, c in zip(rows, cols) if iou[r, c] >= self.iou_threshold}

    def _reassociate(self, boxes: np.ndarray, dets: list[int], predicted: np.ndarray,
                     tracks: list[int]) -> dict[int, int]:
        """Missed tracks at positions `tracks` matched to leftover detections `dets` by centre distance, in track
        sizes from the nearer of the predicted and the last matched box, within ``gate``, sizes within 1.5x."""
        if not dets or not tracks:
            return {}
        def centre_size(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            b = np.asarray(b, np.float64).reshape(-1, 4)
            return (b[:, :2] + b[:, 2:]) / 2, np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])

        dc, ds = centre_size(boxes[dets])
        cost = np.full((len(tracks), len(dets)), np.inf)
        for r, pos in enumerate(tracks):
            for ref in (predicted[pos], self.tracks[pos].last_box):
                c, s = centre_size(ref)
                dist = np.linalg.norm(dc - c, axis=1) / max(float(s[0]), 1.0)
                ratio = np.maximum(ds / max(float(s[0]), 1.0), max(float(s[0]), 1.0) / np.maximum(ds, 1.0))
                cost[r] = np.minimum(cost[r], np.where((dist <= self.gate) & (ratio <= 1.5), dist, np.inf))
        finite = np.where(np.isfinite(cost), cost, 1e6)
        rows, cols = linear_sum_assignment(finite)
        return {tracks[int(r)]: dets[int(c)] for r, c in zip(rows, cols) if np.isfinite(cost[r, c])}

    def predicted_boxes(self) -> np.ndarray:
        """(N, 4) boxes every live track (reported or not) is predicted at on the next frame; state unchanged.

        Region detection (``PipelineConfig.full_scan_every``) searches around these before :meth:`update`.
        """
        boxes = np.array([t.peek() for t in self.tracks], np.float32).reshape(-1, 4)
        return boxes[np.all(np.isfinite(boxes), axis=1)]

    @property
    def active_ids(self) -> list[int]:
        return [t.id for t in self.tracks]

    @classmethod
    def from_config(cls, config: Any) -> "SortTracker":
        """The tracker a :class:`~jasr_video.pipeline.PipelineConfig` asks for."""
        return cls(config.max_age, config.min_hits, config.iou_threshold, config.scores()[1], config.coast,
                   config.gate)


# name -> tracker class (``PipelineConfig.tracker``): a new tracker is one class with ``update``,
# ``predicted_boxes`` and ``lost`` (jasr_video.types.Tracker) and ``from_config(config)``, and one entry here.
TRACKERS: dict[str, type] = {"sort": SortTracker}


def make_tracker(config: Any) -> "SortTracker":
    """The tracker named by ``config.tracker`` (a :class:`~jasr_video.pipeline.PipelineConfig`)."""
    return registered(TRACKERS, "tracker", config.tracker).from_config(config)
