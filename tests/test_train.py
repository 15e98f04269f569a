"""CPU smoke training on real faces (tiny config), resume after a stop, and the jasr-eval CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from jasr_video.model.checkpoint import read_checkpoint
from jasr_video.model.evaluate import main as eval_main
from jasr_video.model.train import build_parser, configs_from_args, train


def _args(data, out, *extra):
    """(TrainConfig, TrainRun, ModelConfig) of a jasr-train command line."""
    return configs_from_args(build_parser().parse_args([
        "--data", str(data), "--out", str(out), "--preset", "tiny", "--limit", "24", "--val-fraction", "0.25",
        "--batch-size", "4", "--lr", "2e-3", "--log-every", "1", "--device", "cpu", "--quiet", *extra,
    ]))


def _losses(out):
    return [r["total"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "total" in r]


def test_loss_goes_down_and_training_resumes(tmp_path, faces_train):
    torch.set_num_threads(2)
    out = tmp_path / "run"
    meta = train(*_args(faces_train, out, "--epochs", "10", "--max-steps", "24"))
    assert meta["step"] == 24 and meta["data"]["train_faces"] == 18 and meta["data"]["val_faces"] == 6
    losses = _losses(out)
    assert len(losses) == 24
    assert np.mean(losses[-6:]) < 0.8 * np.mean(losses[:6]), losses

    # A stopped run resumes from last.pt (same step count, config and data), not from scratch.
    saved = read_checkpoint(out / "last.pt")
    assert saved["meta"]["step"] == 24 and saved["model_config"]["width"] == 16
    meta = train(*_args(faces_train, out, "--epochs", "10", "--max-steps", "30"))
    assert meta["step"] == 30 and len(_losses(out)) == 30


def test_validation_checkpoint_and_eval_cli(tmp_path, faces_train, faces_test, capsys):
    out = tmp_path / "run"
    train(*_args(faces_train, out, "--epochs", "1"))
    best = read_checkpoint(out / "best.pt")
    summary = best["meta"]["metrics"]
    assert summary["faces"] == 6 and "nme_percent" in summary["model"] and "bicubic" in summary

    report, sheet = tmp_path / "report.json", tmp_path / "sheet.png"
    code = eval_main(["--weights", str(out / "best.pt"), "--data", str(faces_test), "--limit", "5",
                      "--report", str(report), "--sheet", str(sheet), "--sheet-faces", "3"])
    assert code == 0
    data = json.loads(report.read_text())
    assert data["summary"]["faces"] == 5 and len(data["faces"]) == 5
    assert data["summary"]["bicubic"]["psnr_y_face"] > 15  # bicubic always reported beside the model
    import cv2

    image = cv2.imread(str(sheet))
    assert image is not None and image.shape[1] == 4 * 160 and image.shape[0] == 24 + 3 * 160
    assert "PSNR" in capsys.readouterr().out


def test_eval_cli_bad_input_is_one_line(tmp_path, capsys):
    assert eval_main(["--weights", "no-such-weights", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not found" in err[0]


def test_time_budget_decays_lr_stops_and_validates(tmp_path, faces_train):
    """--time-budget: cosine lr over wall time, a stop when spent, and a validated best.pt; --init starts
    from given weights (their config) rather than from scratch."""
    first = tmp_path / "first"
    train(*_args(faces_train, first, "--epochs", "1", "--max-steps", "3"))
    out = tmp_path / "budget"
    meta = train(*_args(faces_train, out, "--epochs", "1000", "--time-budget", "0.25", "--init", str(first / "last.pt")))
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    rates = [r["lr"] for r in records if "lr" in r]
    assert len(rates) >= 3 and rates == sorted(rates, reverse=True) and rates[-1] < 0.5 * 2e-3  # cosine decay
    assert 0.25 * 60 <= meta["train_seconds"] < 0.25 * 60 + 60 and meta["epoch"] < 1000
    assert "val" in records[-1] and (out / "best.pt").exists()
    assert meta["data"]["initialised_from"]["meta"]["step"] == 3


def test_extra_data_degradations_and_rotation_through_the_config_api(tmp_path, faces_train):
    """train(TrainConfig, TrainRun, ModelConfig): an extra folder of machine-labelled faces (lower landmark
    weight, edge padding), CCTV degradations and +-45 deg rotation; the settings land in the checkpoint."""
    from conftest import SHARED_DATA, need

    from jasr_video.model.config import TrainConfig, model_config
    from jasr_video.model.data import FaceDataset, find_pairs
    from jasr_video.model.train import TrainRun

    utk = need(SHARED_DATA / "faces-utk" / "train")
    extra = tmp_path / "extra"
    extra.mkdir()
    import shutil

    for image, pts in find_pairs(utk)[:6]:
        shutil.copy(image, extra / image.name)
        shutil.copy(pts, extra / pts.name)
    weights = FaceDataset(find_pairs(extra), landmark_weight=0.5, border="edge")[0][2]
    assert set(weights.unique().tolist()) <= {0.0, 0.5} and (weights == 0.5).any()

    config = TrainConfig(epochs=2, batch_size=4, lr=1e-3, val_fraction=0.25, aug_rotation=45, aug_rotation_upright=0.4,
                         degradation=0.7, extra_landmark_weight=0.5)
    run = TrainRun(data=str(faces_train), out=str(tmp_path / "run"), extra_data=(str(extra),), limit=8, max_steps=4,
                   log_every=1, device="cpu", quiet=True)
    meta = train(config, run, model_config("tiny"))
    assert meta["step"] == 4 and meta["data"]["extra"][0]["faces"] == 6 and meta["data"]["train_faces"] == 6
    saved = read_checkpoint(tmp_path / "run" / "last.pt")["meta"]["train_config"]
    assert saved["degradation"] == 0.7 and saved["aug_rotation"] == 45 and saved["extra_landmark_weight"] == 0.5
    assert all(np.isfinite(_losses(tmp_path / "run")))


def test_detail_head_added_to_trained_weights_trains_alone(tmp_path, faces_train):
    """--detail-head W --train-only detail: the head starts as a no-op on the --init weights (same SR), then
    only its weights move (landmark heatmaps unchanged) and the best checkpoint is picked by PSNR."""
    from jasr_video.model.checkpoint import load_model

    first = tmp_path / "first"
    train(*_args(faces_train, first, "--epochs", "1", "--max-steps", "3"))
    base, _ = load_model(first / "last.pt")
    out = tmp_path / "detail"
    meta = train(*_args(faces_train, out, "--epochs", "2", "--max-steps", "8", "--init", str(first / "last.pt"),
                        "--detail-head", "8", "--detail-layers", "3", "--train-only", "detail"))
    assert meta["train_config"]["train_only"] == "detail" and meta["step"] == 8
    assert meta["best"] < 0  # the best score is -PSNR, not NME (which the frozen landmarks cannot improve)
    tuned, _ = load_model(out / "last.pt")
    assert tuned.config.detail_width == 8 and tuned.config.detail_layers == 3
    before = base.state_dict()
    for key, value in tuned.state_dict().items():
        if key.startswith("detail."):
            continue
        assert torch.equal(value, before[key]), key  # frozen
    assert not torch.equal(tuned.detail.body[-1].weight, torch.zeros_like(tuned.detail.body[-1].weight))

    # Zero-initialised last conv: the head added to trained weights changes nothing until it trains.
    from dataclasses import replace

    from jasr_video.model.network import JASRNet

    fresh = JASRNet(replace(base.config, detail_width=8, detail_layers=3)).eval()
    fresh.load_state_dict(base.state_dict(), strict=False)
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        a, b = base.eval()(x), fresh(x)
    assert torch.equal(a.sr, b.sr) and torch.equal(a.heatmaps[-1], b.heatmaps[-1])

    # The head without --detail-head is a clear error, not a silent no-op.
    with pytest.raises(ValueError, match="--detail-head"):
        train(*_args(faces_train, tmp_path / "bad", "--epochs", "1", "--max-steps", "1", "--train-only", "detail"))


def test_loss_targets_follow_each_stage_heatmap_side():
    """Heatmaps that equal the Gaussian targets give a zero heatmap loss at 16x16 and at 32x32 (the refine
    stage: 4 px cells); a 32x32 map made with 8 px cells does not."""
    from jasr_video.model.config import model_config
    from jasr_video.model.landmarks import gaussian_heatmaps, pixels_to_cells
    from jasr_video.model.network import JASROutput
    from jasr_video.model.train import jasr_loss

    config = model_config("tiny", refine_blocks=1)
    points = torch.rand(2, 68, 2, generator=torch.Generator().manual_seed(0)) * 100 + 14
    visible = torch.ones(2, 68)
    hr = torch.rand(2, 3, 128, 128)
    maps = [gaussian_heatmaps(pixels_to_cells(points, 128 // side), side, 1.0) for side in (16, 16, 32)]
    _, terms = jasr_loss(JASROutput(hr, maps), hr, points, visible, config, alpha=0.1, sigma=1.0)
    assert terms["heatmap"] < 1e-6 and terms["sr"] == 0
    wrong = [*maps[:2], gaussian_heatmaps(pixels_to_cells(points, 8), 32, 1.0)]
    _, terms = jasr_loss(JASROutput(hr, wrong), hr, points, visible, config, alpha=0.1, sigma=1.0)
    assert terms["heatmap"] > 1


def test_refine_stage_added_to_trained_weights_trains_alone(tmp_path, faces_train):
    """--refine-blocks N --train-only refine: the 32x32 stage is added to the --init weights and only its
    weights move (SR and the 16x16 stages unchanged); the best checkpoint is picked by NME."""
    from jasr_video.model.checkpoint import load_model

    first = tmp_path / "first"
    train(*_args(faces_train, first, "--epochs", "1", "--max-steps", "3"))
    base, _ = load_model(first / "last.pt")
    out = tmp_path / "refine"
    meta = train(*_args(faces_train, out, "--epochs", "2", "--max-steps", "8", "--init", str(first / "last.pt"),
                        "--refine-blocks", "1", "--train-only", "refine"))
    assert meta["train_config"]["train_only"] == "refine" and meta["step"] == 8
    assert meta["best"] > 0  # validation NME, the quantity the stage improves
    tuned, _ = load_model(out / "last.pt")
    assert tuned.config.refine_blocks == 1
    before = base.state_dict()
    moved = [key for key, value in tuned.state_dict().items() if key.startswith("refine.")]
    assert moved
    for key, value in tuned.state_dict().items():
        if not key.startswith("refine."):
            assert torch.equal(value, before[key]), key  # frozen
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        a, b = base.eval()(x), tuned.eval()(x)
    assert torch.equal(a.sr, b.sr) and b.heatmaps[-1].shape[-1] == 32 and len(b.heatmaps) == len(a.heatmaps) + 1

    with pytest.raises(ValueError, match="--refine-blocks"):
        train(*_args(faces_train, tmp_path / "bad", "--epochs", "1", "--max-steps", "1", "--train-only", "refine"))


def test_align_only_training_moves_the_alignment_branch_and_keeps_sr(tmp_path, faces_train):
    """--train-only align: the CPM stages and the refine stage move, the shared encoder and the SR branch stay
    (same SR image); the run logs the heatmap loss only (the SR branch is skipped)."""
    from jasr_video.model.checkpoint import load_model

    first = tmp_path / "first"
    train(*_args(faces_train, first, "--epochs", "1", "--max-steps", "3", "--refine-blocks", "1"))
    base, _ = load_model(first / "last.pt")
    out = tmp_path / "align"
    meta = train(*_args(faces_train, out, "--epochs", "2", "--max-steps", "6", "--init", str(first / "last.pt"),
                        "--train-only", "align"))
    assert meta["train_config"]["train_only"] == "align" and meta["step"] == 6
    tuned, _ = load_model(out / "last.pt")
    before = tuned.state_dict(), base.state_dict()
    moved = {key.split(".")[0] for key, value in before[0].items() if not torch.equal(value, before[1][key])}
    assert moved == {"stages", "refine"}, moved
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert all("sr" not in r for r in records if "total" in r) and any("heatmap" in r for r in records)
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        a, b = base.eval()(x), tuned.eval()(x)
    assert torch.equal(a.sr, b.sr) and not torch.equal(a.heatmaps[-1], b.heatmaps[-1])


def test_training_batches_are_made_in_the_loader_workers_and_repeat(faces_train):
    """TrainingBatches (the loader's collate_fn): clean inputs are the LR protocol at the drawn sizes; with CCTV
    degradations the batches built by two worker processes are degraded, differ between workers and repeat
    exactly when the loader's generator is seeded the same."""
    from jasr_video.model.data import FaceDataset, find_pairs, lr_inputs
    from jasr_video.model.degradations import TRAIN, with_clean_probability
    from jasr_video.model.train import TrainingBatches, TrainingFaces, training_loader

    faces = FaceDataset(find_pairs(faces_train)[:8], augment=False)
    items = [faces[i] for i in range(4)]
    hr = torch.stack([item[0] for item in items])
    inputs, target, landmarks, visible = TrainingBatches((16, 16), None, 0)(items)
    assert torch.equal(target, hr) and landmarks.shape == (4, 68, 2)
    assert torch.allclose(inputs, lr_inputs(hr, [16] * 4))

    collate = TrainingBatches((12, 20), with_clean_probability(TRAIN, 0.0), 0)
    data = TrainingFaces([FaceDataset(find_pairs(faces_train)[:8], seed=0, augment=True)])

    def batches(seed: int) -> list[torch.Tensor]:
        loader = training_loader(data, 4, torch.Generator().manual_seed(seed), 2, collate, drop_last=False)
        return [batch for batch in loader]

    first, again = batches(1), batches(1)
    assert len(first) == 2
    for a, b in zip(first, again):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    # every face degraded (blur, noise, compression...): the input is not the clean LR protocol of its target
    for inputs, target, _, _ in first:
        for size in range(12, 21):
            assert (inputs - lr_inputs(target, [size] * 4)).abs().flatten(1).amax(1).min() > 0.02
    assert not torch.equal(first[0][0], first[1][0])
