"""--identity / --find on the real opera clip: a held-back frame's face of one person finds that person's track."""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import CLIP, need

REPO = Path(__file__).resolve().parents[1]
RUN_FRAMES = 12  # the run sees frames 0-11; frame 12 is held back and gives the photo


def _frame(path: Path, index: int) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24")
    raise AssertionError(f"{path} has no frame {index}")


def _cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", COLUMNS="300")  # wide enough that the summary is not wrapped
    return subprocess.run([sys.executable, "-m", "jasr_video.cli", *args], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=timeout)


@pytest.fixture(scope="module")
def found(tmp_path_factory) -> dict:
    pytest.importorskip("dlib", reason="needs the extra jasr-video[identity]")
    clip = need(CLIP)
    import cv2
    import torch

    from jasr_video.config import PipelineConfig
    from jasr_video.detect import make_detector

    d = tmp_path_factory.mktemp("find")
    frame = _frame(clip, RUN_FRAMES)
    faces = sorted(make_detector(PipelineConfig(device="cpu"), torch.device("cpu")).detect([frame])[0],
                   key=lambda f: -f.size)
    assert len(faces) >= 3
    person = faces[1]  # the second-largest face of the held-back frame: one person of several
    x0, y0, x1, y1 = person.box
    s, cx, cy = max(x1 - x0, y1 - y0), (x0 + x1) / 2, (y0 + y1) / 2
    photo = frame[int(max(cy - 1.5 * s, 0)):int(cy + 1.5 * s), int(max(cx - 1.5 * s, 0)):int(cx + 1.5 * s)]
    cv2.imwrite(str(d / "person.jpg"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    r = _cli(str(clip), "--max-frames", str(RUN_FRAMES), "--json", str(d / "run.jsonl"), "--tracks", str(d / "tracks"),
             "--report", str(d / "report"), "--find", str(d / "person.jpg"), "--threads", "1")
    assert r.returncode == 0, r.stderr
    return {"dir": d, "box": person.box, "stderr": r.stderr}


def test_find_puts_the_person_first(found):
    from jasr_video.track import iou_matrix

    d = found["dir"]
    frames = [json.loads(line) for line in (d / "run.jsonl").read_text().splitlines()]
    assert len(frames) == RUN_FRAMES  # the photo's frame was not in the run
    last = frames[-1]["faces"]
    iou = iou_matrix(np.array([found["box"]], np.float64), np.array([f["box"] for f in last], np.float64))[0]
    assert iou.max() > 0.3  # the person is tracked on the frame before the photo's
    truth = last[int(iou.argmax())]["track_id"]
    rows = list(csv.DictReader(open(d / "tracks" / "tracks.csv")))
    assert len(rows) >= 3
    assert int(rows[0]["track_id"]) == truth and rows[0]["find_rank"] == "1" and rows[0]["find_photo"] == "person.jpg"
    distances = [float(r["find_distance"]) for r in rows]
    assert distances == sorted(distances)
    assert rows[0]["find_same"] == "True"
    lines = [json.loads(x) for x in (d / "tracks" / "tracks.jsonl").read_text().splitlines()]
    assert [x["track_id"] for x in lines] == [int(r["track_id"]) for r in rows]
    assert all(len(x["descriptor"]) == 128 for x in lines)
    import jsonschema

    from jasr_video.schemas import load_schema

    schema = jsonschema.Draft202012Validator(load_schema("tracks"))
    for x in lines:
        schema.validate(x)
    first = re.search(r"find person\.jpg\s*│\s*nearest tracks \(distance, lower is closer\): #(\d+) ", found["stderr"])
    assert first and int(first.group(1)) == truth
    page = (d / "report" / "index.html").read_text()
    assert "Find: person.jpg" in page and page.index(f"<b>#{truth}</b> distance") < page.index("<h2>People")


def test_find_bad_photos_are_one_line(tmp_path):
    clip = need(CLIP)
    r = _cli(str(clip), "--find", str(tmp_path / "missing.jpg"), timeout=120)
    assert r.returncode == 2 and "--find" in r.stderr and "photo not found" in r.stderr and "Traceback" not in r.stderr
    blank = tmp_path / "blank.png"
    import cv2

    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    r = _cli(str(clip), "--find", str(blank), "--max-frames", "1", timeout=300)
    assert r.returncode == 2 and "no face found" in r.stderr and "Traceback" not in r.stderr
    r = _cli(str(clip), "--identity", "--json", str(tmp_path / "a.jsonl"), timeout=120)
    assert r.returncode == 2 and "add --tracks DIR or --report DIR" in r.stderr
