"""Scale-aware routing: face sizes -> routes, the routed enhancer (order kept, one batch per factor, native
crop for the largest faces) on real faces with the shipped x8 / x4 / x2 weights, and the size table's code."""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from jasr_video.model.routing import NATIVE_FROM_PX, X2_FROM_PX, X4_FROM_PX, Route, choose_route
from jasr_video.model.sizebench import format_table, per_size_table


def test_sizes_route_by_band():
    assert choose_route(10) == Route(8, 16, 16)
    assert choose_route(X4_FROM_PX - 0.1) == Route(8, 16, 16)
    assert choose_route(X4_FROM_PX) == Route(4, round(X4_FROM_PX), round(X4_FROM_PX))
    assert choose_route(32.4) == Route(4, 32, 32)
    assert choose_route(X2_FROM_PX) == Route(2, round(X2_FROM_PX), round(X2_FROM_PX))
    assert choose_route(64) == Route(2, 64, 64)
    assert choose_route(NATIVE_FROM_PX) == Route(2, 96, 96)
    big = choose_route(NATIVE_FROM_PX + 1)
    assert big == Route(2, 96, 128, keep_native=True) and big.name == "x2-native"
    assert choose_route(400) == big
    # the weights' training sizes clamp the input
    assert choose_route(30, ranges={4: (28, 36)}) == Route(4, 30, 30)
    assert choose_route(21, ranges={4: (24, 36)}) == Route(4, 24, 24)


def test_forced_and_missing_factors():
    assert {choose_route(s, "8") for s in (8, 30, 60, 200)} == {Route(8, 16, 16)}  # today's behaviour
    assert choose_route(70, "4") == Route(4, 46, 46)
    assert choose_route(30, "2") == Route(2, 42, 42)
    assert choose_route(60, "auto", factors=(8, 4)) == Route(8, 16, 16)  # no x2 weights: x8 only
    with pytest.raises(ValueError, match="sr_factor"):
        choose_route(30, "3")


def test_size_table_on_known_records():
    records = [
        {"size": 32, "method": "bicubic", "psnr": 20.0, "ssim": 0.5},
        {"size": 32, "method": "bicubic", "psnr": 22.0, "ssim": 0.7},
        {"size": 32, "method": "x8", "psnr": 21.0, "ssim": 0.6, "nme": 0.05},
        {"size": 32, "method": "x8", "psnr": 23.0, "ssim": 0.6, "nme": 0.07},
        {"size": 32, "method": "routed", "psnr": 25.0, "ssim": 0.8, "nme": 0.03, "route": "x4 at 32 px"},
        {"size": 32, "method": "routed", "psnr": math.inf, "ssim": 1.0, "nme": 0.01, "route": "x4 at 32 px"},
        {"size": 16, "method": "x8", "psnr": 19.0, "ssim": 0.4, "nme": 0.1},
    ]
    rows = per_size_table(records)
    assert [r["size"] for r in rows] == [16, 32]
    row = rows[1]
    assert row["faces"] == 2
    assert row["bicubic"] == {"psnr": 21.0, "ssim": pytest.approx(0.6), "nme_percent": None}
    assert row["x8"]["psnr"] == 22.0 and row["x8"]["nme_percent"] == pytest.approx(6.0)
    assert row["routed"]["psnr"] == 25.0  # the identical face's infinite PSNR is left out
    assert row["routed"]["ssim"] == pytest.approx(0.9) and row["routed"]["nme_percent"] == pytest.approx(2.0)
    assert row["routed_minus_x8_db"] == pytest.approx(3.0)
    assert row["best_psnr"] == "x8" and row["routed"]["route"] == "x4 at 32 px"
    text = format_table(rows)
    assert "| 32 | 21.00 / 0.600 / - | 22.00 / 0.600 / 6.00 | 25.00 / 0.900 / 2.00 | +3.00 | x4 at 32 px |" in text


