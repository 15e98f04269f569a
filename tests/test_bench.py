"""The end-to-end benchmark runs and reports what docs/benchmarks.md quotes (a smoke test: figures are not checked)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CLIP, need
from jasr_video.config import PipelineConfig
from video_utils import make_clip

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(need(CLIP), tmp_path_factory.mktemp("bench") / "roh_640.mp4", frames=6, width=640)


def test_bench_reports_runs_ratios_recall_and_streams(clip, tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, "-m", "jasr_video.bench", "--input", str(clip), "--frames", "8", "--warmup", "1",
                        "--threads", "2", "--device", "cpu", "--variants", "baseline", "default", "reference-mtcnn", "json-only",
                        "--streams", "2", "--model-seconds", "0", "--json", str(out)],
                       capture_output=True, text=True, cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    runs = {row["name"]: row for row in report["runs"]}
    assert set(runs) == {"baseline", "default", "reference-mtcnn", "json-only"}
    for row in runs.values():
        assert row["frames"] == 8 and row["fps"] > 0  # 8 frames from a 6-frame clip: it loops
        assert row["ms_per_frame"]["detect"] > 0 and row["peak_rss_mb"] > 0
    assert runs["baseline"]["config"]["detector"] == "MTCNN every frame"
    assert runs["reference-mtcnn"]["config"]["detector"] == "facenet detect_face"
    assert runs["default"]["config"]["detector"] == PipelineConfig().detector
    assert runs["default"]["vs_baseline"]["reference_faces"] > 0
    # tracks are shown from their 2nd detection (min_hits), so frame 0 has none: 87 % measured on 8 frames
    assert runs["default"]["vs_baseline"]["recall"] >= 0.7
    lean = runs["json-only"]  # no SR faces: landmarks as the default's, within batch-size rounding
    assert "sr_max_levels" not in lean["vs_default"] and lean["vs_default"]["landmark_max_px"] < 0.01
    assert lean["ms_per_frame"]["encode"] == 0 and runs["default"]["ms_per_frame"]["encode"] > 0
    (streams,) = report["streams"]
    assert streams["streams"] == 2 and streams["frames"] == 16 and not streams["failed"]
    assert "Simultaneous streams" in r.stdout and "x baseline" in r.stdout


def test_model_bench_times_an_untrained_preset_with_overrides_in_int8(tmp_path):
    """`preset:NAME,FIELD=INT` builds that network (int8 calibrated on the bench's own faces); a misspelt
    field or a non-integer value is one clear error line."""
    from jasr_video.model.bench import load_for_bench
    from jasr_video.model.network import count_parameters

    name, model, checkpoint = load_for_bench("preset:tiny,width=24,refine_blocks=1")
    assert model.config.width == 24 and model.config.refine_blocks == 1 and checkpoint == {}
    assert count_parameters(model) > count_parameters(load_for_bench("preset:tiny")[1])
    report = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, "-m", "jasr_video.model.bench", "--models", "preset:tiny,width=24",
                          "--precisions", "fp32", "int8", "--backends", "torch", "--batch-sizes", "2",
                          "--passes", "full", "landmarks", "--seconds", "0.2", "--threads", "1", "--json", str(report)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    rows = json.loads(report.read_text())["rows"]
    assert [(r["precision"], r["pass"]) for r in rows] == [("fp32", "full"), ("fp32", "landmarks"),
                                                            ("int8", "full"), ("int8", "landmarks")]
    assert all(r["faces_per_s"] > 0 for r in rows)
    full, lean = rows[0], rows[1]  # the landmarks-only pass: fewer FLOPs, landmarks as the full pass's
    assert lean["gflop_per_face"] < 0.8 * full["gflop_per_face"]
    assert "sr_max_levels" not in lean["vs_fp32"] and lean["vs_fp32"]["landmark_max_px"] == 0
    for bad, message in (("preset:tiny,widht=24", "widht"), ("preset:tiny,width=x", "FIELD=INTEGER")):
        run = subprocess.run([sys.executable, "-m", "jasr_video.model.bench", "--models", bad, "--precisions",
                              "fp32", "--backends", "torch", "--batch-sizes", "2", "--seconds", "0.1"],
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr
