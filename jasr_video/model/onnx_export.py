"""JASRNet to ONNX: a portable model with landmark decoding inside the graph, for ONNX Runtime, TensorRT or
OpenVINO.

    jasr-export --onnx jasr-cpu                       # -> jasr-cpu.onnx in the current folder
    jasr-export --onnx --all --out-dir onnx/          # every shipped weight set in models/
    jasr-export --onnx runs/cpu/best.pt model.onnx    # any checkpoint, any output path
    jasr-export --onnx jasr-cpu --int8 --data ../shared/data/faces68/train --out-dir models   # jasr-cpu.int8.onnx

The graph (:class:`DeployableJASRNet`) takes what JASRNet takes and returns what the pipeline uses:

* input ``input``: float32 (batch, 3, 128, 128), RGB in [0, 1], NCHW: the face brought down to the model's
  LR size (16x16 for x8: anti-aliased bicubic) and bicubic-upsampled back to 128x128 (PyTorch
  ``F.interpolate(mode="bicubic", align_corners=False)``, clamped to [0, 1]); see
  :func:`jasr_video.model.data.degrade` / :func:`~jasr_video.model.data.upsample`. The mean shift (subtract
  the RGB mean, add it back to the SR output) is inside the graph: feed plain [0, 1] RGB.
* outputs ``sr`` (batch, 3, 128, 128) in [0, 1]; ``landmarks`` (batch, 68, 2) x, y in 128x128 input pixels
  (heatmap peak refined to sub-pixel, as :func:`~jasr_video.model.landmarks.decode_heatmaps`); ``confidence``
  (batch, 68) heatmap peak values in [0, 1]; ``heatmaps`` (batch, 69, 16, 16) of the last stage (32x32
  for weights with a refine stage) (68 landmarks
  + background), for decoders of one's own.

The batch axis is dynamic. The model's configuration, the weights' SHA-256 (:func:`weights_sha256`), the opset and the input
normalisation are in the file's ``metadata_props`` (:func:`read_metadata`). Exported with torch's TorchScript
exporter (``dynamo=False``: needs only ``onnx``), fp32 weights.

``--int8`` writes ``NAME.int8.onnx`` instead: ONNX Runtime post-training static quantization (QDQ format) of
the convolutions only (weights int8 per output channel, activations uint8 per tensor, MinMax ranges over the
same 256 seeded training faces ``jasr-quantize`` uses); the landmark decoding and the residual additions stay
fp32. It needs calibration faces, so it is made once and shipped beside the weights, never at run time.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import available_weights, models_dir, read_checkpoint, resolve_weights
from .config import HR_SIZE, ModelConfig, from_dict, to_dict
from .landmarks import heatmap_landmarks
from .network import RGB_MEAN, JASRNet

OPSET = 17
EXPORT_VERSION = 1  # bump when the graph's inputs, outputs or decoding change (part of the cache key)
INPUT_NAME = "input"
OUTPUT_NAMES = ("sr", "landmarks", "confidence", "heatmaps")
MISSING_ONNX = "ONNX export needs the onnx package: pip install 'jasr-video[onnx]'"


class DeployableJASRNet(nn.Module):
    """JASRNet plus what the pipeline does after it: SR clamped to [0, 1], landmarks decoded to input pixels."""

    def __init__(self, model: JASRNet) -> None:
        super().__init__()
        if not (model.config.does_sr and model.config.does_align):
            raise ValueError("only joint (SR + landmarks) weights export to the deployable graph")
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.model(x)
        heatmaps = out.heatmaps[-1]
        landmarks, confidence = heatmap_landmarks(heatmaps, self.model.config.num_landmarks, x.shape[-1])
        return out.sr.clamp(0, 1), landmarks, confidence, heatmaps


def weights_sha256(checkpoint: dict[str, Any]) -> str:
    """SHA-256 of a checkpoint's model config and weight tensors as stored: the identity of the network, not of
    the file (re-saving it, or adding an int8 calibration with jasr-quantize, keeps it)."""
    digest = hashlib.sha256(json.dumps(checkpoint["model_config"], sort_keys=True).encode())
    for key in sorted(checkpoint["state_dict"]):
        tensor = checkpoint["state_dict"][key]
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def upscale_factor(model: JASRNet) -> int:
    """The SR factor, read from the network itself: 2 per pixel-shuffle step (x8: three)."""
    return 2 ** sum(isinstance(m, nn.PixelShuffle) for m in model.modules())


def metadata(model: JASRNet, checkpoint: dict[str, Any], opset: int) -> dict[str, str]:
    """What a deployer needs beside the graph (all values are strings, as ONNX metadata_props are)."""
    meta = checkpoint.get("meta", {})
    path = checkpoint.get("path")
    factor = int(meta.get("sr_factor", upscale_factor(model)))  # x4 / x2 weights share the x8 architecture
    lr_size = HR_SIZE // factor
    low, high = meta.get("lr_size_range") or (lr_size, lr_size)
    lr_text = f"{lr_size}x{lr_size}" if low == high == lr_size else f"a side in {low}-{high} px"
    return {
        "producer": "jasr-video",
        "precision": "fp32",
        "export_version": str(EXPORT_VERSION),
        "opset": str(opset),
        "model_config": json.dumps(to_dict(model.config)),
        "upscale": str(factor),
        "lr_size": str(lr_size),
        "sr_factor": str(factor),
        "lr_size_range": json.dumps([int(low), int(high)]),
        "weights": Path(path).stem if path else "in-memory",
        "weights_sha256": weights_sha256(checkpoint) if "state_dict" in checkpoint else "",
        "crop_margin": str(meta.get("train_config", {}).get("crop_margin", 1.4)),
        "input": f"float32 (batch, 3, {HR_SIZE}, {HR_SIZE}) NCHW RGB in [0, 1]",
        "input_normalisation": (
            f"face crop (square, side = crop_margin x face box) brought down to {lr_text} with "
            f"anti-aliased bicubic, then bicubic up to {HR_SIZE}x{HR_SIZE} (align_corners=False), clamped to "
            f"[0, 1]; RGB mean {list(RGB_MEAN)} is subtracted inside the graph (and added back to sr): feed plain "
            "[0, 1] RGB"),
        "outputs": ("sr (batch, 3, H, W) in [0, 1]; landmarks (batch, 68, 2) x, y in input pixels (300-W order, "
                    "0-based); confidence (batch, 68) heatmap peak in [0, 1]; heatmaps (batch, 69, h, w) last "
                    "stage, 68 landmarks + background"),
        "landmark_decoding": ("inside the graph: argmax of each heatmap, refined by a parabola through the "
                              "log-heatmap at the peak and its neighbours along x and y; pixel = cell * s + "
                              "(s - 1) / 2 with s = input side / heatmap side"),
    }


def export_model(model: JASRNet, output: str | Path | io.BytesIO, checkpoint: dict[str, Any] | None = None,
                 opset: int = OPSET) -> None:
    """Write `model` (fp32) as ONNX with a dynamic batch axis and metadata to a path or a BytesIO."""
    try:
        import onnx
    except ImportError:
        raise RuntimeError(MISSING_ONNX) from None
    net = DeployableJASRNet(JASRNet(model.config).eval())
    net.model.load_state_dict({k: v.float() for k, v in model.state_dict().items()})
    buffer = io.BytesIO()
    axes = {name: {0: "batch"} for name in (INPUT_NAME, *OUTPUT_NAMES)}
    with warnings.catch_warnings():  # the TorchScript exporter announces the dynamo one; it works as documented
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(2, 3, HR_SIZE, HR_SIZE),), buffer, dynamo=False, opset_version=opset,
                          input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES), dynamic_axes=axes)
    proto = onnx.load_from_string(buffer.getvalue())
    proto.doc_string = "JASRNet (Yin et al., AAAI 2020): joint x8 face super-resolution and 68 landmarks, jasr-video"
    for key, value in metadata(model, checkpoint or {}, opset).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    if isinstance(output, io.BytesIO):
        output.write(proto.SerializeToString())
        return
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    tmp.write_bytes(proto.SerializeToString())
    os.replace(tmp, output)  # atomic: a half-written file never has the final name


def export_weights(weights: str | Path, output: str | Path, opset: int = OPSET) -> Path:
    """Export a shipped weights name or a checkpoint path to `output`; returns the path written."""
    checkpoint = read_checkpoint(weights)
    model = JASRNet(from_dict(ModelConfig, checkpoint["model_config"]))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in checkpoint["state_dict"].items()})
    export_model(model.eval(), output, checkpoint, opset)
    return Path(output)


def write_metadata(path: str | Path, updates: dict[str, str]) -> None:
    """Set metadata_props entries of an ONNX file in place."""
    import onnx

    proto = onnx.load(str(path))
    existing = {entry.key: entry for entry in proto.metadata_props}
    for key, value in updates.items():
        entry = existing.get(key) or proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def quantize_int8(weights: str | Path, output: str | Path, data: str | Path, faces: int = 256,
                  opset: int = OPSET) -> Path:
    """The int8 (QDQ) ONNX model of these weights, calibrated on `faces` seeded faces of `data` (image + .pts
    pairs, the training protocol: :func:`~jasr_video.model.quantize.calibration_batches`)."""
    try:
        from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                              quantize_static)
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise RuntimeError("int8 ONNX needs onnxruntime: pip install 'jasr-video[onnx]'") from None
    from .quantize import calibration_batches

    checkpoint = read_checkpoint(weights)
    margin = checkpoint["meta"].get("train_config", {}).get("crop_margin", 1.4)
    lr_sizes = tuple(checkpoint["meta"].get("lr_size_range") or (16, 16))  # the weights' training LR sides
    batches = iter([b.numpy() for b in calibration_batches(data, faces, margin, lr_sizes=lr_sizes)])

    class Reader(CalibrationDataReader):
        def get_next(self) -> dict[str, Any] | None:
            batch = next(batches, None)
            return None if batch is None else {INPUT_NAME: batch}

    output = Path(output)
    with tempfile.TemporaryDirectory(prefix="jasr-video-int8-") as folder:
        fp32, prepared = Path(folder) / "fp32.onnx", Path(folder) / "prepared.onnx"
        export_weights(weights, fp32, opset)
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        quantized = Path(folder) / "int8.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_static(str(prepared), str(quantized), Reader(), quant_format=QuantFormat.QDQ,
                            op_types_to_quantize=["Conv"], per_channel=True, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
        write_metadata(quantized, {
            "precision": "int8",
            "int8": (f"onnxruntime static QDQ, Conv only, weights int8 per channel, activations uint8 per tensor, "
                     f"MinMax over {faces} seeded faces of {Path(data).name}")})
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
        shutil.copyfile(quantized, tmp)
        os.replace(tmp, output)
    return output


def int8_path(weights: str | Path) -> Path:
    """Where the int8 ONNX model of these weights is looked for: NAME.int8.onnx beside the checkpoint."""
    path = resolve_weights(weights)
    return path.with_name(f"{path.stem}.int8.onnx")


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata_props of an exported file (reads only the model's header, not the weights' bytes into ORT)."""
    try:
        import onnx
    except ImportError:
        raise RuntimeError(MISSING_ONNX) from None
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # noqa: BLE001 - any parse failure means a bad file
        raise ValueError(f"{path}: not an ONNX model ({error.__class__.__name__})") from None
    return {entry.key: entry.value for entry in proto.metadata_props}


