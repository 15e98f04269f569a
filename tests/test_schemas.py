"""The JSON Schemas shipped in jasr_video/schemas hold for real output of the real command (real clip, real
model), and reject broken records."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from conftest import CLIP, need
from jasr_video.schemas import SCHEMAS, load_schema, schema_text
from video_utils import make_clip, remux_video

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_schema(name))


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jasr_video.cli", *map(str, args), "--threads", "1", "--quiet"],
                          capture_output=True, text=True, cwd=REPO, env=ENV, timeout=600)


@pytest.fixture(scope="module")
def real_output(tmp_path_factory) -> tuple[list[dict], list[dict]]:
    """JSON Lines and tracks.jsonl of the command on the first frames of the 1080p clip."""
    out = tmp_path_factory.mktemp("run")
    r = cli(need(CLIP), "--max-frames", 3, "--json", out / "clip.jsonl", "--tracks", out / "people")
    assert r.returncode == 0, r.stderr
    return lines(out / "clip.jsonl"), lines(out / "people" / "tracks.jsonl")


def test_schemas_are_valid_draft_2020_12():
    for name in SCHEMAS:
        schema = load_schema(name)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(schema)
        assert json.loads(schema_text(name)) == schema
    with pytest.raises(ValueError, match="one of jsonl, tracks"):
        load_schema("frames")


def test_real_output_validates(real_output):
    frames, tracks = real_output
    assert len(frames) == 3 and sum(len(f["faces"]) for f in frames) >= 3 and tracks
    for record in frames:
        validator("jsonl").validate(record)
    for record in tracks:
        validator("tracks").validate(record)


def test_compact_output_and_stream_error_validate(tmp_path):
    """--json-landmarks none, whole pixels, and the stream_error event of a file cut short."""
    small = make_clip(need(CLIP), tmp_path / "small.mp4", frames=30, width=320)
    data = remux_video(small, tmp_path / "fast.mp4", options={"movflags": "faststart"}).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    r = cli(cut, "--json", tmp_path / "cut.jsonl", "--json-landmarks", "none", "--json-decimals", 0)
    assert r.returncode == 2, r.stderr  # ended early
    records = lines(tmp_path / "cut.jsonl")
    assert records[-1]["event"] == "stream_error" and any(f["faces"] for f in records[:-1])
    for record in records:
        validator("jsonl").validate(record)


def broken(record: dict, path: tuple, value=None, drop: bool = False) -> dict:
    """A copy of `record` with the field at `path` set to `value` (or removed)."""
    out = copy.deepcopy(record)
    parent = out
    for key in path[:-1]:
        parent = parent[key]
    if drop:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return out


def test_broken_records_fail(real_output):
    frames, tracks = real_output
    frame = next(f for f in frames if f["faces"])
    jsonl, tracks_v = validator("jsonl"), validator("tracks")
    bad = [
        broken(frame, ("pts",), drop=True),
        broken(frame, ("frame",), -1),
        broken(frame, ("scan",), "partial"),
        broken(frame, ("faces",), {}),
        broken(frame, ("faces", 0, "box"), [1.0, 2.0, 3.0]),
        broken(frame, ("faces", 0, "score"), "0.9"),
        broken(frame, ("faces", 0, "track_id"), 1.5),
        broken(frame, ("faces", 0, "sr_factor"), 3),
        broken(frame, ("faces", 0, "crop"), drop=True),
        broken(frame, ("faces", 0, "landmarks_smoothed"), frame["faces"][0]["landmarks_smoothed"][:5]),
        {"event": "stream_gap", "stream": "cam", "start_pts": 1.0, "reason": "reconnected"},  # no duration
        {"event": "stream_error", "stream": "cam"},  # no reason
        {"event": ""},
        [],
    ]
    for record in bad:
        assert not jsonl.is_valid(record), record
    for record in (broken(tracks[0], ("frames",), "3"), broken(tracks[0], ("detected_share",), 1.5),
                   broken(tracks[0], ("native_png",), drop=True)):
        assert not tracks_v.is_valid(record), record


def test_extra_fields_and_new_event_types_are_allowed(real_output):
    frames, tracks = real_output
    frame = next(f for f in frames if f["faces"])
    jsonl = validator("jsonl")
    assert jsonl.is_valid(broken(frame, ("faces", 0, "identity"), [0.1, 0.2]))
    assert jsonl.is_valid(broken(frame, ("stream",), "cam"))
    assert jsonl.is_valid({"event": "camera_moved", "stream": "cam", "pts": 3.0})  # a type of a newer version
    change = {"event": "stream_change", "stream": "cam", "pts": 1.0, "old_size": [640, 360], "new_size": [1280, 720],
              "annotated_video": "these frames scaled to fit 640x360, aspect kept, padded"}
    assert jsonl.is_valid(change) and jsonl.is_valid({**change, "old_format": "yuv420p", "new_format": "yuv420p10le"})
    assert not jsonl.is_valid({k: v for k, v in change.items() if k != "new_size"})
    assert jsonl.is_valid({"event": "pts_jump", "stream": "cam", "pts": 0.88, "raw_from": 0.84, "raw_to": 0.08})
    assert jsonl.is_valid({"event": "stream_gap", "stream": "cam", "start_pts": None, "duration": 2.5,
                           "reason": "reconnected", "attempts": 3})
    assert validator("tracks").is_valid(broken(tracks[0], ("fused_png",), "track_0001_fused.png"))
