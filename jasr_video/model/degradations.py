"""Low-resolution faces as CCTV makes them, for training and for the `cctv` evaluation protocol.

The paper's protocol (`data.degrade`) is anti-aliased bicubic down-sampling of a clean face. A camera adds
more, in this order, each step optional and drawn at random per face (`sample_params`):

1. colour cast — per-channel gains and a gamma, applied to the HR face itself: the cast is part of the
   scene as the camera sees it, so the SR target keeps it (the network is not asked to guess white balance);
2. optical blur — Gaussian (defocus) or motion (a line kernel at a random angle), sized in LR pixels and
   applied at HR resolution before sampling;
3. down-sampling with one of several kernels: anti-aliased bicubic / bilinear, area, or plain (aliasing)
   bilinear / nearest sampling;
4. sensor noise — Gaussian, per channel (colour) or shared (luminance), at the LR resolution;
5. 8-bit quantisation, then compression — JPEG, or H.264 (libx264 through PyAV): the faces of a batch are
   tiled into one frame (each in a cell at a random offset, so macroblocks do not line up with the face: 32 px
   cells for faces up to 16 px, else the face side rounded up to whole macroblocks plus one) and encoded as one
   intra frame at a fixed quantiser; 4:2:0 chroma as real streams.

The network input is then, as always, the LR face bicubic-upsampled to 128x128. A face left clean
(probability `p_clean`) gets exactly the paper's protocol. Everything is drawn from the numpy Generator
given, so a seed fixes the degradation. `TRAIN` is the training mix; `CCTV_EVAL` is the fixed degradation
of `jasr-eval --protocol cctv` (every face degraded; with seed 0 per face index).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .data import degrade, upsample

KERNELS = ("bicubic-aa", "bilinear-aa", "area", "bilinear", "nearest")
H264_CELL = 32  # smallest side of a face's cell in the tiled H.264 frame (two macroblocks)
MACROBLOCK = 16


def h264_cell(side: int) -> int:
    """Side of the H.264 frame's cell for a face of `side` px: room for the face at any offset in [0, 16)."""
    return max(H264_CELL, MACROBLOCK * (-(-side // MACROBLOCK) + 1))


@dataclass(frozen=True)
class DegradationConfig:
    """Probabilities and ranges (uniform) of each degradation step. Blur and noise sizes in LR pixels / levels."""

    p_clean: float = 0.3  # the paper's clean anti-aliased bicubic protocol, nothing else
    p_blur: float = 0.7  # optical blur (of the degraded faces)
    p_motion: float = 0.3  # share of the blurred faces whose blur is motion, not Gaussian
    blur_sigma: tuple[float, float] = (0.2, 1.2)  # Gaussian sigma, LR pixels
    motion_length: tuple[float, float] = (0.5, 2.5)  # motion kernel length, LR pixels
    kernels: tuple[str, ...] = KERNELS  # down-sampling kernels, drawn uniformly
    p_noise: float = 0.6
    noise_sigma: tuple[float, float] = (1.0, 10.0)  # Gaussian noise sigma, 8-bit levels
    p_gray_noise: float = 0.5  # share of the noise shared by the three channels (luminance noise)
    p_jpeg: float = 0.3
    jpeg_quality: tuple[int, int] = (25, 90)
    p_h264: float = 0.4  # (JPEG and H.264 exclude each other; the rest is left uncompressed)
    h264_qp: tuple[int, int] = (24, 44)  # libx264 constant quantiser (51 = worst)
    p_cast: float = 0.3
    cast_gain: tuple[float, float] = (0.85, 1.15)  # per-channel gain
    cast_gamma: tuple[float, float] = (0.8, 1.25)

    def __post_init__(self) -> None:
        for name in ("p_clean", "p_blur", "p_motion", "p_noise", "p_gray_noise", "p_jpeg", "p_h264", "p_cast"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1], not {getattr(self, name)}")
        if self.p_jpeg + self.p_h264 > 1:
            raise ValueError("p_jpeg + p_h264 must not exceed 1")
        unknown = set(self.kernels) - set(KERNELS)
        if unknown or not self.kernels:
            raise ValueError(f"kernels must be some of {', '.join(KERNELS)}, not {sorted(unknown)}")


TRAIN = DegradationConfig()
# jasr-eval --protocol cctv: every face blurred, noisy and H.264-compressed (moderate surveillance settings).
CCTV_EVAL = DegradationConfig(
    p_clean=0.0, p_blur=1.0, p_motion=1 / 3, blur_sigma=(0.3, 0.8), motion_length=(1.0, 2.0), p_noise=1.0,
    noise_sigma=(2.0, 5.0), p_jpeg=0.0, p_h264=1.0, h264_qp=(26, 34), p_cast=1.0, cast_gain=(0.9, 1.1),
    cast_gamma=(0.9, 1.1),
)
CCTV_EVAL_SEED = 0


def sample_params(rng: np.random.Generator, config: DegradationConfig = TRAIN) -> dict[str, Any]:
    """Draw one face's degradation: a dict of the steps taken ({"clean": True} for the paper's protocol)."""
    if rng.random() < config.p_clean:
        return {"clean": True}
    params: dict[str, Any] = {"clean": False, "kernel": str(rng.choice(config.kernels))}
    if rng.random() < config.p_cast:
        params["cast"] = {"gain": rng.uniform(*config.cast_gain, size=3).tolist(),
                          "gamma": float(rng.uniform(*config.cast_gamma))}
    if rng.random() < config.p_blur:
        if rng.random() < config.p_motion:
            params["motion"] = {"length": float(rng.uniform(*config.motion_length)),
                                "angle": float(rng.uniform(0, 180))}
        else:
            params["gaussian"] = float(rng.uniform(*config.blur_sigma))
    if rng.random() < config.p_noise:
        params["noise"] = {"sigma": float(rng.uniform(*config.noise_sigma)),
                           "gray": bool(rng.random() < config.p_gray_noise), "seed": int(rng.integers(2**31))}
    u = rng.random()
    if u < config.p_jpeg:
        params["jpeg"] = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
    elif u < config.p_jpeg + config.p_h264:
        params["h264"] = int(rng.integers(config.h264_qp[0], config.h264_qp[1] + 1))
        params["offset"] = rng.integers(0, H264_CELL // 2, size=2).tolist()
    return params


def colour_cast(image: np.ndarray, gain: list[float], gamma: float) -> np.ndarray:
    """HxWx3 float [0, 1] -> clip(image ** gamma * gain), per channel."""
    return np.clip(np.power(image, gamma) * np.asarray(gain, np.float32), 0, 1).astype(np.float32)


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """Normalised line kernel of `length` pixels (>= 1 tap) at `angle` degrees (0 = horizontal), anti-aliased."""
    size = 2 * int(math.ceil(length / 2)) + 1
    scale = 8  # draw at 8x, then area-reduce: sub-pixel lengths and angles
    big = np.zeros((size * scale, size * scale), np.float32)
    c = (size * scale - 1) / 2
    dx, dy = math.cos(math.radians(angle)) * length * scale / 2, -math.sin(math.radians(angle)) * length * scale / 2
    cv2.line(big, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, max(1, scale // 2), cv2.LINE_AA)
    kernel = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
    return kernel / kernel.sum()


def blur(image: np.ndarray, params: dict[str, Any], factor: float) -> np.ndarray:
    """Optical blur of an HR image whose LR side is 1/`factor` of it; sizes in params are LR pixels."""
    if "gaussian" in params:
        return cv2.GaussianBlur(image, (0, 0), params["gaussian"] * factor, borderType=cv2.BORDER_REFLECT101)
    if "motion" in params:
        kernel = motion_kernel(max(1.0, params["motion"]["length"] * factor), params["motion"]["angle"])
        return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT101)
    return image


def downscale(image: np.ndarray, size: int, kernel: str) -> np.ndarray:
    """HxWx3 float image -> size x size with the named kernel (anti-aliased or plain sampling)."""
    if kernel in ("bicubic-aa", "bilinear-aa"):
        t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
        mode = "bicubic" if kernel == "bicubic-aa" else "bilinear"
        t = F.interpolate(t, size=(size, size), mode=mode, antialias=True, align_corners=False)
        return t[0].permute(1, 2, 0).clamp(0, 1).numpy()
    flags = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}[kernel]
    return np.clip(cv2.resize(image, (size, size), interpolation=flags), 0, 1)


def add_noise(image: np.ndarray, sigma: float, gray: bool, seed: int) -> np.ndarray:
    """Gaussian noise of `sigma` 8-bit levels, shared by the channels if `gray`."""
    rng = np.random.default_rng(seed)
    shape = image.shape[:2] + ((1,) if gray else (3,))
    return np.clip(image + rng.normal(0, sigma / 255, shape).astype(np.float32), 0, 1)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """uint8 RGB -> JPEG at `quality` (OpenCV, 4:2:0) -> uint8 RGB."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def h264_frame(frame: np.ndarray, qp: int) -> np.ndarray:
    """One uint8 RGB frame (even sides) -> an H.264 intra frame at constant quantiser `qp` -> decoded RGB."""
    import av  # PyAV: the video decoder's dependency, imported here only
    from av.video.reformatter import VideoReformatter

    # a reformatter of this call's own: a cached one (PyAV's) may hold a scaler whose threads belong to the process
    # this one was forked from (a training loader's worker), and freeing it there waits for them for ever
    reformatter = VideoReformatter()

    def rgb(f: Any) -> np.ndarray:
        return reformatter.reformat(f, format="rgb24").to_ndarray()

    height, width = frame.shape[:2]
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.options = {"qp": str(int(qp)), "preset": "ultrafast", "tune": "zerolatency"}
    decoder = av.CodecContext.create("h264", "r")
    decoded = []
    source = reformatter.reformat(av.VideoFrame.from_ndarray(frame, format="rgb24"), format="yuv420p")
    for packet in [*encoder.encode(source), *encoder.encode(None)]:
        decoded += [rgb(f) for f in decoder.decode(packet)]
    decoded += [rgb(f) for f in decoder.decode(None)]
    if len(decoded) != 1:
        raise RuntimeError(f"H.264 round trip gave {len(decoded)} frames, expected 1")
    return decoded[0]


def h264(faces: list[np.ndarray], qps: list[int], offsets: list[list[int]]) -> list[np.ndarray]:
    """H.264 round trip of LR faces (uint8 RGB, square): faces with the same quantiser share one frame, each in
    a cell (`h264_cell` of the frame's largest face) at its offset, its surroundings edge-padded (as a face
    inside a frame would be)."""
    out: list[np.ndarray | None] = [None] * len(faces)
    for qp in sorted(set(qps)):
        index = [i for i, q in enumerate(qps) if q == qp]
        cell = h264_cell(max(faces[i].shape[0] for i in index))
        places = []
        for i in index:
            side = faces[i].shape[0]
            places.append((min(offsets[i][0], cell - side), min(offsets[i][1], cell - side)))
        cells = [cv2.copyMakeBorder(faces[i], oy, cell - faces[i].shape[0] - oy, ox, cell - faces[i].shape[0] - ox,
                                    cv2.BORDER_REPLICATE) for i, (ox, oy) in zip(index, places)]
        columns = min(len(cells), 8)
        rows = -(-len(cells) // columns)
        cells += [cells[-1]] * (rows * columns - len(cells))
        frame = np.vstack([np.hstack(cells[r * columns:(r + 1) * columns]) for r in range(rows)])
        decoded = h264_frame(frame, qp)
        for k, (i, (ox, oy)) in enumerate(zip(index, places)):
            r, c = divmod(k, columns)
            side = faces[i].shape[0]
            y, x = r * cell + oy, c * cell + ox
            out[i] = decoded[y:y + side, x:x + side]
    return out  # type: ignore[return-value]


def degrade_batch(
    hr: torch.Tensor, sizes: list[int] | np.ndarray, params: list[dict[str, Any]], hr_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Degrade HR faces (B, 3, S, S) in [0, 1], face i to sizes[i] px with params[i].

    Returns (inputs (B, 3, S, S): the LR faces bicubic-upsampled, the network input; target (B, 3, S, S):
    the HR faces with their colour cast, the SR target; lr (B, 3, m, m): the LR faces, m = the largest size,
    each in the top-left corner).
    """
    hr_size = hr_size or hr.shape[-1]
    sizes = [int(s) for s in sizes]
    device = hr.device
    images = hr.detach().float().cpu().permute(0, 2, 3, 1).numpy()
    target = hr.detach().float().cpu().clone()
    lows: list[np.ndarray] = []
    for i, p in enumerate(params):
        image = images[i]
        if p.get("clean", False):
            lows.append(degrade(hr[i:i + 1].float().cpu(), sizes[i])[0].permute(1, 2, 0).numpy())
            continue
        if "cast" in p:
            image = colour_cast(image, p["cast"]["gain"], p["cast"]["gamma"])
            target[i] = torch.from_numpy(image).permute(2, 0, 1)
        image = blur(np.ascontiguousarray(image), p, image.shape[0] / sizes[i])
        low = downscale(image, sizes[i], p.get("kernel", "bicubic-aa"))
        if "noise" in p:
            low = add_noise(low, p["noise"]["sigma"], p["noise"]["gray"], p["noise"]["seed"])
        lows.append(low)
    quantised = [None if p.get("clean", False) else (low * 255).round().astype(np.uint8) for low, p in zip(lows, params)]
    for i, p in enumerate(params):
        if "jpeg" in p:
            quantised[i] = jpeg(quantised[i], p["jpeg"])
    coded = [i for i, p in enumerate(params) if "h264" in p]
    if coded:
        done = h264([quantised[i] for i in coded], [params[i]["h264"] for i in coded],
                    [params[i]["offset"] for i in coded])
        for i, face in zip(coded, done):
            quantised[i] = face
    big = max(sizes)
    lr = torch.zeros(len(params), 3, big, big)
    inputs = torch.empty(len(params), 3, hr_size, hr_size)
    for i in range(len(params)):
        low = lows[i] if quantised[i] is None else quantised[i].astype(np.float32) / 255
        t = torch.from_numpy(np.ascontiguousarray(low)).permute(2, 0, 1)
        lr[i, :, : sizes[i], : sizes[i]] = t
        inputs[i] = upsample(t[None], hr_size)[0]
    return inputs.to(device), target.to(device), lr.to(device)


def degrade_each(hr: torch.Tensor, size: int, params: list[dict[str, Any]]) -> tuple[torch.Tensor, ...]:
    """`degrade_batch` of each face alone (its own H.264 frame), so that a face's degradation does not depend
    on the faces beside it (evaluation); every face to `size` px. Same returns as `degrade_batch`."""
    done = [degrade_batch(hr[j:j + 1], [size], params[j:j + 1]) for j in range(hr.shape[0])]
    return tuple(torch.cat([d[k] for d in done]) for k in range(3))


def with_clean_probability(config: DegradationConfig, p_clean: float) -> DegradationConfig:
    """The same mix with another share of clean (paper-protocol) faces."""
    return replace(config, p_clean=p_clean)
