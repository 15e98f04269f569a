"""Tinybench ground truth of several detectors, their disagreements checked by eye.

    python -m jasr_video.tools.tinybench_truth --labels docs/tinybench-truth-labels.json --out docs/tinybench-truth.json

On the frames tinybench samples (same ``--samples`` and ``--run``), at full resolution (the 360p clip enlarged x2
first, as tinybench does), two detectors of different training look for faces: facenet's MTCNN (probability >=
``--mtcnn-score``; photos of single faces) and YuNet (score >= ``--yunet-score``; WIDER FACE crowds). A face both
find (Hungarian pairing, IoU >= 0.5) is a face, its box the mean of the two. A box only one of them finds is a
disagreement, decided by eye: ``--labels FILE`` gives each one's label (``face``, ``no``: not a face, ``unsure``:
counted neither way), matched by frame and box (IoU >= 0.9). Boxes either detector finds at a lower score (MTCNN
0.5, YuNet ``--unsure-score``) are unsure too. Disagreements without a label are written to ``--pending FILE``, in
the order of the PNG montages ``--crops DIR`` cuts from the frames (3x the box, the box outlined), to be labelled
and added to the labels file. The result (``--out``) is what ``python -m jasr_video.tinybench --truth FILE`` reads.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..detect import FaceDetector
from ..track import iou_matrix
from ..yunet import YuNetDetector
from .tinybench import CLIPS, DATA, label_boxes, match_boxes, read_runs, save_montage

LABELS = ("face", "no", "unsure")


def detections(detector: Any, image: np.ndarray, upsample: int) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (N, 4, in `image` pixels) and scores of `detector` on `image` enlarged `upsample` times."""
    import cv2

    big = image if upsample == 1 else cv2.resize(image, None, fx=upsample, fy=upsample, interpolation=cv2.INTER_CUBIC)
    dets = detector.detect([big])[0]
    return (np.array([d.box for d in dets], np.float64).reshape(-1, 4) / upsample, np.array([d.score for d in dets]))


def frame_truth(mtcnn: tuple[np.ndarray, np.ndarray], yunet: tuple[np.ndarray, np.ndarray], args: argparse.Namespace,
                labelled: list[dict[str, Any]]) -> tuple[list, list, list[dict[str, Any]]]:
    """(faces, unsure boxes, disagreements) of one frame from the two detectors' boxes and scores and the
    frame's labels; a disagreement is {"box", "source", "score", "label"} ("?" when not labelled)."""
    (mb, ms), (yb, ys) = mtcnn, yunet
    m_sure, y_sure = mb[ms >= args.mtcnn_score], yb[ys >= args.yunet_score]
    m_sc, y_sc = ms[ms >= args.mtcnn_score], ys[ys >= args.yunet_score]
    pairs = match_boxes(m_sure, y_sure, 0.5)
    faces = [((m_sure[i] + y_sure[j]) / 2).tolist() for i, j in pairs]
    unsure = [b.tolist() for b in mb[(ms < args.mtcnn_score) & (ms >= 0.5)]] + \
             [b.tolist() for b in yb[(ys < args.yunet_score) & (ys >= args.unsure_score)]]
    disputed = [(m_sure[i], "mtcnn", m_sc[i]) for i in sorted(set(range(len(m_sure))) - {i for i, _ in pairs})] + \
               [(y_sure[j], "yunet", y_sc[j]) for j in sorted(set(range(len(y_sure))) - {j for _, j in pairs})]
    labels = label_boxes(np.array([b for b, _, _ in disputed]).reshape(-1, 4), labelled) if disputed else []
    checked = []
    for (box, source, score), label in zip(disputed, labels):
        label = label if label in LABELS else "?"
        checked.append({"box": np.round(box, 2).tolist(), "source": source, "score": round(float(score), 3), "label": label})
        if label == "face":
            faces.append(box.tolist())
        elif label in ("unsure", "?"):
            unsure.append(box.tolist())
    if len(unsure) and len(faces):  # an unsure box over a face adds nothing
        unsure = [u for u, m in zip(unsure, iou_matrix(np.array(unsure), np.array(faces)).max(axis=1)) if m < 0.5]
    return faces, unsure, checked


