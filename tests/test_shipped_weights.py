"""Every shipped weight set must load by name and, at its own LR size, beat bicubic on real test faces."""
from __future__ import annotations

import pytest

from jasr_video.model import DEFAULT_WEIGHTS, available_weights, load_model
from jasr_video.model.data import FaceDataset, find_pairs
from jasr_video.model.evaluate import evaluate

# least PSNR gain over bicubic of the same LR face, by LR side (on these 10 faces the shipped weights reach
# x8 +2.9 (jasr-cpu-robust +2.2), x4 +1.6, x2 +1.4 dB; models/README.md has the 330-face figures)
MIN_GAIN_DB = {16: 1.5, 32: 1.2, 64: 1.1}


def test_default_weights_are_shipped_and_load_by_name():
    assert DEFAULT_WEIGHTS in available_weights()
    model, checkpoint = load_model(DEFAULT_WEIGHTS)
    assert model.config.does_sr and model.config.does_align
    meta = checkpoint["meta"]
    assert "train_config" in meta and "data" in meta and "test" not in meta["data"]["folder"].split("/")[-1]


@pytest.mark.parametrize("name", available_weights())
def test_shipped_weights_beat_bicubic_on_real_test_faces(name, faces_test):
    model, checkpoint = load_model(name)
    margin = checkpoint["meta"]["train_config"]["crop_margin"]
    pairs = find_pairs(faces_test)[::33]  # 10 faces spread over the HELEN test split
    lr_size = checkpoint["meta"].get("lr_size", 16)  # x8: 16 px faces, x4: 32, x2: 64
    summary = evaluate(model, FaceDataset(pairs, margin=margin), lr_size=lr_size)["summary"]
    print(summary)
    assert summary["model"]["psnr_y_face"] > summary["bicubic"]["psnr_y_face"] + MIN_GAIN_DB[lr_size]
    assert summary["model"]["nme_percent"] < 10.0
