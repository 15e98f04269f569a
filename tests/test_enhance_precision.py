"""Speed-ups that change numerics stay within stated tolerances of the fp32 reference, on real faces (one
network pass each, `FaceEnhancer.predict`: the upright pass for tilted heads is tests/test_upright.py).

* channels_last (always on): same maths, different memory order -> float rounding only
  (SR <= 0.01 of 255 levels, landmarks <= 0.01 px);
* bf16 (precision "auto" on CPUs with native bf16 when the weights carry no int8 calibration): measured on
  64 real test faces SR max 3.2 / mean 0.24 levels, landmarks mean 0.043 / p99 0.24 px (128x128 crop
  pixels). Tolerances: SR max <= 4, mean <= 0.5 levels; landmarks mean <= 0.1 px, 99th percentile <= 0.5 px,
  any face's mean <= 0.25 px.
* int8 (precision "auto" on CPUs with int8 dot products, shipped weights calibrated): measured on the same
  faces SR max 19.1 / mean 0.62 levels, landmarks mean 0.17 / p99 0.63 px, worst face's mean 0.42 px.
  Tolerances: SR max <= 32, mean <= 1.0 levels; landmarks mean <= 0.25 px, p99 <= 1.3 px, any face's mean
  <= 1.3 px; and on the metrics that matter, over 66 test faces: PSNR within 0.1 dB and NME within 0.15
  points of fp32 (full test split, ``jasr-eval --precision int8``: 26.08 vs 26.09 dB, NME 4.26 vs 4.25 %).
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import CLIP, FACES_TEST, need
from video_utils import make_clip

from jasr_video.model import load_model
from jasr_video.model.bench import deviation, real_inputs
from jasr_video.model.data import FaceDataset, find_pairs
from jasr_video.model.evaluate import evaluate
from jasr_video.model.inference import (INT8_SATURATES_WARNING, FaceEnhancer, Prediction, cpu_has_fast_bf16,
                                        cpu_has_fast_int8, cpu_int8_saturates, resolve_precision)
from jasr_video.model.quantize import QuantizedJASRNet
from jasr_video.model.landmarks import heatmap_landmarks

# (SR max, SR mean) in 8-bit levels, (landmark mean, p99, worst face's mean) in 128x128 crop pixels
TOLERANCES = {"fp32": (1.0, 0.01, 0.01, 0.05, 0.05),  # the same arithmetic: at most rounding
              "bf16": (4.0, 0.5, 0.1, 0.5, 0.25), "int8": (32.0, 1.0, 0.25, 1.3, 1.3),
              # the clip's faces through the whole pipeline (the pipeline test below, printed with -s on a 2-core
              # AVX512-VNNI CPU: landmarks of located faces mean 0.22, p99 0.89, worst face 0.42 px; SR max 6, mean
              # 0.58 levels), farther from the training faces
              "int8-video": (32.0, 1.0, 0.5, 2.0, 1.5)}


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    return real_inputs(str(need(FACES_TEST)), 64, 1.4)


@pytest.fixture(scope="module")
def reference(faces) -> Prediction:
    torch.set_num_threads(1)
    return FaceEnhancer("jasr-cpu", device="cpu", precision="fp32").predict(faces)


# a face whose fp32 landmarks' mean confidence is below this has flat heatmaps (the model finds no face to align:
# on the clip, two 18-px detections at 0.10, every other face >= 0.47); their argmax points have no position to
# agree on, so the video tolerances compare the landmarks of located faces only (SR: every face)
LOCATED_CONFIDENCE = 0.3


def located_faces(reference: Prediction) -> torch.Tensor:
    """The faces (bool mask) whose fp32 landmarks are located (mean confidence >= LOCATED_CONFIDENCE); at least 80 %."""
    located = reference.confidence.mean(dim=1) >= LOCATED_CONFIDENCE
    assert float(located.float().mean()) >= 0.8, f"only {int(located.sum())} of {len(located)} faces located"
    return located


def check_tolerances(reference: Prediction, other: Prediction, precision: str) -> dict[str, float]:
    sr_max, sr_mean, lm_mean, lm_p99, lm_face = TOLERANCES[precision]
    if precision == "int8-video":
        located = located_faces(reference)
        d = {**deviation(reference, other), **{k: v for k, v in deviation(
            Prediction(None, reference.landmarks[located], None), Prediction(None, other.landmarks[located], None)).items()}}
        reference, other = (Prediction(p.sr, p.landmarks[located], p.confidence[located]) for p in (reference, other))
    else:
        d = deviation(reference, other)
    points = (reference.landmarks - other.landmarks).norm(dim=-1)
    print(f"{precision}: {d}, landmarks p99 {float(points.flatten().quantile(0.99)):.3f} px, "
          f"worst face mean {float(points.mean(dim=1).max()):.3f} px")  # the figures in the module docstring
    assert d["sr_max_levels"] <= sr_max and d["sr_mean_levels"] <= sr_mean, d
    assert d["landmark_mean_px"] <= lm_mean, d
    assert float(points.flatten().quantile(0.99)) <= lm_p99, d
    assert float(points.mean(dim=1).max()) <= lm_face, d
    return d


def test_channels_last_matches_contiguous(faces, reference):
    enhancer = FaceEnhancer("jasr-cpu", device="cpu", precision="fp32")
    model = enhancer.model.to(memory_format=torch.contiguous_format)
    with torch.inference_mode():
        out = model(faces.contiguous())
    plain = Prediction(out.sr.float().clamp(0, 1), *heatmap_landmarks(out.heatmaps[-1], 68))
    d = deviation(plain, reference)
    assert d["sr_max_levels"] <= 0.01 and d["landmark_max_px"] <= 0.01, d


def test_auto_precision_resolves():
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert resolve_precision("auto", torch.device("cpu")) == ("bf16" if cpu_has_fast_bf16() else "fp32")
    plain = "bf16" if cpu_has_fast_bf16() else "fp32"
    assert resolve_precision("auto", torch.device("cpu"), int8_calibrated=True) == ("int8" if cpu_has_fast_int8() else plain)
    assert resolve_precision("auto", torch.device("cuda"), int8_calibrated=True) == "fp16"
    shipped = FaceEnhancer("jasr-cpu", device="cpu", precision="auto").precision  # shipped weights: calibrated
    assert shipped == ("int8" if cpu_has_fast_int8() else plain)


def test_bf16_within_tolerance_of_fp32(faces, reference):
    bf16 = FaceEnhancer("jasr-cpu", device="cpu", precision="bf16")
    assert bf16.dtype == torch.bfloat16
    check_tolerances(reference, bf16.predict(faces), "bf16")


# int8's accuracy needs int8 dot products: elsewhere on x86 its 16-bit sums saturate (checked by the warning test)
needs_int8_dot = pytest.mark.skipif(cpu_int8_saturates(), reason="x86 CPU without int8 dot products (AVX512-VNNI, "
                                    "AVX-VNNI, AMX): int8 saturates here, see test_int8_warns_where_it_saturates")


def test_int8_warns_where_it_saturates(faces, reference):
    """On x86 CPUs without int8 dot products int8 drifts far from fp32 and says so; elsewhere it stays silent."""
    import warnings

    from jasr_video.model import inference

    inference._warned_int8.clear()  # once per process: earlier tests may have given it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        int8 = FaceEnhancer("jasr-cpu", device="cpu", precision="int8")
    warned = [w for w in caught if str(w.message) == INT8_SATURATES_WARNING]
    assert len(warned) == (1 if cpu_int8_saturates() else 0)
    if cpu_int8_saturates():  # what the warning is about: far outside int8's tolerances
        assert deviation(reference, int8.predict(faces))["sr_max_levels"] > TOLERANCES["int8"][0]


@needs_int8_dot
def test_int8_within_tolerance_of_fp32(faces, reference):
    int8 = FaceEnhancer("jasr-cpu", device="cpu", precision="int8")
    assert isinstance(int8.model, QuantizedJASRNet) and int8.model.config == load_model("jasr-cpu")[0].config
    check_tolerances(reference, int8.predict(faces), "int8")


@needs_int8_dot
def test_int8_quality_close_to_fp32():
    model, checkpoint = load_model("jasr-cpu")
    dataset = FaceDataset(find_pairs(need(FACES_TEST))[::5], margin=checkpoint["meta"]["train_config"]["crop_margin"])
    fp32 = evaluate(model, dataset)["summary"]["model"]
    int8 = evaluate(FaceEnhancer("jasr-cpu", device="cpu", precision="int8").model, dataset)["summary"]["model"]
    print(f"fp32 {fp32}\nint8 {int8}")
    assert abs(int8["psnr_y_face"] - fp32["psnr_y_face"]) <= 0.1
    assert abs(int8["nme_percent"] - fp32["nme_percent"]) <= 0.15


def test_int8_calibration_round_trip_and_errors(tmp_path):
    """jasr-quantize writes a calibration that rebuilds the same int8 network; weights without one, or int8
    on CUDA, give one clear error."""
    torch.set_num_threads(1)
    from jasr_video.model.checkpoint import save_checkpoint
    from jasr_video.model.quantize import main as quantize_main

    model, checkpoint = load_model("jasr-cpu")
    plain = tmp_path / "plain.pt"
    save_checkpoint(plain, model, checkpoint["meta"], half=True)
    with pytest.raises(ValueError, match="no int8 calibration"):
        FaceEnhancer(plain, device="cpu", precision="int8")
    assert FaceEnhancer(plain, device="cpu", precision="auto").precision == ("bf16" if cpu_has_fast_bf16() else "fp32")
    out = tmp_path / "calibrated.pt"
    assert quantize_main([str(plain), "--data", str(need(FACES_TEST)), "--faces", "32", "--out", str(out)]) == 0
    stored = torch.load(out, weights_only=False)
    assert set(stored["int8"]["qparams"]) == set(checkpoint["int8"]["qparams"])
    assert all(torch.equal(stored["state_dict"][k], v) for k, v in torch.load(plain, weights_only=False)["state_dict"].items())
    x = real_inputs(str(FACES_TEST), 4, 1.4)
    a, b = FaceEnhancer(out, device="cpu", precision="int8"), FaceEnhancer(out, device="cpu", precision="int8")
    assert torch.equal(a.predict(x).sr, b.predict(x).sr)
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="CPU only"):
            FaceEnhancer(out, device="cuda", precision="int8")
    json_out = tmp_path / "out.jsonl"  # the CLI: one error line, exit 2, nothing written
    r = subprocess.run([sys.executable, "-m", "jasr_video.cli", str(need(CLIP)), "--json", str(json_out), "--weights",
                        str(plain), "--precision", "int8", "--max-frames", "1"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "no int8 calibration" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not list(tmp_path.glob("out.jsonl*"))


def test_pipeline_default_matches_fp32_reference(tmp_path):
    """The whole default pipeline against the same pipeline in fp32 on real frames: same faces, close outputs."""
    from jasr_video import Pipeline, PipelineConfig

    torch.set_num_threads(1)
    clip = make_clip(need(CLIP), tmp_path / "c.mp4", frames=6, width=640, audio=False)
    default = list(Pipeline(PipelineConfig(device="cpu")).run(clip))
    fp32 = list(Pipeline(PipelineConfig(device="cpu", precision="fp32")).run(clip))
    reference, other = pipeline_predictions(fp32, default)
    precision = Pipeline(PipelineConfig(device="cpu")).enhancer.enhancer.precision
    check_tolerances(reference, other, "int8-video" if precision == "int8" else precision)


def pipeline_predictions(reference_runs: list, other_runs: list) -> tuple[Prediction, Prediction]:
    """Two pipeline runs over the same frames (the reference in fp32) as Predictions of their faces, in order: SR faces,
    landmarks in crop pixels, the landmarks' confidence. Both runs must find the same faces in the same boxes
    (detection and tracking do not depend on the model's precision or backend)."""
    assert [r.index for r in reference_runs] == [r.index for r in other_runs] and reference_runs
    sr, lm, conf = ([], []), ([], []), ([], [])
    for a, b in zip(reference_runs, other_runs):
        assert [f.track_id for f in a.faces] == [f.track_id for f in b.faces]
        for k, faces in enumerate((a.faces, b.faces)):
            for f in faces:
                sr[k].append(f.sr), lm[k].append(f.crop.to_crop(f.landmarks_raw)), conf[k].append(f.landmark_confidence)
        for fa, fb in zip(a.faces, b.faces):
            assert np.allclose(fa.box, fb.box)
    assert sr[0], "no faces found on the clip"
    return tuple(Prediction(torch.from_numpy(np.stack(sr[k])).float().div(255).permute(0, 3, 1, 2),  # type: ignore[return-value]
                            torch.from_numpy(np.stack(lm[k])).float(), torch.from_numpy(np.stack(conf[k])).float())
                 for k in (0, 1))


def test_landmarks_only_pass_skips_sr_and_keeps_landmarks(faces, reference):
    """sr=False (no output shows SR faces; the upright pass): the network skips its SR branch and returns the
    same landmarks, in fp32 and in the int8 graph pruned of that branch (equal to the full int8 graph's, on
    any CPU: both run the same int8 kernels)."""
    import time

    enhancer = FaceEnhancer("jasr-cpu", device="cpu", precision="fp32")
    lean = enhancer.predict(faces, sr=False)
    assert lean.sr is None
    assert torch.equal(lean.landmarks, reference.landmarks) and torch.equal(lean.confidence, reference.confidence)
    model, checkpoint = load_model("jasr-cpu")
    int8 = QuantizedJASRNet(model, checkpoint["int8"]["qparams"])
    with torch.inference_mode():
        full, pruned = int8(faces[:16]), int8(faces[:16], sr=False)
        assert pruned.sr is None and full.sr is not None
        assert all(torch.equal(a, b) for a, b in zip(full.heatmaps, pruned.heatmaps))
        timings = {}
        for sr in (True, False, True, False):  # the pruned graph runs fewer convolutions
            start = time.perf_counter()
            int8(faces[:16], sr=sr)
            timings[sr] = min(timings.get(sr, float("inf")), time.perf_counter() - start)
    assert timings[False] < 0.9 * timings[True], timings
