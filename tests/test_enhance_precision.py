"""Speed-ups that change numerics stay within stated tolerances of the fp32 reference, on real faces.

* channels_last (always on): same maths, different memory order -> float rounding only
  (SR <= 0.01 of 255 levels, landmarks <= 0.01 px);
* bf16 (PipelineConfig's precision "auto" on CPUs with native bf16): measured on 64 real test faces
  SR max 2.6 / mean 0.23 levels, landmarks mean 0.044 / p99 0.17 px (128x128 crop pixels). Tolerances:
  SR max <= 4, mean <= 0.5 levels; landmarks mean <= 0.1 px, 99th percentile <= 0.5 px, any face's mean <= 0.25 px.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import CLIP, FACES_TEST, need
from video_utils import make_clip

from jasr_video.model.bench import deviation, real_inputs
from jasr_video.model.inference import FaceEnhancer, Prediction, cpu_has_fast_bf16, resolve_precision
from jasr_video.model.landmarks import cells_to_pixels, decode_heatmaps

SR_MAX_LEVELS, SR_MEAN_LEVELS = 4.0, 0.5
LM_MEAN_PX, LM_P99_PX, LM_FACE_MEAN_PX = 0.1, 0.5, 0.25


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    return real_inputs(str(need(FACES_TEST)), 64, 1.4)


@pytest.fixture(scope="module")
def reference(faces) -> Prediction:
    torch.set_num_threads(1)
    return FaceEnhancer("jasr-cpu", device="cpu", precision="fp32").enhance_inputs(faces)


def check_tolerances(reference: Prediction, other: Prediction) -> dict[str, float]:
    d = deviation(reference, other)
    points = (reference.landmarks - other.landmarks).norm(dim=-1)
    assert d["sr_max_levels"] <= SR_MAX_LEVELS and d["sr_mean_levels"] <= SR_MEAN_LEVELS, d
    assert d["landmark_mean_px"] <= LM_MEAN_PX, d
    assert float(points.flatten().quantile(0.99)) <= LM_P99_PX, d
    assert float(points.mean(dim=1).max()) <= LM_FACE_MEAN_PX, d
    return d


def test_channels_last_matches_contiguous(faces, reference):
    enhancer = FaceEnhancer("jasr-cpu", device="cpu", precision="fp32")
    model = enhancer.model.to(memory_format=torch.contiguous_format)
    with torch.inference_mode():
        out = model(faces.contiguous())
    cells, conf = decode_heatmaps(out.heatmaps[-1], 68)
    plain = Prediction(out.sr.float().clamp(0, 1), cells_to_pixels(cells), conf)
    d = deviation(plain, reference)
    assert d["sr_max_levels"] <= 0.01 and d["landmark_max_px"] <= 0.01, d


def test_auto_precision_resolves():
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert resolve_precision("auto", torch.device("cpu")) == ("bf16" if cpu_has_fast_bf16() else "fp32")
    assert resolve_precision("auto", torch.device("cuda")) == "fp16"


def test_bf16_within_tolerance_of_fp32(faces, reference):
    bf16 = FaceEnhancer("jasr-cpu", device="cpu", precision="bf16")
    assert bf16.dtype == torch.bfloat16
    check_tolerances(reference, bf16.enhance_inputs(faces))


def test_pipeline_default_matches_fp32_reference(tmp_path):
    """The whole default pipeline against the same pipeline in fp32 on real frames: same faces, close outputs."""
    from jasr_video import Pipeline, PipelineConfig

    torch.set_num_threads(1)
    clip = make_clip(need(CLIP), tmp_path / "c.mp4", frames=6, width=640, audio=False)
    default = list(Pipeline(PipelineConfig(device="cpu")).run(clip))
    fp32 = list(Pipeline(PipelineConfig(device="cpu", precision="fp32")).run(clip))
    assert [r.index for r in default] == [r.index for r in fp32] == list(range(6))
    sr_a, sr_b, lm_a, lm_b = [], [], [], []
    for a, b in zip(default, fp32):
        assert [f.track_id for f in a.faces] == [f.track_id for f in b.faces]
        for fa, fb in zip(a.faces, b.faces):
            assert np.allclose(fa.box, fb.box)  # detection and tracking do not depend on the model's precision
            sr_a.append(fa.sr), sr_b.append(fb.sr)
            lm_a.append(fa.crop.to_crop(fa.landmarks_raw)), lm_b.append(fb.crop.to_crop(fb.landmarks_raw))
    assert sr_a, "no faces found on the clip"

    def pred(sr: list[np.ndarray], lm: list[np.ndarray]) -> Prediction:
        return Prediction(torch.from_numpy(np.stack(sr)).float().div(255).permute(0, 3, 1, 2),
                          torch.from_numpy(np.stack(lm)).float(), torch.zeros(len(lm), 68))

    check_tolerances(pred(sr_b, lm_b), pred(sr_a, lm_a))
