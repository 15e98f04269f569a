"""Outputs an analyst can use: layout that never covers a face, filters, compact JSON, per-person gallery, report.

Real clips, real MTCNN and JASRNet; the layout checks run on the stadium clip (57-114+ faces per frame).
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from conftest import CLIP, SHARED_DATA, need
from jasr_video.crop import CropGeometry
from jasr_video.filters import OutputFilter
from jasr_video.layout import (DrawStyle, Layout, _footprint, clip_box, covered_fraction, landmark_points,
                               mask_outside, parse_draw, plan, render)
from jasr_video.pipeline import FaceResult, FrameResult
from video_utils import make_clip

REPO = Path(__file__).resolve().parents[1]
STADIUM = SHARED_DATA / "video" / "stadium_crowd_720p25.mp4"


@pytest.fixture(scope="module")
def stadium_frames() -> list[FrameResult]:
    """The first 2 frames of the stadium clip (default pipeline, but tracks shown from their first detection)."""
    import torch

    from jasr_video.pipeline import Pipeline, PipelineConfig

    need(STADIUM)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    return list(Pipeline(PipelineConfig(max_frames=2, min_hits=1)).run(STADIUM))


@pytest.mark.parametrize("inset", ["auto", "side"])
def test_drawings_cover_no_face_on_the_stadium_clip(stadium_frames, inset):
    style = DrawStyle(inset=inset)
    faces = insets = 0
    for result in stadium_frames:
        layout = plan(result, style)
        fractions = covered_fraction(layout)
        faces += len(fractions)
        insets += sum(it.kind == "inset" for it in layout.items)
        assert max(fractions) == 0.0, f"frame {result.index}: a face is {max(fractions):.1%} covered"
        for it in layout.items:  # everything inside the frame
            x0, y0, x1, y1 = it.rect
            if it.kind in ("inset", "label"):
                assert 0 <= x0 < x1 <= layout.width and 0 <= y0 < y1 <= layout.height
        # the drawn pixels agree with the layout: inside a face box only its own box and dots changed
        drawn = render(result, layout)
        changed = (drawn != result.image).any(axis=2)
        for i, (x0, y0, x1, y1) in enumerate(layout.face_rects):
            own = np.zeros((y1 - y0, x1 - x0), bool)
            for it in layout.items:
                if it.face == i and it.kind in ("box", "points"):
                    _footprint(it, own, x0, y0)
            assert not (changed[y0:y1, x0:x1] & ~own).any(), f"frame {result.index}: face {i} drawn over"
    assert faces > 100
    # side insets go only where they cover no face: in this crowd (every face found, about 180 a frame) there may be
    # no such place; test_side_insets_find_room_beside_faces checks them where there is room
    assert insets >= (60 if inset == "auto" else 0)


def test_side_insets_find_room_beside_faces(clip):
    """The opera clip's first frames (a few faces, room around them): side insets are placed, covering no face."""
    import torch

    from jasr_video.pipeline import Pipeline, PipelineConfig

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    style, insets = DrawStyle(inset="side"), 0
    for result in Pipeline(PipelineConfig(max_frames=2, min_hits=1)).run(clip):
        layout = plan(result, style)
        assert not layout.face_rects or max(covered_fraction(layout)) == 0.0
        insets += sum(it.kind == "inset" for it in layout.items)
    assert insets >= 1


def test_boxes_are_clipped_and_edge_faces_flagged(stadium_frames):
    edge = 0
    for result in stadium_frames:
        h, w = result.image.shape[:2]
        for face in result.faces:
            x0, y0, x1, y1 = face.box
            assert 0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h
            edge += face.at_edge
            assert face.to_json()["at_edge"] == face.at_edge
    assert edge > 0  # the crowd runs off the frame


def test_clip_box_and_grey_outside_the_frame():
    box, at_edge = clip_box([-5, 10, 30, 50], 100, 80)
    assert box.tolist() == [0, 10, 30, 50] and at_edge
    assert not clip_box([5, 5, 20, 20], 100, 80)[1]
    sr = np.full((128, 128, 3), 200, np.uint8)
    inside = mask_outside(sr, CropGeometry(50, 40, 20), 100, 80)
    assert inside is sr
    left = mask_outside(sr, CropGeometry(5, 40, 20), 100, 80)  # crop spans x -5..15: the left quarter is outside
    assert (left[:, :25] == 128).all() and (left[:, 40:] == 200).all()


def test_drawing_scales_with_face_size():
    pts = np.random.default_rng(0).uniform(0, 50, (68, 2)).astype(np.float32)
    style = DrawStyle()
    assert len(landmark_points(pts, 20, style)) == 0
    assert len(landmark_points(pts, 30, style)) == 5
    assert len(landmark_points(pts, 60, style)) == 68
    assert len(landmark_points(np.zeros((0, 2), np.float32), 60, style)) == 0  # a face without landmarks
    assert parse_draw("boxes, ids") == {"boxes", "ids"} and parse_draw("none") == set()
    with pytest.raises(ValueError, match="unknown --draw item dots"):
        parse_draw("boxes,dots")


def _face(tid: int, px: float, score: float = 0.99) -> FaceResult:
    lm = np.zeros((68, 2), np.float32)
    return FaceResult(tid, np.array([0, 0, px, px], np.float32), score, True, lm, lm, np.full(68, 0.8, np.float32),
                      px, np.zeros((128, 128, 3), np.uint8), CropGeometry(px / 2, px / 2, px * 1.4))


