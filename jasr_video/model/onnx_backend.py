"""The enhance stage on ONNX Runtime: :class:`OnnxFaceEnhancer`, a drop-in for :class:`FaceEnhancer`.

    jasr-video clip.mp4 --json clip.jsonl --backend onnx                 # shipped weights, exported on first use
    jasr-video clip.mp4 --json clip.jsonl --backend onnx --weights jasr-cpu.onnx   # a file from jasr-export --onnx

Needs the optional extra ``pip install 'jasr-video[onnx]'`` (onnxruntime, onnx). Runs on ONNX Runtime's CUDA
execution provider when the device is CUDA and the installed onnxruntime has it (onnxruntime-gpu), else on
its CPU provider. Weights given by name or .pt path are exported once into the user cache
(:func:`~jasr_video.model.onnx_export.cached_export`); nothing is downloaded. Face preparation (down to
16x16, bicubic up to 128x128) is the torch code the torch backend runs, so both backends see the same inputs.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import DEFAULT_WEIGHTS
from .config import ModelConfig, from_dict
from .inference import FaceEnhancer, Prediction, pick_device
from .network import JASRNet
from .onnx_export import INPUT_NAME, cached_export, export_model, read_metadata

MISSING_ORT = "--backend onnx needs onnxruntime: pip install 'jasr-video[onnx]' (or use --backend torch)"
PRECISIONS = ("auto", "fp32")


def import_onnxruntime():
    """onnxruntime, or a RuntimeError with the one-line fix when it is not installed."""
    try:
        import onnxruntime
    except ImportError:
        raise RuntimeError(MISSING_ORT) from None
    return onnxruntime


class OnnxFaceEnhancer(FaceEnhancer):
    """Runs JASRNet exported to ONNX (:mod:`.onnx_export`) on ONNX Runtime; same interface as FaceEnhancer
    (``enhance``, ``enhance_inputs``, ``device``, ``precision``, ``checkpoint``; ``enhance`` is inherited).

    weights: a shipped name or .pt checkpoint (exported into the user cache on first use) or an ``.onnx``
    file from ``jasr-export --onnx``. ``model``: an in-memory network exported in memory instead (benchmarks,
    tests). precision: "fp32" (or "auto", which is fp32 here). threads: ONNX Runtime's intra-op threads
    (default: torch's thread count, so ``--threads`` applies to both backends).
    """

    backend = "onnx"

    def __init__(self, weights: str | Path = DEFAULT_WEIGHTS, device: str = "auto", precision: str = "auto",
                 model: JASRNet | None = None, checkpoint: dict | None = None, threads: int | None = None) -> None:
        ort = import_onnxruntime()
        if precision not in PRECISIONS:
            raise ValueError(f"--backend onnx runs fp32 (precision auto or fp32), not {precision}; "
                             "use --backend torch for fp16 / bf16 / int8")
        self.device = pick_device(device)
        self.precision, self.dtype = "fp32", torch.float32
        if model is not None:
            buffer = io.BytesIO()
            export_model(model, buffer, checkpoint)
            source: Any = buffer.getvalue()
            self.checkpoint, self.config = checkpoint or {}, model.config
            self.onnx_path = None
        else:
            path = Path(weights)
            self.onnx_path = path if path.suffix == ".onnx" and path.is_file() else cached_export(weights)
            meta = read_metadata(self.onnx_path)
            if "model_config" not in meta:
                raise ValueError(f"{self.onnx_path}: not exported by jasr-export --onnx (no model_config metadata)")
            self.config = from_dict(ModelConfig, json.loads(meta["model_config"]))
            self.checkpoint = {"path": str(self.onnx_path), "onnx_metadata": meta,
                               "meta": {"train_config": {"crop_margin": float(meta.get("crop_margin", 1.4))}}}
            source = str(self.onnx_path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initializers and the like stay quiet
        providers = ["CPUExecutionProvider"]
        if self.device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise RuntimeError("--backend onnx on CUDA needs onnxruntime-gpu (CUDAExecutionProvider); "
                                   "use --device cpu or --backend torch")
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(source, options, providers=providers)
        self.providers = self.session.get_providers()

    def enhance_inputs(self, inputs: torch.Tensor) -> Prediction:
        """inputs: bicubic-upsampled faces (B, 3, 128, 128) in [0, 1]."""
        x = np.ascontiguousarray(inputs.detach().float().cpu().numpy())
        sr, landmarks, confidence, _ = self.session.run(None, {INPUT_NAME: x})
        as_tensor = lambda a: torch.from_numpy(a).to(self.device)  # noqa: E731
        return Prediction(as_tensor(sr), as_tensor(landmarks), as_tensor(confidence))
