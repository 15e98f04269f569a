"""YuNet's two CPU runtimes on the same frames, in one process: OpenCV's ``cv2.FaceDetectorYN`` (network and
decoding, what :class:`jasr_video.yunet.YuNetDetector` uses) and ONNX Runtime (the network alone, no decoding;
needs the ``onnx`` extra).

    python -m jasr_video.tools.yunet_runtime --threads 2
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

CLIP = Path(__file__).resolve().parents[3] / "shared/data/video/royal_opera_house_1080p25.mp4"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jasr_video.tools.yunet_runtime", description=__doc__.split("\n\n")[0])
    p.add_argument("--input", default=str(CLIP), help="video file (default: the shared 1080p opera clip)")
    p.add_argument("--frames", type=int, default=4, help="frames timed, 15 apart (default: 4)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads of each runtime (default: 2)")
    args = p.parse_args(argv)
    import av
    import cv2

    from ..yunet import yunet_weights_path

    if not Path(args.input).is_file():
        print(f"yunet_runtime: error: video not found: {args.input} (give --input FILE)", file=sys.stderr)
        return 2
    with av.open(args.input) as c:
        frames = [f.to_ndarray(format="bgr24") for _, f in zip(range(15 * args.frames), c.decode(video=0))][::15]
    h, w = frames[0].shape[:2]
    model = str(yunet_weights_path())
    cv2.setNumThreads(args.threads)
    net = cv2.FaceDetectorYN.create(model, "", (w, h), 0.6, 0.3, 5000)
    net.detect(frames[0])
    t = time.perf_counter()
    for f in frames:
        net.detect(f)
    print(f"cv2.FaceDetectorYN {w}x{h}: {1000 * (time.perf_counter() - t) / len(frames):.0f} ms a frame (network + decoding)")
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime not installed (pip install jasr-video[onnx]): ONNX Runtime not timed")
        return 0
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    ph, pw = -(-h // 32) * 32, -(-w // 32) * 32  # the graph's strides need multiples of 32

    def feed(f: np.ndarray) -> dict[str, np.ndarray]:
        padded = np.zeros((ph, pw, 3), np.float32)
        padded[:h, :w] = f
        return {session.get_inputs()[0].name: padded.transpose(2, 0, 1)[None]}

    session.run(None, feed(frames[0]))
    t = time.perf_counter()
    for f in frames:
        session.run(None, feed(f))
    print(f"onnxruntime {ort.__version__} {w}x{h}: {1000 * (time.perf_counter() - t) / len(frames):.0f} ms a frame "
          f"(network only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
