"""Where MTCNN spends its time: ms per frame at several frame batch sizes, a cProfile of one batch size, and
(``--parts``, CPU) the pieces the fast path changed, each timed against what it replaced.

    python -m jasr_video.tools.profile_detect --device cuda --batches 1 4 16          # GPU: frames per MTCNN call
    python -m jasr_video.tools.profile_detect --threads 2 --batches 1 --reference     # CPU: facenet's own code
    python -m jasr_video.tools.profile_detect --threads 2 --batches 1 --parts         # CPU: pyramid, P-net strips, NMS, R-net chunks
    python -m jasr_video.tools.profile_detect --threads 2 --batches 1 --regions       # region frames (full_scan_every)

A profiling aid for docs/benchmarks.md (not a test). On CUDA, time spent waiting for the GPU shows up in
the calls that synchronise (.cpu(), nonzero, NMS).
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from typing import Callable

import cv2
import numpy as np
import torch

from .. import facenet_compat, mtcnn
from ..detect import FaceDetector
from ..source import open_source


def best_ms(fn: Callable[[], object], repeat: int = 5) -> float:
    """Fastest of `repeat` timed calls after one warm-up, in ms (the least disturbed by other load)."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def parts(frame: np.ndarray, detector: FaceDetector) -> None:
    """The CPU pieces of the fast path, each against what it replaced, on one frame."""
    h, w = frame.shape[:2]
    sizes = [(int(w * s + 1), int(h * s + 1)) for s in mtcnn.pyramid_scales(h, w, 12, detector.mtcnn.factor)]
    image = frame.astype(np.float32)

    def direct() -> None:
        for size in sizes:
            cv2.resize(image, size, interpolation=cv2.INTER_AREA)

    def level_from_level() -> None:
        level = image
        for size in sizes:
            level = cv2.resize(level, size, interpolation=cv2.INTER_AREA)

    pyramid = torch.from_numpy(image).permute(2, 0, 1)[None]
    print(f"pyramid, {len(sizes)} levels: torch area (facenet) {best_ms(lambda: [torch.nn.functional.interpolate(pyramid, size=(s[1], s[0]), mode='area') for s in sizes]):.1f} ms, "
          f"OpenCV area from the frame {best_ms(direct):.1f} ms, OpenCV level from level {best_ms(level_from_level):.1f} ms")
    level = torch.from_numpy(cv2.resize(image, sizes[0], interpolation=cv2.INTER_AREA)).permute(2, 0, 1)[None]
    level = mtcnn.net_input(level).contiguous(memory_format=torch.channels_last)
    pnet = detector.mtcnn.pnet
    with torch.inference_mode():
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
                whole = best_ms(lambda: pnet(level))
                strips = best_ms(lambda: mtcnn.pnet_in_strips(pnet, level, mtcnn.STRIP_PIXELS))
            print(f"P-net on the {level.shape[3]}x{level.shape[2]} level, {name}: one pass {whole:.1f} ms, "
                  f"strips of {mtcnn.STRIP_PIXELS} px {strips:.1f} ms")


def numpy_nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """The stand-in NMS before OpenCV's: greedy, one NumPy pass per kept box (for timing against facenet_compat.nms)."""
    b, order = boxes.double().numpy(), np.argsort(-scores.double().numpy(), kind="stable")
    areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        w = np.maximum(np.minimum(b[i, 2], b[rest, 2]) - np.maximum(b[i, 0], b[rest, 0]), 0.0)
        h = np.maximum(np.minimum(b[i, 3], b[rest, 3]) - np.maximum(b[i, 1], b[rest, 1]), 0.0)
        order = rest[~(w * h / (areas[i] + areas[rest] - w * h) > threshold)]
    return torch.as_tensor(keep)


