"""Sinks with real encoders: odd sizes, crash leftovers, annotation."""
from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from jasr_video.crop import CropGeometry
from jasr_video.pipeline import FaceResult, FrameResult
from jasr_video.sinks import JsonlSink, VideoSink, annotate
from jasr_video.source import StreamInfo
from video_utils import probe


def frame(i: int, w: int, h: int, faces: int = 1) -> FrameResult:
    img = np.full((h, w, 3), 40 + 5 * i, np.uint8)
    lm = np.stack([np.linspace(20, 40, 68), np.linspace(20, 40, 68)], 1).astype(np.float32)
    fs = [FaceResult(k + 1, np.array([15, 15, 45, 45], np.float32), 0.99, True, lm, lm, np.ones(68, np.float32),
                     30.0, np.full((128, 128, 3), 200, np.uint8), CropGeometry(30, 30, 42)) for k in range(faces)]
    return FrameResult(i, i / 25, img, fs)


def info(w: int, h: int) -> StreamInfo:
    return StreamInfo("x", w, h, 25.0, None, Fraction(1, 12800), False, False)


@pytest.mark.parametrize("w,h,even,expect", [(641, 479, False, (641, 479)), (641, 479, True, (642, 480)),
                                             (320, 240, False, (320, 240))])
def test_video_sizes(tmp_path, w, h, even, expect):
    sink = VideoSink(tmp_path / "o.mp4", info(w, h), even_size=even)
    for i in range(5):
        sink.write(frame(i, w, h))
    assert not (tmp_path / "o.mp4").exists()  # only the .partial exists while writing
    sink.close()
    p = probe(tmp_path / "o.mp4")
    assert (p["width"], p["height"]) == expect and p["frames"] == 5
    assert np.allclose(p["pts"], [i / 25 for i in range(5)], atol=1e-3)


def test_crash_leaves_valid_partial_jsonl(tmp_path):
    sink = JsonlSink(tmp_path / "o.jsonl")
    for i in range(3):
        sink.write(frame(i, 64, 64))
    # the process dies here: before any close, what is on disk is complete lines
    lines = (tmp_path / "o.jsonl.partial").read_text().splitlines()
    assert [json.loads(x)["frame"] for x in lines] == [0, 1, 2]
    sink.close(complete=False)
    assert not (tmp_path / "o.jsonl").exists() and (tmp_path / "o.jsonl.partial").exists()


def test_annotate_draws_without_touching_input():
    r = frame(0, 200, 120)
    before = r.image.copy()
    out = annotate(r)
    assert np.array_equal(r.image, before) and out.shape == r.image.shape
    assert (out != r.image).any(axis=2).sum() > 100  # box, points and inset drawn
    assert (out[15:16, 15:46] != before[15:16, 15:46]).any()  # the box's top edge


def test_faces_without_sr_get_no_inset_and_no_crop(tmp_path):
    """A run without SR faces (PipelineConfig.sr_faces off): insets and crops leave those faces out."""
    from dataclasses import replace

    from jasr_video.layout import plan
    from jasr_video.sinks import CropSink

    r = frame(0, 200, 120)
    assert [it.kind for it in plan(r).items].count("inset") == 1
    lean = replace(r, faces=[replace(f, sr=None) for f in r.faces])
    layout = plan(lean)
    assert "inset" not in [it.kind for it in layout.items] and layout.no_room == 0
    assert "box" in [it.kind for it in layout.items]
    annotate(lean)  # draws the rest
    sink = CropSink(tmp_path / "crops")
    sink.write(lean)
    sink.write(r)
    assert sink.files == 1
    from jasr_video.gallery import TrackGallery

    gallery = TrackGallery(tmp_path / "people")  # best faces: the native crop only, no SR file named
    for i in range(3):
        gallery.write(replace(frame(i, 200, 120), faces=[replace(f, sr=None) for f in r.faces]))
    gallery.close()
    (track,) = gallery.tracks()
    assert track.sr_png == "" and (tmp_path / "people" / track.native_png).is_file()
    assert not list((tmp_path / "people").glob("*_sr.png"))


