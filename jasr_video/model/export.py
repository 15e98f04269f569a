"""`jasr-export`: shippable weights from a training checkpoint, or (``--onnx``) the weights as ONNX.

A module of its own so that :mod:`.checkpoint` (read and write checkpoints) does not import the ONNX exporter,
which imports it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .checkpoint import load_model, save_checkpoint
from .onnx_export import main as onnx_main


def export_main(argv: list[str] | None = None) -> int:
    """`jasr-export`: strip a training checkpoint to shippable (optionally fp16) weights. `jasr-export --onnx`:
    weights to ONNX instead (`jasr-export --onnx --help`; :mod:`.onnx_export`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--onnx" in argv:
        return onnx_main([a for a in argv if a != "--onnx"])
    parser = argparse.ArgumentParser(prog="jasr-export", description=export_main.__doc__)
    parser.add_argument("checkpoint", help="training checkpoint (e.g. runs/cpu/best.pt)")
    parser.add_argument("output", help="output file (e.g. models/jasr-cpu.pt)")
    parser.add_argument("--fp32", action="store_true", help="keep fp32 weights (default: fp16)")
    args = parser.parse_args(argv)
    try:
        model, payload = load_model(args.checkpoint)
    except (FileNotFoundError, ValueError) as error:
        print(f"jasr-export: error: {error}", file=sys.stderr)
        return 2
    save_checkpoint(args.output, model, payload["meta"], half=not args.fp32)
    print(f"wrote {args.output} ({Path(args.output).stat().st_size / 1e6:.1f} MB)")
    return 0
