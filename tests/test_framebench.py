"""The frame-path benchmark on known inputs: faces placed in frames at known positions, cut and enhanced by the
pipeline's own code, land where they were put and keep the model's gain."""
from __future__ import annotations

import numpy as np


def test_placed_face_is_where_its_points_say(faces_test):
    from jasr_video.model.data import FaceDataset, find_pairs
    from jasr_video.tools.framebench import place

    dataset = FaceDataset(find_pairs(faces_test)[:1])
    photo, points = dataset.images[0], dataset.points[0]
    placed = place(photo, points, 1.4, 16, np.random.default_rng(0))
    assert placed.geometry.side == 16.0
    truth, truth_points = placed.truth(photo, points, placed.geometry)
    sample = dataset.sample(0)  # the training crop of the photo: the same window
    assert np.abs(truth_points - sample.landmarks).max() < 1e-3
    assert np.abs(truth.astype(int) - sample.hr.astype(int)).mean() < 3.0  # anti-aliased, not a bilinear warp


def test_frame_path_keeps_the_model_gain(faces_test):
    from jasr_video.model.data import FaceDataset, find_pairs
    from jasr_video.model.sizebench import per_size_table
    from jasr_video.route import RoutedEnhancer
    from jasr_video.tools.framebench import format_table, run

    enhancer = RoutedEnhancer("jasr-cpu", device="cpu", precision="fp32", lanes=1)
    dataset = FaceDataset(find_pairs(faces_test)[:3], margin=enhancer.crop_margin)
    rows = {r["size"]: r for r in per_size_table(run(dataset, enhancer, [16, 32]))}
    for size, route in ((16, "x8 at 16 px"), (32, "x4 at 32 px")):
        row = rows[size]
        assert row["frame"]["route"] == route
        assert abs(row["frame"]["psnr"] - row["protocol"]["psnr"]) < 0.5, row
        assert row["frame"]["psnr"] > row["bicubic"]["psnr"] + 1.0, row
        assert row["frame"]["psnr"] > row["warp"]["psnr"], row  # the former 128-px warp loses the gain
        assert row["frame"]["nme_percent"] < 8
    assert "| 16 | x8 at 16 px |" in format_table(list(rows.values()))
