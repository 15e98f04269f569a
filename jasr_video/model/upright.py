"""Landmarks of tilted heads: a second pass on the face turned upright, its roll read from the eye line.

JASRNet learns from faces that are mostly near upright; on a head tilted (rolled) beyond ~15 deg its
landmarks drift toward an upright face shape. `upright_landmarks` reads the roll from the first pass's eye
line, turns the network input about its centre until the eyes are level, runs the network again and turns
those landmarks back into the input's frame; their confidence comes with them. Faces whose eye line is
within `threshold` degrees of level keep the first pass, so upright faces cost nothing more, and so do faces
whose eye line reads beyond `MAX_ROLL_DEGREES` (there the first pass has not found the eyes). The SR face
stays the first pass's: turning a sharp SR face back resamples it, which loses more detail than the upright
pass adds.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

DEFAULT_UPRIGHT_DEGREES = 15.0  # eye-line tilt above which a face gets the upright pass (0 = never)
MAX_ROLL_DEGREES = 60.0  # beyond this the first pass's eye line is not trusted (profiles, backs of heads)
LEFT_EYE, RIGHT_EYE = slice(36, 42), slice(42, 48)  # 68-point scheme: the eye contours, image left / right


def check_upright(degrees: float) -> float:
    """`degrees` if it is a tilt threshold the upright pass takes ([0, 90); 0 = off), else a ValueError."""
    if not 0 <= degrees < 90:
        raise ValueError(f"upright must be in [0, 90) degrees (0: off), not {degrees:g}")
    return degrees


def eye_roll(landmarks: torch.Tensor) -> torch.Tensor:
    """(B, 68, 2) pixel landmarks -> (B,) roll in degrees: the angle of the line from the left eye's centre
    to the right eye's (image y down, so a positive roll is the right eye lower)."""
    line = landmarks[:, RIGHT_EYE].mean(1) - landmarks[:, LEFT_EYE].mean(1)
    return torch.rad2deg(torch.atan2(line[:, 1], line[:, 0]))


def _rotation(degrees: torch.Tensor) -> torch.Tensor:
    """(B,) degrees -> (B, 2, 3) affine_grid matrices: output (normalised) -> input sampling position."""
    angle = torch.deg2rad(degrees.float())
    cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle)
    return torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)


def turn_upright(images: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Images (B, C, S, S) whose faces have `roll` degrees -> the same turned about the centre so the faces
    are level (borders repeated, as the crop's surroundings would continue)."""
    grid = F.affine_grid(_rotation(roll).to(images.device), list(images.shape), align_corners=False)
    return F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)


def points_back(points: torch.Tensor, roll: torch.Tensor, size: int) -> torch.Tensor:
    """(B, K, 2) pixel points found in `turn_upright(images, roll)` -> the same points in `images`."""
    theta = _rotation(roll).to(points.device)
    normalised = (points.float() + 0.5) / size * 2 - 1
    mapped = torch.einsum("bij,bkj->bki", theta[:, :, :2], normalised)
    return (mapped + 1) / 2 * size - 0.5


def upright_landmarks(predict: Callable, inputs: torch.Tensor, first, threshold: float = DEFAULT_UPRIGHT_DEGREES):
    """`first` = predict(inputs) (a Prediction: sr, landmarks, confidence). Faces whose eye line tilts more
    than `threshold` degrees (up to `MAX_ROLL_DEGREES`) get their landmarks and confidence from a pass on the
    input turned upright: ``predict(turned, sr=False)``, landmarks only."""
    if threshold <= 0 or len(inputs) == 0:
        return first
    roll = eye_roll(first.landmarks.float())
    tilted = torch.nonzero((roll.abs() > threshold) & (roll.abs() <= MAX_ROLL_DEGREES)).flatten()
    if len(tilted) == 0:
        return first
    roll_t = roll[tilted].to(inputs.device)
    second = predict(turn_upright(inputs[tilted.to(inputs.device)], roll_t).to(inputs.dtype), sr=False)
    landmarks, confidence = first.landmarks.clone(), first.confidence.clone()
    landmarks[tilted] = points_back(second.landmarks, roll_t, inputs.shape[-1]).to(landmarks.device, landmarks.dtype)
    confidence[tilted] = second.confidence.to(confidence.device, confidence.dtype)
    return type(first)(first.sr, landmarks, confidence)
