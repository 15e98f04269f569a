"""MTCNN's three stages, the algorithm of facenet-pytorch's ``detect_face`` made cheaper (the detector's fast path).

Over the same facenet networks and weights as facenet's own code (``FaceDetector(fast=False)``, the
reference): channels-last networks; on CPU the image pyramid built level from level with OpenCV's area filter,
P-net over the large levels in cache-sized strips (exactly the same output), and the R-/O-net face crops
resampled by OpenCV instead of one torch call per crop; on CUDA the crops of a frame in one ``grid_sample``
call. Its detections match the reference within the tolerance that ``tests/test_detect.py`` checks on real
frames; the gains, and the command that measures each part, are in docs/benchmarks.md
(``python -m jasr_video.tools.profile_detect --parts``).

:func:`run_mtcnn` runs all three stages on a batch of frames; the parts (:func:`pyramid_level`,
:func:`pnet_in_strips`, :func:`pnet_stage`, :func:`face_crops`, :func:`refine_stages`) are public for the
region detector (:mod:`jasr_video.regions`) and the profiler.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

# CPU: P-net runs over large pyramid levels in strips of about this many input pixels (0: whole levels)
STRIP_PIXELS = 262144


def pyramid_level(previous: list[np.ndarray] | None, images: torch.Tensor,
                   size: tuple[int, int]) -> tuple[torch.Tensor, list[np.ndarray] | None]:
    """One pyramid level (B, 3, h, w) float, channels-last, of `images`.

    On CPU: OpenCV's area filter applied to `previous` (the level before, as float32 HWC arrays; the frames
    for the first level), returned too for the next level: each level costs a fraction of the one before
    instead of a pass over the full frame. Elsewhere: torch's ``interpolate(mode="area")`` on `images`, as facenet does (`previous` unused, None returned)."""
    if previous is None:
        return F.interpolate(images, size=size, mode="area"), None
    import cv2

    levels = [cv2.resize(f, (size[1], size[0]), interpolation=cv2.INTER_AREA) for f in previous]
    stacked = levels[0][None] if len(levels) == 1 else np.stack(levels)
    return torch.from_numpy(stacked).permute(0, 3, 1, 2), levels


