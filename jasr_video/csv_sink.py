"""CSV output (``--csv FILE``): one row per face per frame, for spreadsheets and data frames.

Added as a stage is added (docs/pipeline.md, "Adding a stage"): this one class, a :class:`~jasr_video.types.Sink`,
and its entry in :data:`jasr_video.outputs.SINKS`. Like every sink it writes ``FILE.partial`` (one flushed
line per face) and renames it to ``FILE`` when the run is finalised.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .sinks import close_partial
from .types import FrameResult

CSV_COLUMNS = ("frame", "pts", "track_id", "x0", "y0", "x1", "y1", "score", "track_score", "detected", "at_edge",
               "face_px", "below_16px", "sr_factor", "model_input_px", "landmark_confidence")


class CsvSink:
    """Faces as CSV rows (:data:`CSV_COLUMNS`): the box in frame pixels rounded to ``decimals`` places, the
    probabilities, flags and route as in the JSON Lines, and the mean of the 68 landmark confidences.
    ``append``: go on with an existing ``.partial`` file (its rows kept, no second header)."""

    def __init__(self, path: str | Path, decimals: int = 2, append: bool = False) -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".partial")
        self.decimals = max(decimals, 0)
        fresh = not (append and self.tmp.exists() and self.tmp.stat().st_size > 0)
        self.file = open(self.tmp, "w" if fresh else "a", encoding="utf-8", newline="")
        self.writer = csv.writer(self.file)
        if fresh:
            self.writer.writerow(CSV_COLUMNS)
        self.rows = 0

    def write(self, result: FrameResult) -> None:
        pts = "" if result.pts is None else round(float(result.pts), 6)
        for face in result.faces:
            box = np.round(np.asarray(face.box, np.float64), self.decimals).tolist()  # as in the JSON Lines
            self.writer.writerow((result.index, pts, face.track_id, *box, round(float(face.score), 4),
                                  round(float(face.track_score), 4), int(face.detected), int(face.at_edge),
                                  round(float(face.face_px), 1), int(face.below_16px), face.sr_factor,
                                  face.model_input_px, round(float(np.mean(face.landmark_confidence)), 3)))
            self.rows += 1
        self.file.flush()

    def close(self, complete: bool = True) -> Path:
        return close_partial(self.file, self.tmp, self.path, complete)
