"""Who a face is: 128-number face descriptors and their distance (needs the extra ``jasr-video[identity]``).

    from jasr_video.identity import Recognizer, distance, compare

    rec = Recognizer()
    a = rec.describe(face_a, points_a)       # 128x128 uint8 RGB face (e.g. a JASRNet output) + its 68 points
    b = rec.describe(face_b, points_b)
    distance(a, b), compare(a, b)            # Euclidean distance; True when below MATCH_THRESHOLD

The recogniser is dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat`` from the
``face-recognition-models`` package). The face is aligned by dlib's chip extraction from the face's own 68
points (300-W order, in the face image's pixels), so the same points give the same alignment whatever the pixels:
a super-resolved face and its high-resolution original differ only in their pixels.

``MATCH_THRESHOLD`` is the distance below which two faces are taken for one person: the decision threshold the
verification benchmark chooses on high-resolution pairs (``python -m jasr_video.tools.verifybench``; figures in
docs/benchmarks.md).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Sequence

import numpy as np

INSTALL = "pip install 'jasr-video[identity]'"
MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
DESCRIPTOR_SIZE = 128
# Distance below which two descriptors are one person: the HR threshold of verifybench (0.660, docs/benchmarks.md,
# "Verification"; its thresholds for jasr-cpu faces at 16-32 px: 0.66-0.68); dlib's own suggestion is 0.6.
MATCH_THRESHOLD = 0.66


class IdentityUnavailable(RuntimeError):
    """dlib or its face models are not installed; str() is the one line to show."""


def model_path() -> Path:
    """The recogniser's weights file from ``face-recognition-models`` (found without importing the package, whose
    ``__init__`` needs setuptools' retired ``pkg_resources``)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise IdentityUnavailable(f"face identity needs the package face-recognition-models: {INSTALL}")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / MODEL_FILE
    if not path.exists():
        raise IdentityUnavailable(f"face identity: {path} is missing (reinstall face-recognition-models: {INSTALL})")
    return path


def _dlib() -> Any:
    try:
        import dlib
    except ImportError:
        raise IdentityUnavailable(f"face identity needs dlib, which is not installed: {INSTALL}") from None
    return dlib


class Recognizer:
    """128-number descriptors of faces given with their 68 points; ``num_jitters`` > 0 averages that many
    jittered copies (slower, a little steadier)."""

    def __init__(self, num_jitters: int = 0, padding: float = 0.25) -> None:
        self.dlib = _dlib()
        self.net = self.dlib.face_recognition_model_v1(str(model_path()))
        self.num_jitters = int(num_jitters)
        self.padding = float(padding)

    def chip(self, face: np.ndarray, points: np.ndarray) -> np.ndarray:
        """The 150x150 aligned chip the network sees (uint8 RGB)."""
        return np.asarray(self.dlib.get_face_chip(np.ascontiguousarray(face, np.uint8), self._shape(points),
                                                  size=150, padding=self.padding))

    def describe(self, face: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Descriptor (128,) float32 of ``face`` (H x W x 3 uint8 RGB) whose 68 points (68, 2) are in its pixels."""
        return self.describe_many([face], [points])[0]

    def describe_many(self, faces: Sequence[np.ndarray], points: Sequence[np.ndarray]) -> np.ndarray:
        """Descriptors (N, 128) float32 of N faces, each with its 68 points."""
        if len(faces) != len(points):
            raise ValueError(f"{len(faces)} faces but {len(points)} point sets")
        if not len(faces):
            return np.zeros((0, DESCRIPTOR_SIZE), np.float32)
        chips = [self.chip(f, p) for f, p in zip(faces, points)]
        out = self.net.compute_face_descriptor(chips, self.num_jitters)
        return np.asarray([np.asarray(d) for d in out], np.float32)

    def _shape(self, points: np.ndarray) -> Any:
        pts = np.asarray(points, np.float64).reshape(-1, 2)
        if len(pts) != 68:
            raise ValueError(f"68 points are needed, not {len(pts)}")
        x0, y0 = np.floor(pts.min(axis=0)).astype(int)
        x1, y1 = np.ceil(pts.max(axis=0)).astype(int)
        parts = [self.dlib.point(int(round(x)), int(round(y))) for x, y in pts]
        return self.dlib.full_object_detection(self.dlib.rectangle(int(x0), int(y0), int(x1), int(y1)), parts)


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """Euclidean distance between descriptors: two (128,) give a float; (N, 128) and (M, 128) an (N, M) array."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim == 1 and b.ndim == 1:
        return float(np.linalg.norm(a - b))
    return np.linalg.norm(np.atleast_2d(a)[:, None, :] - np.atleast_2d(b)[None, :, :], axis=-1)


def compare(a: np.ndarray, b: np.ndarray, threshold: float = MATCH_THRESHOLD) -> bool:
    """True when two descriptors are taken for one person (distance below ``threshold``)."""
    return bool(distance(a, b) < threshold)
