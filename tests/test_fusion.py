"""Multi-frame fusion (jasr_video.fusion) on known inputs: real faces moved by known sub-pixel similarities, an
unrelated face, K = 1, the keeper's bound; and the fused face of --tracks on frames of the real opera clip."""
from __future__ import annotations

import csv
import json
import math

import cv2
import numpy as np
import pytest
import torch

from conftest import CLIP, FACES_TEST, need
from jasr_video.fusion import FrameKeeper, KeptFrame, TrackFuser, register
from jasr_video.model.data import FaceDataset, degrade, find_pairs, upsample
from video_utils import make_clip

SIZE = 16  # LR side of the x8 model's faces
F = 128 / SIZE


@pytest.fixture(scope="module")
def enhancer():
    from jasr_video.route import RoutedEnhancer

    torch.set_num_threads(1)
    return RoutedEnhancer("jasr-cpu", device="cpu", precision="fp32", lanes=1)


@pytest.fixture(scope="module")
def faces():
    pairs = find_pairs(need(FACES_TEST))
    return FaceDataset([pairs[i] for i in (3, 40, 77)])


def moved(face: np.ndarray, dx: float, dy: float, angle: float, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The 128x128 HR face moved by a similarity (shift in LR px, degrees, scale) about its centre, and that
    similarity (2x3, reference crop -> moved crop)."""
    m = cv2.getRotationMatrix2D((63.5, 63.5), angle, scale)
    m[:, 2] += (dx * F, dy * F)
    return cv2.warpAffine(face, m, (128, 128), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101), m


def lr_of(hr: np.ndarray) -> torch.Tensor:
    return degrade(torch.from_numpy(hr).permute(2, 0, 1)[None].float() / 255, SIZE)[0]


def kept(enhancer, lrs: list[torch.Tensor]) -> tuple[list[KeptFrame], list[np.ndarray]]:
    """KeptFrames (quality falling with the index: frame 0 is the reference) with JASRNet's own landmarks."""
    from jasr_video.model.routing import Route

    route = Route(8, SIZE, SIZE)
    inputs = upsample(torch.stack(lrs), 128)
    out = enhancer.run_inputs(inputs, sr=False)
    frames = [KeptFrame(i, 1.0 - 0.01 * i, lr, out[1][i], route) for i, lr in enumerate(lrs)]
    return frames, [inputs[i].permute(1, 2, 0).numpy() for i in range(len(lrs))]


def corner_error(estimated: np.ndarray, true: np.ndarray) -> float:
    """Largest distance (128x128 px) between where the two 2x3 maps send the corners of the face's central half."""
    pts = np.array([[32.0, 32.0], [96.0, 32.0], [32.0, 96.0], [96.0, 96.0]])
    return float(np.abs(pts @ estimated[:, :2].T + estimated[:, 2] - (pts @ true[:, :2].T + true[:, 2])).max())


def test_registration_recovers_known_subpixel_motion_of_a_real_face(enhancer, faces):
    hr = faces.sample(0).hr
    motions = [(0.37, -0.21, 2.0, 1.0), (-0.62, 0.45, -2.5, 1.02), (0.15, 0.8, 1.0, 0.98), (-0.3, -0.55, 0.0, 1.0)]
    shots = [moved(hr, *m) for m in motions]
    frames, inputs = kept(enhancer, [lr_of(hr)] + [lr_of(img) for img, _ in shots])
    regs = register(inputs, [f.landmarks for f in frames])
    for (_, m), reg in zip(shots, regs[1:]):
        assert reg.matrix is not None, reg.reason
        true = cv2.invertAffineTransform(m)  # moved crop -> reference crop
        # within 1 px of the 128x128 crop = 1/8 of an LR pixel
        assert corner_error(reg.matrix, true) < 1.0
    assert all(r.landmark_residual < 0.08 for r in regs)


def test_unrelated_or_misregistered_frame_is_rejected_not_blended(enhancer, faces):
    hr, other = faces.sample(0).hr, faces.sample(1).hr
    same = [moved(hr, dx, dy, a)[0] for dx, dy, a in ((0.3, 0.1, 1.0), (-0.4, 0.2, -1.0), (0.1, -0.5, 0.5))]
    upside = cv2.rotate(hr, cv2.ROTATE_180)  # the same face, its landmarks no longer fit a similarity of the rest
    frames, inputs = kept(enhancer, [lr_of(hr)] + [lr_of(x) for x in same] + [lr_of(other), lr_of(upside)])
    regs = register(inputs, [f.landmarks for f in frames])
    assert all(r.matrix is not None for r in regs[:4]), [r.reason for r in regs[:4]]
    assert regs[4].matrix is None and regs[5].matrix is None, [(r.error, r.reason) for r in regs]
    fused = TrackFuser(enhancer, "sr-median").fuse(frames)
    assert fused.frames == [0, 1, 2, 3] and sorted(fused.rejected) == [4, 5]
    # not blended: the fused face stays close to the face, far from the unrelated one
    truth = hr.astype(np.float64)
    assert np.abs(fused.sr - truth).mean() < 0.6 * np.abs(fused.sr - other.astype(np.float64)).mean()


@pytest.mark.parametrize("method", ["lr-median", "sr-median", "sr-trim"])
def test_one_frame_is_exactly_the_single_frame(enhancer, faces, method):
    from jasr_video.route import RoutedCrops

    frames, _ = kept(enhancer, [lr_of(faces.sample(2).hr)])
    single = enhancer(RoutedCrops.from_lr([(8, frames[0].lr[None])]), sr=True)
    fused = TrackFuser(enhancer, method).fuse(frames)
    assert fused.method == "single frame" and fused.frames == [0] and "1 usable frame" in fused.note
    assert np.array_equal(fused.sr, single.sr[0]) and np.array_equal(fused.landmarks, single.landmarks[0])
    given = TrackFuser(enhancer, method).fuse(frames, single=single)
    assert np.array_equal(given.sr, single.sr[0])


def test_fusion_of_noisy_frames_is_closer_to_the_truth_than_one_frame(enhancer, faces):
    """Eight noisy LR frames (sigma 8 levels) of a face at known sub-pixel shifts: the robust average of the
    registered SR faces beats the reference frame's own SR face."""
    hr = faces.sample(0).hr
    rng = np.random.default_rng(3)
    lrs = [lr_of(hr)] + [lr_of(moved(hr, *rng.uniform(-0.6, 0.6, 2), 0.0)[0]) for _ in range(7)]
    noisy = [(lr + torch.from_numpy(rng.normal(0, 8 / 255, lr.shape)).float()).clamp(0, 1) for lr in lrs]
    frames, _ = kept(enhancer, noisy)
    fused = TrackFuser(enhancer, "sr-median").fuse(frames)
    single = TrackFuser(enhancer, "sr-median").fuse(frames[:1])
    err = lambda x: float(np.sqrt(np.mean((x.astype(np.float64) - hr) ** 2)))  # noqa: E731
    assert len(fused.frames) >= 6
    assert err(fused.sr) < err(single.sr)


def test_keeper_stays_bounded_and_keeps_the_best():
    keeper = FrameKeeper(k=4)
    rng = np.random.default_rng(0)
    made = []
    quality = {}

    def make(track: int, i: int) -> KeptFrame:
        made.append((track, i))
        return KeptFrame(i, quality[track, i], torch.zeros(3, 16, 16), np.zeros((68, 2), np.float32), None)

    for i in range(200):
        for track in range(3):
            quality[track, i] = float(rng.random())
            keeper.offer(track, quality[track, i], i, lambda t=track, j=i: make(t, j))
    assert len(keeper) == 12
    for track in range(3):
        best = sorted(range(200), key=lambda i: -quality[track, i])[:4]
        assert [f.frame for f in keeper.frames(track)] == best
    assert len(made) < 3 * 200 / 2  # a frame that would be dropped at once is never built
    with pytest.raises(ValueError):
        FrameKeeper(0)


@pytest.mark.parametrize("method", ["lr-median", "sr-trim"])
def test_tracks_output_holds_the_fused_face_on_the_opera_clip(tmp_path, enhancer, method):
    from jasr_video.gallery import TrackGallery
    from jasr_video.pipeline import Pipeline, PipelineConfig

    clip = make_clip(need(CLIP), tmp_path / "roh_640.mp4", frames=10, width=640)
    # SR on demand: the per-frame passes find landmarks only; the gallery super-resolves the best faces itself
    pipeline = Pipeline(PipelineConfig(max_frames=10, lanes=1, min_hits=1, sr_faces=False), enhancer=enhancer)
    gallery = TrackGallery(tmp_path, fuser=TrackFuser(enhancer, method), keep=6)
    for result in pipeline.run(clip):
        gallery.write(result)
    gallery.close()
    rows = list(csv.DictReader(open(tmp_path / "tracks.csv")))
    lines = [json.loads(x) for x in (tmp_path / "tracks.jsonl").read_text().splitlines()]
    assert rows and len(lines) == len(rows)
    assert len(gallery.keeper) <= 6 * len(gallery._tracks)
    fused_any = False
    for row, line, track in zip(rows, lines, gallery.tracks()):
        assert track.best.sr is not None and cv2.imread(str(tmp_path / row["sr_png"])).shape == (128, 128, 3)
        image = cv2.imread(str(tmp_path / row["fused_png"]))
        assert image is not None and image.shape == (128, 128, 3)
        assert len(line["fused_landmarks"]) == 68 and line["fused_frames"][0] == int(row["best_frame"])
        assert row["fused_frames"] == ";".join(str(f) for f in line["fused_frames"])
        if row["fused_method"] == "single frame":
            assert row["fused_note"] and np.array_equal(track.fused.sr, track.best.sr)
        else:
            fused_any = True
            assert row["fused_method"] == method and len(line["fused_frames"]) >= 2
            assert set(line["fused_frames"]) <= set(range(track.first_frame, track.last_frame + 1))
            # no ghosting: the fused face is about as far from the best frame's SR face as fusion of the same face is
            diff = np.abs(track.fused.sr.astype(np.float64) - track.best.sr).mean()
            assert diff < 20, f"track {track.track_id}: fused face is {diff:.1f} levels from its best frame"
    assert fused_any
    assert math.isfinite(float(rows[0]["best_quality"]))
