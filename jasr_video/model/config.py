"""One configuration object for JASRNet: architecture switches (every ablation of the paper's
Tables 4-5), training hyper-parameters, and named presets."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

NUM_LANDMARKS = 68
HR_SIZE = 128  # super-resolved / high-resolution face side, pixels
LR_SIZE = 16  # tiny input face side, pixels
SCALE = HR_SIZE // LR_SIZE  # x8
# Upscale factor -> nominal LR input side. The network always takes the LR face bicubic-upsampled to
# 128x128, so one architecture serves every factor; the factor is a property of the training data.
SR_FACTORS = {8: 16, 4: 32, 2: 64}


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of JASRNet. Defaults reproduce the paper's full model (about 18.96 M params)."""

    width: int = 128  # channels of every conv (paper: 128)
    encoder_blocks: int = 3  # residual blocks at each of the 128/64/32 encoder levels
    feature_blocks: int = 32  # T, residual blocks of the deep feature extractor at 16x16 (16 or 32)
    sr_blocks: int = 2  # task-specific residual blocks of the SR module
    fusion: str = "add"  # "add" (Eq. 2), "concat" (Table 5) or "none" (baselines of Table 4)
    long_skip: bool = True  # 128x128 head features brought down x8 and added before upsampling
    input_residual: bool = False  # not in the paper: SR = bicubic input + network output (faster training)
    tasks: str = "joint"  # "joint", "sr" or "align" (single-task baselines BL / BL_F)
    stages: int = 3  # CPM stages of the alignment module (1-3)
    stage_blocks: tuple[int, ...] = (2, 3, 3)  # residual blocks per alignment stage
    num_landmarks: int = NUM_LANDMARKS
    background_channel: bool = True  # one extra "background" heatmap (CPM convention)
    # Not in the paper: a small residual conv stack at 128x128 on the SR output (0 = none). The SR module
    # rebuilds detail from 16x16 features; for x4 / x2 inputs the missing detail is finer than that grid.
    detail_width: int = 0  # channels of the detail head
    detail_layers: int = 6  # 3x3 convs of the detail head (>= 2)
    # Not in the paper: a last alignment stage at 32x32 (0 = none) on the encoder's 32x32 features, the deep
    # features and the previous stage's heatmaps, both upsampled x2. Its heatmaps (4 px cells, not 8) are the
    # final estimate: for x4 / x2 inputs the 32x32 features hold real detail that 16x16 cells cannot place.
    refine_blocks: int = 0  # residual blocks of the 32x32 stage

    def __post_init__(self) -> None:
        if self.fusion not in ("add", "concat", "none"):
            raise ValueError(f"fusion must be add, concat or none, not {self.fusion!r}")
        if self.tasks not in ("joint", "sr", "align"):
            raise ValueError(f"tasks must be joint, sr or align, not {self.tasks!r}")
        if self.detail_width < 0 or (self.detail_width and self.detail_layers < 2):
            raise ValueError("detail_width must be >= 0 and detail_layers >= 2")
        if self.refine_blocks < 0:
            raise ValueError(f"refine_blocks must be >= 0, not {self.refine_blocks}")
        if not 1 <= self.stages <= len(self.stage_blocks):
            raise ValueError(f"stages must be 1..{len(self.stage_blocks)}, not {self.stages}")

    @property
    def does_sr(self) -> bool:
        return self.tasks in ("joint", "sr")

    @property
    def does_align(self) -> bool:
        return self.tasks in ("joint", "align")

    @property
    def heatmap_channels(self) -> int:
        return self.num_landmarks + int(self.background_channel)


# Parts not in the paper that can be added to trained weights (`jasr-train --init`): network attribute ->
# the ModelConfig fields that build it (the first one, when non-zero, says the part is there).
ADDED_PARTS: dict[str, tuple[str, ...]] = {"detail": ("detail_width", "detail_layers"), "refine": ("refine_blocks",)}
# What `TrainConfig.train_only` may name -> the network attributes it trains (the rest frozen): every parameter,
# one added part, or the whole alignment branch (CPM stages and refine stage; the shared encoder and SR unchanged).
TRAINED_PARTS: dict[str, tuple[str, ...]] = {"all": (), **{part: (part,) for part in ADDED_PARTS},
                                             "align": ("stages", "refine")}
