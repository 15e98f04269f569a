"""Tiny-face benchmark: recall per face size and false positives per frame, on real frames made small.

    python -m jasr_video.tinybench --threads 2 --json tiny.json

Ground truth (``--truth FILE``, e.g. ``docs/tinybench-truth.json``): the faces two detectors of different training,
facenet's MTCNN and YuNet, both find at full resolution, and those only one finds that were labelled faces by eye
(:mod:`jasr_video.tools.tinybench_truth`). Without ``--truth``: faces MTCNN finds at full resolution (probability >= ``--gt-score``; the 360p traffic clip
upsampled x2 first, so its faces of ~10-25 px are searched at twice their size) on a few real frames of each
clip in ``../shared/data/video``. The same frames are then downscaled x2, x3, x4 (the 360p clip: x1, x2) with
OpenCV's area filter, and again after an H.264 round trip at a CCTV-like bitrate (PyAV libx264, ``--bpp`` bits
per pixel; each sampled frame is the last of a run of ``--run`` consecutive frames encoded together, so it is a
predicted frame as in a camera stream). Every detector in ``--detectors`` runs on the same small frames.

Scoring (:func:`score_frame`): detections and ground-truth faces are paired by Hungarian matching on IoU
(>= ``--iou``). Recall is counted per ground-truth face size at the tested scale (longer box side, buckets
:data:`BUCKETS`). A detection that pairs with no ground-truth face and overlaps (IoU >= ``--iou``) no face the
full-resolution detector found at a lower probability (>= 0.5, "ignore" boxes) is a false positive. The
ground truth misses some faces a person can see (backs of heads, profiles, blurred faces), so some "false
positives" are real faces: read the figure as an upper bound.

Detectors (``--detectors``): ``facenet`` (facenet-pytorch's own ``detect_face``, min face 12 px, min score 0.9:
the baseline), ``before`` (the fast path with the same settings: the pipeline's detector before tiny-face
support), ``default`` (the detector :class:`~jasr_video.pipeline.PipelineConfig` builds), and variants of it written
``fast:min=10,score=0.7,t=0.5/0.6/0.6,det=mtcnn,weights=W`` (min face px, min score, P-/R-/O-net thresholds,
detector name in ``jasr_video.detect.DETECTORS``, MTCNN weights: a file or a name in ``models/detector``; unset:
the default; ``yunet:score=S,up=U``: YuNet with min score S on the frame enlarged U times;
``track:det=NAME,weights=W,start=P,score=S,up=U`` too, start being the tracker's new-track score; ``conf=C`` on
``default``, ``fast`` and ``track`` rows keeps only the boxes whose mean JASRNet landmark confidence, the face cropped
and routed as the pipeline does, is >= C). ``track``
runs the pipeline's detection and tracking (:func:`follow`: full scan on the first frame of each run, regions
around the tracks after, as the CPU default) over the run of frames before each sample and scores the boxes it
reports on the sample. ``--fp-crops`` writes every false positive of >= 24 px (``--fp-crops-min-px``), cut from the
full-size frame with its surroundings (3x the box, the box outlined), for checking by eye whether it is a face the
ground truth misses (their boxes are in ``--json``'s ``fp_crops``); ``--fp-labels FILE`` then counts each row's false
positives by the label given by eye to each box, of every size and of >= 24 px.

Length: one benchmark (frames, ground truth, scoring, id metrics, tables) in one file, a tool outside the library.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..detect import Detection, FaceDetector, make_detector
from ..track import iou_matrix

DATA = Path(__file__).resolve().parents[3] / "shared/data/video"
# clip -> (scales tested, upsampling for the ground truth, frame spans sampled: the traffic clip's wide shots)
CLIPS: dict[str, tuple[tuple[int, ...], int, tuple[tuple[int, int], ...] | None]] = {
    "stadium_crowd_720p25.mp4": ((2, 3, 4), 1, None),
    "royal_opera_house_1080p25.mp4": ((2, 3, 4), 1, None),
    "traffic_cctv_riders_360p30.mp4": ((1, 2), 2, ((110, 400), (710, 880))),
}
LARGE_FP_PX = 24  # false positives from this size up are counted apart (FP >= 24 px) and, with --fp-crops, cut out
FP_CONTEXT = 3.0  # --fp-crops tiles: 3x the box, outlined, so what is around it can be seen
FRAME_FIELDS = ("clip", "scale", "codec", "sample")  # what names a sampled frame: --fp-labels, --json's fp_crops
BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("<12", 0.0, 12.0), ("12-16", 12.0, 16.0), ("16-24", 16.0, 24.0), ("24-32", 24.0, 32.0), (">=32", 32.0, np.inf))


# ---------------------------------------------------------------------------------------------
# scoring


def box_size(boxes: np.ndarray) -> np.ndarray:
    """Longer side of each box (N, 4)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def bucket_of(size: float) -> str:
    """The size bucket (:data:`BUCKETS`) of a face of `size` px."""
    for name, lo, hi in BUCKETS:
        if lo <= size < hi:
            return name
    return BUCKETS[-1][0]


