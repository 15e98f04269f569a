"""ONNX export and the ONNX Runtime backend against PyTorch fp32, on real faces and the real clip.

Tolerances (printed with -s):
* fp32 ONNX vs torch fp32, 64 real test faces: measured SR max 0.00015 / mean 0.000006 of 255 levels, landmarks
  max 0.00004 px (float rounding only). Tolerances: SR max <= 0.01, mean <= 0.001 levels; landmarks max <= 0.01 px.
* int8 ONNX (``models/jasr-cpu.int8.onnx``, onnx backend's auto on CPUs with int8 dot products): the torch int8
  tolerances of tests/test_enhance_precision.py (SR max <= 32, mean <= 1.0 levels; landmarks mean <= 0.25, p99
  <= 1.3, any face's mean <= 1.3 px); measured on the same faces SR max 9.8 / mean 0.66 levels, landmarks mean
  0.21 / p99 0.88 px, worst face's mean 0.67 px.
* the pipeline on the clip (6 frames, 640 px wide, 33 faces): same frames, track ids and boxes; fp32 ONNX within
  one 8-bit level (SR is rounded to uint8; measured 1 level, mean 0.000006) and 0.01 px (measured 0.0002 px) of
  torch fp32; ONNX auto (int8 on CPUs with int8 dot products) within the int8-video tolerances of
  tests/test_enhance_precision.py (SR max 32, mean 1.0 levels; landmarks mean 0.5, p99 2.0, any face 1.5 px):
  measured SR max 8 / mean 0.10 levels, landmarks mean 0.06 / p99 0.86 px, worst face 0.54 px.
* jasr-eval --backend onnx (fp32) on 16 test faces: PSNR and NME within 0.001 of torch fp32.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import CLIP, FACES_TEST, need
from test_enhance_precision import check_tolerances, pipeline_predictions
from video_utils import make_clip

from jasr_video.model import load_model
from jasr_video.model.bench import deviation, real_inputs
from jasr_video.model.checkpoint import read_checkpoint, resolve_weights
from jasr_video.model.export import export_main
from jasr_video.model.inference import FaceEnhancer, Prediction, cpu_has_int8_dot, cpu_int8_saturates
from jasr_video.model.onnx_backend import OnnxFaceEnhancer
from jasr_video.model.onnx_export import OPSET, cached_export, int8_path, read_metadata, weights_sha256

FP32_TOLERANCE = {"sr_max_levels": 0.01, "sr_mean_levels": 0.001, "landmark_max_px": 0.01}


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    return real_inputs(str(need(FACES_TEST)), 64, 1.4)


@pytest.fixture(scope="module")
def reference(faces) -> Prediction:
    torch.set_num_threads(1)
    return FaceEnhancer("jasr-cpu", device="cpu", precision="fp32").predict(faces)


def test_export_cli_metadata_and_fp32_match(tmp_path, faces, reference):
    """jasr-export --onnx writes a model with a dynamic batch axis and its metadata; ONNX Runtime on it gives
    torch fp32's SR, landmarks and confidence up to float rounding."""
    out = tmp_path / "jasr-cpu.onnx"
    assert export_main(["--onnx", "jasr-cpu", str(out)]) == 0
    meta = read_metadata(out)
    model, checkpoint = load_model("jasr-cpu")
    assert meta["opset"] == str(OPSET) and meta["precision"] == "fp32" and meta["upscale"] == "8"
    assert meta["weights_sha256"] == weights_sha256(checkpoint) and meta["crop_margin"] == "1.4"
    assert json.loads(meta["model_config"])["width"] == model.config.width
    assert "mean" in meta["input_normalisation"] and "[0, 1]" in meta["input"]
    enhancer = OnnxFaceEnhancer(out, device="cpu", threads=1)
    assert enhancer.precision == "fp32" and enhancer.providers == ["CPUExecutionProvider"]
    assert enhancer.checkpoint["meta"]["train_config"]["crop_margin"] == 1.4
    onnx = enhancer.predict(faces)
    d = deviation(reference, onnx)
    d["confidence_max"] = float((reference.confidence - onnx.confidence).abs().max())
    print(f"onnx fp32 vs torch fp32: {d}")
    assert all(d[k] <= v for k, v in FP32_TOLERANCE.items()), d
    assert d["confidence_max"] <= 1e-4, d
    one = enhancer.predict(faces[:1])  # another batch size through the same graph
    assert deviation(Prediction(onnx.sr[:1], onnx.landmarks[:1], onnx.confidence[:1]), one)["sr_max_levels"] <= 0.01
    lean = enhancer.predict(faces, sr=False)  # landmarks only: the graph pruned of its SR branch
    outputs = [o.name for o in enhancer.landmarks_session().get_outputs()]
    assert lean.sr is None and outputs == ["heatmaps", "landmarks", "confidence"]
    assert torch.equal(lean.landmarks, onnx.landmarks) and torch.equal(lean.confidence, onnx.confidence)
    # jasr-eval's network view (its upright pass asks for landmarks only) runs that pruned graph too.
    calls = []
    enhancer.model.landmarks_session = lambda: calls.append(1) or enhancer.landmarks_session()
    full, bare = enhancer.model(faces), enhancer.model(faces, sr=False)
    assert bare.sr is None and full.sr is not None and calls == [1]
    assert torch.equal(bare.heatmaps[-1], full.heatmaps[-1])


