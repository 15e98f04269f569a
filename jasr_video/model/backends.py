"""The JASRNet runtimes by name: :func:`make_enhancer` gives the FaceEnhancer of a backend.

A module of its own so that :mod:`.inference` (the torch FaceEnhancer) does not import :mod:`.onnx_backend`,
which builds on it. Importing this module does not import onnxruntime (only an ONNX enhancer does).
"""
from __future__ import annotations

from pathlib import Path

from .checkpoint import DEFAULT_WEIGHTS
from .inference import FaceEnhancer
from .onnx_backend import OnnxFaceEnhancer

BACKENDS = ("torch", "onnx")


def make_enhancer(weights: str | Path = DEFAULT_WEIGHTS, device: str = "auto", precision: str = "auto",
                  backend: str = "torch") -> FaceEnhancer:
    """A FaceEnhancer on `backend`: "torch" (:class:`~.inference.FaceEnhancer`) or "onnx" (ONNX Runtime,
    :class:`~.onnx_backend.OnnxFaceEnhancer`, optional extra ``jasr-video[onnx]``)."""
    if backend == "onnx":
        return OnnxFaceEnhancer(weights, device=device, precision=precision)
    if backend != "torch":
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    return FaceEnhancer(weights, device=device, precision=precision)
