"""Crop geometry: same convention as the training crop, calibrated MTCNN box -> landmark box on real faces."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from jasr_video.crop import CropGeometry, crop_face, make_crops
from jasr_video.model.data import crop_transform, read_pts


def test_matrix_matches_training_crop_transform():
    pts = np.random.default_rng(0).uniform(30, 90, (68, 2))
    lo, hi = pts.min(0), pts.max(0)
    g = CropGeometry(*((lo + hi) / 2), 1.4 * float((hi - lo).max()))
    assert np.allclose(g.matrix(128), crop_transform(pts, 1.4, 128))
    p128 = g.to_crop(pts)
    assert np.allclose(g.to_frame(p128), pts)


def test_border_faces_are_edge_replicated():
    img = np.zeros((40, 60, 3), np.uint8)
    img[:, 0] = (200, 10, 10)  # left column red
    g = CropGeometry(cx=2.0, cy=20.0, side=20.0)  # half the crop is left of the frame
    crop = crop_face(img, g)
    assert crop.shape == (128, 128, 3)
    assert (crop[:, :40, 0] == 200).all()  # outside the frame: the edge column, not black


def test_big_faces_are_area_reduced():
    img = (np.indices((600, 600)).sum(0) % 2 * 255).astype(np.uint8)[:, :, None].repeat(3, 2)  # 1-px checkerboard
    crop = crop_face(img, CropGeometry(300, 300, 500))
    assert abs(float(crop.mean()) - 127.5) < 8 and crop.std() < 30  # averaged, not aliased


def test_make_crops_batch():
    img = np.random.default_rng(0).integers(0, 255, (100, 120, 3), dtype=np.uint8)
    b = make_crops(img, [[10, 10, 30, 34], [50, 40, 60, 50]])
    assert b.tensor.shape == (2, 3, 128, 128) and b.tensor.dtype == torch.float32
    assert 0 <= float(b.tensor.min()) and float(b.tensor.max()) <= 1
    assert b.below_16px == [False, True]


def test_calibrated_crop_matches_training_crop_on_real_faces(faces_test):
    from jasr_video.detect import FaceDetector

    torch.set_num_threads(1)
    det = FaceDetector(min_face_size=12)
    files = sorted(faces_test.glob("*.jpg"))[::11][:30]  # 30 faces spread over the test set
    calibrated, naive = [], []
    for path in files:
        pts = read_pts(path.with_suffix(".pts"))
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        for s in (1.0, 0.125):  # ~130 px and ~16 px faces
            img = image if s == 1 else cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
            p = pts if s == 1 else (pts + 0.5) * s - 0.5
            lo, hi = p.min(0), p.max(0)
            true = CropGeometry(*((lo + hi) / 2), 1.4 * float((hi - lo).max()))
            dets = det.detect([img])[0]
            if not dets:
                continue
            d = min(dets, key=lambda d: np.hypot(*((d.box[:2] + d.box[2:]) / 2 - (lo + hi) / 2)))
            g = CropGeometry.from_detection(d.box, 1.4)
            calibrated.append((abs(g.side / true.side - 1), np.hypot(g.cx - true.cx, g.cy - true.cy) / true.side))
            x0, y0, x1, y1 = d.box
            raw = CropGeometry((x0 + x1) / 2, (y0 + y1) / 2, 1.4 * max(x1 - x0, y1 - y0))
            naive.append((abs(raw.side / true.side - 1), np.hypot(raw.cx - true.cx, raw.cy - true.cy) / true.side))
    c, n = np.array(calibrated), np.array(naive)
    assert len(c) >= 50
    assert np.median(c[:, 0]) < 0.08 and np.median(c[:, 1]) < 0.05, (np.median(c, 0), np.median(n, 0))
    assert np.median(c[:, 0]) < np.median(n[:, 0]) and np.median(c[:, 1]) < np.median(n[:, 1])
