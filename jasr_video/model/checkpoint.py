"""Checkpoints that carry their own configuration and metadata, and shipped weights loaded by name."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch.torch_version import TorchVersion

from .config import ModelConfig, from_dict, to_dict
from .network import JASRNet, count_parameters

DEFAULT_WEIGHTS = "jasr-cpu"
FORMAT_VERSION = 1


def models_dir() -> Path:
    """Folder of shipped weights: $JASR_VIDEO_MODELS, else `models/` beside the package."""
    env = os.environ.get("JASR_VIDEO_MODELS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "models"


def available_weights() -> list[str]:
    folder = models_dir()
    return sorted(p.stem for p in folder.glob("*.pt")) if folder.is_dir() else []


def is_weights_name(name_or_path: str | Path) -> bool:
    """A bare name of shipped weights ('jasr-cpu'): no folder part and no .pt / .pth suffix. Anything else is a path."""
    text = str(name_or_path)
    return (isinstance(name_or_path, str) and bool(text) and "/" not in text and os.sep not in text
            and not text.lower().endswith((".pt", ".pth")) and text not in (".", ".."))


def resolve_weights(name_or_path: str | Path) -> Path:
    """The name of shipped weights (e.g. 'jasr-cpu': looked up in models/ only, never the current folder),
    or a checkpoint path (anything with a folder part or a .pt / .pth suffix, e.g. ./my.pt, runs/best.pt)."""
    if is_weights_name(name_or_path):
        shipped = models_dir() / f"{name_or_path}.pt"
        if shipped.is_file():
            return shipped
        names = ", ".join(available_weights()) or "none found"
        raise FileNotFoundError(
            f"weights {str(name_or_path)!r} not found: give a checkpoint path (e.g. ./{name_or_path}.pt) or a name "
            f"from {models_dir()} ({names})"
        )
    path = Path(name_or_path)
    if path.is_file():
        return path
    raise FileNotFoundError(f"weights file {str(path)!r} not found: give an existing checkpoint path or the name of "
                            f"shipped weights ({', '.join(available_weights()) or 'none found'})")


def save_checkpoint(path: str | Path, model: JASRNet, meta: dict[str, Any], half: bool = False, **extra: Any) -> None:
    """Write model weights, its config and metadata atomically (temporary file, then rename)."""
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT_VERSION,
        "model_config": to_dict(model.config),
        "state_dict": state,
        "meta": {**meta, "parameters": count_parameters(model)},
        **extra,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


# Besides tensors and plain containers, a checkpoint holds torch.__version__ (a TorchVersion) in its metadata.
SAFE_GLOBALS = [TorchVersion]


def read_checkpoint(name_or_path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(weights_only=True)``: tensors, plain Python values and the
    allow-listed SAFE_GLOBALS only, so a crafted pickle cannot run code; anything else is a ValueError."""
    path = resolve_weights(name_or_path)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means a bad (or unsafe) file
        first = str(error).strip().splitlines()
        detail = next((line.strip() for line in first if "GLOBAL" in line or "Unsupported" in line), None)
        reason = detail or (first[0].strip() if first else error.__class__.__name__)
        raise ValueError(f"{path}: not a JASRNet checkpoint, or one holding objects other than weights "
                         f"({reason[:200]}); only tensors and plain values are loaded") from None
    if not isinstance(payload, dict) or "model_config" not in payload or "state_dict" not in payload:
        raise ValueError(f"{path}: not a JASRNet checkpoint (no model_config / state_dict)")
    payload["path"] = str(path)
    return payload


def load_model(name_or_path: str | Path = DEFAULT_WEIGHTS, device: str | torch.device = "cpu") -> tuple[JASRNet, dict]:
    """Build JASRNet from a checkpoint's own config and load its weights (fp32). Returns (model, checkpoint)."""
    payload = read_checkpoint(name_or_path)
    model = JASRNet(from_dict(ModelConfig, payload["model_config"]))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()})
    return model.to(device).eval(), payload
