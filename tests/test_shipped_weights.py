"""Every shipped weight set must load by name and beat bicubic on real test faces."""
from __future__ import annotations

import pytest

from jasr_video.model import DEFAULT_WEIGHTS, available_weights, load_model
from jasr_video.model.data import FaceDataset, find_pairs
from jasr_video.model.evaluate import evaluate


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
    summary = evaluate(model, FaceDataset(pairs, margin=margin))["summary"]
    print(summary)
    assert summary["model"]["psnr_y_face"] > summary["bicubic"]["psnr_y_face"] + 0.5
    assert summary["model"]["nme_percent"] < 10.0
