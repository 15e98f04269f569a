"""The YuNet detector: the shipped weights are the attributed file, it finds the faces of a real photo where
facenet's MTCNN puts them, it finds a real video frame's faces again in regions around them, every registered
detector builds, and a bad weights file is one clear error."""
from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import CLIP, SHARED_DATA, need
from jasr_video.config import DETECTOR_NAMES, PipelineConfig
from jasr_video.detect import DETECTORS, FaceDetector, make_detector
from jasr_video.track import iou_matrix
from jasr_video.yunet import YuNetDetector, yunet_weights_path

YUNET_SHA256 = "104ee26c71d5c270ce79a6b3dced91c91013260d29a6bf18f9296c5b8c4c2b12"  # models/detector/yunet/README.md


def test_shipped_weights_are_the_attributed_file_with_their_licence():
    path = yunet_weights_path()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == YUNET_SHA256
    assert (path.parent / "LICENSE").read_text().find("Apache License") >= 0
    assert YUNET_SHA256 in (path.parent / "README.md").read_text()


def test_finds_the_faces_of_a_real_photo_where_facenet_does():
    img = cv2.cvtColor(cv2.imread(str(need(SHARED_DATA / "images" / "multiface.jpg"))), cv2.COLOR_BGR2RGB)
    torch.set_num_threads(1)
    reference = FaceDetector(12, min_score=0.9, fast=False).detect([img])[0]  # six faces of about 105-120 px
    ref = np.array([d.box for d in reference])
    assert len(ref) >= 5
    faces = YuNetDetector(min_score=0.6).detect([img, img[:, ::-1].copy()])
    boxes = np.array([d.box for d in faces[0]])
    assert len(boxes) == len(ref), [d.score for d in faces[0]]
    assert (iou_matrix(ref, boxes).max(axis=1) >= 0.8).all(), iou_matrix(ref, boxes).max(axis=1)
    assert len(faces[1]) == len(ref)  # the mirrored photo: the same faces
    for d in faces[0]:
        x0, y0, x1, y1 = d.box
        # the 5 points lie in the box, eyes above the nose above the mouth, image-left eye first (MTCNN's order)
        assert ((d.points >= d.box[:2] - 2) & (d.points <= d.box[2:] + 2)).all()
        assert d.points[0, 0] < d.points[1, 0] and max(d.points[:2, 1]) < d.points[2, 1] < min(d.points[3:, 1])
    scores = [d.score for d in faces[0]]
    assert scores == sorted(scores, reverse=True) and min(scores) >= 0.6


def test_regions_around_the_faces_find_them_again():
    from jasr_video.source import open_source

    with open_source(str(need(CLIP))) as src:
        frame = next(f.image for f in src if f.index == 30)
    small = cv2.resize(frame, None, fx=1 / 3, fy=1 / 3, interpolation=cv2.INTER_AREA)  # faces of about 10-25 px
    det = YuNetDetector(min_score=0.5, upscale=2)
    full = det.detect([small])[0]
    assert len(full) >= 5
    boxes = np.array([d.box for d in full])
    found = det.detect_regions(small, boxes)
    again = np.array([d.box for d in found]).reshape(-1, 4)
    # a zoomed region is another view of the face: a face near the score cut may fall below it there
    assert len(again) and (iou_matrix(boxes, again).max(axis=1) >= 0.5).mean() >= 0.8
    assert not det.detect_regions(small, np.zeros((0, 4)))
    # regions that would cost more than a full scan (a crowd): the full scan's detections
    crowd = np.array([[x, y, x + 30, y + 30] for x in range(0, 600, 40) for y in range(0, 330, 40)], np.float64)
    assert [d.box.tolist() for d in det.detect_regions(small, crowd)] == [d.box.tolist() for d in full]


def test_registry_builds_every_detector():
    assert set(DETECTORS) == set(DETECTOR_NAMES)
    for name in DETECTOR_NAMES:
        det = make_detector(PipelineConfig(detector=name, device="cpu"), torch.device("cpu"))
        assert isinstance(det, DETECTORS[name])
        assert callable(det.detect) and callable(det.detect_regions)
        assert det.detect([np.zeros((64, 96, 3), np.uint8)]) == [[]]


def test_bad_weights_file_is_one_clear_error(tmp_path: Path):
    bad = tmp_path / "yunet.onnx"
    bad.write_bytes(b"not an onnx graph" * 100)
    with pytest.raises(ValueError) as err:
        YuNetDetector(weights=bad)
    message = str(err.value)
    assert "\n" not in message and str(bad) in message and "YuNet" in message
    with pytest.raises(FileNotFoundError, match="YuNet weights not found"):
        YuNetDetector(weights=tmp_path / "absent.onnx")
    with pytest.raises(ValueError, match="upscale"):
        YuNetDetector(upscale=0.5)


def test_auto_upscale_enlarges_small_frames_only():
    det = YuNetDetector(upscale=0)
    assert det.zoom_of(np.zeros((540, 960, 3), np.uint8)) == 2.0 and det.zoom_of(np.zeros((1080, 1920, 3), np.uint8)) == 1.0
    assert YuNetDetector(upscale=3).zoom_of(np.zeros((1080, 1920, 3), np.uint8)) == 3.0
