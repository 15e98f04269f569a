"""The stage interface (jasr_video.types): light to import, and every stage implements its Protocol."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_sinks_and_types_load_without_torch_the_pipeline_or_the_detector():
    loaded = _modules_after("import jasr_video.sinks, jasr_video.types")
    assert not {"torch", "jasr_video.pipeline", "jasr_video.detect", "jasr_video.model"} & loaded


def test_lr_size_mirror_matches_the_model():
    from jasr_video.model.config import LR_SIZE
    from jasr_video.types import LR_SIZE as mirrored

    assert mirrored == LR_SIZE


def test_old_import_paths_still_work():
    from jasr_video import types
    from jasr_video.detect import Detection
    from jasr_video.pipeline import FaceResult, FrameResult
    from jasr_video.source import Frame
    from jasr_video.track import TrackedFace

    assert (Detection, FaceResult, FrameResult, Frame, TrackedFace) == (
        types.Detection, types.FaceResult, types.FrameResult, types.Frame, types.TrackedFace)


def test_every_stage_implements_its_protocol():
    from jasr_video.detect import FaceDetector
    from jasr_video.smooth import SMOOTHERS
    from jasr_video.outputs import SINKS
    from jasr_video.track import SortTracker
    from jasr_video.types import Detector, Sink, Smoother, Tracker

    def has(cls: type, protocol: type) -> bool:
        names = [n for n in dir(protocol) if not n.startswith("_") and n in protocol.__dict__]
        names += list(getattr(protocol, "__annotations__", {}))
        return all(hasattr(cls, n) or n in getattr(cls, "__annotations__", {}) or n == "lost" for n in names)

    assert has(FaceDetector, Detector)
    assert has(SortTracker, Tracker)
    for cls in SMOOTHERS.values():
        assert has(cls, Smoother), cls
    for entry in SINKS.values():
        assert has(entry.cls, Sink), entry