def pnet_in_strips(pnet: torch.nn.Module, level: torch.Tensor, strip_pixels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """P-net over `level` in horizontal strips of about `strip_pixels` input pixels, stitched to the same output.

    CPU: a strip's feature maps stay in cache, so the time no longer depends on contended memory bandwidth.

    P-net output row i reads input rows 2i .. 2i+11. A strip of even height S+10 starting at an even row r
    gives output rows r/2 .. r/2 + S/2 - 1 exactly (no partial pooling window at its bottom); the last strip
    runs to the level's bottom edge, as the whole image does.
    """
    height, width = level.shape[2], level.shape[3]
    step = max(16, strip_pixels // max(width, 1) // 2 * 2)
    if height <= step + 10:
        return pnet(level)
    regs, probs = [], []
    start = 0
    while True:
        last = start + step + 10 >= height
        strip = level[:, :, start:] if last else level[:, :, start:start + step + 10]
        reg, prob = pnet(strip.contiguous(memory_format=torch.channels_last))
        regs.append(reg if last else reg[:, :, :step // 2])
        probs.append(prob if last else prob[:, :, :step // 2])
        if last:
            return torch.cat(regs, dim=2), torch.cat(probs, dim=2)
        start += step


def face_crops(images: torch.Tensor, image_inds: np.ndarray, boxes: torch.Tensor, size: int, width: int,
                height: int, arrays: list[np.ndarray] | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """The square candidate boxes cut out of `images` and resampled to size x size, as facenet does.

    Returns (N', 3, size, size) and the mask of usable boxes (facenet's padding; boxes wholly outside the
    frame are not usable). With `arrays` (CPU: the frames as HWC arrays, uint8 or float32) each crop is resampled in float32 by
    OpenCV's area filter, a few microseconds a crop where facenet makes one torch call per crop; without,
    each output pixel is the mean of 4x4 bilinear samples spread over its area, all crops of a frame in one
    ``grid_sample`` call (GPUs: few kernel launches).
    """
    from facenet_pytorch.models.utils.detect_face import pad

    y, ey, x, ex = pad(boxes, width, height)
    valid = (ey > y - 1) & (ex > x - 1)
    keep = np.flatnonzero(valid)
    if arrays is not None:
        import cv2

        crops = np.empty((len(keep), size, size, 3), np.float32)
        for j, k in enumerate(keep):
            cut = arrays[int(image_inds[k])][y[k] - 1:ey[k], x[k] - 1:ex[k]].astype(np.float32, copy=False)
            crops[j] = cv2.resize(cut, (size, size), interpolation=cv2.INTER_AREA)
        return torch.from_numpy(crops).permute(0, 3, 1, 2), valid
    out = torch.empty((len(keep), 3, size, size), device=images.device)
    k = 4
    _, _, h, w = images.shape
    steps = (torch.arange(size * k, device=images.device, dtype=torch.float32) + 0.5) / (size * k)
    x0, y0 = torch.as_tensor(x[keep] - 1.0, device=images.device), torch.as_tensor(y[keep] - 1.0, device=images.device)
    cw = torch.as_tensor(ex[keep] - x[keep] + 1.0, device=images.device)
    ch = torch.as_tensor(ey[keep] - y[keep] + 1.0, device=images.device)
    gx = ((x0[:, None] + steps * cw[:, None]) / w * 2 - 1).float()  # (N, size*k), grid_sample's [-1, 1]
    gy = ((y0[:, None] + steps * ch[:, None]) / h * 2 - 1).float()
    inds = image_inds[keep]
    for b in np.unique(inds):
        rows = np.flatnonzero(inds == b)
        r = torch.as_tensor(rows, device=images.device)
        grid = torch.stack(torch.broadcast_tensors(gx[r][:, None, :], gy[r][:, :, None]), dim=-1)
        grid = grid.reshape(1, len(rows) * size * k, size * k, 2)
        samples = F.grid_sample(images[int(b):int(b) + 1], grid, mode="bilinear", align_corners=False)
        samples = samples.reshape(3, len(rows), size * k, size * k).transpose(0, 1)
        out[r] = F.avg_pool2d(samples, k)
    return out, valid


def pyramid_scales(height: int, width: int, min_face_size: int, factor: float) -> list[float]:
    """MTCNN's image pyramid: the scales at which P-net's 12 px window covers faces from `min_face_size` up."""
    m = 12.0 / min_face_size
    scales, minl = [], min(height, width) * m
    while minl >= 12:
        scales.append(m)
        m, minl = m * factor, minl * factor
    return scales


def net_input(pixels: torch.Tensor) -> torch.Tensor:
    """0..255 pixels to the networks' input range, as facenet does."""
    return (pixels - 127.5) * 0.0078125


def pnet_stage(images: torch.Tensor, previous: list[np.ndarray] | None, scales: Sequence[float],
                pnet: torch.nn.Module, threshold: float, device: torch.device,
                pnet_dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """MTCNN stage 1: P-net over the pyramid of `images` (B, 3, H, W) at `scales` (`previous`: the same images
    as float32 HWC arrays on CPU, see :func:`pyramid_level`). Returns candidate boxes (N, 5: x0, y0, x1, y1,
    score) in `images` pixels after NMS per scale and image, then per image, box regression and squaring; and
    each box's image index."""
    from facenet_pytorch.models.utils import detect_face as fd

    _, _, h, w = images.shape
    boxes_all, inds_all = [], []
    for scale in scales:
        level, previous = pyramid_level(previous, images, (int(h * scale + 1), int(w * scale + 1)))
        with torch.autocast(device.type, dtype=pnet_dtype, enabled=pnet_dtype != torch.float32):
            if device.type == "cpu" and STRIP_PIXELS:
                reg, probs = pnet_in_strips(pnet, net_input(level), STRIP_PIXELS)
            else:
                reg, probs = pnet(net_input(level))
        reg, probs = reg.float(), probs.float()
        boxes, inds = fd.generateBoundingBox(reg, probs[:, 1], scale, threshold)
        pick = fd.batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.5)
        boxes_all.append(boxes[pick])
        inds_all.append(inds[pick])
    boxes, inds = torch.cat(boxes_all), torch.cat(inds_all)
    pick = fd.batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
    boxes, inds = boxes[pick], inds[pick]
    regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    boxes = torch.stack([boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh,
                         boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh, boxes[:, 4]], dim=1)
    return fd.rerec(boxes), inds


CropFn = Callable[[torch.Tensor, torch.Tensor, int], tuple[torch.Tensor, np.ndarray]]


def refine_stages(boxes: torch.Tensor, inds: torch.Tensor, crop: CropFn, rnet: torch.nn.Module,
                   onet: torch.nn.Module, thresholds: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MTCNN stages 2 and 3 on stage-1 candidates (N, 5) grouped by `inds` (NMS runs within a group):
    R-net on 24x24 and O-net on 48x48 crops cut by ``crop(boxes, inds, size)`` -> (crops in 0..255, usable-box
    mask; boxes wholly outside the frame are not usable). Returns boxes (M, 5), key points (M, 5, 2), groups."""
    from facenet_pytorch.models.utils import detect_face as fd

    def crops_of(boxes: torch.Tensor, inds: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        crops, valid = crop(boxes, inds, size)
        mask = torch.as_tensor(valid, device=boxes.device)
        return net_input(crops), boxes[mask], inds[mask]

    if len(boxes):  # stage 2: R-net
        crops, boxes, inds = crops_of(boxes, inds, 24)
    if len(boxes):
        reg, probs = fd.fixed_batch_process(crops, rnet)
        score = probs[:, 1]
        ipass = score > thresholds[1]
        boxes = torch.cat((boxes[ipass, :4], score[ipass].unsqueeze(1)), dim=1)
        inds, reg = inds[ipass], reg[ipass]
        pick = fd.batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
        boxes = fd.rerec(fd.bbreg(boxes[pick], reg[pick]))
        inds = inds[pick]

    # stage 3: O-net: probabilities, box refinement, five key points
    points = torch.zeros(0, 5, 2, device=boxes.device)
    if len(boxes):
        crops, boxes, inds = crops_of(boxes, inds, 48)
    if len(boxes):
        reg, pts, probs = fd.fixed_batch_process(crops, onet)
        score = probs[:, 1]
        ipass = score > thresholds[2]
        boxes = torch.cat((boxes[ipass, :4], score[ipass].unsqueeze(1)), dim=1)
        inds, reg, pts = inds[ipass], reg[ipass], pts[ipass]
        w_i = (boxes[:, 2] - boxes[:, 0] + 1).unsqueeze(1)
        h_i = (boxes[:, 3] - boxes[:, 1] + 1).unsqueeze(1)
        points = torch.stack((w_i * pts[:, :5] + boxes[:, :1] - 1, h_i * pts[:, 5:10] + boxes[:, 1:2] - 1), dim=2)
        boxes = fd.bbreg(boxes, reg)
        pick = fd.batched_nms_numpy(boxes[:, :4], boxes[:, 4], inds, 0.7, "Min")
        boxes, inds, points = boxes[pick], inds[pick], points[pick]
    return boxes, points, inds


def frame_tensor(frames: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """(B, H, W, 3) uint8 frames (array or CPU tensor, e.g. a pinned staging buffer: the upload overlaps the
    host) as a float (B, 3, H, W) view with channels-last strides on `device`."""
    if isinstance(frames, torch.Tensor):
        return frames.to(device, non_blocking=True).permute(0, 3, 1, 2).float()
    return torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float()


def run_mtcnn(frames: np.ndarray | torch.Tensor, min_face_size: int, pnet: torch.nn.Module, rnet: torch.nn.Module,
              onet: torch.nn.Module, thresholds: Sequence[float], factor: float,
              device: torch.device, pnet_dtype: torch.dtype = torch.float32,
              sampled_crops: bool = False) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """MTCNN on a batch of same-sized RGB frames (B, H, W, 3) uint8 (array or CPU tensor), the algorithm of facenet-pytorch's
    ``detect_face``: per frame, boxes (N, 5: x0, y0, x1, y1, probability) and key points (N, 5, 2).
    sampled_crops: on CPU too, the R-/O-net crops that CUDA uses (:func:`face_crops` without arrays; tests)."""
    images = frame_tensor(frames, device)
    # CPU: the pyramid is built with OpenCV from float32 HWC views of the frames
    previous = list(images.permute(0, 2, 3, 1).numpy()) if device.type == "cpu" else None
    batch, _, h, w = images.shape
    frame_arrays = None if sampled_crops else previous  # CPU: crops resampled by OpenCV
    scales = pyramid_scales(h, w, min_face_size, factor)
    if not scales:  # frames smaller than the smallest face searched for
        return [np.zeros((0, 5), np.float32)] * batch, [np.zeros((0, 5, 2), np.float32)] * batch
    boxes, inds = pnet_stage(images, previous, scales, pnet, thresholds[0], device, pnet_dtype)
    boxes, points, inds = refine_stages(
        boxes, inds, lambda b, i, size: face_crops(images, i.cpu().numpy(), b, size, w, h, frame_arrays),
        rnet, onet, thresholds)
    boxes_np, points_np, inds_np = boxes.cpu().numpy(), points.cpu().numpy(), inds.cpu().numpy()
    return ([boxes_np[inds_np == b] for b in range(batch)], [points_np[inds_np == b] for b in range(batch)])
