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
from typing import Any, Callable

import numpy as np
import torch

from .checkpoint import DEFAULT_WEIGHTS, read_checkpoint
from .config import ModelConfig, from_dict
from .inference import FaceEnhancer, Prediction, cpu_has_int8_dot, pick_device, warn_if_int8_saturates
from .network import JASRNet, JASROutput
from .onnx_export import INPUT_NAME, cached_export, export_model, int8_path, read_metadata, weights_sha256

MISSING_ORT = "--backend onnx needs onnxruntime: pip install 'jasr-video[onnx]' (or use --backend torch)"
PRECISIONS = ("auto", "fp32", "int8")


def import_onnxruntime():
    """onnxruntime, or a RuntimeError with the one-line fix when it is not installed."""
    try:
        import onnxruntime
    except ImportError:
        raise RuntimeError(MISSING_ORT) from None
    return onnxruntime


class OnnxFaceEnhancer(FaceEnhancer):
    """Runs JASRNet exported to ONNX (:mod:`.onnx_export`) on ONNX Runtime; same interface as FaceEnhancer
    (``enhance``, ``enhance_inputs``, ``device``, ``precision``, ``checkpoint``, ``upright``; ``enhance`` and
    ``enhance_inputs`` are inherited).

    weights: a shipped name or .pt checkpoint (exported into the user cache on first use) or an ``.onnx``
    file from ``jasr-export --onnx``. ``model``: an in-memory network exported in memory instead (benchmarks,
    tests; fp32). precision: "fp32"; "int8": the QDQ model ``NAME.int8.onnx`` beside the weights
    (``jasr-export --onnx NAME --int8 --data ...``; it must come from the same checkpoint, checked by its
    SHA-256); "auto": int8 on a CPU with int8 dot products when that file is there, else fp32. An ``.onnx``
    file runs at the precision it was made in. threads: ONNX Runtime's intra-op threads (default: torch's
    thread count, so ``--threads`` applies to both backends).
    """

    backend = "onnx"

    def __init__(self, weights: str | Path = DEFAULT_WEIGHTS, device: str = "auto", precision: str = "auto",
                 model: JASRNet | None = None, checkpoint: dict | None = None, threads: int | None = None) -> None:
        ort = import_onnxruntime()
        if precision not in PRECISIONS:
            raise ValueError(f"--backend onnx runs fp32 or int8 (or auto), not {precision}; "
                             "use --backend torch for fp16 / bf16")
        self.device = pick_device(device)
        self.dtype = torch.float32
        if model is not None:
            if precision == "int8":
                raise ValueError("an in-memory network exports to fp32 only; give weights with a NAME.int8.onnx")
            buffer = io.BytesIO()
            export_model(model, buffer, checkpoint)
            source: Any = buffer.getvalue()
            self.checkpoint, self.config = checkpoint or {}, model.config
            self.onnx_path, self.precision = None, "fp32"
        else:
            self.onnx_path = self._pick_file(weights, precision)
            meta = read_metadata(self.onnx_path)
            if "model_config" not in meta:
                raise ValueError(f"{self.onnx_path}: not exported by jasr-export --onnx (no model_config metadata)")
            self.config = from_dict(ModelConfig, json.loads(meta["model_config"]))
            self.checkpoint = {"path": str(self.onnx_path), "onnx_metadata": meta,
                               "meta": {"train_config": {"crop_margin": float(meta.get("crop_margin", 1.4))},
                                        "sr_factor": int(meta.get("sr_factor", meta.get("upscale", 8))),
                                        "lr_size_range": json.loads(meta.get("lr_size_range", "null"))}}
            self.precision = meta.get("precision", "fp32")
            if precision != "auto" and precision != self.precision:
                raise ValueError(f"{self.onnx_path} is a {self.precision} model, not {precision}: use --precision auto")
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
        self._source, self._options, self._landmarks_session = source, options, None
        self.model = OnnxNetwork(self.session, self.config, self.landmarks_session)

    def _pick_file(self, weights: str | Path, precision: str) -> Path:
        """The .onnx file to run: the given one, the int8 one beside the weights, or the fp32 export (cached)."""
        path = Path(weights)
        if path.suffix == ".onnx":
            if not path.is_file():
                raise FileNotFoundError(f"ONNX model {path} not found (make one with jasr-export --onnx)")
            return path
        if precision == "fp32" or (precision == "auto" and not (self.device.type == "cpu" and cpu_has_int8_dot())):
            return cached_export(weights)
        int8 = int8_path(weights)
        if not int8.is_file():
            if precision == "auto":
                return cached_export(weights)
            raise ValueError(f"no int8 ONNX model {int8}: make it with `jasr-export --onnx {weights} --int8 --data "
                             f"../shared/data/faces68/train --out-dir {int8.parent}` or use --precision fp32")
        meta = read_metadata(int8)
        if meta.get("weights_sha256") != weights_sha256(read_checkpoint(weights)):
            if precision == "auto":
                return cached_export(weights)
            raise ValueError(f"{int8} was made from other weights: make it again with `jasr-export --onnx {weights} "
                             f"--int8 --data ../shared/data/faces68/train --out-dir {int8.parent}`")
        warn_if_int8_saturates("int8", self.device)
        return int8

    def predict(self, inputs: torch.Tensor, sr: bool = True) -> Prediction:
        """One pass of the network: bicubic-upsampled faces (B, 3, 128, 128) in [0, 1]. ``sr=False``: landmarks
        only (``Prediction.sr`` None), from the graph pruned of its SR branch (:meth:`landmarks_session`)."""
        x = np.ascontiguousarray(inputs.detach().float().cpu().numpy())
        as_tensor = lambda a: torch.from_numpy(a).to(self.device)  # noqa: E731
        if not sr:
            landmarks, confidence = self.landmarks_session().run(["landmarks", "confidence"], {INPUT_NAME: x})
            return Prediction(None, as_tensor(landmarks), as_tensor(confidence))
        image, landmarks, confidence = self.session.run(["sr", "landmarks", "confidence"], {INPUT_NAME: x})
        return Prediction(as_tensor(image), as_tensor(landmarks), as_tensor(confidence))

    def landmarks_session(self) -> Any:
        """A session of the same model with only the landmark outputs: every node only the SR image needs is
        pruned (ONNX Runtime runs every node of a graph, whatever outputs are asked for). Made on first use."""
        if self._landmarks_session is None:
            import onnx
            from onnx.utils import Extractor

            proto = onnx.load_from_string(self._source) if isinstance(self._source, bytes) else onnx.load(self._source)
            pruned = Extractor(proto).extract_model([INPUT_NAME], ["heatmaps", "landmarks", "confidence"])
            self._landmarks_session = import_onnxruntime().InferenceSession(
                pruned.SerializeToString(), self._options, providers=self.providers)
        return self._landmarks_session


class OnnxNetwork:
    """An ONNX Runtime session in JASRNet's shape, for code that runs a network itself (``jasr-eval``):
    ``(B, 3, 128, 128)`` -> ``JASROutput(sr, [last-stage heatmaps])``; ``config`` is the exported network's.
    ``sr=False`` runs ``landmarks_session()`` (the graph pruned of the SR branch) when given."""

    def __init__(self, session: Any, config: ModelConfig, landmarks_session: Callable[[], Any] | None = None) -> None:
        self.session, self.config, self.landmarks_session = session, config, landmarks_session

    def eval(self) -> "OnnxNetwork":
        return self

    def __call__(self, x: torch.Tensor, sr: bool = True) -> JASROutput:
        feed = {INPUT_NAME: np.ascontiguousarray(x.float().cpu().numpy())}
        if not sr and self.landmarks_session is not None:
            (heatmaps,) = self.landmarks_session().run(["heatmaps"], feed)
            return JASROutput(None, [torch.from_numpy(heatmaps).to(x.device)])
        image, heatmaps = self.session.run(["sr", "heatmaps"], feed)
        return JASROutput(torch.from_numpy(image).to(x.device) if sr else None, [torch.from_numpy(heatmaps).to(x.device)])