def match_boxes(gt: np.ndarray, det: np.ndarray, iou_threshold: float = 0.5) -> list[tuple[int, int]]:
    """One-to-one pairs (gt index, detection index), each with IoU >= threshold, of maximal total IoU among the
    pairs above the threshold (Hungarian; pairs below it count as 0, so they never displace a valid pair)."""
    gt, det = np.asarray(gt, np.float64).reshape(-1, 4), np.asarray(det, np.float64).reshape(-1, 4)
    if not len(gt) or not len(det):
        return []
    iou = iou_matrix(gt, det)
    iou[iou < iou_threshold] = 0.0
    rows, cols = linear_sum_assignment(-iou)
    return sorted((int(r), int(c)) for r, c in zip(rows, cols) if iou[r, c] >= iou_threshold)


@dataclass
class FrameScore:
    """One frame scored: size and found-or-not of every ground-truth face, sizes of the false positives."""

    gt_sizes: np.ndarray
    found: np.ndarray
    fp_sizes: np.ndarray
    fp_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))  # the false positives (N, 4)


def score_frame(gt: np.ndarray, det: np.ndarray, ignore: np.ndarray | None = None,
                iou_threshold: float = 0.5) -> FrameScore:
    """Score detections `det` (N, 4) against ground truth `gt` (M, 4) of one frame.

    A ground-truth face is found when Hungarian matching on IoU pairs it with a detection (IoU >= threshold).
    An unpaired detection is a false positive unless it overlaps a box of `ignore` (faces the ground-truth
    detector was unsure of) with IoU >= threshold.
    """
    gt, det = np.asarray(gt, np.float64).reshape(-1, 4), np.asarray(det, np.float64).reshape(-1, 4)
    pairs = match_boxes(gt, det, iou_threshold)
    found = np.zeros(len(gt), bool)
    found[[g for g, _ in pairs]] = True
    paired = {d for _, d in pairs}
    rest = np.array([d for d in range(len(det)) if d not in paired], np.int64)
    if len(rest) and ignore is not None and len(np.asarray(ignore).reshape(-1, 4)):
        overlap = iou_matrix(det[rest], np.asarray(ignore, np.float64).reshape(-1, 4)).max(axis=1)
        rest = rest[overlap < iou_threshold]
    return FrameScore(box_size(gt), found, box_size(det[rest]) if len(rest) else np.zeros(0), det[rest].reshape(-1, 4))


def label_boxes(boxes: np.ndarray, labelled: Sequence[dict[str, Any]], iou_threshold: float = 0.9) -> list[str]:
    """Each box's label from `labelled` ({"box": [x0, y0, x1, y1], "label": ...} of the same frame): the label
    of the labelled box it overlaps with IoU >= threshold, else "unlabelled"."""
    if not len(labelled):
        return ["unlabelled"] * len(boxes)
    iou = iou_matrix(np.asarray(boxes, np.float64).reshape(-1, 4), np.array([e["box"] for e in labelled], np.float64))
    return [labelled[int(j)]["label"] if row[j] >= iou_threshold else "unlabelled"
            for row, j in zip(iou, iou.argmax(axis=1))]


@dataclass
class Tally:
    """Frame scores added up: recall per size bucket, false positives per frame."""

    frames: int = 0
    total: dict[str, int] = field(default_factory=lambda: {b[0]: 0 for b in BUCKETS})
    hits: dict[str, int] = field(default_factory=lambda: {b[0]: 0 for b in BUCKETS})
    fp: int = 0
    fp_large: int = 0  # false positives of >= 24 px
    seconds: float = 0.0
    fp_labels: Counter[str] = field(default_factory=Counter)  # false positives by their --fp-labels label
    fp_large_labels: Counter[str] = field(default_factory=Counter)  # those of >= 24 px by label

    def add(self, score: FrameScore, fp_labels: Sequence[str] = ()) -> None:
        self.frames += 1
        self.fp_labels.update(fp_labels)  # one label per false positive, in score.fp_boxes' order
        self.fp_large_labels.update(label for label, size in zip(fp_labels, score.fp_sizes) if size >= LARGE_FP_PX)
        for size, ok in zip(score.gt_sizes, score.found):
            self.total[bucket_of(size)] += 1
            self.hits[bucket_of(size)] += int(ok)
        self.fp += len(score.fp_sizes)
        self.fp_large += int((score.fp_sizes >= LARGE_FP_PX).sum())

    def recall(self) -> dict[str, float | None]:
        return {b: (self.hits[b] / self.total[b] if self.total[b] else None) for b in self.total}

    def summary(self) -> dict[str, Any]:
        return {"frames": self.frames, "gt_faces": dict(self.total), "found": dict(self.hits), "recall": self.recall(),
                "fp_per_frame": self.fp / max(self.frames, 1), "fp_large_per_frame": self.fp_large / max(self.frames, 1),
                "ms_per_frame": 1000 * self.seconds / max(self.frames, 1), "fp_labels": dict(self.fp_labels),
                "fp_large_labels": dict(self.fp_large_labels)}