TRAIN_ONLY = tuple(TRAINED_PARTS)
# Trained parts that the SR image does not depend on: such a run skips the SR branch (`forward(sr=False)`).
LANDMARK_PARTS = ("refine", "align")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and data settings (paper: Adam 5e-5, halved at epochs 20 and 30, 40 epochs, batch 8)."""

    epochs: int = 40
    batch_size: int = 8
    lr: float = 5e-5
    lr_milestones: tuple[int, ...] = (20, 30)
    lr_gamma: float = 0.5
    time_budget_minutes: float = 0.0  # > 0: cosine lr decay over this much wall time, then stop (milestones unused)
    alpha: float = 0.1  # weight of the heatmap L2 loss against the SR L1 loss
    heatmap_sigma: float = 1.0  # Gaussian target sigma, in 16x16 heatmap cells
    crop_margin: float = 1.4  # HR crop side / longer side of the landmark box
    aug_scale: float = 0.1  # random scale in [1-s, 1+s]
    aug_rotation: float = 15.0  # random rotation in degrees, +-
    aug_rotation_upright: float = 0.0  # share of faces rotated within +-15 deg only (the rest: +-aug_rotation)
    aug_shift: float = 0.05  # random centre shift, fraction of the crop side
    aug_flip: bool = True
    val_fraction: float = 0.05  # part of the training folder held out for validation
    seed: int = 0
    lr_size: int = LR_SIZE  # nominal LR face side: 16 (x8), 32 (x4) or 64 (x2); validation uses it
    lr_size_range: tuple[int, ...] = ()  # (min, max): each training face reduced to a random side in it
    degradation: float = 0.0  # share of faces degraded as CCTV does (degradations.TRAIN); 0 = the paper's protocol
    extra_landmark_weight: float = 0.5  # heatmap-loss weight of the extra folders' (machine-made) points
    train_only: str = "all"  # "all" parameters, or only the "detail" head / the "refine" stage (the rest frozen)

    def __post_init__(self) -> None:
        if self.lr_size not in SR_FACTORS.values():
            raise ValueError(f"lr_size must be one of {sorted(SR_FACTORS.values())}, not {self.lr_size}")
        if self.lr_size_range and not (len(self.lr_size_range) == 2
                                       and 4 <= self.lr_size_range[0] <= self.lr_size_range[1] <= HR_SIZE):
            raise ValueError(f"lr_size_range must be (min, max) with 4 <= min <= max <= {HR_SIZE}")
        if self.train_only not in TRAIN_ONLY:
            raise ValueError(f"train_only must be one of {', '.join(TRAIN_ONLY)}, not {self.train_only!r}")
        if not 0 <= self.degradation <= 1:
            raise ValueError(f"degradation must be a share in [0, 1], not {self.degradation}")

    @property
    def sr_factor(self) -> int:
        return HR_SIZE // self.lr_size

    def training_lr_sizes(self) -> tuple[int, int]:
        """(min, max) LR side of the training faces (inclusive)."""
        return (self.lr_size_range[0], self.lr_size_range[1]) if self.lr_size_range else (self.lr_size, self.lr_size)


PRESETS: dict[str, ModelConfig] = {
    # The paper's model (Table 3: 18.96 M parameters).
    "paper": ModelConfig(),
    # CPU-sized: same topology and switches, narrower and shallower, trainable on 2 cores.
    # CPU-sized: same topology, narrower (48 channels) and with one encoder block per level; the
    # deep 16x16 path keeps 16 blocks (cheap at 16x16). Adds the input residual for faster training.
    "cpu": ModelConfig(width=48, encoder_blocks=1, feature_blocks=16, input_residual=True),
    # Tiny: for smoke tests only.
    "tiny": ModelConfig(width=16, encoder_blocks=1, feature_blocks=2, sr_blocks=1, stage_blocks=(1, 1, 1),
                        input_residual=True),
}

# Ablation variants of Tables 4 and 5, as overrides of any base configuration.
ABLATIONS: dict[str, dict[str, Any]] = {
    "BL-sr": dict(fusion="none", long_skip=False, tasks="sr"),
    "BL-align": dict(fusion="none", long_skip=False, tasks="align"),
    "BL_F-sr": dict(long_skip=False, tasks="sr"),
    "BL_F-align": dict(long_skip=False, tasks="align"),
    "JT": dict(fusion="none", long_skip=False),
    "JT_F": dict(long_skip=False),
    "concat": dict(fusion="concat"),
    "res16": dict(feature_blocks=16),
    "one-stage": dict(stages=1),
    "two-stages": dict(stages=2),
}


def model_config(preset: str = "paper", ablation: str | None = None, **overrides: Any) -> ModelConfig:
    """Build a ModelConfig from a preset name, an optional ablation name and field overrides."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    config = PRESETS[preset]
    if ablation:
        if ablation not in ABLATIONS:
            raise ValueError(f"unknown ablation {ablation!r}; choose from {', '.join(ABLATIONS)}")
        config = replace(config, **ABLATIONS[ablation])
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})


def to_dict(config: Any) -> dict[str, Any]:
    return asdict(config)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a config dataclass from a saved dict, ignoring unknown keys and restoring tuples."""
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key in known:
            kwargs[key] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)
