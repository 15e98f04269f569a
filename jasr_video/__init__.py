"""jasr-video: tiny faces in video, detected, tracked, super-resolved x8 and aligned by JASRNet."""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:  # lazy: `import jasr_video.model` must not load the video stack
    if name in ("Pipeline", "PipelineConfig", "FrameResult", "FaceResult"):
        from . import pipeline

        return getattr(pipeline, name)
    if name in ("RoutedEnhancer", "RoutedCrops"):
        from . import route

        return getattr(route, name)
    raise AttributeError(f"module 'jasr_video' has no attribute {name!r}")
