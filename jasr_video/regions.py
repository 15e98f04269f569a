"""Region detection: MTCNN on square regions of a frame around the tracks' predicted boxes.

Between full-frame scans (``PipelineConfig.full_scan_every``) the pipeline looks for its faces only near
where the tracker expects them: :func:`detect_regions` (called as ``FaceDetector.detect_regions``) puts a
square region around each box, scales the regions so that their smallest face is P-net's 12 px window and
runs them through P-net as one batch; R- and O-net then judge the candidates on crops cut from the frame.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .facenet_compat import nms
from .mtcnn import CropFn, face_crops, frame_tensor, pnet_stage, pyramid_scales, refine_stages
from .types import Detection


def square_regions(boxes: np.ndarray, height: int, width: int, expand: float = 2.0,
                   min_side: int = 48) -> list[tuple[int, int, int, float]]:
    """The square region around each finite box (N, 4) of a `height` x `width` frame: (x0, y0, side, the box's
    longer side). The side is the next size of at least ``expand`` x the box's longer side on a fixed ladder
    (``min_side`` x sqrt(2)^k, multiples of 16, at most the frame's); the square is centred on the box and
    shifted to lie inside the frame."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    out = []
    for x0, y0, x1, y1 in boxes[np.all(np.isfinite(boxes), axis=1)]:
        box = max(x1 - x0, y1 - y0, 1.0)
        k = max(0, int(np.ceil(2 * np.log2(box * expand / min_side) - 1e-9)))
        side = int(min(-(-min_side * 2 ** (k / 2) // 16) * 16, height, width))
        rx = int(round(np.clip((x0 + x1 - side) / 2, 0, width - side)))
        ry = int(round(np.clip((y0 + y1 - side) / 2, 0, height - side)))
        out.append((rx, ry, side, float(box)))
    return out


@torch.inference_mode()
def detect_regions(detector: Any, frame: np.ndarray, boxes: np.ndarray, expand: float = 2.0, min_side: int = 48,
                   min_face_ratio: float = 0.5, nms_iou: float = 0.4) -> list[Detection]:
    """MTCNN on square regions of one frame around `boxes` (N, 4), e.g. the tracker's predicted face boxes.

    Each region is a square of at least ``expand`` x the box's longer side: the next size on a fixed ladder
    (``min_side`` x sqrt(2)^k, multiples of 16), centred on the box and shifted to lie inside the frame.
    Within a region MTCNN looks for faces down to ``min_face_ratio`` x side / expand (never below the
    detector's min_face_size), which skips the costly fine pyramid levels; around a box smaller than twice
    min_face_size, down to ``min_face_ratio`` x its size (at least 6 px: the region is upsampled): a region is scaled so that
    this smallest face is P-net's 12 px window (48 px for the defaults), so regions of every size go
    through P-net together in one batch, and R- and O-net judge all their candidates as one frame's, on
    crops cut from the frame (so a face partly inside a region is seen whole). With ``fast=False``
    facenet's own code runs on each region, zero-padded at its edges: faces cut by a region edge that is
    not a frame edge are dropped there. Duplicates from overlapping regions are removed by NMS; sorted by
    score.
    """
    h, w = frame.shape[:2]
    base = int(detector.mtcnn.min_face_size)
    regions: list[tuple[int, int, int, int]] = []  # (x0, y0, side, smallest face searched for)
    for rx, ry, side, box in square_regions(boxes, h, w, expand, min_side):
        # faces tracked below 2x min_face_size: the region is zoomed so P-net sees down to half their size
        smallest = max(6, int(box * min_face_ratio)) if box < 2 * base else max(base, int(side / expand * min_face_ratio))
        region = (rx, ry, side, smallest)
        if region not in regions:
            regions.append(region)
    if detector.fast:
        scaled = [round(side * 12 / min_face) for _, _, side, min_face in regions]
        found = [d for size in sorted(set(scaled))  # one batch per scaled size (one for the defaults)
                 for d in _regions_fast(detector, frame, [r for r, s in zip(regions, scaled) if s == size], size)]
    else:  # facenet's own code on each region (crops outside a region are zero-padded there)
        found = [d for rx, ry, side, min_face in regions
                 for d in in_frame(detector.detect([frame[ry:ry + side, rx:rx + side]], min_face_size=min_face)[0],
                                   rx, ry, side, w, h)]
    return merged(found, detector.min_score, nms_iou)


def in_frame(detections: list[Detection], rx: int, ry: int, side: int, w: int, h: int) -> list[Detection]:
    """A region's detections (region pixels) in frame pixels; a face cut by a region edge that is not a frame edge
    is left out (it is a neighbouring region's)."""
    out = []
    for d in detections:
        x0, y0, x1, y1 = d.box
        if not ((x0 < 1 and rx > 0) or (y0 < 1 and ry > 0) or (x1 > side - 1 and rx + side < w)
                or (y1 > side - 1 and ry + side < h)):
            out.append(Detection(d.box + np.tile([rx, ry], 2).astype(np.float32), d.score,
                                 d.points + np.array([rx, ry], np.float32)))
    return out


def merged(found: list[Detection], min_score: float, nms_iou: float) -> list[Detection]:
    """The detections of overlapping regions as one frame's: score >= min_score, duplicates removed by NMS, by score."""
    found = [d for d in found if d.score >= min_score]
    if len(found) > 1:
        keep = nms(torch.from_numpy(np.stack([d.box for d in found])), torch.tensor([d.score for d in found]),
                   nms_iou)
        found = [found[int(i)] for i in keep]
    found.sort(key=lambda d: -d.score)
    return found


def _regions_fast(detector: Any, frame: np.ndarray, regions: list[tuple[int, int, int, int]],
                  scaled: int) -> list[Detection]:
    """detect_regions' MTCNN for regions (x0, y0, side, min face) that share one `scaled` size: P-net over
    the regions resized to `scaled` px as one batch (faces from 12 px there up); its candidates, mapped to
    frame pixels, then go through R- and O-net as those of one full-frame image (crops cut from the frame,
    NMS across regions)."""
    import cv2

    m = detector.mtcnn
    h, w = frame.shape[:2]
    scales = pyramid_scales(scaled, scaled, 12, m.factor)
    if not scales:
        return []
    arrays = [cv2.resize(frame[ry:ry + side, rx:rx + side].astype(np.float32), (scaled, scaled),
                         interpolation=cv2.INTER_AREA) for rx, ry, side, _ in regions]
    images = torch.from_numpy(np.stack(arrays)).to(detector.device).permute(0, 3, 1, 2)
    previous = arrays if detector.device.type == "cpu" else None
    boxes, inds = pnet_stage(images, previous, scales, m.pnet, m.thresholds[0], detector.device, detector._pnet_dtype)
    if not len(boxes):
        return []
    geometry = torch.tensor([(rx, ry, side / scaled) for rx, ry, side, _ in regions], dtype=torch.float32,
                            device=boxes.device)[inds]  # region's scaled px -> frame px
    boxes = torch.cat((boxes[:, :4] * geometry[:, 2:3] + geometry[:, :2].repeat(1, 2), boxes[:, 4:]), dim=1)
    if detector.sampled_crops:  # CUDA: crops sampled from the frame on the device
        full = frame_tensor(frame[None], detector.device)
        crop: CropFn = lambda b, i, size: face_crops(full, np.zeros(len(b), np.int64), b, size, w, h)
    else:  # crops cut by OpenCV from the uint8 frame itself
        crop = lambda b, i, size: face_crops(images, np.zeros(len(b), np.int64), b, size, w, h, [frame])
    boxes, points, _ = refine_stages(boxes, torch.zeros_like(inds), crop, m.rnet, m.onet, m.thresholds)
    return [Detection(box[:4].astype(np.float32), float(box[4]), pts.astype(np.float32))
            for box, pts in zip(boxes.cpu().numpy(), points.cpu().numpy())]