@pytest.fixture(scope="module")
def routed():
    from jasr_video.route import RoutedEnhancer

    torch.set_num_threads(1)
    return RoutedEnhancer("jasr-cpu", device="cpu", precision="fp32", batch_size=4)


def real_faces(folder, sizes):
    """Training-style crops of real test faces, reduced to each size (area), uint8 RGB."""
    from jasr_video.model.data import FaceDataset, find_pairs

    dataset = FaceDataset(find_pairs(folder)[: len(sizes)])
    return [cv2.resize(dataset.sample(i).hr, (s, s), interpolation=cv2.INTER_AREA) if s != 128 else dataset.sample(i).hr
            for i, s in enumerate(sizes)]


def test_routed_enhancer_keeps_order_and_batches_per_factor(routed, faces_test):
    assert set(routed.by_factor) == {8, 4, 2} and routed.routing == "auto"
    sizes = [16, 40, 70, 24, 128, 12, 50]
    faces = real_faces(faces_test, sizes)
    before = {f: e.faces_done for f, e in routed.by_factor.items()}
    out, routes = routed.enhance_faces(faces)
    assert [r.name for r in routes] == ["x8", "x4", "x2", "x4", "x2-native", "x8", "x2"]
    assert [r.model_input_px for r in routes] == [16, 40, 70, 24, 96, 16, 50]
    done = {f: e.faces_done - before[f] for f, e in routed.by_factor.items()}
    assert done == {8: 2, 4: 2, 2: 3}  # each factor's faces went through its own model
    assert out.sr.shape == (7, 128, 128, 3) and out.landmarks.shape == (7, 68, 2)
    assert np.array_equal(out.sr[4], faces[4])  # the largest face keeps its native pixels
    for i, face in enumerate(faces):  # order kept: each face as if enhanced alone
        alone, _ = routed.enhance_faces([face])
        assert np.abs(alone.landmarks[0] - out.landmarks[i]).max() < 0.05
        assert np.abs(alone.sr[0].astype(int) - out.sr[i].astype(int)).max() <= 1


def test_cut_face_cuts_at_the_route_size(routed):
    from jasr_video.crop import CropGeometry, crop_face
    from jasr_video.route import cut_face

    image = np.random.default_rng(0).integers(0, 256, (240, 320, 3), np.uint8)
    for box, name, side in (([100, 80, 112, 94], "x8", 16), ([60, 40, 90, 76], "x4", None),
                            ([150, 60, 240, 170], "x2-native", None)):
        geometry, route, crop = cut_face(image, box, 1.4, routed.route)
        assert geometry == CropGeometry.from_detection(box, 1.4)
        assert route == routed.route(geometry.side) and route.name == name
        assert crop.shape == (route.crop_px, route.crop_px, 3) and crop.dtype == np.uint8
        assert side is None or route.crop_px == side
        assert np.array_equal(crop, crop_face(image, geometry, route.crop_px))
    geometry, route, crop = cut_face(image, [60, 40, 90, 76], 1.4)  # no router: x8's 16x16 LR face
    assert route is None and np.array_equal(crop, crop_face(image, geometry, 16))


def box_for(geometry, margin=1.4):
    """A detection box whose calibrated crop (CropGeometry.from_detection) is `geometry` (square box)."""
    from jasr_video.crop import CropGeometry, calibration_at

    low, high = 1.0, 4.0 * geometry.side
    for _ in range(100):  # the crop side grows with the box side: bisection
        b = (low + high) / 2
        low, high = (b, high) if margin * calibration_at(b)[2] * b < geometry.side else (low, b)
    ox, oy, _ = calibration_at(b)
    x, y = geometry.cx - ox * b, geometry.cy - oy * b
    box = [x - b / 2, y - b / 2, x + b / 2, y + b / 2]
    got = CropGeometry.from_detection(box, margin)
    assert abs(got.cx - geometry.cx) < 1e-6 and abs(got.cy - geometry.cy) < 1e-6 and abs(got.side - geometry.side) < 1e-6
    return box


