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

from conftest import CLIP, SHARED_DATA, need
from jasr_video.detect import FaceDetector
from jasr_video.facenet_compat import batched_nms, nms, to_tensor

REPO = Path(__file__).resolve().parents[1]

PROBE = textwrap.dedent("""
    import json, sys
    import jasr_video.facenet_compat as d
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
    assert r["facenet_nms_module"] == "jasr_video.facenet_compat"


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
    tied = rng.uniform(-1, 1, 300).round(1).astype(np.float32)  # negative scores, many ties (input order wins)
    for thr in (0.3, 0.5, 0.7):
        for s in (scores, tied):
            got = nms(torch.from_numpy(boxes), torch.from_numpy(s), thr).tolist()
            assert got == _reference_nms(boxes, s, thr)
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


# ---------------------------------------------------------------------------------------------
# the fast MTCNN path against facenet-pytorch's own detect_face


@pytest.fixture(scope="module")
def clip_frames() -> list[np.ndarray]:
    from jasr_video.source import open_source

    with open_source(str(need(CLIP))) as src:
        return [f.image for f in src if f.index % 30 == 0][:4]  # 1080p, faces ~10-60 px


def _match(reference: list, other: list) -> tuple[int, int, int, list[float]]:
    from jasr_video.track import iou_matrix

    total = found = extra = 0
    deviation: list[float] = []
    for ref, out in zip(reference, other):
        a = np.array([d.box for d in ref], np.float32).reshape(-1, 4)
        b = np.array([d.box for d in out], np.float32).reshape(-1, 4)
        total += len(a)
        if not (len(a) and len(b)):
            extra += len(b)
            continue
        m = iou_matrix(a, b)
        found += int((m.max(1) >= 0.5).sum())
        extra += int((m.max(0) < 0.5).sum())
        ok = m.max(1) >= 0.5
        size = np.maximum(a[ok, 2] - a[ok, 0], 1.0)
        deviation += list(np.abs(a[ok] - b[m.argmax(1)[ok]]).max(1) / size)
    return total, found, extra, deviation


@pytest.mark.parametrize("precision,sampled", [("fp32", False), ("fp32", True), ("bf16", False)])
def test_fast_mtcnn_matches_facenet_reference(clip_frames, precision, sampled):
    """Tolerance: >= 95 % of the reference's faces found (IoU >= 0.5), extras <= 10 % (+1), median box
    deviation <= 5 % of the face size. sampled: the R-/O-net crops of the CUDA path, run here on CPU."""
    from jasr_video.model.inference import cpu_has_fast_bf16

    if precision == "bf16" and not cpu_has_fast_bf16():
        pytest.skip("this CPU has no native bf16: precision auto keeps P-net in fp32 here")
    torch.set_num_threads(2)
    reference = FaceDetector(12, min_score=0.9, fast=False).detect(clip_frames)
    fast = FaceDetector(12, min_score=0.9, precision=precision)
    assert fast.fast and fast.precision == precision and not fast.sampled_crops
    fast.sampled_crops = sampled
    total, found, extra, deviation = _match(reference, fast.detect(clip_frames))
    assert total >= 10, "the clip frames should hold many faces"
    assert found >= 0.95 * total, (found, total)
    assert extra <= 0.1 * total + 1, (extra, total)
    assert np.median(deviation) <= 0.05, np.median(deviation)


def test_fast_mtcnn_is_channels_last_and_precision_checked():
    det = FaceDetector(12, precision="fp32")
    assert det.mtcnn.pnet.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert FaceDetector(12, fast=False).precision == "fp32"
    with pytest.raises(ValueError, match="precision"):
        FaceDetector(12, precision="int8")


@pytest.mark.parametrize("mode", ["opencv", "grid"])
def test_face_crops_drop_boxes_outside_the_frame_and_match_area_resampling(mode):
    """opencv: the CPU crops; grid: the CUDA crops (grid_sample), run here on CPU."""
    from jasr_video.facenet_compat import import_facenet
    from jasr_video.mtcnn import face_crops

    import_facenet()  # face_crops uses facenet's box padding helper
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8), (7, 7), 2).astype(np.float32)
    images = torch.from_numpy(image).permute(2, 0, 1)[None]
    boxes = torch.tensor([[10.0, 20.0, 57.0, 67.0, 0.9], [200.0, 150.0, 260.0, 210.0, 0.9]])  # second: outside
    arrays = [image] if mode == "opencv" else None
    crops, valid = face_crops(images, np.zeros(2, int), boxes.clone(), 24, 120, 90, arrays)
    assert valid.tolist() == [True, False] and crops.shape == (1, 3, 24, 24)
    # facenet's per-box crop: rows y-1..ey, columns x-1..ex of the truncated box, area-resampled
    expected = torch.nn.functional.interpolate(images[:, :, 19:67, 9:57], size=(24, 24), mode="area")
    tolerance = 3.0 if mode == "grid" else 1e-3  # grid: 4x4 bilinear samples per output pixel; OpenCV: 2x2 means
    assert (crops - expected).abs().mean() < tolerance


def test_pnet_in_strips_gives_the_whole_level_output(clip_frames):
    """The CPU strip tiling of P-net is exact: same map as one pass (float rounding only), any strip size."""
    from jasr_video.mtcnn import pnet_in_strips

    det = FaceDetector(12)
    level = torch.from_numpy(clip_frames[0][:301, :403]).permute(2, 0, 1)[None].float()  # odd sizes on purpose
    level = ((level - 127.5) * 0.0078125).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        reg, prob = det.mtcnn.pnet(level)
        for strip_pixels in (403 * 16, 403 * 50, 403 * 290, 403 * 400):  # 16-row strips ... one pass
            reg_s, prob_s = pnet_in_strips(det.mtcnn.pnet, level, strip_pixels)
            assert reg_s.shape == reg.shape and prob_s.shape == prob.shape
            assert torch.allclose(reg_s, reg, atol=1e-5) and torch.allclose(prob_s, prob, atol=1e-5)


def test_frames_smaller_than_the_smallest_face_give_no_detections():
    """facenet's own detect_face fails on these (an empty image pyramid); the fast path returns nothing."""
    det = FaceDetector(12)
    assert det.detect([np.zeros((10, 10, 3), np.uint8)]) == [[]]
    assert det.detect([np.zeros((8, 30, 3), np.uint8)] * 2) == [[], []]
