"""INT8 JASRNet for CPUs: post-training static quantization (torch.ao FX, oneDNN engine).

    jasr-quantize jasr-cpu --data ../shared/data/faces68/train      # calibrate, store in the checkpoint

Calibration runs real training faces through the fp32 network with observers on every activation and
stores only the int8 ranges they chose (``checkpoint["int8"]``: a scale and zero point per activation):
the int8 network is rebuilt from the checkpoint's own weights at load time (:class:`QuantizedJASRNet`), so
fp32 and int8 always come from the same weights. Weights are quantized per output channel (symmetric int8), activations per tensor
(uint8, full range, ranges from histograms: oneDNN's defaults; the x86 engine's 7-bit activations deviated
more from fp32 in a development check). On CPUs with AVX512-VNNI int8 convolutions do twice the multiply-adds per
instruction of bf16; figures and the quality on the test split: models/README.md. Building an int8 network
sets ``torch.backends.quantized.engine`` to oneDNN for the process (its quantized kernels need it).
"""
from __future__ import annotations

import argparse
import copy
import random
import sys
import warnings
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

from .checkpoint import load_model, save_checkpoint
from .config import HR_SIZE
from .data import FaceDataset, find_pairs, lr_inputs
from .network import JASRNet, JASROutput

ENGINE = "onednn"
OBSERVER_KEY = "activation_post_process"


