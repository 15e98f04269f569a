"""The command line over the stage registries: defaults from PipelineConfig, --smoother, --csv (real model, real clip)."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import CLIP, need
from jasr_video.cli import _config, build_parser
from jasr_video.config import LIVE_FRAME_BATCH, PipelineConfig
from video_utils import make_clip

REPO = Path(__file__).resolve().parents[1]


def test_cli_defaults_are_the_config_defaults():
    args = build_parser().parse_args(["clip.mp4", "--out", "clip.mp4", "--json", "clip.jsonl"])
    assert _config(args, live=False) == PipelineConfig()
    assert _config(args, live=True).frame_batch == LIVE_FRAME_BATCH
    # no output shows SR faces: landmarks only (PipelineConfig.sr_faces), else the same
    for options in (["--json", "c.jsonl"], ["--csv", "c.csv"], ["--out", "c.mp4", "--no-inset"], ["--out", "c.mp4", "--inset", "off"]):
        args = build_parser().parse_args(["clip.mp4", *options])
        assert _config(args, live=False) == PipelineConfig(sr_faces=False), options
    for options in (["--json", "c.jsonl", "--save-crops", "crops/"],
                    ["--json", "c.jsonl", "--tracks", "people/", "--fusion", "off"]):
        assert _config(build_parser().parse_args(["clip.mp4", *options]), live=False).sr_faces, options
    # --tracks / --report with fusion (the default): SR on demand, the gallery super-resolves per person at the end
    for options in (["--tracks", "people/"], ["--report", "report/"], ["--json", "c.jsonl", "--tracks", "people/"]):
        assert not _config(build_parser().parse_args(["clip.mp4", *options]), live=False).sr_faces, options
    args = build_parser().parse_args(["clip.mp4", "--smoother", "one-euro", "--frame-batch", "3"])
    cfg = _config(args, live=True)
    assert cfg.smoother == "one-euro" and cfg.frame_batch == 3


def test_csv_rows_match_the_json_lines_with_the_one_euro_smoother(tmp_path):
    clip = make_clip(need(CLIP), tmp_path / "roh_320.mp4", frames=12, width=480)
    out = subprocess.run([sys.executable, "-m", "jasr_video.cli", str(clip), "--json", str(tmp_path / "o.jsonl"),
                          "--csv", str(tmp_path / "o.csv"), "--smoother", "one-euro", "--quiet", "--threads", "1"],
                         capture_output=True, text=True, cwd=REPO, timeout=300,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert out.returncode == 0, out.stderr
    frames = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    faces = [(f["frame"], face) for f in frames for face in f["faces"]]
    rows = list(csv.DictReader((tmp_path / "o.csv").open()))
    assert len(frames) == 12 and faces and len(rows) == len(faces)
    for row, (index, face) in zip(rows, faces):
        assert int(row["frame"]) == index and int(row["track_id"]) == face["track_id"]
        assert [float(row[k]) for k in ("x0", "y0", "x1", "y1")] == face["box"]
    moved = [face for _, face in faces if face["landmarks_smoothed"] != face["landmarks_raw"]]
    assert moved  # the One Euro filter smoothed the tracked faces' landmarks