def nms_and_refine_parts(frame: np.ndarray, detector: FaceDetector) -> None:
    """NMS (OpenCV vs the NumPy loop) on P-net's raw candidates of the finest level, and R-net over one
    frame's R-net crops in facenet's chunks of 512 vs chunks of 256 (tried: no gain, not kept)."""
    from facenet_pytorch.models.utils import detect_face as fd

    m = detector.mtcnn
    h, w = frame.shape[:2]
    image = frame.astype(np.float32)
    level = torch.from_numpy(cv2.resize(image, (w + 1, h + 1), interpolation=cv2.INTER_AREA)).permute(2, 0, 1)[None]
    with torch.inference_mode():
        reg, probs = mtcnn.pnet_in_strips(m.pnet, mtcnn.net_input(level.contiguous()), mtcnn.STRIP_PIXELS)
        raw, _ = fd.generateBoundingBox(reg, probs[:, 1], 1.0, m.thresholds[0])
        same = torch.equal(facenet_compat.nms(raw[:, :4], raw[:, 4], 0.5), numpy_nms(raw[:, :4], raw[:, 4], 0.5))
        print(f"NMS on {len(raw)} raw P-net boxes (IoU 0.5): NumPy loop {best_ms(lambda: numpy_nms(raw[:, :4], raw[:, 4], 0.5)):.1f} ms, "
              f"OpenCV {best_ms(lambda: facenet_compat.nms(raw[:, :4], raw[:, 4], 0.5)):.1f} ms, same kept boxes: {same}")
        images = torch.from_numpy(image).permute(2, 0, 1)[None]
        scales = mtcnn.pyramid_scales(h, w, 12, m.factor)
        boxes, inds = mtcnn.pnet_stage(images, [image], scales, m.pnet, m.thresholds[0], detector.device, torch.float32)
        crops, _ = mtcnn.face_crops(images, inds.numpy(), boxes, 24, w, h, [image])
        crops = mtcnn.net_input(crops).contiguous(memory_format=torch.channels_last)
        step = 256
        print(f"R-net on the frame's {len(crops)} crops: chunks of 512 (facenet) {best_ms(lambda: fd.fixed_batch_process(crops, m.rnet)):.1f} ms, "
              f"chunks of {step} {best_ms(lambda: [m.rnet(crops[i:i + step]) for i in range(0, len(crops), step)]):.1f} ms")


def regions(frames: list[np.ndarray], detector: FaceDetector) -> None:
    """Region frames: detect_regions on frames 1..10 around the faces found on frame 0 (full_scan_every)."""
    boxes = np.array([d.box for d in detector.detect(frames[:1])[0]]).reshape(-1, 4)
    rest = frames[1:11]
    detector.detect_regions(rest[0], boxes)  # warm-up
    times, found = [], 0
    for frame in rest:
        start = time.perf_counter()
        found += len(detector.detect_regions(frame, boxes))
        times.append(1000 * (time.perf_counter() - start))
    print(f"region frames around {len(boxes)} faces: mean {np.mean(times):.1f} ms, best {min(times):.1f} ms over "
          f"{len(rest)} frames ({found} faces found)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clip", default="../shared/data/video/royal_opera_house_1080p25.mp4")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--precision", default="fp32", help="P-net precision (fast path)")
    ap.add_argument("--reference", action="store_true", help="profile facenet-pytorch's own detect_face instead")
    ap.add_argument("--parts", action="store_true", help="CPU: time the fast path's pieces against what they replaced")
    ap.add_argument("--regions", action="store_true", help="time region frames (detect_regions) around frame 0's faces")
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--profile-batch", type=int, default=None, help="default: the first of --batches")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with open_source(args.clip, loop=True) as src:
        frames = [f.image for _, f in zip(range(args.frames), src)]
    detector = FaceDetector(12, device=args.device, min_score=0.9, precision=args.precision, fast=not args.reference)

    def run(batch: int) -> float:
        sync = torch.cuda.synchronize if detector.device.type == "cuda" else (lambda: None)
        detector.detect(frames[:batch])  # warm-up at this batch size
        sync()
        start = time.perf_counter()
        for k in range(0, len(frames) - batch + 1, batch):
            detector.detect(frames[k:k + batch])
        sync()
        return (time.perf_counter() - start) / (len(frames) // batch * batch)

    for batch in args.batches:
        print(f"batch {batch:3d}: {1000 * run(batch):7.1f} ms per frame", flush=True)
    if args.parts:
        parts(frames[0], detector)
        nms_and_refine_parts(frames[0], detector)
    if args.regions:
        regions(frames, detector)
    profiler = cProfile.Profile()
    profiler.enable()
    run(args.profile_batch or args.batches[0])
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(16)


if __name__ == "__main__":
    main()