def build(args: argparse.Namespace) -> dict[str, Any]:
    mtcnn = FaceDetector(12, (0.6, 0.7, 0.7), 0.709, "cpu", 0.0)
    yunet = YuNetDetector(min_score=args.unsure_score)
    labels: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for e in (json.loads(Path(args.labels).read_text())["labels"] if args.labels and Path(args.labels).is_file() else ()):
        labels.setdefault((e["clip"], int(e["frame"])), []).append(e)
    frames, pending = [], []
    for clip, (_, upsample, spans) in CLIPS.items():
        path = Path(args.data) / clip
        if not path.is_file():
            print(f"skipping {clip}: not found in {args.data}", file=sys.stderr)
            continue
        numbers, runs = read_runs(path, args.samples, args.run, spans)
        for number, run in zip(numbers, runs):
            image = run[-1]
            faces, unsure, checked = frame_truth(detections(mtcnn, image, upsample), detections(yunet, image, upsample),
                                                 args, labels.get((clip, number), []))
            frames.append({"clip": clip, "frame": number, "faces": np.round(faces, 2).tolist(),
                           "unsure": np.round(unsure, 2).tolist(), "checked": checked})
            todo = [c for c in checked if c["label"] == "?"]
            if todo and args.crops:
                Path(args.crops).mkdir(parents=True, exist_ok=True)
                montage = f"{Path(clip).stem}_{number}.png"
                save_montage(Path(args.crops) / montage, image, np.array([c["box"] for c in todo]), tile=128,
                             columns=8, context=3.0)
                pending += [{"clip": clip, "frame": number, "montage": montage, "tile": k, **c} for k, c in enumerate(todo)]
            print(f"{clip} frame {number}: {len(faces)} faces, {len(checked)} disagreements, {len(todo)} unlabelled",
                  file=sys.stderr, flush=True)
    return {"settings": {k: v for k, v in vars(args).items() if k not in ("out", "pending", "crops", "data")},
            "frames": frames, "pending": pending}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jasr_video.tools.tinybench_truth", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(DATA), help="folder of the clips (default: ../shared/data/video)")
    p.add_argument("--samples", type=int, default=4, help="frames sampled per clip, as tinybench's (default: 4)")
    p.add_argument("--run", type=int, default=5, help="as tinybench's --run (default: 5)")
    p.add_argument("--mtcnn-score", type=float, default=0.95, help="MTCNN probability of a face (default: 0.95)")
    p.add_argument("--yunet-score", type=float, default=0.7, help="YuNet score of a face (default: 0.7)")
    p.add_argument("--unsure-score", type=float, default=0.4, help="YuNet score of an unsure box (default: 0.4)")
    p.add_argument("--labels", metavar="FILE", help="JSON {\"labels\": [{clip, frame, box, label}]}: the disagreements "
                   "labelled by eye (face, no or unsure)")
    p.add_argument("--crops", metavar="DIR", help="write the unlabelled disagreements as PNG montages, one per frame")
    p.add_argument("--pending", metavar="FILE", help="write the unlabelled disagreements, in montage order, as JSON")
    p.add_argument("--out", metavar="FILE", help="write the ground truth (tinybench --truth FILE)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    args = p.parse_args(argv)
    if not Path(args.data).is_dir():
        print(f"tinybench_truth: error: data folder not found: {args.data} (give --data DIR)", file=sys.stderr)
        return 2
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    result = build(args)
    if args.pending:
        Path(args.pending).write_text(json.dumps({"labels": result["pending"]}, indent=1))
    if args.out:
        if result["pending"]:
            print(f"tinybench_truth: {len(result['pending'])} disagreements have no label: they count as unsure "
                  f"(label them with --crops / --pending)", file=sys.stderr)
        Path(args.out).write_text(json.dumps({k: v for k, v in result.items() if k != "pending"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