# ---------------------------------------------------------------------------------------------
# frames


def read_runs(path: Path, samples: int, run: int,
              spans: Sequence[tuple[int, int]] | None = None) -> tuple[list[int], list[list[np.ndarray]]]:
    """`samples` runs of `run` consecutive RGB frames, the runs' last frames evenly spread over the clip (over
    the frame `spans` when given, e.g. the shots a clip's faces are small in). Returns the last frames'
    numbers and the runs."""
    import av

    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    pool = np.concatenate([np.arange(a, min(b, len(frames))) for a, b in spans]) if spans else \
        np.arange(run - 1 + len(frames) // 10, len(frames) * 95 // 100)
    pool = pool[pool >= run - 1]
    last = [int(pool[k]) for k in np.linspace(0, len(pool) - 1, samples).round().astype(int)]
    return last, [frames[i - run + 1:i + 1] for i in last]


def downscale(image: np.ndarray, scale: int) -> np.ndarray:
    """`image` reduced `scale` times (OpenCV area filter); scale 1: unchanged."""
    import cv2

    if scale == 1:
        return image
    h, w = image.shape[:2]
    return cv2.resize(image, (round(w / scale), round(h / scale)), interpolation=cv2.INTER_AREA)


def h264_roundtrip(runs: Sequence[Sequence[np.ndarray]], bpp: float, fps: int = 25) -> list[list[np.ndarray]]:
    """The runs encoded one after another as one H.264 stream (libx264, constant average bitrate of `bpp` bits per
    pixel, yuv420p) and decoded again."""
    import io

    import av

    h, w = runs[0][0].shape[:2]
    w2, h2 = w // 2 * 2, h // 2 * 2
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w2, h2, "yuv420p"
        stream.bit_rate = int(bpp * w2 * h2 * fps)
        stream.options = {"preset": "veryfast"}
        for frames in runs:
            for f in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f[:h2, :w2]), format="rgb24")):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    buf.seek(0)
    with av.open(buf) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    n = len(runs[0])
    return [decoded[k * n:(k + 1) * n] for k in range(len(runs))]


