"""Heatmap decoding (sub-pixel, confidence) and the 68-point flip permutation."""
from __future__ import annotations

import numpy as np
import torch

from jasr_video.model.data import FaceDataset, find_pairs
from jasr_video.model.landmarks import (
    FLIP_PERMUTATION, cells_to_pixels, decode_heatmaps, gaussian_heatmaps, heatmap_landmarks, pixels_to_cells,
)


def test_decoding_synthetic_gaussians_is_subpixel_exact():
    generator = torch.Generator().manual_seed(1)
    truth_px = torch.rand(8, 68, 2, generator=generator) * 127  # anywhere in the 128x128 crop, borders too
    heatmaps = gaussian_heatmaps(pixels_to_cells(truth_px), 16, sigma=1.0)
    cells, confidence = decode_heatmaps(heatmaps)
    error_px = (cells_to_pixels(cells) - truth_px).norm(dim=-1)
    assert error_px.max() < 0.1, float(error_px.max())
    assert confidence.min() > 0.5


def test_heatmap_landmarks_take_the_cell_size_from_the_map_side():
    """16x16 maps are 8 px cells of the 128 px face, 32x32 maps (the refine stage) 4 px cells."""
    truth_px = torch.tensor([[[10.0, 20.0], [64.3, 70.9], [120.5, 3.2]]])
    for side, cell in ((16, 8), (32, 4)):
        heatmaps = gaussian_heatmaps(pixels_to_cells(truth_px, cell), side, sigma=1.0)
        points, confidence = heatmap_landmarks(heatmaps, num_landmarks=3)
        assert (points - truth_px).abs().max() < 0.1, (side, points)
        assert confidence.min() > 0.5
    # a 32x32 map read as 8 px cells would put the points elsewhere: the scale is not fixed
    wrong = cells_to_pixels(decode_heatmaps(heatmaps, 3)[0])
    assert (wrong - truth_px).abs().max() > 10


def test_confidence_follows_peak_height():
    points = torch.full((1, 68, 2), 7.3)
    heatmaps = gaussian_heatmaps(points, 16, sigma=1.0)
    heatmaps[:, :34] *= 0.2
    _, confidence = decode_heatmaps(heatmaps)
    assert (confidence[0, :34] < 0.25).all() and (confidence[0, 34:] > 0.7).all()


def test_flip_permutation_is_an_involution():
    assert sorted(FLIP_PERMUTATION) == list(range(68))
    assert [FLIP_PERMUTATION[i] for i in FLIP_PERMUTATION] == list(range(68))


def test_flipped_landmarks_land_on_mirrored_features(faces_train):
    pairs = find_pairs(faces_train)[:1]
    plain = FaceDataset(pairs).sample(0)
    flip_set = FaceDataset(pairs, augment=True, aug_scale=0, aug_rotation=0, aug_shift=0, aug_flip=True)
    flipped = next(f for f in (flip_set.sample(0) for _ in range(50)) if not np.allclose(f.hr, plain.hr))
    # The image is the mirror of the unflipped crop ...
    assert np.abs(flipped.hr.astype(int) - plain.hr[:, ::-1].astype(int)).mean() < 1.0
    # ... each flipped landmark i sits where the mirrored landmark FLIP[i] of the original sits ...
    mirrored = plain.landmarks[list(FLIP_PERMUTATION)].copy()
    mirrored[:, 0] = 127 - mirrored[:, 0]
    assert np.abs(flipped.landmarks - mirrored).max() < 0.01
    # ... and the semantics survive: outer eye 36 left of 45, jaw 0 left of 16, mouth 48 left of 54.
    for face in (plain, flipped):
        x = face.landmarks[:, 0]
        assert x[36] < x[45] and x[0] < x[16] and x[48] < x[54]
    # Image content at each flipped landmark matches the original's content at its mirror partner.
    for i in (36, 45, 30, 48, 54):
        fx, fy = np.round(flipped.landmarks[i]).astype(int)
        ox, oy = np.round(plain.landmarks[FLIP_PERMUTATION[i]]).astype(int)
        a = flipped.hr[fy - 3:fy + 4, fx - 3:fx + 4].astype(int)
        b = plain.hr[oy - 3:oy + 4, ox - 3:ox + 4][:, ::-1].astype(int)
        assert np.abs(a - b).mean() < 3.0, i


def test_flip_twice_is_identity(faces_train):
    from jasr_video.model.landmarks import flip_landmarks

    points = FaceDataset(find_pairs(faces_train)[:1]).sample(0).landmarks
    assert np.allclose(flip_landmarks(flip_landmarks(points, 128), 128), points)
