"""YuNet face detector (``--detector yunet``): a 75,856-parameter anchor-free detector trained on WIDER FACE,
run by OpenCV's ``cv2.FaceDetectorYN`` (OpenCV is a dependency; the weights ship in ``models/detector/yunet/``
with their licence and attribution).

:class:`YuNetDetector` is a :class:`~jasr_video.types.Detector` (registered as ``yunet`` in
:data:`jasr_video.detect.DETECTORS`): boxes, score and YuNet's 5 points (eyes, nose tip, mouth corners, in
MTCNN's order) as :class:`~jasr_video.types.Detection`. ``upscale`` enlarges the frame before the scan so that
faces below YuNet's smallest stride (8 px) come into its range (by default x2 on frames of up to 540 px, x1 on
larger ones); :meth:`YuNetDetector.detect_regions` looks only
around given boxes (the tracks' predicted boxes between full scans), each region zoomed so that its face is
at least ``region_face_px`` px.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .types import Detection

YUNET_WEIGHTS = "yunet/yunet_n_dynamic.onnx"  # inside models/detector/
REGION_FACE_PX = 32  # detect_regions: a region is zoomed so that its tracked face is at least this many px
AUTO_UPSCALE_MAX_SIDE = 540  # upscale 0 (auto): frames whose shorter side is at most this are scanned enlarged x2
REGIONS_MAX_SHARE = 0.5  # detect_regions: a full scan instead, when the zoomed regions hold this share of its pixels


def yunet_weights_path(path: str | Path | None = None) -> Path:
    """The YuNet ONNX file: `path`, or the shipped ``models/detector/yunet/yunet_n_dynamic.onnx``."""
    from .model.checkpoint import models_dir

    found = Path(path) if path else models_dir() / "detector" / YUNET_WEIGHTS
    if not found.is_file():
        raise FileNotFoundError(f"YuNet weights not found: {found} (give the path of a YuNet .onnx file)")
    return found


class YuNetDetector:
    """YuNet over RGB frames, one frame at a time (``cv2.FaceDetectorYN``, CPU).

    min_score: drop detections below this score (YuNet's sqrt(class x objectness)); nms_iou: YuNet's NMS.
    upscale: enlarge each frame this many times before the scan (bicubic), boxes mapped back to frame pixels;
    1: off; 0: auto, x2 for frames whose shorter side is at most ``AUTO_UPSCALE_MAX_SIDE`` px, else x1.
    weights: a YuNet ONNX file (default: the shipped YuNet_n). top_k: most faces kept per frame.
    region_face_px: :meth:`detect_regions` zooms each region so that its face is at least this many px.
    """

    def __init__(self, min_score: float = 0.5, nms_iou: float = 0.3, upscale: float = 1.0,
                 weights: str | Path | None = None, top_k: int = 5000, region_face_px: int = REGION_FACE_PX) -> None:
        import cv2

        if upscale < 1.0 and upscale != 0:
            raise ValueError("upscale must be >= 1, or 0 (auto)")
        self.min_score, self.nms_iou, self.upscale, self.top_k = float(min_score), float(nms_iou), float(upscale), top_k
        self.region_face_px = int(region_face_px)
        self.weights = yunet_weights_path(weights)
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # OpenCV 5 warns about the DNN target
        try:
            self._net = cv2.FaceDetectorYN.create(str(self.weights), "", (32, 32), self.min_score, self.nms_iou, top_k)
            self._net.detect(np.zeros((32, 32, 3), np.uint8))  # a file OpenCV reads but cannot run fails here
        except cv2.error:
            raise ValueError(f"{self.weights}: not a YuNet ONNX model OpenCV can run (give a YuNet .onnx file, "
                             f"e.g. the shipped models/detector/{YUNET_WEIGHTS})") from None
        finally:
            cv2.utils.logging.setLogLevel(level)
        import torch

        self._size = (32, 32)
        self.device = torch.device("cpu")  # where it runs (the pipeline and the shared model read it)
        self.precision = "fp32"

    def zoom_of(self, frame: np.ndarray) -> float:
        """The enlargement of `frame`'s full scan: ``upscale``, or with upscale 0 (auto) x2 for small frames."""
        if self.upscale:
            return self.upscale
        return 2.0 if min(frame.shape[:2]) <= AUTO_UPSCALE_MAX_SIDE else 1.0

    def _scan(self, image: np.ndarray, zoom: float = 1.0) -> list[Detection]:
        """YuNet on one RGB image enlarged `zoom` times; detections in `image` pixels, sorted by score."""
        import cv2

        if zoom != 1.0:
            image = cv2.resize(image, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_CUBIC)
        h, w = image.shape[:2]
        if (w, h) != self._size:
            self._net.setInputSize((w, h))
            self._size = (w, h)
        _, faces = self._net.detect(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        out = []
        for f in ([] if faces is None else faces):
            x, y, fw, fh = f[:4] / zoom
            points = f[4:14].reshape(5, 2) / zoom  # right eye, left eye, nose, right / left mouth corner (image's)
            out.append(Detection(np.array([x, y, x + fw, y + fh], np.float32), float(f[14]), points.astype(np.float32)))
        out.sort(key=lambda d: -d.score)
        return out

    def detect(self, frames: Sequence[np.ndarray], batch: bool | None = None,
               min_face_size: int | None = None) -> list[list[Detection]]:
        """frames: HxWx3 uint8 RGB arrays -> one list of detections per frame (sorted by score). batch and
        min_face_size: accepted for the MTCNN detector's signature, unused (YuNet runs frame by frame)."""
        return [[d for d in self._scan(f, self.zoom_of(f)) if d.score >= self.min_score] for f in frames]

    def detect_regions(self, frame: np.ndarray, boxes: np.ndarray, expand: float = 2.0, min_side: int = 48,
                       nms_iou: float = 0.4, **_: Any) -> list[Detection]:
        """YuNet on square regions of one frame around `boxes` (N, 4), e.g. the tracks' predicted boxes.

        The regions are those of the MTCNN region detector (:func:`jasr_video.regions.square_regions`: at least
        ``expand`` x the box, on a fixed size ladder, inside the frame); each is zoomed so that its box is at
        least ``region_face_px`` px (and never less than the full scan's enlargement), and YuNet runs on it.
        When the zoomed regions add up to ``REGIONS_MAX_SHARE`` of the pixels of a full scan or more (a crowd),
        one full scan runs instead. A face cut by a region edge that is not a frame edge is left to the region
        it lies in. Duplicates from overlapping regions are removed by NMS; sorted by score.
        """
        from .regions import in_frame, merged, square_regions

        h, w = frame.shape[:2]
        full = self.zoom_of(frame)
        regions = [(rx, ry, side, max(full, self.region_face_px / box))
                   for rx, ry, side, box in square_regions(boxes, h, w, expand, min_side)]
        if sum((side * zoom) ** 2 for _, _, side, zoom in regions) >= REGIONS_MAX_SHARE * h * w * full ** 2:
            return self.detect([frame])[0]  # many faces (a crowd): one full scan costs less than their regions
        found = [d for rx, ry, side, zoom in regions
                 for d in in_frame(self._scan(frame[ry:ry + side, rx:rx + side], zoom), rx, ry, side, w, h)]
        return merged(found, self.min_score, nms_iou)

    @classmethod
    def from_config(cls, config: Any, device: Any) -> "YuNetDetector":
        """The detector a :class:`~jasr_video.pipeline.PipelineConfig` asks for (YuNet runs on the CPU on every
        device)."""
        return cls(min_score=config.scores()[0], upscale=config.detector_upscale)
