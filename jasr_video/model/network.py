"""JASRNet (Yin et al., AAAI 2020): shared encoder, deep feature extraction with fusion (Eq. 2),
an x8 pixel-shuffle SR module with a long skip, and a three-stage CPM alignment module (Eq. 3)."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .config import ModelConfig

# Mean RGB subtracted at the input and added back at the SR output (EDSR's mean shift).
RGB_MEAN = (0.4488, 0.4371, 0.4040)


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1)


class ResBlock(nn.Module):
    """conv-ReLU-conv plus identity, no BatchNorm (EDSR style)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3x3(width, width), nn.ReLU(inplace=True), conv3x3(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def res_blocks(width: int, count: int) -> nn.Sequential:
    return nn.Sequential(*[ResBlock(width) for _ in range(count)])


class Fuse(nn.Module):
    """One step of Eq. 2: g_i (strided 3x3 conv) of the finer level, merged with the coarser level."""

    def __init__(self, width: int, mode: str) -> None:
        super().__init__()
        self.down = conv3x3(width, width, stride=2)
        self.mode = mode
        self.merge = nn.Conv2d(2 * width, width, 1) if mode == "concat" else None

    def forward(self, finer: torch.Tensor, coarser: torch.Tensor) -> torch.Tensor:
        down = self.down(finer)
        if self.merge is not None:
            return self.merge(torch.cat([down, coarser], dim=1))
        return down + coarser


class DetailHead(nn.Module):
    """Residual detail at full resolution: conv-ReLU stack on the SR image, added to it. The last conv
    starts at zero, so adding the head to trained weights leaves their output unchanged."""

    def __init__(self, width: int, layers: int) -> None:
        super().__init__()
        convs: list[nn.Module] = [conv3x3(3, width), nn.ReLU(inplace=True)]
        for _ in range(layers - 2):
            convs += [conv3x3(width, width), nn.ReLU(inplace=True)]
        last = conv3x3(width, 3)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.body = nn.Sequential(*convs, last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class FineStage(nn.Module):
    """Alignment at 32x32: the encoder's 32x32 features, with the deep 16x16 features and the previous stage's
    heatmaps upsampled x2 (nearest), through res blocks to heatmaps of 4 px cells."""

    def __init__(self, width: int, channels: int, blocks: int) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.body = nn.Sequential(conv3x3(2 * width + channels, width), nn.ReLU(inplace=True),
                                  res_blocks(width, blocks), conv3x3(width, channels))

    def forward(self, fine: torch.Tensor, deep: torch.Tensor, heatmaps: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([fine, self.up(deep), self.up(heatmaps)], dim=1))


class JASROutput(NamedTuple):
    sr: torch.Tensor | None  # (B, 3, 128, 128) in [0, 1] (not clamped)
    # one (B, K(+1), 16, 16) per stage (32x32 for the refine stage); the last is the final estimate
    heatmaps: list[torch.Tensor]


class JASRNet(nn.Module):
    """Joint super-resolution (x8, 16->128) and 68-point alignment of tiny faces.

    Input: the 16x16 face bicubic-upsampled to 128x128, RGB in [0, 1], shape (B, 3, 128, 128).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.register_buffer("rgb_mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        # Shared shallow encoder: f0 at 128, f1 at 64, f2 at 32; f3 (deep extraction, T blocks) at 16.
        self.head = nn.Sequential(conv3x3(3, w), nn.ReLU(inplace=True))
        self.f0 = res_blocks(w, config.encoder_blocks)
        self.f1 = nn.Sequential(nn.MaxPool2d(2), res_blocks(w, config.encoder_blocks))
        self.f2 = nn.Sequential(nn.MaxPool2d(2), res_blocks(w, config.encoder_blocks))
        self.f3 = nn.Sequential(nn.MaxPool2d(2), res_blocks(w, config.feature_blocks))
        if config.fusion != "none":
            self.fuse = nn.ModuleList([Fuse(w, config.fusion) for _ in range(3)])
        if config.does_sr:
            self.sr_body = res_blocks(w, config.sr_blocks)
            if config.long_skip:
                self.long_skip = nn.Sequential(
                    *[m for _ in range(3) for m in (conv3x3(w, w), nn.ReLU(inplace=True), nn.MaxPool2d(2))]
                )
            self.upsample = nn.Sequential(
                *[m for _ in range(3) for m in (conv3x3(w, 4 * w), nn.PixelShuffle(2), nn.ReLU(inplace=True))]
            )
            self.to_rgb = conv3x3(w, 3)
            if config.detail_width:
                self.detail = DetailHead(config.detail_width, config.detail_layers)
        if config.does_align:
            k = config.heatmap_channels
            stages = []
            for index in range(config.stages):
                in_ch = w if index == 0 else w + k
                stages.append(
                    nn.Sequential(
                        conv3x3(in_ch, w) if index else nn.Identity(),
                        nn.ReLU(inplace=True) if index else nn.Identity(),
                        res_blocks(w, config.stage_blocks[index]),
                        conv3x3(w, k),
                    )
                )
            self.stages = nn.ModuleList(stages)
            if config.refine_blocks:
                self.refine = FineStage(w, k, config.refine_blocks)

    def forward(self, x: torch.Tensor, sr: bool = True) -> JASROutput:
        """``sr=False``: landmarks only; the SR branch is skipped (the output's ``sr`` is None) and the heatmaps
        are the same as with it, which needs none of its layers."""
        x = x - self.rgb_mean
        shallow = self.head(x)
        h0 = self.f0(shallow)
        h1 = self.f1(h0)
        h2 = self.f2(h1)
        h3 = self.f3(h2)
        if self.config.fusion == "none":
            h = h3
        else:  # Eq. 2: H = g3(g2(g1(H0) + H1) + H2) + H3
            h = self.fuse[2](self.fuse[1](self.fuse[0](h0, h1), h2), h3)
        image = None
        if self.config.does_sr and sr:
            features = self.sr_body(h)
            if self.config.long_skip:
                features = features + self.long_skip(shallow)
            base = x + self.rgb_mean if self.config.input_residual else self.rgb_mean
            image = self.to_rgb(self.upsample(features)) + base
            if self.config.detail_width:
                image = image + self.detail(image - self.rgb_mean)
        heatmaps: list[torch.Tensor] = []
        if self.config.does_align:
            stage_input = h
            for stage in self.stages:
                heatmaps.append(stage(stage_input))
                stage_input = torch.cat([h, heatmaps[-1]], dim=1)
            if self.config.refine_blocks:
                heatmaps.append(self.refine(h2, h, heatmaps[-1]))
        return JASROutput(image, heatmaps)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