@pytest.mark.skipif(cpu_int8_saturates(), reason="x86 CPU without int8 dot products: int8 saturates here "
                    "(tests/test_enhance_precision.py::test_int8_warns_where_it_saturates)")
def test_int8_onnx_within_int8_tolerance(faces, reference):
    """The shipped int8 ONNX model is of the shipped weights and stays within torch int8's tolerances."""
    path = int8_path("jasr-cpu")
    assert path.is_file(), f"{path} missing: jasr-export --onnx jasr-cpu --int8 --data ../shared/data/faces68/train --out-dir models"
    assert read_metadata(path)["weights_sha256"] == weights_sha256(read_checkpoint("jasr-cpu")), \
        "models/jasr-cpu.int8.onnx was made from other weights: make it again (models/README.md, ONNX)"
    int8 = OnnxFaceEnhancer("jasr-cpu", device="cpu", precision="int8", threads=1)
    assert int8.precision == "int8" and int8.onnx_path == path
    check_tolerances(reference, int8.predict(faces), "int8")
    auto = OnnxFaceEnhancer("jasr-cpu", device="cpu", precision="auto", threads=1)
    assert auto.precision == ("int8" if cpu_has_int8_dot() else "fp32")


def test_cached_export_and_all(tmp_path, monkeypatch):
    """Weights by name are exported once into the user cache (keyed by the weights' hash); --all exports every
    shipped weight set; int8 without its file and a bad name are one clear error."""
    models = tmp_path / "models"
    models.mkdir()
    for name in ("a", "b"):
        shutil.copy(resolve_weights("jasr-cpu"), models / f"{name}.pt")
    monkeypatch.setenv("JASR_VIDEO_MODELS", str(models))
    monkeypatch.setenv("JASR_VIDEO_CACHE", str(tmp_path / "cache"))
    first = cached_export("a")
    assert first.parent == tmp_path / "cache" and first.name.startswith("a-")
    stamp = first.stat().st_mtime_ns
    assert cached_export("a") == first and first.stat().st_mtime_ns == stamp  # reused, not exported again
    assert OnnxFaceEnhancer("a", device="cpu", precision="fp32").onnx_path == first
    with pytest.raises(ValueError, match="no int8 ONNX model"):
        OnnxFaceEnhancer("a", device="cpu", precision="int8")
    assert export_main(["--onnx", "--all", "--out-dir", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.onnx", "b.onnx"]
    assert export_main(["--onnx", "nope", str(tmp_path / "x.onnx")]) == 2 and not (tmp_path / "x.onnx").exists()


def test_jasr_eval_onnx_backend(tmp_path):
    """jasr-eval --backend onnx scores the exported network like torch fp32 (same PSNR / NME on real faces)."""
    from jasr_video.model.evaluate import main as eval_main

    torch.set_num_threads(1)
    scores = {}
    for backend in ("torch", "onnx"):
        report = tmp_path / f"{backend}.json"
        assert eval_main(["--data", str(need(FACES_TEST)), "--limit", "16", "--backend", backend,
                          "--report", str(report), "--sheet", ""]) == 0
        scores[backend] = json.loads(report.read_text())["summary"]["model"]
    print(scores)
    assert abs(scores["onnx"]["psnr_y_face"] - scores["torch"]["psnr_y_face"]) <= 0.001
    assert abs(scores["onnx"]["nme_percent"] - scores["torch"]["nme_percent"]) <= 0.001


def _pipeline_pairs(clip, precision: str) -> tuple[Prediction, Prediction, str]:
    from jasr_video import Pipeline, PipelineConfig

    torch_runs = list(Pipeline(PipelineConfig(device="cpu", precision="fp32")).run(clip))
    onnx_pipeline = Pipeline(PipelineConfig(device="cpu", precision=precision, backend="onnx"))
    assert isinstance(onnx_pipeline.enhancer.enhancer, OnnxFaceEnhancer)
    onnx_runs = list(onnx_pipeline.run(clip))
    assert [r.index for r in onnx_runs] == list(range(6))
    return (*pipeline_predictions(torch_runs, onnx_runs), onnx_pipeline.enhancer.enhancer.precision)


@pytest.mark.parametrize("precision", ["fp32", "auto"])
def test_pipeline_onnx_backend_matches_torch(tmp_path, precision):
    """The whole pipeline on real frames with --backend onnx: the same faces as torch fp32, outputs within tolerance."""
    torch.set_num_threads(1)
    clip = make_clip(need(CLIP), tmp_path / "c.mp4", frames=6, width=640, audio=False)
    reference, onnx, ran = _pipeline_pairs(clip, precision)
    if ran == "fp32":
        d = deviation(reference, onnx)
        print(f"pipeline onnx fp32 vs torch fp32 on {len(onnx.sr)} faces: {d}")
        # the same arithmetic up to rounding: SR within a level; landmarks on average within 0.001 px. A rounding
        # difference can tip a heatmap's argmax between two equal neighbouring cells, and the sub-pixel refinement
        # around it then moves that point by a fraction of a 16x16 cell (seen: 0.1 px of 128 on one of 44 x 68 points)
        assert d["sr_max_levels"] <= 1.0 + 1e-3 and d["landmark_mean_px"] <= 1e-3 and d["landmark_max_px"] <= 0.25, d
    else:
        check_tolerances(reference, onnx, "int8-video")


def test_cli_onnx_errors(tmp_path):
    """--backend onnx without onnxruntime, or with a precision it does not run: one line, exit 2, no output."""
    need(CLIP)
    out = tmp_path / "o.jsonl"
    args = ["--json", str(out), "--backend", "onnx", "--max-frames", "1", "--device", "cpu"]
    missing = ("import sys; sys.modules['onnxruntime'] = None  # as when the package is not installed\n"
               "from jasr_video.cli import main; sys.exit(main(sys.argv[1:]))")
    for code, extra, message in ((missing, [], "needs onnxruntime: pip install 'jasr-video[onnx]'"),
                                 (None, ["--precision", "bf16"], "onnx backend runs fp32 or int8")):
        cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "jasr_video.cli"]
        r = subprocess.run(cmd + [str(CLIP)] + args + extra, capture_output=True, text=True, timeout=300)
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and not list(tmp_path.glob("o.jsonl*")), r.stderr
