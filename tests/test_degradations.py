"""CCTV degradations on known inputs, rotation of crops with their landmarks, and the evaluation protocols."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from jasr_video.model.data import FaceDataset, View, degrade, find_pairs, upsample
from jasr_video.model.degradations import (
    CCTV_EVAL, TRAIN, DegradationConfig, add_noise, blur, colour_cast, degrade_batch, downscale, h264, h264_cell, jpeg,
    motion_kernel, sample_params,
)
from jasr_video.model.evaluate import main as eval_main
from jasr_video.model.evaluate import protocol_views


def _spread(image: np.ndarray) -> tuple[float, float]:
    """Standard deviation of a non-negative 2-D image's mass along x and y."""
    ys, xs = np.indices(image.shape)
    w = image / image.sum()
    mx, my = (w * xs).sum(), (w * ys).sum()
    return float(np.sqrt((w * (xs - mx) ** 2).sum())), float(np.sqrt((w * (ys - my) ** 2).sum()))


def test_gaussian_blur_is_sized_in_lr_pixels():
    impulse = np.zeros((129, 129, 3), np.float32)
    impulse[64, 64] = 1
    out = blur(impulse, {"gaussian": 0.5}, factor=8.0)[..., 0]  # sigma 0.5 LR px = 4 HR px
    sx, sy = _spread(out)
    assert sx == pytest.approx(4.0, rel=0.05) and sy == pytest.approx(4.0, rel=0.05)


def test_motion_blur_follows_its_angle_and_length():
    horizontal, vertical = motion_kernel(9, 0), motion_kernel(9, 90)
    assert horizontal.sum() == pytest.approx(1) and vertical.sum() == pytest.approx(1)
    hx, hy = _spread(horizontal)
    vx, vy = _spread(vertical)
    assert hx > 4 * hy and vy > 4 * vx
    assert hx == pytest.approx(9 / np.sqrt(12), rel=0.15)  # a uniform segment of length 9
    diagonal = motion_kernel(9, 45)
    c = diagonal.shape[0] // 2
    assert diagonal[c - 3, c + 3] > 0.05 and diagonal[c - 3, c - 3] == 0  # 45 deg rises to the right (image y points down)


def test_downscale_kernels_alias_or_not():
    board = np.repeat((np.indices((128, 128)).sum(0) % 2).astype(np.float32)[..., None], 3, axis=2)
    for kernel in ("bicubic-aa", "bilinear-aa", "area"):
        assert np.allclose(downscale(board, 16, kernel)[2:-2, 2:-2], 0.5, atol=0.02), kernel
    nearest = downscale(board, 16, "nearest")
    assert set(np.unique(nearest)) <= {0.0, 1.0}  # point sampling keeps the aliased extremes


def test_noise_level_and_grey_noise():
    grey = np.full((64, 64, 3), 0.5, np.float32)
    colour = add_noise(grey, 8.0, gray=False, seed=1)
    assert (colour - 0.5).std() * 255 == pytest.approx(8.0, rel=0.1)
    assert not np.allclose(colour[..., 0], colour[..., 1])
    shared = add_noise(grey, 8.0, gray=True, seed=1)
    assert np.allclose(shared[..., 0], shared[..., 1]) and np.allclose(shared[..., 1], shared[..., 2])


def test_colour_cast_gain_and_gamma():
    image = np.full((4, 4, 3), 0.25, np.float32)
    out = colour_cast(image, [2.0, 1.0, 0.5], 1.0)
    assert np.allclose(out[0, 0], [0.5, 0.25, 0.125])
    assert np.allclose(colour_cast(image, [1, 1, 1], 0.5)[0, 0], 0.5)


