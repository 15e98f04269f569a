"""JASRNet architecture: parameter count, ablation switches, checkpoints that carry their config."""
from __future__ import annotations

import pytest
import torch

from jasr_video.model import JASRNet, count_parameters, load_model, model_config, save_checkpoint
from jasr_video.model.config import ABLATIONS

PAPER_PARAMETERS = 18.96e6  # Table 3


def test_paper_model_parameter_count_within_5_percent():
    count = count_parameters(JASRNet(model_config("paper")))
    print(f"paper JASRNet: {count:,} parameters ({count / PAPER_PARAMETERS - 1:+.1%} vs 18.96 M)")
    assert abs(count / PAPER_PARAMETERS - 1) < 0.05


def test_ablation_parameter_deltas_match_table_5():
    full = count_parameters(JASRNet(model_config("paper")))
    # Table 5: One_stage 16.69 M, two_stages 17.83 M, Res_16 14.46 M -> differences from 18.96 M.
    for ablation, paper_delta in (("one-stage", 2.27e6), ("two-stages", 1.13e6), ("res16", 4.50e6)):
        delta = full - count_parameters(JASRNet(model_config("paper", ablation)))
        assert abs(delta - paper_delta) / paper_delta < 0.1, (ablation, delta)


def test_paper_forward_shapes():
    model = JASRNet(model_config("paper")).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 128, 128))
    assert out.sr.shape == (1, 3, 128, 128)
    assert len(out.heatmaps) == 3 and out.heatmaps[-1].shape == (1, 69, 16, 16)


@pytest.mark.parametrize("ablation", sorted(ABLATIONS))
def test_every_ablation_builds_and_runs(ablation):
    config = model_config("tiny", ablation)
    model = JASRNet(config).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 128, 128))
    assert (out.sr is not None) == config.does_sr
    assert len(out.heatmaps) == (config.stages if config.does_align else 0)
    if config.does_sr:
        assert out.sr.shape == (2, 3, 128, 128)


def test_switches_change_the_network():
    base = count_parameters(JASRNet(model_config("tiny")))
    assert count_parameters(JASRNet(model_config("tiny", long_skip=False))) < base
    assert count_parameters(JASRNet(model_config("tiny", fusion="none"))) < base
    assert count_parameters(JASRNet(model_config("tiny", fusion="concat"))) > base
    with pytest.raises(ValueError):
        model_config("tiny", fusion="multiply")


@pytest.mark.parametrize("half", [False, True])
def test_checkpoint_loads_without_flags(tmp_path, half):
    config = model_config("tiny", ablation="two-stages", width=24)
    model = JASRNet(config).eval()
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, {"epoch": 3, "metrics": {"nme_percent": 9.0}, "data": {"folder": "x"}}, half=half)
    loaded, payload = load_model(path)
    assert loaded.config == config
    assert payload["meta"]["epoch"] == 3 and payload["meta"]["data"] == {"folder": "x"}
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        a, b = model(x), loaded(x)
    tolerance = 1e-2 if half else 1e-6
    assert torch.allclose(a.sr, b.sr, atol=tolerance)
    assert torch.allclose(a.heatmaps[-1], b.heatmaps[-1], atol=tolerance)


def test_bad_checkpoint_gives_clear_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a JASRNet checkpoint"):
        load_model(bad)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_model("no-such-weights")


def test_refine_stage_adds_32x32_heatmaps():
    """refine_blocks > 0: one more alignment stage, at 32x32 (4 px cells), whose heatmaps are the final ones."""
    base = JASRNet(model_config("tiny")).eval()
    model = JASRNet(model_config("tiny", refine_blocks=2)).eval()
    assert count_parameters(model) > count_parameters(base)
    with torch.no_grad():
        out = model(torch.rand(2, 3, 128, 128))
    assert [h.shape[-1] for h in out.heatmaps] == [16] * model.config.stages + [32]
    assert out.heatmaps[-1].shape == (2, model.config.heatmap_channels, 32, 32)
    with pytest.raises(ValueError, match="refine_blocks"):
        model_config("tiny", refine_blocks=-1)
