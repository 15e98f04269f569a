"""MTCNN import paths (real torchvision / stand-in), the stand-in's NMS, and detection on a real photo."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import SHARED_DATA, need
from jasr_video.detect import FaceDetector, batched_nms, nms, to_tensor

REPO = Path(__file__).resolve().parents[1]

PROBE = textwrap.dedent("""
    import json, sys
    import jasr_video.detect as d
    d.import_facenet()
    tv = sys.modules.get("torchvision")
    print(json.dumps({"used": d.TORCHVISION_USED,
                      "left_in_sys_modules": sorted(n for n in sys.modules if n.split(".")[0] == "torchvision"),
                      "fake_calls": getattr(tv, "CALLS", None) if tv else None,
                      "facenet_nms_module": sys.modules["facenet_pytorch.models.utils.detect_face"].batched_nms.__module__}))
""")


def _probe(extra_path: Path | None = None) -> dict:
    env = dict(os.environ)
    if extra_path is not None:  # put the fake torchvision first, keep whatever else the path holds
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), *filter(None, [env.get("PYTHONPATH")])])
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_standin_used_when_torchvision_absent_and_removed_after():
    try:
        import torchvision  # noqa: F401
        pytest.skip("a working torchvision is installed here; the stand-in path is not taken")
    except (ImportError, RuntimeError):
        pass
    r = _probe()
    assert r["used"] == "stand-in"
    assert r["left_in_sys_modules"] == []  # the stand-in lived only for the facenet import
    assert r["facenet_nms_module"] == "jasr_video.detect"


def test_real_torchvision_used_when_present(tmp_path):
    # an importable torchvision package (with what facenet needs) that records it was imported
    pkg = tmp_path / "torchvision"
    (pkg / "ops").mkdir(parents=True)
    (pkg / "transforms").mkdir()
    (pkg / "__init__.py").write_text("CALLS = ['imported']\nfrom . import ops, transforms\n")
    (pkg / "ops" / "__init__.py").write_text("from .boxes import batched_nms\n")
    (pkg / "ops" / "boxes.py").write_text("def batched_nms(*a, **k):\n    raise NotImplementedError\n")
    (pkg / "transforms" / "__init__.py").write_text("from . import functional\n")
    (pkg / "transforms" / "functional.py").write_text("def to_tensor(x):\n    raise NotImplementedError\n")
    r = _probe(tmp_path)
    assert r["used"] == "torchvision"
    assert r["fake_calls"] == ["imported"]
    assert r["facenet_nms_module"] == "torchvision.ops.boxes"


def test_broken_torchvision_falls_back_to_standin(tmp_path):
    pkg = tmp_path / "torchvision"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("raise RuntimeError('operator torchvision::nms does not exist')\n")
    r = _probe(tmp_path)
    assert r["used"] == "stand-in"
    assert r["left_in_sys_modules"] == []


def _reference_nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    order = sorted(range(len(boxes)), key=lambda i: -scores[i])
    keep: list[int] = []
    for i in order:
        ok = True
        for j in keep:
            x0, y0 = max(boxes[i, 0], boxes[j, 0]), max(boxes[i, 1], boxes[j, 1])
            x1, y1 = min(boxes[i, 2], boxes[j, 2]), min(boxes[i, 3], boxes[j, 3])
            inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
            a = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
            b = (boxes[j, 2] - boxes[j, 0]) * (boxes[j, 3] - boxes[j, 1])
            if inter / (a + b - inter) > thr:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


def test_standin_nms_matches_reference():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (300, 2))
    wh = rng.uniform(5, 40, (300, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    scores = rng.uniform(0, 1, 300).astype(np.float32)
    for thr in (0.3, 0.5, 0.7):
        got = nms(torch.from_numpy(boxes), torch.from_numpy(scores), thr).tolist()
        assert got == _reference_nms(boxes, scores, thr)
    idx = rng.integers(0, 3, 300)
    got = set(batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(idx), 0.5).tolist())
    want = set()
    for c in range(3):
        sel = np.flatnonzero(idx == c)
        want |= {int(sel[k]) for k in _reference_nms(boxes[sel], scores[sel], 0.5)}
    assert got == want


def test_standin_to_tensor_semantics():
    u8 = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    t = to_tensor(u8)
    assert t.shape == (3, 2, 4) and t.dtype == torch.float32
    assert torch.allclose(t[1, 0, 1], torch.tensor(4 / 255))
    f = to_tensor(u8.astype(np.float32))  # floats are not rescaled (torchvision behaviour)
    assert f[1, 0, 1].item() == 4.0


def test_detects_many_faces_in_real_group_photo():
    path = need(SHARED_DATA / "images" / "multiface.jpg")
    torch.set_num_threads(1)
    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    img = cv2.resize(img, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    det = FaceDetector(min_face_size=12)
    faces = det.detect([img, img[:, ::-1].copy()])
    assert len(faces) == 2
    assert len(faces[0]) >= 5, [f.score for f in faces[0]]
    assert abs(len(faces[0]) - len(faces[1])) <= 2  # the mirrored photo finds about as many
    for f in faces[0]:
        x0, y0, x1, y1 = f.box
        assert 0.5 < (x1 - x0) / (y1 - y0) < 1.5 and f.score >= 0.6
    scores = [f.score for f in faces[0]]
    assert scores == sorted(scores, reverse=True)
