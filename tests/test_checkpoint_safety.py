"""Weights loading is safe: weights_only unpickling, shipped names resolve to models/ only, a path is a path."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from jasr_video.model.checkpoint import is_weights_name, models_dir, read_checkpoint, resolve_weights

REPO = Path(__file__).resolve().parents[1]


class _Evil:
    """Unpickling this creates the marker file (what a crafted checkpoint could do with any code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _crafted(path: Path, marker: Path) -> Path:
    torch.save({"format": 1, "model_config": {}, "state_dict": {}, "payload": _Evil(marker)}, path)
    return path


def test_shipped_weights_load_with_weights_only():
    payload = read_checkpoint("jasr-cpu")
    assert Path(payload["path"]) == models_dir() / "jasr-cpu.pt"
    assert payload["state_dict"] and payload["model_config"]


def test_names_and_paths():
    assert is_weights_name("jasr-cpu")
    for path in ("jasr-cpu.pt", "./jasr-cpu", "runs/best.pt", "x.pth", Path("jasr-cpu")):
        assert not is_weights_name(path), path
    with pytest.raises(FileNotFoundError, match="not found"):
        resolve_weights("./jasr-cpu")  # a path: never the shipped weights by accident


def test_crafted_pickle_in_cwd_is_never_run(tmp_path):
    """Files named like the shipped weights in the current folder are neither picked for the name nor executed."""
    marker = tmp_path / "PWNED"
    _crafted(tmp_path / "jasr-cpu.pt", marker)
    _crafted(tmp_path / "jasr-cpu", marker)
    code = ("import sys, pathlib; from jasr_video.model.checkpoint import read_checkpoint\n"
            "p = read_checkpoint('jasr-cpu')['path']; print(p)\n"
            "try:\n    read_checkpoint('jasr-cpu.pt')\nexcept ValueError as e:\n    print('ERR', e)\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert Path(lines[0]) == models_dir() / "jasr-cpu.pt"
    assert lines[1].startswith("ERR") and "not a JASRNet checkpoint" in lines[1]
    assert not marker.exists()


def test_cli_malicious_weights_one_line(tmp_path):
    import av
    import numpy as np

    clip = tmp_path / "in.mp4"
    with av.open(str(clip), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(3):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 60 * i, np.uint8), format="rgb24")
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    marker = tmp_path / "PWNED"
    evil = _crafted(tmp_path / "evil.pt", marker)
    r = subprocess.run([sys.executable, "-m", "jasr_video.cli", str(clip), "--json", str(tmp_path / "o.jsonl"),
                        "--weights", str(evil)], cwd=REPO, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "not a JASRNet checkpoint" in lines[0] and "Traceback" not in r.stderr
    assert not marker.exists() and not (tmp_path / "o.jsonl").exists()