def ground_truth(detector: FaceDetector, image: np.ndarray, upsample: int, gt_score: float,
                 ignore_score: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(faces, unsure faces) found at full resolution (upsampled `upsample` x first), in `image` pixels."""
    import cv2

    big = image if upsample == 1 else cv2.resize(image, None, fx=upsample, fy=upsample, interpolation=cv2.INTER_CUBIC)
    dets = detector.detect([big])[0]
    boxes = np.array([d.box for d in dets], np.float64).reshape(-1, 4) / upsample
    scores = np.array([d.score for d in dets])
    return boxes[scores >= gt_score], boxes[(scores < gt_score) & (scores >= ignore_score)]


# ---------------------------------------------------------------------------------------------
# detectors


def follow(frames: Sequence[np.ndarray], detector: FaceDetector, tracker: Any, full_scan_every: int) -> list[Any]:
    """The pipeline's detection and tracking (:class:`~jasr_video.pipeline.Pipeline` without the model) over
    `frames`: full-frame MTCNN every `full_scan_every`-th frame from the first, regions around the tracks between.
    Returns the tracker's faces on the last frame."""
    tracked: list[Any] = []
    for k, image in enumerate(frames):
        if k % max(full_scan_every, 1) == 0:
            dets = detector.detect([image])[0]
        else:
            dets = detector.detect_regions(image, tracker.predicted_boxes())
        boxes = np.array([d.box for d in dets], np.float32).reshape(-1, 4)
        tracked = tracker.update(boxes, [d.score for d in dets])
    return tracked


DetectFn = Callable[[list[np.ndarray]], np.ndarray]  # a run of frames -> boxes (N, 4) on its last frame


def detector(config: Any, opts: dict[str, str]) -> FaceDetector:
    """The detector `config` (a PipelineConfig) builds, with the MTCNN weights ``opts["weights"]`` if given."""
    import torch

    from ..detect import load_refine_weights

    det = make_detector(config, torch.device("cpu"))
    if "weights" in opts:
        load_refine_weights(det.mtcnn, opts["weights"])
    return det


def landmark_confidence(enhancer: Any, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Mean JASRNet landmark confidence (0-1) of each box's face, cropped around the box and routed as the
    pipeline does (landmarks-only pass)."""
    from ..route import RoutedCrops, cut_face

    if not len(boxes):
        return np.zeros(0)
    _, routes, crops = zip(*(cut_face(image, b, enhancer.crop_margin, enhancer.route) for b in boxes))
    return enhancer(RoutedCrops.from_crops(crops, routes), sr=False).confidence.mean(axis=1)


def gated(fn: DetectFn, threshold: float, enhancer: Callable[[], Any]) -> DetectFn:
    """`fn`'s boxes whose mean landmark confidence (:func:`landmark_confidence`) is >= threshold."""
    def run(frames: Sequence[np.ndarray]) -> np.ndarray:
        boxes = fn(frames)
        return boxes[landmark_confidence(enhancer(), frames[-1], boxes) >= threshold]
    return run


def make_detectors(names: Sequence[str]) -> dict[str, DetectFn]:
    """The detectors to compare, each a function of a run of frames (only the last is used by frame detectors)."""
    from ..pipeline import PipelineConfig, auto_full_scan_every
    from ..track import make_tracker

    import torch

    cfg = PipelineConfig(device="cpu")

    @functools.cache
    def enhancer() -> Any:  # the pipeline's JASRNet, made once, for rows with conf=C
        from ..route import RoutedEnhancer

        return RoutedEnhancer.from_config(cfg)

    def frame_detector(det: FaceDetector) -> DetectFn:
        return lambda frames: np.array([d.box for d in det.detect([frames[-1]])[0]], np.float32).reshape(-1, 4)

    out: dict[str, DetectFn] = {}
    for name in names:
        kind, _, spec = name.partition(":")
        opts = dict(kv.split("=", 1) for kv in spec.split(",") if kv)  # min=10,score=0.7,t=0.5/0.6/0.6,det=mtcnn
        known = {"default": {"conf"}, "fast": {"min", "score", "t", "det", "weights", "conf"}, "yunet": {"score", "up", "conf"},
                 "track": {"det", "weights", "start", "conf", "score", "up"}}.get(kind, set())
        if set(opts) - known:
            raise ValueError(f"{name!r}: unknown option {', '.join(sorted(set(opts) - known))} (known: "
                             f"{', '.join(sorted(known)) or 'none'})")
        config = replace(cfg, detector=opts["det"]) if "det" in opts else cfg
        if kind in ("track", "yunet"):  # score=S: the detector's min score; up=U: YuNet's upscaling of full scans
            config = replace(config, min_score=float(opts.get("score", config.scores()[0])),
                             detector_upscale=float(opts.get("up", config.detector_upscale)))
        if kind == "facenet":
            out[name] = frame_detector(FaceDetector(12, (0.6, 0.7, 0.7), 0.709, "cpu", 0.9, fast=False))
        elif kind == "before":
            out[name] = frame_detector(FaceDetector(12, (0.6, 0.7, 0.7), 0.709, "cpu", 0.9))
        elif kind in ("default", "fast"):  # fast:...: the pipeline default with these settings changed
            if kind == "fast":
                config = replace(
                    config, min_face_size=int(opts.get("min", cfg.min_face_size)), min_score=float(opts.get("score", config.scores()[0])),
                    thresholds=tuple(float(t) for t in opts["t"].split("/")) if "t" in opts else cfg.thresholds)
            out[name] = frame_detector(detector(config, opts))
        elif kind == "yunet":  # yunet:score=S,up=U: YuNet on the whole frame (enlarged U times)
            out[name] = frame_detector(make_detector(replace(config, detector="yunet"), torch.device("cpu")))
        elif kind == "track":  # track:det=NAME,weights=W,start=P (start: the tracker's new-track score)
            det = detector(config, opts)
            tracking = replace(cfg, new_track_score=float(opts.get("start", config.scores()[1])))
            every = auto_full_scan_every(cfg, torch.device("cpu"))

            def run_track(frames: list[np.ndarray], det: FaceDetector = det, every: int = every,
                          tracking: Any = tracking) -> np.ndarray:
                faces = follow(frames, det, make_tracker(tracking), every)  # the pipeline's tracker and settings
                return np.array([f.box for f in faces], np.float32).reshape(-1, 4)

            out[name] = run_track
        else:
            raise ValueError(f"unknown detector {name!r}")
        if "conf" in opts:  # conf=C: keep the boxes whose mean landmark confidence is >= C
            out[name] = gated(out[name], float(opts["conf"]), enhancer)
    return out


# ---------------------------------------------------------------------------------------------
# identities


def track_clip(frames: Sequence[np.ndarray], config: Any, full_scan_every: int) -> list[dict[int, np.ndarray]]:
    """The pipeline's detection and tracking with `config` (a PipelineConfig) over `frames`: per frame, the
    reported boxes by track id."""
    from ..track import make_tracker

    import torch

    det = make_detector(config, torch.device("cpu"))
    tracker = make_tracker(config)
    out = []
    for k, image in enumerate(frames):
        if k % max(full_scan_every, 1) == 0:
            dets = det.detect([image])[0]
        else:
            dets = det.detect_regions(image, tracker.predicted_boxes())
        faces = tracker.update(np.array([d.box for d in dets], np.float32).reshape(-1, 4), [d.score for d in dets])
        out.append({f.track_id: np.asarray(f.box, np.float64) for f in faces})
    return out


def id_metrics(truth: list[dict[int, np.ndarray]], hyp: list[dict[int, np.ndarray]], faces: Sequence[int],
               hidden: dict[int, range], iou_threshold: float = 0.3) -> dict[str, Any]:
    """Identity figures of a tracked run `hyp` against `truth` (per frame {id: box}) for the truth ids `faces`.

    A truth face is matched on each frame, where it is not `hidden` (occluded), to the hypothesis box of best
    IoU (>= threshold); an id switch is a change of the matched hypothesis id from one matched frame to the
    next. Fragments: tracks of `hyp` reported on fewer than 5 frames, as a share of all its tracks."""
    switches, matched, total, per_face = 0, 0, 0, {}
    for face in faces:
        ids: list[int] = []
        for k, (t, h) in enumerate(zip(truth, hyp)):
            if face not in t or k in hidden.get(face, ()):
                continue
            total += 1
            if h:
                hid = list(h)
                iou = iou_matrix(t[face][None], np.stack([h[i] for i in hid]))[0]
                if iou.max() >= iou_threshold:
                    matched += 1
                    ids.append(hid[int(iou.argmax())])
        sw = sum(a != b for a, b in zip(ids, ids[1:]))
        switches += sw
        per_face[face] = {"ids": sorted(set(ids)), "switches": sw}
    lengths: dict[int, int] = {}
    for h in hyp:
        for i in h:
            lengths[i] = lengths.get(i, 0) + 1
    short = sum(n < 5 for n in lengths.values())
    return {"faces": len(faces), "id_switches": switches, "coverage": matched / max(total, 1),
            "tracks": len(lengths), "fragments": short, "fragment_share": short / max(len(lengths), 1),
            "per_face": per_face}


def occlude(frames: Sequence[np.ndarray], truth: list[dict[int, np.ndarray]], faces: Sequence[int], start: int,
            length: int, seed: int = 0) -> tuple[list[np.ndarray], dict[int, range]]:
    """Copies of `frames` with a grey noise patch pasted over each of `faces` (1.6x its truth box) for `length`
    frames, face k from frame start + 4k. Returns the frames and the occluded frame range of each face."""
    rng = np.random.default_rng(seed)
    out = [f.copy() for f in frames]
    hidden = {}
    for k, face in enumerate(faces):
        span = range(start + 4 * k, min(start + 4 * k + length, len(frames)))
        hidden[face] = span
        for i in span:
            box = truth[i].get(face)
            if box is None:
                continue
            cx, cy = (box[:2] + box[2:]) / 2
            half = 0.8 * max(box[2] - box[0], box[3] - box[1])
            h, w = out[i].shape[:2]
            x0, y0 = int(max(cx - half, 0)), int(max(cy - half, 0))
            x1, y1 = int(min(cx + half, w)), int(min(cy + half, h))
            out[i][y0:y1, x0:x1] = rng.integers(90, 140, (y1 - y0, x1 - x0, 1), dtype=np.uint8)
    return out, hidden


def run_ids(args: argparse.Namespace) -> dict[str, Any]:
    """Id switches and fragmentation on the opera clip (downscaled ``--ids-scale``), clean and with faces
    occluded: the truth is the clean clip tracked with a full scan on every frame; the faces followed are its
    tracks reported on >= 95 % of the frames; each config runs as the CPU pipeline does (full scan every 5th
    frame, regions between)."""
    from ..pipeline import AUTO_FULL_SCAN_EVERY_CPU, PipelineConfig

    import av

    with av.open(str(Path(args.data) / "royal_opera_house_1080p25.mp4")) as c:
        frames = [downscale(f.to_ndarray(format="rgb24"), args.ids_scale)
                  for _, f in zip(range(args.ids_frames), c.decode(video=0))]
    default = PipelineConfig(device="cpu")
    configs = {"before": replace(default, detector="mtcnn", min_score=0.9, new_track_score=0.0, coast=0, gate=0.0,
                                 max_age=12),
               "mtcnn": replace(default, detector="mtcnn"), "default": default}
    truth = track_clip(frames, default, 1)
    counts: dict[int, int] = {}
    for t in truth:
        for i in t:
            counts[i] = counts.get(i, 0) + 1
    faces = sorted(i for i, n in counts.items() if n >= 0.95 * len(frames))
    occluded, hidden = occlude(frames, truth, faces[:args.ids_occlude], len(frames) // 3, args.ids_length)
    report: dict[str, Any] = {"frames": len(frames), "size": list(frames[0].shape[1::-1]), "faces_followed": len(faces),
                              "occluded_faces": faces[:args.ids_occlude], "occluded_frames": args.ids_length, "runs": {}}
    for name, cfg in configs.items():
        for clip_name, clip in (("clean", frames), ("occluded", occluded)):
            hyp = track_clip(clip, cfg, AUTO_FULL_SCAN_EVERY_CPU)
            report["runs"][f"{name}|{clip_name}"] = id_metrics(truth, hyp, faces, hidden if clip_name == "occluded" else {})
            print(f"  ids {name} {clip_name} done", file=sys.stderr, flush=True)
    return report


def print_ids(report: dict[str, Any]) -> None:
    print(f"\nids: opera clip, first {report['frames']} frames at {report['size'][0]}x{report['size'][1]}, "
          f"{report['faces_followed']} faces visible throughout, {len(report['occluded_faces'])} of them occluded for "
          f"{report['occluded_frames']} frames")
    print("| config | clip | id switches | faces matched (frames) | tracks | fragments (< 5 frames) |")
    print("|---|---|---|---|---|---|")
    for key, r in report["runs"].items():
        name, clip = key.split("|")
        print(f"| {name} | {clip} | {r['id_switches']} | {100 * r['coverage']:.0f} % | {r['tracks']} | "
              f"{r['fragments']} ({100 * r['fragment_share']:.0f} %) |")


# ---------------------------------------------------------------------------------------------
# main


def save_montage(path: Path, image: np.ndarray, boxes: np.ndarray, tile: int = 48, columns: int = 16,
                 context: float = 1.2) -> None:
    """The square crops of `boxes` (`context` x their longer side, centred on the box; what lies outside the frame
    black) from `image`, each resized to tile x tile (nearest neighbour, so the pixels stay visible), in rows of
    `columns`, as a PNG: for checking faces by eye. With `context` >= 2 each box is outlined in red, so a face
    partly covered or cut by the frame edge can be told from what covers it."""
    import cv2

    tiles = []
    h, w = image.shape[:2]
    for x0, y0, x1, y1 in np.asarray(boxes).reshape(-1, 4)[:columns * 8]:
        side = max(int(round(context * max(x1 - x0, y1 - y0, 1.0))), 1)
        a, b = int(round((x0 + x1 - side) / 2)), int(round((y0 + y1 - side) / 2))  # the crop's corner, frame px
        crop = np.zeros((side, side, 3), np.uint8)
        inside = image[max(b, 0):min(b + side, h), max(a, 0):min(a + side, w)]
        crop[max(-b, 0):max(-b, 0) + inside.shape[0], max(-a, 0):max(-a, 0) + inside.shape[1]] = inside
        crop = cv2.resize(crop, (tile, tile), interpolation=cv2.INTER_NEAREST)
        if context >= 2:
            k = tile / side
            cv2.rectangle(crop, (int((x0 - a) * k), int((y0 - b) * k)), (int((x1 - a) * k), int((y1 - b) * k)),
                          (255, 0, 0), 1)
        tiles.append(crop)
    if not tiles:
        return
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % columns)
    rows = [np.concatenate(tiles[k:k + columns], 1) for k in range(0, len(tiles), columns)]
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR))


