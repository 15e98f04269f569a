"""The stage interface of the video pipeline: the data that passes between stages, and one Protocol per stage.

    source -> Frame -> Detector -> [Detection] -> Tracker -> [TrackedFace] -> crop / enhance
           -> Smoother (landmarks per track) -> FrameResult [FaceResult] -> Sink

A stage is any object with the methods of its Protocol (no base class to inherit): :class:`Detector`
(:class:`jasr_video.detect.FaceDetector`), :class:`Tracker` (:class:`jasr_video.track.SortTracker`),
:class:`Smoother` (:data:`jasr_video.smooth.SMOOTHERS`), :class:`Sink` (:data:`jasr_video.outputs.SINKS`).
:class:`jasr_video.pipeline.Pipeline` and :class:`jasr_video.multistream.MultiStreamRunner` depend only on
these. This module imports neither torch nor the model, so sinks and tools can use the types cheaply.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from .crop import CropGeometry

# The model's LR face side (jasr_video.model.config.LR_SIZE). Mirrored, not imported: importing the model
# package loads torch, which the sinks must not need; tests/test_types.py checks that the two agree.
LR_SIZE = 16


@dataclass
class Frame:
    """One decoded frame of a source."""

    index: int
    pts: float | None
    image: np.ndarray  # H x W x 3 uint8 RGB
    stream: str
    captured: float  # time.monotonic() when decoded


@dataclass
class Detection:
    """One face: box (x0, y0, x1, y1) in frame pixels, MTCNN probability, 5 MTCNN key points (5, 2)."""

    box: np.ndarray
    score: float
    points: np.ndarray = field(default_factory=lambda: np.zeros((5, 2), np.float32))

    @property
    def size(self) -> float:
        """Face size in pixels: the longer side of the box."""
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


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
    track_score: float = 0.0  # highest detection probability of the track so far (it started the track)


@dataclass
class FaceResult:
    """One tracked face on one frame; coordinates in frame pixels."""

    track_id: int
    box: np.ndarray  # (x0, y0, x1, y1)
    score: float  # MTCNN probability (of the last matched detection when predicted)
    detected: bool  # True: MTCNN box on this frame; False: Kalman-predicted box
    landmarks_raw: np.ndarray  # (68, 2) JASRNet landmarks mapped to the frame
    landmarks_smoothed: np.ndarray  # (68, 2) after the per-track Kalman filter
    landmark_confidence: np.ndarray  # (68,) heatmap peak values in [0, 1]
    face_px: float  # face size in the frame: longer side of the box
    sr: np.ndarray | None  # (128, 128, 3) uint8 RGB super-resolved face; None when no output shows one (sr_faces off)
    crop: CropGeometry  # the square crop fed to the model (jasr_video.crop.CropGeometry)
    at_edge: bool = False  # the tracker's box touched or crossed the frame edge (``box`` is clipped to the frame)
    track_score: float = 0.0  # highest MTCNN probability of the track so far (>= new_track_score: it started it)
    sr_factor: int = 8  # the JASRNet that served this face (x8, x4 or x2)
    model_input_px: int = LR_SIZE  # side of the LR face fed to it (then bicubic to 128x128)

    @property
    def below_16px(self) -> bool:
        """True when the face is smaller than the model's 16x16 input (it was upsampled, not reduced)."""
        return self.face_px < LR_SIZE

    def to_json(self, decimals: int = 2, landmarks: str = "both") -> dict[str, Any]:
        """The face as JSON: coordinates rounded to ``decimals`` places (0: whole pixels); ``landmarks``:
        ``both`` (raw and smoothed), ``smoothed``, ``raw`` or ``none`` (leaves the 68 points out)."""
        if decimals <= 0:
            r = lambda a: np.rint(np.asarray(a, np.float64)).astype(np.int64).tolist()  # noqa: E731
        else:
            r = lambda a: np.round(np.asarray(a, np.float64), decimals).tolist()  # noqa: E731
        out: dict[str, Any] = {
            "track_id": self.track_id,
            "box": r(self.box),
            "at_edge": self.at_edge,
            "score": round(float(self.score), 4),
            "track_score": round(float(self.track_score), 4),
            "detected": self.detected,
        }
        if landmarks in ("both", "raw"):
            out["landmarks_raw"] = r(self.landmarks_raw)
        if landmarks in ("both", "smoothed"):
            out["landmarks_smoothed"] = r(self.landmarks_smoothed)
        if landmarks != "none":
            out["landmark_confidence"] = np.round(self.landmark_confidence.astype(np.float64), 3 if decimals >= 2 else 2).tolist()
        c = max(decimals, 0)
        out.update({
            "face_px": round(float(self.face_px), 1),
            "below_16px": self.below_16px,
            "crop": {"cx": round(self.crop.cx, c), "cy": round(self.crop.cy, c), "side": round(self.crop.side, c)},
            "sr_factor": self.sr_factor,
            "model_input_px": self.model_input_px,
        })
        return out


