"""Loader of image + .pts folders, HR crops, and the LR protocol."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from jasr_video.model.data import FaceDataset, degrade, find_pairs, read_pts, upsample


def test_reads_300w_pts(faces_test):
    pts = sorted(faces_test.glob("*.pts"))[0]
    points = read_pts(pts)
    assert points.shape == (68, 2) and np.isfinite(points).all()
    assert 0 < points.min() and points.max() < 256  # 256x256 crops


def test_any_folder_of_pairs(tmp_path, faces_test):
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    for image in sorted(faces_test.glob("*.jpg"))[:3]:
        shutil.copy(image, nested / image.name)
        shutil.copy(image.with_suffix(".pts"), nested / image.with_suffix(".pts").name)
    (nested / "lonely.pts").write_text("version: 1\nn_points: 68\n{\n}\n")  # no image: ignored
    assert len(find_pairs(tmp_path)) == 3
    with pytest.raises(FileNotFoundError, match="no such folder"):
        find_pairs(tmp_path / "a" / "b" / "missing")
    bad = tmp_path / "bad.pts"
    bad.write_text("garbage")
    with pytest.raises(ValueError, match="not a 300-W"):
        read_pts(bad)


def test_hr_crop_holds_the_face(faces_test):
    dataset = FaceDataset(find_pairs(faces_test)[:8], margin=1.4)
    for i in range(len(dataset)):
        hr, landmarks, visible = dataset[i]
        assert hr.shape == (3, 128, 128) and 0 <= hr.min() and hr.max() <= 1
        assert visible.all()
        side = (landmarks.max(0).values - landmarks.min(0).values).max()
        assert side == pytest.approx(128 / 1.4, rel=0.01)  # longer landmark-box side = 128 / margin


def test_lr_protocol_shapes_and_antialiasing():
    # A one-pixel checkerboard averages to grey under an anti-aliased x1/8 down-sampling.
    board = (np.indices((128, 128)).sum(0) % 2).astype(np.float32)
    hr = torch.from_numpy(board).expand(1, 3, 128, 128).clone()
    lr = degrade(hr)
    assert lr.shape == (1, 3, 16, 16)
    assert torch.allclose(lr[..., 2:-2, 2:-2], torch.full_like(lr[..., 2:-2, 2:-2], 0.5), atol=0.02)
    assert upsample(lr).shape == (1, 3, 128, 128)