def load_truth(path: str | Path) -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]:
    """A ground-truth file (:mod:`jasr_video.tools.tinybench_truth`): (clip, frame) -> (faces, unsure boxes)."""
    try:
        frames = json.loads(Path(path).read_text())["frames"]
        return {(f["clip"], int(f["frame"])): (np.array(f["faces"], np.float64).reshape(-1, 4),
                                               np.array(f["unsure"], np.float64).reshape(-1, 4)) for f in frames}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"cannot read the ground truth {path}: {exc} (make it with python -m "
                         f"jasr_video.tools.tinybench_truth)") from None


def truth_of(truth: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]], clip: str, frame: int) -> tuple[np.ndarray, np.ndarray]:
    """The labelled faces and unsure boxes of one sampled frame of `truth` (:func:`load_truth`)."""
    if (clip, frame) not in truth:
        raise ValueError(f"the ground truth has no frame {frame} of {clip}: use the --samples and --run it was "
                         f"made with")
    return truth[clip, frame]


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    detectors = make_detectors(args.detectors)
    gt_detector = FaceDetector(12, (0.6, 0.7, 0.7), 0.709, "cpu", 0.0)
    truth = load_truth(args.truth) if args.truth else None
    tallies: dict[tuple[str, str], Tally] = {}  # (detector, condition) -> tally; condition "raw"/"h264"/"all"
    per_clip: dict[str, Any] = {}
    fp_crops: list[dict[str, Any]] = []  # the boxes of each --fp-crops montage, in its order
    labels: dict[tuple, list[dict[str, Any]]] = {}  # (clip stem, scale, codec, sample) -> labelled boxes
    for entry in (json.loads(Path(args.fp_labels).read_text())["labels"] if args.fp_labels else ()):
        labels.setdefault(tuple(entry[f] for f in FRAME_FIELDS), []).append(entry)
    for clip, (scales, upsample, spans) in CLIPS.items():
        if args.clips and clip not in args.clips:
            continue
        path = Path(args.data) / clip
        if not path.is_file():
            print(f"skipping {clip}: not found in {args.data}", file=sys.stderr)
            continue
        numbers, runs = read_runs(path, args.samples, args.run, spans)
        gts = [truth_of(truth, clip, n) if truth is not None else ground_truth(gt_detector, r[-1], upsample, args.gt_score)
               for n, r in zip(numbers, runs)]
        per_clip[clip] = {"frames": numbers, "gt_faces": int(sum(len(g) for g, _ in gts)),
                          "gt_sizes_px": [float(np.min(box_size(np.concatenate([g for g, _ in gts])), initial=np.inf)),
                                          float(np.max(box_size(np.concatenate([g for g, _ in gts])), initial=0))]}
        print(f"{clip}: {per_clip[clip]['gt_faces']} ground-truth faces on {len(runs)} frames", file=sys.stderr, flush=True)
        for scale in scales:
            small = [[downscale(f, scale) for f in r] for r in runs]
            for codec, frames in (("raw", small), ("h264", h264_roundtrip(small, args.bpp))):
                if args.crops:  # the first sample's ground truth at this scale, and the misses / FPs of each detector
                    Path(args.crops).mkdir(parents=True, exist_ok=True)
                    save_montage(Path(args.crops) / f"{Path(clip).stem}_x{scale}_{codec}_gt.png", frames[0][-1], gts[0][0] / scale)
                for name, fn in detectors.items():
                    for k, (r, (gt, ign)) in enumerate(zip(frames, gts)):
                        t0 = time.perf_counter()
                        boxes = fn(r)
                        dt = time.perf_counter() - t0
                        score = score_frame(gt / scale, boxes, ign / scale, args.iou)
                        if args.crops and k == 0:
                            stem = f"{Path(clip).stem}_x{scale}_{codec}_{name.replace(':', '-').replace('/', '-')}"
                            save_montage(Path(args.crops) / f"{stem}_missed.png", r[-1], (gt / scale)[~score.found])
                            fp = [b for b in boxes if not len(gt) or iou_matrix(b[None], gt / scale).max() < args.iou]
                            save_montage(Path(args.crops) / f"{stem}_unmatched.png", r[-1], np.array(fp).reshape(-1, 4))
                        large = score.fp_boxes[score.fp_sizes >= args.fp_crops_min_px] if args.fp_crops else ()
                        frame = (Path(clip).stem, scale, codec, k)  # named by FRAME_FIELDS
                        frame_key = dict(zip(FRAME_FIELDS, frame))
                        if len(large):  # every false positive >= --fp-crops-min-px, cut from the full-size frame
                            Path(args.fp_crops).mkdir(parents=True, exist_ok=True)
                            stem = f"{name.replace(':', '-').replace('/', '-')}_{Path(clip).stem}_x{scale}_{codec}_{k}"
                            save_montage(Path(args.fp_crops) / f"{stem}.png", runs[k][-1], large * scale, tile=128, columns=8,
                                         context=FP_CONTEXT)
                            fp_crops.append({"detector": name, **frame_key, "montage": f"{stem}.png",
                                             "boxes": np.round(large, 2).tolist()})
                        found_labels = label_boxes(score.fp_boxes, labels.get(frame, [])) if labels else ()
                        for key in ((name, codec), (name, "all"), (name, f"{clip}|x{scale}|{codec}")):
                            tally = tallies.setdefault(key, Tally())
                            tally.add(score, found_labels)
                            tally.seconds += dt
                print(f"  x{scale} done", file=sys.stderr, flush=True)
    return {"clips": per_clip, "results": {f"{d}|{c}": t.summary() for (d, c), t in tallies.items()},
            "fp_crops": fp_crops, "settings": {k: v for k, v in vars(args).items() if k != "json"}}