@dataclass
class FrameResult:
    """Everything the pipeline knows about one frame."""

    index: int  # frame number in the source (0-based)
    pts: float | None  # presentation time, seconds
    image: np.ndarray  # H x W x 3 uint8 RGB, the decoded frame
    faces: list[FaceResult]
    detected: bool = True  # MTCNN ran on this frame (False: tracks predicted)
    stream: str = ""
    lost_tracks: list[int] = field(default_factory=list)  # track ids deleted on this frame
    scan: str = "full"  # where MTCNN looked: "full" frame, "regions" around the tracks, "none" (predicted)
    hidden_faces: list[FaceResult] = field(default_factory=list)  # left out by output filters (insets avoid them too)

    def to_json(self, decimals: int = 2, landmarks: str = "both") -> dict[str, Any]:
        """The frame as JSON (``decimals``, ``landmarks``: see :meth:`FaceResult.to_json`)."""
        return {
            "frame": self.index,
            "pts": None if self.pts is None else round(float(self.pts), 6),
            "detected": self.detected,
            "scan": self.scan,
            "faces": [f.to_json(decimals, landmarks) for f in self.faces],
        }


# ---------------------------------------------------------------------------------------------
# stage protocols


class Detector(Protocol):
    """Finds faces: whole frames (batched), and regions of one frame around given boxes."""

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        """HxWx3 uint8 RGB frames -> one list of detections per frame (sorted by score)."""
        ...

    def detect_regions(self, frame: np.ndarray, boxes: np.ndarray) -> list[Detection]:
        """Detections in square regions of `frame` around `boxes` (N, 4) (e.g. the tracks' predicted boxes)."""
        ...


class Tracker(Protocol):
    """Gives detections stable ids across frames; ``lost``: ids deleted by the last update."""

    lost: list[int]

    def update(self, boxes: np.ndarray | None, scores: Sequence[float] | None = None) -> list[TrackedFace]:
        """Advance one frame; boxes (N, 4) of this frame's detections, or None on a frame without detection."""
        ...

    def predicted_boxes(self) -> np.ndarray:
        """(N, 4) boxes where the live tracks are expected on the next frame."""
        ...


class Smoother(Protocol):
    """Smooths each track's landmarks over time; called once per frame per track, in frame order."""

    def update(self, track_id: int, landmarks: np.ndarray, face_size: float, frame: int) -> np.ndarray:
        """Raw landmarks (K, 2) in frame pixels of track `track_id` on frame `frame` -> smoothed (K, 2)."""
        ...

    def reset(self, track_id: int) -> None:
        """Forget a track (the tracker dropped it)."""
        ...


@runtime_checkable
class Sink(Protocol):
    """An output: written once per frame, closed once (``complete``: finalise under the final name)."""

    def write(self, result: FrameResult) -> None: ...

    def close(self, complete: bool = True) -> Any: ...


@runtime_checkable
class EventSink(Sink, Protocol):
    """A sink that also records events (``{"event": "stream_gap", ...}``) between frames."""

    def write_event(self, event: dict[str, Any]) -> None: ...


def registered(registry: dict[str, type], stage: str, name: str) -> type:
    """The class registered under ``name`` in a stage's name -> class map (one clear error for a bad name)."""
    try:
        return registry[name]
    except KeyError:
        raise ValueError(f"{stage} must be one of {', '.join(registry)}, not {name!r}") from None