def test_background_writer_writes_every_frame_in_order(tmp_path):
    from jasr_video.sinks import BackgroundWriter

    video, lines = VideoSink(tmp_path / "o.mp4", info(320, 240)), JsonlSink(tmp_path / "o.jsonl")
    writer = BackgroundWriter([video, lines], queue_size=2)
    for i in range(12):
        writer.write(frame(i, 320, 240))
    assert writer.close() == [tmp_path / "o.mp4", tmp_path / "o.jsonl"]
    assert probe(tmp_path / "o.mp4")["frames"] == 12
    assert [json.loads(x)["frame"] for x in (tmp_path / "o.jsonl").read_text().splitlines()] == list(range(12))
    assert video.seconds["encode"] > 0 and lines.seconds["json"] > 0


def test_background_writer_reports_a_sink_error_and_keeps_partial(tmp_path):
    from jasr_video.sinks import BackgroundWriter

    video, lines = VideoSink(tmp_path / "o.mp4", info(320, 240)), JsonlSink(tmp_path / "o.jsonl")
    writer = BackgroundWriter([video, lines])
    writer.write(frame(0, 320, 240))
    lines.file.close()  # the JSONL file fails under the worker (as on a vanished disk)
    with pytest.raises(ValueError, match="closed file"):
        for i in range(1, 30):
            writer.write(frame(i, 320, 240))
        writer.close()
    assert writer.failed
    writer.close()  # closing after the error was raised still does not finalise
    assert not (tmp_path / "o.mp4").exists() and (tmp_path / "o.mp4.partial").exists()


def test_csv_sink_rows_and_registry_build(tmp_path):
    """The CSV sink (added as one class + one registry entry) through build_sinks, with the JSON Lines beside it."""
    import csv

    from jasr_video.csv_sink import CSV_COLUMNS, CsvSink
    from jasr_video.outputs import SINKS, OutputSpec, build_sinks

    assert SINKS["csv"].cls is CsvSink and list(SINKS) == ["out", "json", "crops", "csv"]
    spec = OutputSpec(json=f"{tmp_path}/", csv=f"{tmp_path}/{{stream}}_faces.csv")
    paths = spec.paths("cam")
    assert paths == {"json": tmp_path / "cam.jsonl", "csv": tmp_path / "cam_faces.csv"}
    sinks = build_sinks(spec, paths, info(64, 48), None)
    assert [type(s) for s in sinks] == [JsonlSink, CsvSink]
    for i in range(3):
        for s in sinks:
            s.write(frame(i, 64, 48, faces=2))
    assert not paths["csv"].exists()  # written as .partial until closed
    for s in sinks:
        s.close()
    rows = list(csv.DictReader(paths["csv"].open()))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 6
    assert rows[3]["frame"] == "1" and rows[3]["track_id"] == "2" and float(rows[3]["pts"]) == 0.04
    assert [float(rows[0][k]) for k in ("x0", "y0", "x1", "y1")] == [15, 15, 45, 45]
    assert rows[0]["detected"] == "1" and rows[0]["below_16px"] == "0" and rows[0]["sr_factor"] == "8"
    assert float(rows[0]["landmark_confidence"]) == 1.0
    lines = paths["json"].read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[1])["faces"][1]["track_id"] == 2


def test_csv_sink_appends_after_a_restart(tmp_path):
    """OutputSpec(append=True) (a restarted Ray stream worker): the CSV goes on in its .partial, one header."""
    import csv

    from jasr_video.outputs import OutputSpec, build_sinks

    paths = {"csv": tmp_path / "s.csv"}
    first = build_sinks(OutputSpec(csv=str(paths["csv"])), paths, info(64, 48), None)[0]
    first.write(frame(0, 64, 48))
    first.file.close()  # a crash: the .partial stays
    again = build_sinks(OutputSpec(csv=str(paths["csv"]), append=True), paths, info(64, 48), None)[0]
    again.write(frame(1, 64, 48))
    again.close()
    rows = list(csv.DictReader(paths["csv"].open()))
    assert [r["frame"] for r in rows] == ["0", "1"]