def print_tables(report: dict[str, Any]) -> None:
    if not report["results"]:
        return
    names = list(dict.fromkeys(k.split("|")[0] for k in report["results"]))
    head = "| detector | frames | " + " | ".join(f"recall {b[0]} px" for b in BUCKETS) + " | FP/frame | FP >= 24 px/frame | ms/frame |"
    for cond in ("all", "raw", "h264"):
        print(f"\n{cond}: " + {"all": "raw and H.264 frames", "raw": "downscaled frames", "h264": "downscaled, H.264 round trip"}[cond])
        print(head)
        print("|" + "---|" * (head.count("|") - 1))
        for name in names:
            s = report["results"].get(f"{name}|{cond}")
            if not s:
                continue
            cells = [f"{100 * s['recall'][b[0]]:.0f} % ({s['found'][b[0]]}/{s['gt_faces'][b[0]]})"
                     if s["recall"][b[0]] is not None else "-" for b in BUCKETS]
            print(f"| {name} | {s['frames']} | " + " | ".join(cells) +
                  f" | {s['fp_per_frame']:.2f} | {s['fp_large_per_frame']:.2f} | {s['ms_per_frame']:.0f} |")
        for name in names:  # --fp-labels
            s = report["results"].get(f"{name}|{cond}", {})
            for key, what in (("fp_labels", ""), ("fp_large_labels", " of >= 24 px")):
                if s.get(key):
                    print(f"false positives{what} of {name} by label: " +
                          ", ".join(f"{k} {v}" for k, v in sorted(s[key].items())))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jasr_video.tinybench", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(DATA), help="folder of the clips (default: ../shared/data/video)")
    p.add_argument("--ids-frames", type=int, default=60, help="id benchmark: opera frames (0: skip; default: 60)")
    p.add_argument("--ids-scale", type=int, default=2, help="id benchmark: downscaling of the opera frames (default: 2)")
    p.add_argument("--ids-occlude", type=int, default=3, help="id benchmark: faces occluded (default: 3)")
    p.add_argument("--ids-length", type=int, default=10, help="id benchmark: frames each is occluded (default: 10)")
    p.add_argument("--detectors", nargs="*", default=["facenet", "before", "default", "track"],
                   help="detectors to compare: facenet, before, default, fast:min=N,score=S,t=P/R/O,det=NAME,weights=W, "
                        "yunet:score=S,up=U (YuNet, frames enlarged U times), "
                        "track, track:det=NAME,weights=W,start=P,score=S,up=U (W: MTCNN weights, a file or a name in models/detector; "
                        "start: the tracker's new-track score); default, fast and track also take conf=C: keep only "
                        "boxes whose mean JASRNet landmark confidence is >= C (default: facenet before default track)")
    p.add_argument("--clips", nargs="*", choices=list(CLIPS), help="clips to use (default: all three)")
    p.add_argument("--samples", type=int, default=4, help="frames sampled per clip (default: 4)")
    p.add_argument("--run", type=int, default=5, help="consecutive frames encoded / tracked per sample (default: 5)")
    p.add_argument("--truth", metavar="FILE", help="ground truth labelled by eye, of several detectors at full "
                   "resolution (e.g. docs/tinybench-truth.json, made by python -m jasr_video.tools.tinybench_truth; "
                   "default: the faces facenet's MTCNN finds at full resolution, --gt-score)")
    p.add_argument("--gt-score", type=float, default=0.95, help="ground truth: MTCNN probability at full resolution (default: 0.95)")
    p.add_argument("--iou", type=float, default=0.5, help="IoU to pair a detection with a face (default: 0.5)")
    p.add_argument("--bpp", type=float, default=0.15, help="H.264 bits per pixel per frame (default 0.15: ~0.5 Mbit/s at 480x270, 25 fps)")
    p.add_argument("--fp-crops", metavar="DIR", help="write every false positive of >= --fp-crops-min-px, cut from the "
                   "full-size frame with its surroundings (3x the box, outlined), as PNG montages named "
                   "detector_clip_scale_codec_sample.png (for checking them by eye)")
    p.add_argument("--fp-crops-min-px", type=float, default=LARGE_FP_PX, metavar="PX",
                   help=f"smallest false positive --fp-crops cuts out, px at the tested scale (default {LARGE_FP_PX})")
    p.add_argument("--fp-labels", metavar="FILE", help="JSON {\"labels\": [{clip, scale, codec, sample, box, label}]}: "
                   "false positives labelled by eye (e.g. face / hand / other; boxes as in the --json's fp_crops); "
                   "each row's false positives are counted by the label of the box they overlap (IoU >= 0.9)")
    p.add_argument("--crops", metavar="DIR", help="write PNG montages of the first sample's faces (ground truth, "
                   "missed, unmatched detections) per clip, scale and detector, for checking by eye")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--json", metavar="FILE", help="write every figure to this JSON file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    if not Path(args.data).is_dir():
        print(f"jasr-video tinybench: error: data folder not found: {args.data} (give --data DIR)", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        report = run_benchmark(args) if args.detectors else {"results": {}}
    except ValueError as exc:
        print(f"jasr-video tinybench: error: {exc}", file=sys.stderr)
        return 2
    if args.ids_frames:
        report["ids"] = run_ids(args)
    print_tables(report)
    if args.ids_frames:
        print_ids(report["ids"])
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