def cache_dir() -> Path:
    """Where exported models are cached: $JASR_VIDEO_CACHE, else $XDG_CACHE_HOME/jasr-video, else
    ~/.cache/jasr-video (the weights' own folder may be read-only)."""
    env = os.environ.get("JASR_VIDEO_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "jasr-video"


def cached_export(weights: str | Path, opset: int = OPSET) -> Path:
    """The ONNX file of these weights in :func:`cache_dir`, exported on first use. Keyed by the weights'
    :func:`weights_sha256`, the opset and the exporter's version, so changed weights never reuse a stale export."""
    path = resolve_weights(weights)
    target = cache_dir() / f"{path.stem}-{weights_sha256(read_checkpoint(path))[:16]}-op{opset}-v{EXPORT_VERSION}.onnx"
    if not target.is_file():
        try:
            export_weights(path, target, opset)
        except OSError as error:  # an unwritable cache: export into a private temporary folder instead
            target = Path(tempfile.mkdtemp(prefix="jasr-video-onnx-")) / target.name
            export_weights(path, target, opset)
            print(f"jasr-video: cache {cache_dir()} not writable ({error.strerror}); exported to {target}",
                  file=sys.stderr)
    return target


def main(argv: list[str] | None = None) -> int:
    """`jasr-export --onnx`: JASRNet weights to ONNX (dynamic batch, landmarks decoded in the graph)."""
    parser = argparse.ArgumentParser(prog="jasr-export --onnx", description=main.__doc__)
    parser.add_argument("weights", nargs="?", help="shipped weights name (e.g. jasr-cpu) or checkpoint path")
    parser.add_argument("output", nargs="?", help="output .onnx file (default: OUT_DIR/NAME.onnx)")
    parser.add_argument("--all", action="store_true", help=f"export every shipped weight set ({models_dir()})")
    parser.add_argument("--out-dir", default=".", help="folder for NAME.onnx files (default: current folder)")
    parser.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default {OPSET})")
    parser.add_argument("--int8", action="store_true", help="write the int8 (QDQ) model NAME.int8.onnx instead "
                        "(needs --data; the onnx backend's int8 looks for it beside the weights)")
    parser.add_argument("--data", help="calibration faces for --int8 (image + .pts pairs), e.g. "
                        "../shared/data/faces68/train")
    parser.add_argument("--faces", type=int, default=256, help="faces to calibrate --int8 on (default 256, seeded)")
    args = parser.parse_args(argv)
    if bool(args.weights) == args.all or (args.all and args.output):
        parser.error("give one weights name or path (optionally an output file), or --all")
    if args.int8 and not args.data:
        parser.error("--int8 needs --data (calibration faces, e.g. ../shared/data/faces68/train)")
    names = available_weights() if args.all else [args.weights]
    if not names:
        print(f"jasr-export: error: no shipped weights in {models_dir()} (set JASR_VIDEO_MODELS)", file=sys.stderr)
        return 2
    for name in names:
        suffix = ".int8.onnx" if args.int8 else ".onnx"
        output = Path(args.output) if args.output else Path(args.out_dir) / f"{Path(name).stem}{suffix}"
        try:
            if args.int8:
                quantize_int8(name, output, args.data, args.faces, args.opset)
            else:
                export_weights(name, output, args.opset)
        except (FileNotFoundError, ValueError, RuntimeError, OSError) as error:
            print(f"jasr-export: error: {error}", file=sys.stderr)
            return 2
        print(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB, opset {args.opset})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