def _texture(seed: int, side: int = 16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.resize(rng.integers(0, 256, (side // 2, side // 2, 3), dtype=np.uint8), (side, side),
                      interpolation=cv2.INTER_LINEAR)


def test_jpeg_and_h264_lose_more_at_lower_quality():
    face = np.repeat(_texture(0)[..., :1], 3, axis=2)  # grey: no loss from 4:2:0 chroma, only from the quantiser
    error = lambda out: np.abs(out.astype(int) - face.astype(int)).mean()  # noqa: E731
    assert error(jpeg(face, 95)) < error(jpeg(face, 20))
    fine, coarse = h264([face], [10], [[5, 3]])[0], h264([face], [44], [[5, 3]])[0]
    assert fine.shape == face.shape == coarse.shape
    assert error(fine) < 4 < error(coarse)


def test_h264_tiles_keep_each_face_apart():
    """Faces of one batch share a frame but each comes back as itself (flat colours stay flat)."""
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (128, 128, 128)]
    faces = [np.full((16, 16, 3), c, np.uint8) for c in colours]
    out = h264(faces, [30, 30, 30, 30], [[0, 0], [7, 3], [15, 15], [2, 9]])
    for face, back in zip(faces, out):
        assert np.abs(back.astype(int) - face.astype(int)).mean() < 6


def test_h264_takes_faces_of_every_route_size():
    """x4 / x2 training faces (20-96 px) share a frame with x8 ones; each returns whole, at its size, as itself."""
    assert [h264_cell(s) for s in (8, 16, 17, 32, 46, 96)] == [32, 32, 48, 48, 64, 112]
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
    faces = [np.full((s, s, 3), c, np.uint8) for s, c in zip((16, 46, 96), colours)]
    for face in faces:  # a dark frame on the face's border: cropping it back at the wrong place would show it
        face[[0, -1]] = face[:, [0, -1]] = 0
    out = h264(faces, [26, 26, 26], [[15, 15], [3, 12], [15, 0]])
    for face, back in zip(faces, out):
        assert back.shape == face.shape
        assert np.abs(back.astype(int) - face.astype(int)).mean() < 6


def test_sampling_is_seeded_and_clean_faces_keep_the_paper_protocol():
    draw = lambda seed: [sample_params(np.random.default_rng(seed), TRAIN) for _ in range(1)]  # noqa: E731
    assert draw(3) == draw(3)
    rng = np.random.default_rng(0)
    params = [sample_params(rng, TRAIN) for _ in range(400)]
    clean = np.mean([p["clean"] for p in params])
    assert clean == pytest.approx(TRAIN.p_clean, abs=0.07)
    hr = torch.rand(2, 3, 128, 128)
    inputs, target, lr = degrade_batch(hr, [16, 16], [{"clean": True}, {"clean": True}])
    assert torch.equal(target, hr) and torch.allclose(inputs, upsample(degrade(hr, 16)), atol=1e-6)
    assert all(not p["clean"] and "h264" in p and "cast" in p for p in
               (sample_params(np.random.default_rng(i), CCTV_EVAL) for i in range(20)))
    with pytest.raises(ValueError, match="p_jpeg"):
        DegradationConfig(p_jpeg=0.7, p_h264=0.5)


def test_degraded_batch_is_lower_quality_and_cast_reaches_the_target():
    hr = torch.from_numpy(cv2.resize(_texture(1, 32), (128, 128), interpolation=cv2.INTER_CUBIC)).permute(2, 0, 1)[None]
    hr = hr.float().div(255).repeat(2, 1, 1, 1)
    params = [{"clean": True},
              {"clean": False, "kernel": "area", "gaussian": 0.8, "noise": {"sigma": 6.0, "gray": False, "seed": 0},
               "h264": 40, "offset": [3, 5], "cast": {"gain": [1.1, 1.0, 0.9], "gamma": 1.0}}]
    inputs, target, lr = degrade_batch(hr, [16, 16], params)
    assert inputs.shape == (2, 3, 128, 128) and lr.shape == (2, 3, 16, 16)
    assert torch.allclose(target[1, 0], (hr[1, 0] * 1.1).clamp(0, 1), atol=1e-5)  # cast kept in the SR target
    clean_error = (inputs[0] - target[0]).abs().mean()
    assert (inputs[1] - target[1]).abs().mean() > clean_error


def _dotted_face(points: np.ndarray, side: int = 256) -> np.ndarray:
    image = np.zeros((side, side, 3), np.uint8)
    for x, y in points:
        cv2.circle(image, (int(round(x)), int(round(y))), 2, (255, 255, 255), -1)
    return image


@pytest.mark.parametrize("angle", [-40.0, 30.0, 45.0])
def test_rotated_crop_moves_landmarks_with_the_image(angle, tmp_path):
    """Dots drawn at known points: after a rotated crop each landmark still sits on its dot, and the eye line
    turns by the angle (counter-clockwise on screen for a positive angle)."""
    rng = np.random.default_rng(0)
    points = np.stack([rng.uniform(80, 176, 68), rng.uniform(80, 176, 68)], axis=1).astype(np.float32)
    points[36], points[45] = (90, 110), (166, 110)  # a level eye line
    cv2.imwrite(str(tmp_path / "f.png"), _dotted_face(points))
    (tmp_path / "f.pts").write_text("version: 1\nn_points: 68\n{\n" + "".join(f"{x} {y}\n" for x, y in points) + "}\n")
    face = FaceDataset(find_pairs(tmp_path), views=[View(angle=angle)]).sample(0)
    grey = face.hr[..., 0].astype(np.float32)
    for x, y in face.landmarks:
        xi, yi = int(round(x)), int(round(y))
        assert grey[max(0, yi - 1):yi + 2, max(0, xi - 1):xi + 2].max() > 100
    dx, dy = face.landmarks[45] - face.landmarks[36]
    assert np.degrees(np.arctan2(-dy, dx)) == pytest.approx(angle, abs=0.01)


def test_protocol_views_are_fixed_and_in_their_buckets():
    views = protocol_views(50, "rotated", (30.0, 45.0))
    assert views == protocol_views(50, "rotated", (30.0, 45.0))
    angles = np.array([v.angle for v in views])
    assert (np.abs(angles) >= 30).all() and (np.abs(angles) <= 45).all() and (angles < 0).any() and (angles > 0).any()
    jitter = protocol_views(50, "cctv")
    assert all(0.95 <= v.scale <= 1.05 and max(map(abs, v.shift)) <= 0.04 for v in jitter)
    assert protocol_views(3, "clean") == [View()] * 3


def _first_faces(faces_test, folder, count=4):
    folder.mkdir()
    for image, pts in find_pairs(faces_test)[:count]:
        shutil.copy(image, folder / image.name)
        shutil.copy(pts, folder / pts.name)
    return folder


def test_eval_cli_protocols(tmp_path, faces_test, capsys):
    folder = _first_faces(faces_test, tmp_path / "faces")
    report = tmp_path / "r.json"
    assert eval_main(["--data", str(folder), "--protocol", "all", "--report", str(report), "--sheet", ""]) == 0
    protocols = json.loads(report.read_text())["protocols"]
    assert list(protocols) == ["clean", "cctv", "rotated 15-30", "rotated 30-45"]
    clean, cctv = protocols["clean"]["summary"], protocols["cctv"]["summary"]
    assert cctv["bicubic"]["psnr_y_face"] < clean["bicubic"]["psnr_y_face"] - 1  # the degradation bites
    assert all(p["summary"]["faces"] == 4 and "nme_percent" in p["summary"]["model"] for p in protocols.values())
    assert "protocol: rotated 30-45" in capsys.readouterr().out


def test_sizebench_cctv_is_jasr_eval_cctv_at_each_size(tmp_path, faces_test):
    """The per-size benchmark's CCTV protocol degrades each face as jasr-eval does: at 16 px its x8 column is
    jasr-eval's cctv figure for the same faces, and bicubic of the degraded face loses to the clean one."""
    from jasr_video.model.sizebench import main as sizebench_main

    folder = _first_faces(faces_test, tmp_path / "faces")
    assert eval_main(["--data", str(folder), "--protocol", "cctv", "--report", str(tmp_path / "e.json"),
                      "--sheet", ""]) == 0
    cctv = json.loads((tmp_path / "e.json").read_text())["protocols"]["cctv"]["summary"]
    rows = {}
    for protocol in ("cctv", "clean"):
        report = tmp_path / f"{protocol}.json"
        assert sizebench_main(["--data", str(folder), "--sizes", "16", "40", "--protocol", protocol,
                               "--report", str(report)]) == 0
        rows[protocol] = {r["size"]: r for r in json.loads(report.read_text())["table"]}
    at16 = rows["cctv"][16]
    assert at16["bicubic"]["psnr"] == pytest.approx(cctv["bicubic"]["psnr_y_face"], abs=1e-3)
    assert at16["x8"]["psnr"] == pytest.approx(cctv["model"]["psnr_y_face"], abs=1e-3)
    assert at16["x8"]["nme_percent"] == pytest.approx(cctv["model"]["nme_percent"], abs=1e-3)
    for size in (16, 40):
        assert rows["cctv"][size]["bicubic"]["psnr"] < rows["clean"][size]["bicubic"]["psnr"] - 1


def test_eval_reduces_faces_to_the_weights_own_size(tmp_path, faces_test):
    """x4 weights are judged on 32 px faces unless told otherwise; a bad --lr-size is one clear error."""
    folder = _first_faces(faces_test, tmp_path / "faces", count=2)
    summaries = {}
    for extra in ([], ["--lr-size", "16"]):
        report = tmp_path / f"r{len(extra)}.json"
        assert eval_main(["--weights", "jasr-cpu-x4", "--data", str(folder), "--report", str(report),
                          "--sheet", "", *extra]) == 0
        data = json.loads(report.read_text())
        summaries[data["lr_size"]] = data["summary"]
    assert set(summaries) == {32, 16}
    assert summaries[32]["bicubic"]["psnr_y_face"] > summaries[16]["bicubic"]["psnr_y_face"] + 2
    assert eval_main(["--weights", "jasr-cpu-x4", "--data", str(folder), "--lr-size", "200", "--sheet", ""]) == 2


def test_eval_upright_pass_on_rotated_faces(tmp_path, faces_test):
    folder = _first_faces(faces_test, tmp_path / "faces")
    nmes = {}
    for upright in ("0", "10"):
        report = tmp_path / f"u{upright}.json"
        assert eval_main(["--data", str(folder), "--protocol", "rotated", "--upright", upright,
                          "--report", str(report), "--sheet", ""]) == 0
        data = json.loads(report.read_text())
        assert data["upright_degrees"] == float(upright)
        nmes[upright] = data["protocols"]["rotated 30-45"]["summary"]["model"]["nme_percent"]
    assert nmes["10"] < nmes["0"]
    assert eval_main(["--data", str(folder), "--upright", "95", "--sheet", ""]) == 2