@pytest.mark.parametrize("size", [16, 24, 32])
def test_a_face_in_the_frame_reaches_the_model_as_its_lr_face(routed, faces_test, size):
    """A sharp face, `size` px in the frame, goes through the pipeline's crop chain (cut_face + the routed
    enhancer's inputs) and reaches the model as the LR face of the training protocol: the anti-aliased
    bicubic reduction of its 128-px truth to the route's input size, within rounding. (A crop warped up to
    128 px and brought back down, as the x8 route once did, is a blur of about one LR pixel: mean error > 3.)"""
    from jasr_video.crop import CropGeometry
    from jasr_video.model.data import FaceDataset, degrade, find_pairs
    from jasr_video.route import RoutedCrops, cut_face

    hr = FaceDataset(find_pairs(faces_test)[:1]).sample(0).hr
    face = (degrade(torch.from_numpy(hr).permute(2, 0, 1)[None].float() / 255, size)[0]
            .permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    frame = np.full((120, 160, 3), 90, np.uint8)
    x0, y0 = 61, 37
    frame[y0:y0 + size, x0:x0 + size] = face
    geometry = CropGeometry(x0 + (size - 1) / 2, y0 + (size - 1) / 2, float(size))
    _, route, crop = cut_face(frame, box_for(geometry), 1.4, routed.route)
    model_px = route.model_input_px
    crops = RoutedCrops.from_crops([crop], [route])
    expected = degrade(torch.from_numpy(hr).permute(2, 0, 1)[None].float() / 255, model_px)[0]
    error = (crops.lr[0] - expected).abs() * 255
    assert crops.lr[0].shape == (3, model_px, model_px)
    assert float(error.mean()) < 1.0 and float(error.max()) <= 4, (route, float(error.mean()), float(error.max()))


def test_crops_are_cut_in_one_resampling():
    """Shrinking is the training protocol's anti-aliased bicubic; enlarging is bicubic; a crop at the face's own
    scale on whole pixels is the frame's pixels; sub-pixel windows move the crop, not blur it more."""
    from jasr_video.crop import CropGeometry, crop_face, resize_face
    from jasr_video.model.data import degrade

    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (80, 100, 3), np.uint8), (0, 0), 1.0)
    same = crop_face(frame, CropGeometry(30 + 15.5, 20 + 15.5, 32.0), 32)
    assert np.array_equal(same, frame[20:52, 30:62])
    small = crop_face(frame, CropGeometry(30 + 15.5, 20 + 15.5, 32.0), 16)
    expected = degrade(torch.from_numpy(frame[20:52, 30:62]).permute(2, 0, 1)[None].float() / 255, 16)[0]
    error = np.abs(small.astype(float) - expected.permute(1, 2, 0).numpy() * 255)[1:-1, 1:-1]  # the edge
    assert error.mean() < 0.7 and error.max() <= 3  # row sees the frame beyond the window, not a replicated border
    alone = resize_face(frame[20:52, 30:62], 16)  # the window alone: its edge replicated, the same inside
    assert alone.shape == (16, 16, 3) and np.array_equal(alone[2:-2, 2:-2], small[2:-2, 2:-2])
    shifted = crop_face(frame, CropGeometry(30 + 16.5, 20 + 15.5, 32.0), 32)  # one pixel right: whole pixels again
    assert np.array_equal(shifted, frame[20:52, 31:63])
    big = crop_face(frame, CropGeometry(50, 40, 10.0), 40)
    assert big.shape == (40, 40, 3) and abs(float(big.mean()) - float(frame[35:45, 45:55].mean())) < 6


