"""`jasr-video --demo` (what `make demo` runs), kept short with --max-frames."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import SHARED_DATA, need
from video_utils import probe

REPO = Path(__file__).resolve().parents[1]


def demo(cwd: Path, data: Path, *args, python_code: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", JASR_VIDEO_DATA=str(data))
    cmd = [sys.executable, "-c", python_code] if python_code else [sys.executable, "-m", "jasr_video.cli", "--demo",
                                                                      *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_demo_renders_the_shared_clip(tmp_path):
    r = demo(tmp_path, need(SHARED_DATA / "video").parent, "--max-frames", 2, "--threads", 1)
    assert r.returncode == 0, r.stderr
    video = tmp_path / "demo" / "royal_opera_house_1080p25_annotated.mp4"
    jsonl = tmp_path / "demo" / "royal_opera_house_1080p25.jsonl"
    assert r.stdout.strip() == f"demo outputs: {video}, {jsonl}"
    p = probe(video)
    assert (p["width"], p["height"], p["frames"]) == (1920, 1080, 2) and p["audio"]
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(rows) == 2 and rows[1]["faces"]


def test_demo_without_shared_data_uses_the_builtin_portrait(tmp_path):
    r = demo(tmp_path, tmp_path / "no-data", "--max-frames", 12, "--threads", 1)
    assert r.returncode == 0, r.stderr
    assert "not found" in r.stderr and "grace_hopper" in r.stderr
    rows = [json.loads(line) for line in (tmp_path / "demo" / "grace_hopper_zoom.jsonl").read_text().splitlines()]
    assert len(rows) == 12
    assert sum(len(row["faces"]) == 1 for row in rows) >= 10  # the face is found and tracked
    assert len({f["track_id"] for row in rows for f in row["faces"]}) == 1
    assert probe(tmp_path / "demo" / "grace_hopper_zoom_annotated.mp4")["frames"] == 12


def test_demo_with_nothing_to_show_says_how_to_fix_it(tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None  # no sample portrait either\n"
            "from jasr_video.cli import main; sys.exit(main(['--demo']))")
    r = demo(tmp_path, tmp_path / "no-data", python_code=code)
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "JASR_VIDEO_DATA" in lines[0] and "not found" in lines[0]
    assert not list(tmp_path.iterdir())
