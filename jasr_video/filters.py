"""Output filters: which tracked faces the outputs keep (the pipeline itself still tracks every face).

    keep = OutputFilter(min_face_px=20, min_score=0.95, min_landmark_conf=0.3, min_track_frames=5)
    for result in pipeline.run("clip.mp4"):
        shown = keep(result)          # a FrameResult with only the kept faces (the rest in .hidden_faces)

Per face, on every frame: ``min_face_px`` (longer box side, px), ``min_score`` (MTCNN probability of
the track's last matched detection), ``min_landmark_conf`` (mean of the 68 landmark confidences).

Per track: ``min_track_frames``. Per-frame outputs (video, JSON Lines, crops) are written as frames arrive,
without waiting, so a face is shown from the frame on which its track has passed the per-face filters on
``min_track_frames`` frames: a track seen on fewer frames never appears, and a longer one appears from its
N-th frame (its first N-1 frames are left out). The per-track outputs (:mod:`jasr_video.gallery`:
tracks.csv / tracks.jsonl, best faces, report) are written at the end and apply it exactly: a track is
listed when it was kept on at least N frames, with all of those frames counted.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class OutputFilter:
    min_face_px: float = 0.0
    min_score: float = 0.0
    min_landmark_conf: float = 0.0
    min_track_frames: int = 1
    counts: Counter = field(default_factory=Counter)  # faces left out, by reason; "kept"
    _seen: Counter = field(default_factory=Counter, repr=False)  # per track: frames that passed the face filters

    @property
    def active(self) -> bool:
        return bool(self.min_face_px > 0 or self.min_score > 0 or self.min_landmark_conf > 0 or self.min_track_frames > 1)

    def face_reason(self, face: Any) -> str | None:
        """Why a face is left out on this frame by the per-face filters (None: it passes)."""
        if face.face_px < self.min_face_px:
            return "face_px"
        if face.score < self.min_score:
            return "score"
        if self.min_landmark_conf > 0 and float(face.landmark_confidence.mean()) < self.min_landmark_conf:
            return "landmark_conf"
        return None

    def __call__(self, result: Any) -> Any:
        """The result with only the kept faces (``faces``); the others in ``hidden_faces``."""
        if not self.active:
            self.counts["kept"] += len(result.faces)
            return result
        kept, hidden = [], []
        for face in result.faces:
            reason = self.face_reason(face)
            if reason is None:
                self._seen[face.track_id] += 1
                if self._seen[face.track_id] < self.min_track_frames:
                    reason = "track_frames"
            if reason is None:
                kept.append(face)
            else:
                hidden.append(face)
            self.counts[reason or "kept"] += 1
        for tid in getattr(result, "lost_tracks", ()):  # keep the per-track state bounded on long runs
            self._seen.pop(tid, None)
        return dataclasses.replace(result, faces=kept, hidden_faces=list(result.hidden_faces) + hidden)

    def describe(self) -> str:
        """One plain line for the run summary."""
        if not self.active:
            return "none (every tracked face is written)"
        rules = []
        if self.min_face_px > 0:
            rules.append(f"faces smaller than {self.min_face_px:g} px")
        if self.min_score > 0:
            rules.append(f"detector score below {self.min_score:g}")
        if self.min_landmark_conf > 0:
            rules.append(f"mean landmark confidence below {self.min_landmark_conf:g}")
        if self.min_track_frames > 1:
            rules.append(f"a person's first {self.min_track_frames - 1} frames (tracks seen on fewer than "
                         f"{self.min_track_frames} frames are never written)")
        c = self.counts
        dropped = sum(v for k, v in c.items() if k != "kept")
        return (f"left out {'; '.join(rules)}: {dropped} of {dropped + c['kept']} faces left out "
                f"(size {c['face_px']}, score {c['score']}, landmarks {c['landmark_conf']}, track length "
                f"{c['track_frames']})")