def test_landmarks_only_passes_give_the_same_landmarks(routed, faces_test):
    """Faces that keep their native crop, and every face with sr=False, skip JASRNet's SR branch: their
    landmarks are those of the full pass (the SR branch feeds nothing into the heatmaps; batches of other sizes
    may round differently)."""
    from jasr_video.enhance import BatchEnhancer
    from jasr_video.route import RoutedCrops

    sizes = [16, 40, 128, 70]
    faces = real_faces(faces_test, sizes)
    routes = [routed.route(s) for s in sizes]
    assert [r.keep_native for r in routes] == [False, False, True, False]
    crops = RoutedCrops.from_crops([cv2.resize(f, (r.crop_px, r.crop_px), interpolation=cv2.INTER_AREA)
                                    if f.shape[0] != r.crop_px else f for f, r in zip(faces, routes)], routes)
    full = routed(crops)
    lean = routed(crops, sr=False)
    assert lean.sr is None and full.sr is not None and len(lean) == 4
    assert np.abs(lean.landmarks - full.landmarks).max() < 1e-3 and np.abs(lean.confidence - full.confidence).max() < 1e-4
    x2 = routed.by_factor[2]  # the native face against a full x2 pass that computes (and drops) its SR face
    alone = BatchEnhancer.__call__(x2, crops.inputs[2:3], True, True)
    assert alone.sr is not None and np.abs(alone.landmarks[0] - full.landmarks[2]).max() < 1e-3
    assert np.array_equal(full.sr[2], crops.native[2])


def test_forced_x8_is_todays_enhancer(routed, faces_test):
    """--sr-factor 8: every face brought to 16x16 for the x8 model, exactly as BatchEnhancer does with the same
    16x16 faces."""
    from jasr_video.crop import resize_face
    from jasr_video.enhance import BatchEnhancer
    from jasr_video.route import RoutedEnhancer

    forced = RoutedEnhancer("jasr-cpu", device="cpu", precision="fp32", sr_factor="8",
                            enhancer=routed.enhancer)
    assert set(forced.by_factor) == {8}
    faces = real_faces(faces_test, [128, 128, 128])
    out, routes = forced.enhance_faces(faces)
    assert {r.name for r in routes} == {"x8"}
    crops = torch.from_numpy(np.stack([resize_face(f, 16) for f in faces])).permute(0, 3, 1, 2).float() / 255
    plain = BatchEnhancer(enhancer=routed.enhancer)(crops)
    assert np.abs(plain.landmarks - out.landmarks).max() < 1e-3
    assert np.abs(plain.sr.astype(int) - out.sr.astype(int)).max() <= 1


def test_forced_factor_without_weights_is_a_clear_error(tmp_path):
    from jasr_video.model import load_model, save_checkpoint
    from jasr_video.route import RoutedEnhancer

    model, checkpoint = load_model("jasr-cpu")
    save_checkpoint(tmp_path / "mine.pt", model, checkpoint["meta"], half=True)
    with pytest.raises(ValueError, match="needs x4 weights"):
        RoutedEnhancer(tmp_path / "mine.pt", device="cpu", sr_factor="4")
    auto = RoutedEnhancer(tmp_path / "mine.pt", device="cpu")
    assert set(auto.by_factor) == {8} and "x8 only" in auto.routing


def test_robust_weights_route_with_their_own_x4_x2_siblings():
    """--weights jasr-cpu-robust: every factor is a robust model (degraded-face training), not the clean x4 / x2."""
    from jasr_video.route import RoutedEnhancer

    robust = RoutedEnhancer("jasr-cpu-robust", device="cpu", precision="fp32")
    assert set(robust.by_factor) == {8, 4, 2} and robust.routing == "auto"
    names = {f: Path(e.enhancer.checkpoint["path"]).stem for f, e in robust.by_factor.items()}
    assert names == {8: "jasr-cpu-robust", 4: "jasr-cpu-robust-x4", 2: "jasr-cpu-robust-x2"}
    assert {f: e.enhancer.checkpoint["meta"]["lr_size"] for f, e in robust.by_factor.items()} == {8: 16, 4: 32, 2: 64}
