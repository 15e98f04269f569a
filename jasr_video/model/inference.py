"""Batched JASRNet inference: LR faces in, super-resolved faces and 68 landmarks with confidence out."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoint import DEFAULT_WEIGHTS, load_model
from .config import HR_SIZE, LR_SIZE
from .data import degrade, upsample
from .landmarks import heatmap_landmarks
from .network import JASRNet
from .upright import DEFAULT_UPRIGHT_DEGREES, upright_landmarks


@dataclass
class Prediction:
    sr: torch.Tensor | None  # (B, 3, 128, 128) float in [0, 1]; None from a landmarks-only pass (sr=False)
    landmarks: torch.Tensor  # (B, 68, 2) in 128x128 pixel coordinates
    confidence: torch.Tensor  # (B, 68) in [0, 1]


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
    return torch.device(device)


def cpu_has_fast_bf16() -> bool:
    """True when oneDNN runs bf16 natively on this CPU (AVX512-BF16 / AMX); elsewhere bf16 is emulated and slow."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device, int8_calibrated: bool = False) -> str:
    """"auto" -> fp16 on CUDA (H100: 1.5x fp32's faces/s, within 0.3 of 255 levels); on CPU int8 when the
    weights carry an int8 calibration (``jasr-quantize``) and the CPU has int8 dot products (2-core AVX512-VNNI
    CPU: ~1.7x bf16's faces/s, same PSNR / NME +0.01 points on the test split), else bf16 on CPUs with native
    bf16, else fp32.
    Figures: docs/benchmarks.md, models/README.md."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "fp16"
    if device.type == "cpu" and int8_calibrated and cpu_has_fast_int8():
        return "int8"
    return "bf16" if device.type == "cpu" and cpu_has_fast_bf16() else "fp32"


def cpu_has_fast_int8() -> bool:
    """True when this torch has oneDNN's quantized engine and the CPU has int8 dot-product instructions
    (AVX512-VNNI, AVX-VNNI or AMX; read from /proc/cpuinfo, so Linux only)."""
    return "onednn" in torch.backends.quantized.supported_engines and cpu_has_int8_dot()


def cpu_has_int8_dot() -> bool:
    """True when the CPU has int8 dot-product instructions (AVX512-VNNI, AVX-VNNI or AMX; /proc/cpuinfo)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


def cpu_int8_saturates() -> bool:
    """True on x86 CPUs without int8 dot products: there int8 convolutions sum uint8 x int8 products in 16-bit
    registers that saturate (the full-range activations of the shipped calibration overflow them), so int8 output
    drifts far from fp32 (tests/test_enhance_precision.py). Other CPUs (e.g. ARM) are not flagged."""
    import platform

    return platform.machine().lower() in ("x86_64", "amd64", "x86", "i686") and not cpu_has_int8_dot()


INT8_SATURATES_WARNING = ("int8 JASRNet on a CPU without int8 dot products (AVX512-VNNI, AVX-VNNI or AMX): its sums "
                          "saturate and the output drifts from fp32; use --precision fp32 (or auto) on this CPU")


_warned_int8: list[bool] = []  # the int8 warning was given in this process


def warn_if_int8_saturates(precision: str, device: torch.device) -> None:
    """One warning per process when `precision` is int8 on a CPU where it saturates (:func:`cpu_int8_saturates`)."""
    if precision == "int8" and device.type == "cpu" and cpu_int8_saturates() and not _warned_int8:
        import warnings

        _warned_int8.append(True)
        warnings.warn(INT8_SATURATES_WARNING, RuntimeWarning, stacklevel=3)


class FaceEnhancer:
    """Loads JASRNet weights (by shipped name or path) and runs batches of tiny faces through it.

    precision: "fp32", "fp16", "bf16", "int8" (CPU, weights calibrated by ``jasr-quantize``:
    :mod:`.quantize`) or "auto" (:func:`resolve_precision`). Tolerances against fp32 on real faces:
    tests/test_enhance_precision.py. The float networks run channels_last (faster convolutions on CPU and GPU).
    ``model`` runs an in-memory network instead of loading ``weights`` (benchmarks, tests); ``checkpoint``
    is then the checkpoint it came from, if any (its int8 calibration). ``upright``: eye-line tilt in degrees
    above which a face's landmarks come from a pass on the face turned level (0 = one pass for every face).
    """

    upright: float = DEFAULT_UPRIGHT_DEGREES
    backend = "torch"

    def __init__(self, weights: str | Path = DEFAULT_WEIGHTS, device: str = "auto", precision: str = "fp32",
                 model: JASRNet | None = None, checkpoint: dict | None = None) -> None:
        self.device = pick_device(device)
        if model is not None:
            self.model, self.checkpoint = model.to(self.device).eval(), checkpoint or {}
        else:
            self.model, self.checkpoint = load_model(weights, self.device)
        if not (self.model.config.does_sr and self.model.config.does_align):
            raise ValueError(f"{weights}: a single-task model cannot run the pipeline; use joint weights")
        self.precision = resolve_precision(precision, self.device, bool(self.checkpoint.get("int8")))
        if self.precision == "int8":
            if self.device.type != "cpu":
                raise ValueError("int8 JASRNet runs on CPU only: use --precision fp16 or bf16 on CUDA")
            from .quantize import load_int8

            self.model, self.dtype = load_int8(self.checkpoint, self.model), torch.float32
            warn_if_int8_saturates(self.precision, self.device)
            return
        self.dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[self.precision]
        if self.dtype != torch.float32:
            self.model = self.model.to(self.dtype)
        self.model = self.model.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def enhance_inputs(self, inputs: torch.Tensor, sr: bool = True) -> Prediction:
        """inputs: bicubic-upsampled faces (B, 3, 128, 128) in [0, 1]. Faces whose eye line tilts more than
        ``upright`` degrees get their landmarks from a second pass on the face turned level (:mod:`.upright`).
        ``sr=False``: landmarks only (``Prediction.sr`` None; the network skips its SR branch)."""
        return upright_landmarks(self.predict, inputs, self.predict(inputs, sr), self.upright)

    @torch.inference_mode()
    def predict(self, inputs: torch.Tensor, sr: bool = True) -> Prediction:
        """One pass of the network: inputs and ``sr`` as for :meth:`enhance_inputs`."""
        x = inputs.to(self.device, self.dtype, non_blocking=True).contiguous(memory_format=torch.channels_last)
        out = self.model(x, sr=sr)
        landmarks, confidence = heatmap_landmarks(out.heatmaps[-1], self.model.config.num_landmarks, x.shape[-1])
        return Prediction(out.sr.float().clamp(0, 1) if out.sr is not None else None, landmarks, confidence)

    def enhance(self, faces: torch.Tensor, sr: bool = True) -> Prediction:
        """faces: any-size square crops (B, 3, S, S) in [0, 1]; brought to 16x16 then up to 128x128."""
        faces = faces.to(self.device)
        lr = faces if faces.shape[-1] == LR_SIZE else degrade(faces.float(), LR_SIZE)
        return self.enhance_inputs(upsample(lr, HR_SIZE), sr)