def test_output_filter_rules():
    keep = OutputFilter(min_face_px=20, min_score=0.95, min_track_frames=3)
    img = np.zeros((64, 64, 3), np.uint8)
    shown = []
    for i in range(4):
        faces = [_face(1, 30), _face(2, 10), _face(3, 30, score=0.5)] + ([_face(4, 30)] if i < 2 else [])
        out = keep(FrameResult(i, i / 25, img, faces))
        shown.append(sorted(f.track_id for f in out.faces))
        assert len(out.faces) + len(out.hidden_faces) == len(faces)
    assert shown == [[], [], [1], [1]]  # track 1 from its 3rd frame; 4 never reaches 3 frames
    assert keep.counts["face_px"] == 4 and keep.counts["score"] == 4 and keep.counts["track_frames"] == 4
    assert "smaller than 20 px" in keep.describe()


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory) -> dict:
    need(CLIP)
    d = tmp_path_factory.mktemp("outputs")
    clip = make_clip(CLIP, d / "roh_640.mp4", frames=16, width=640)
    args = [sys.executable, "-m", "jasr_video.cli", str(clip), "--out", str(d / "a.mp4"), "--json", str(d / "a.jsonl"),
            "--tracks", str(d / "tracks"), "--report", str(d / "report"), "--json-decimals", "0",
            "--json-landmarks", "none", "--min-track-frames", "4", "--inset", "side", "--draw", "boxes,ids,insets",
            "--threads", "1"]
    env = dict(os.environ, OMP_NUM_THREADS="1", COLUMNS="300")  # wide enough that the summary is not wrapped
    r = subprocess.run(args, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    return {"dir": d, "stderr": r.stderr}


def test_compact_json_and_per_person_outputs(cli_run):
    d = cli_run["dir"]
    frames = [json.loads(x) for x in (d / "a.jsonl").read_text().splitlines()]
    faces = [f for fr in frames for f in fr["faces"]]
    assert len(frames) == 16 and faces
    assert all("landmarks_raw" not in f and "landmarks_smoothed" not in f for f in faces)
    assert all(isinstance(v, int) for f in faces for v in f["box"]) and all("at_edge" in f for f in faces)
    rows = list(csv.DictReader(open(d / "tracks" / "tracks.csv")))
    assert rows and all(int(r["frames"]) >= 4 for r in rows)
    lines = [json.loads(x) for x in (d / "tracks" / "tracks.jsonl").read_text().splitlines()]
    assert [r["track_id"] for r in lines] == [int(r["track_id"]) for r in rows]
    for r in rows:
        assert int(r["first_frame"]) <= int(r["best_frame"]) <= int(r["last_frame"])
        assert (d / "tracks" / r["sr_png"]).is_file() and (d / "tracks" / r["native_png"]).is_file()
    # per-frame outputs show a track from its 4th frame on: never a track the CSV leaves out
    assert {f["track_id"] for f in faces} <= {int(r["track_id"]) for r in rows}
    assert "below 16" not in cli_run["stderr"] and "smaller than 16 pixels" in cli_run["stderr"]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a.get("src", ""))
        for key in ("src", "href"):
            if (a.get(key) or "").startswith(("http:", "https:", "//")):
                self.external.append(a[key])


def test_report_is_self_contained_and_every_image_exists(cli_run):
    page = cli_run["dir"] / "report" / "index.html"
    parser = _Links()
    parser.feed(page.read_text())
    assert parser.images and not parser.external
    for src in parser.images:
        assert (page.parent / src).is_file(), src
    text = page.read_text()
    assert text.count("<svg") == 3 and "track timeline" in text


def test_bad_draw_option_is_one_line(tmp_path):
    need(CLIP)
    r = subprocess.run([sys.executable, "-m", "jasr_video.cli", str(CLIP), "--json", str(tmp_path / "a.jsonl"),
                        "--draw", "boxes,dots"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--draw" in r.stderr
    assert not list(tmp_path.iterdir())
    (tmp_path / "file").write_text("x")
    r = subprocess.run([sys.executable, "-m", "jasr_video.cli", str(CLIP), "--tracks", str(tmp_path / "file")],
                       capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not a folder" in r.stderr


def test_report_renders_in_a_headless_browser(cli_run, tmp_path):
    """Debian's chromium (in .ci/apt-packages.txt) opens the page offline and renders its images and plots."""
    import shutil

    import cv2

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed (apt-get install chromium; CI installs it from .ci/apt-packages.txt)")
    page = (cli_run["dir"] / "report" / "index.html").resolve()
    base = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={tmp_path / 'p'}"]
    dom = subprocess.run(base + ["--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") == 3 and dom.stdout.count("<img") == page.read_text().count("<img")
    shot = tmp_path / "shot.png"
    r = subprocess.run(base + [f"--screenshot={shot}", "--window-size=1000,1400", page.as_uri()], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    img = cv2.imread(str(shot))
    # the gallery's faces make the top of the page far from a blank white page
    assert (img[:700] < 200).any(axis=2).mean() > 0.05


def test_shows_sr_only_for_outputs_that_show_sr_faces():
    from jasr_video.layout import DrawStyle
    from jasr_video.outputs import OutputSpec

    assert not OutputSpec(json="a.jsonl", csv="a.csv").shows_sr()
    assert OutputSpec(out="a.mp4").shows_sr()
    assert not OutputSpec(out="a.mp4", inset=False).shows_sr()
    assert not OutputSpec(out="a.mp4", style=DrawStyle(draw=frozenset({"boxes", "landmarks"}))).shows_sr()
    assert OutputSpec(out="a.mp4", style=DrawStyle(inset="side")).shows_sr()
    assert OutputSpec(json="a.jsonl", crops="crops/").shows_sr()