class _Joint(nn.Module):
    """JASRNet's full forward (SR and landmarks) as a module FX can trace: its ``sr`` switch is a Python bool,
    which symbolic tracing cannot take as an input."""

    def __init__(self, net: JASRNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> JASROutput:
        return self.net(x)


def _prepared(model: JASRNet) -> nn.Module:
    """An fp32 copy of `model` with observers inserted (FX graph mode, the engine's default int8 settings)."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_fx

    torch.backends.quantized.engine = ENGINE
    net = _Joint(copy.deepcopy(model).float().to(memory_format=torch.contiguous_format).eval())
    with warnings.catch_warnings():  # torch.ao's FX API announces its move to torchao; it works as documented here
        warnings.simplefilter("ignore")
        return prepare_fx(net, get_default_qconfig_mapping(ENGINE),
                          example_inputs=(torch.zeros(1, 3, HR_SIZE, HR_SIZE),))


@torch.no_grad()  # not inference_mode: the observer state must load into a normal module later
def calibrate(model: JASRNet, inputs: Iterable[torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Each activation's int8 (scale, zero point), chosen by its histogram observer over `inputs` (batches
    of network inputs, (B, 3, 128, 128) in [0, 1])."""
    prepared = _prepared(model)
    for batch in inputs:
        prepared(batch.float())
    return {name: tuple(t.clone() for t in module.calculate_qparams())
            for name, module in prepared.named_modules() if name.startswith(OBSERVER_KEY)}


def _landmarks_only(graph_module: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """A copy of a converted JASRNet graph whose output has no SR image: every node only the SR branch needs
    is removed, the rest (and its int8 ranges) is the same."""
    pruned = copy.deepcopy(graph_module)
    (joint,) = [n for n in pruned.graph.nodes if n.op == "call_function" and n.target is JASROutput]
    joint.args = (None, *joint.args[1:])
    pruned.graph.eliminate_dead_code()
    pruned.recompile()
    return pruned


class QuantizedJASRNet(nn.Module):
    """JASRNet with int8 convolutions, built from fp32 `model` and stored ranges (:func:`calibrate`).

    Takes and returns what JASRNet does (fp32 tensors), ``sr=False`` included (a second int8 graph without
    the SR branch, made on first use); ``config`` is the network's.
    """

    def __init__(self, model: JASRNet, qparams: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        super().__init__()
        from torch.ao.quantization.quantize_fx import convert_fx

        prepared = _prepared(model)
        observers = {n: m for n, m in prepared.named_modules() if n.startswith(OBSERVER_KEY)}
        if set(observers) != set(qparams):
            raise ValueError("the int8 calibration does not fit this network: run jasr-quantize on these weights again")
        for name, observer in observers.items():  # the stored ranges instead of the (empty) observer's
            observer.calculate_qparams = lambda stored=qparams[name]: stored
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.net = convert_fx(prepared)
        self.config = model.config
        self._landmarks_net: torch.fx.GraphModule | None = None

    def forward(self, x: torch.Tensor, sr: bool = True) -> JASROutput:
        if sr:
            return self.net(x.float().contiguous())
        if self._landmarks_net is None:
            self._landmarks_net = _landmarks_only(self.net)
        return self._landmarks_net(x.float().contiguous())


def load_int8(checkpoint: dict[str, Any], model: JASRNet) -> QuantizedJASRNet:
    """The int8 network of a checkpoint read by :func:`read_checkpoint` / :func:`load_model`."""
    stored = checkpoint.get("int8")
    if not stored:
        raise ValueError(f"{checkpoint.get('path', 'these weights')}: no int8 calibration stored; run "
                         "`jasr-quantize WEIGHTS --data ../shared/data/faces68/train` or use another precision")
    if stored.get("engine") != ENGINE or ENGINE not in torch.backends.quantized.supported_engines:
        raise ValueError(f"int8 needs torch's {ENGINE} quantized engine (this torch: "
                         f"{', '.join(torch.backends.quantized.supported_engines)}); use another precision")
    return QuantizedJASRNet(model.cpu(), stored["qparams"])


def calibration_batches(data: str | Path, faces: int, margin: float, batch_size: int = 16,
                        seed: int = 0, lr_sizes: tuple[int, int] = (16, 16)) -> Iterable[torch.Tensor]:
    """Network inputs of `faces` faces drawn (seeded) from a folder of image + .pts pairs, the training
    protocol without augmentation: 128x128 crop, down to a side in `lr_sizes` (min, max; seeded draw;
    16x16 for x8 weights), bicubic back up."""
    pairs = find_pairs(data)
    random.Random(seed).shuffle(pairs)
    dataset = FaceDataset(pairs[:faces], margin=margin)
    sizes = np.random.default_rng(seed)
    for start in range(0, len(dataset), batch_size):
        hr = torch.stack([dataset[i][0] for i in range(start, min(start + batch_size, len(dataset)))])
        yield lr_inputs(hr, sizes.integers(lr_sizes[0], lr_sizes[1] + 1, size=hr.shape[0]))


def main(argv: list[str] | None = None) -> int:
    """`jasr-quantize`: calibrate int8 JASRNet on real faces and store the calibration in the checkpoint."""
    parser = argparse.ArgumentParser(prog="jasr-quantize", description=main.__doc__)
    parser.add_argument("weights", help="shipped name or checkpoint path (e.g. jasr-cpu)")
    parser.add_argument("--data", required=True, help="training faces (image + .pts pairs), e.g. ../shared/data/faces68/train")
    parser.add_argument("--faces", type=int, default=256, help="faces to calibrate on (default 256, seeded draw)")
    parser.add_argument("--out", help="checkpoint to write (default: rewrite the weights' own file)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        model, payload = load_model(args.weights)
        margin = payload["meta"].get("train_config", {}).get("crop_margin", 1.4)
        lr_sizes = tuple(payload["meta"].get("lr_size_range") or (16, 16))  # the weights' training LR sides
        qparams = calibrate(model, calibration_batches(args.data, args.faces, margin, lr_sizes=lr_sizes))
    except (FileNotFoundError, ValueError) as error:
        print(f"jasr-quantize: error: {error}", file=sys.stderr)
        return 2
    out = Path(args.out or payload["path"])
    half = all(v.dtype == torch.float16 for v in payload["state_dict"].values() if v.is_floating_point())
    extra = {k: v for k, v in payload.items() if k not in ("format", "model_config", "state_dict", "meta", "path")}
    extra["int8"] = {"engine": ENGINE, "qparams": qparams,
                     "calibration": {"data": Path(args.data).name, "faces": args.faces, "seed": 0,
                                     "lr_sizes": list(lr_sizes)}}
    save_checkpoint(out, model, {k: v for k, v in payload["meta"].items() if k != "parameters"}, half=half, **extra)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): int8 calibration on {args.faces} faces of {args.data}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
