"""Landmark jitter and lag of the smoothing stage, measured on a real clip (raw vs smoothed landmarks).

    python -m jasr_video.tools.jitter --measure VIDEO [--max-frames N] [--threads 1] [--sweep] [--smoother NAME]
    python -m jasr_video.tools.jitter --from-jsonl OUT.jsonl          # a finished `jasr-video --json` output

jitter: mean frame-to-frame landmark motion / face size; shake (accel jitter): mean second difference / face
size, the motion left after steady motion is removed; lag: how many frames the smoothed landmarks trail the
raw ones. ``--sweep`` re-runs the Kalman smoother with other noise settings on the same raw landmarks.
The figures and the command that gives them are in docs/pipeline.md ("Smoothing").
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from ..smooth import MEASUREMENT_NOISE, PROCESS_NOISE, SHAPE_FACTOR, SMOOTHERS, LandmarkSmoother


@dataclass
class Trajectory:
    """One track's landmarks over consecutive frames."""

    frames: list[int] = field(default_factory=list)
    raw: list[np.ndarray] = field(default_factory=list)  # (K, 2) each
    smoothed: list[np.ndarray] = field(default_factory=list)
    size: list[float] = field(default_factory=list)


def jitter(points: Sequence[np.ndarray], sizes: Sequence[float], frames: Sequence[int] | None = None) -> tuple[float, int]:
    """Mean frame-to-frame landmark motion / face size over consecutive frames; returns (mean, pairs)."""
    total, n = 0.0, 0
    for i in range(1, len(points)):
        if frames is not None and frames[i] - frames[i - 1] != 1:
            continue
        d = np.linalg.norm(np.asarray(points[i]) - np.asarray(points[i - 1]), axis=-1).mean()
        total += float(d) / max((sizes[i] + sizes[i - 1]) / 2, 1.0)
        n += 1
    return (total / n if n else float("nan")), n


def acceleration_jitter(points: Sequence[np.ndarray], sizes: Sequence[float], frames: Sequence[int] | None = None) -> float:
    """Mean |p[t] - 2 p[t-1] + p[t-2]| / face size: the shake left after removing steady motion."""
    vals = []
    for i in range(2, len(points)):
        if frames is not None and frames[i] - frames[i - 2] != 2:
            continue
        a = np.asarray(points[i]) - 2 * np.asarray(points[i - 1]) + np.asarray(points[i - 2])
        vals.append(float(np.linalg.norm(a, axis=-1).mean()) / max(sizes[i - 1], 1.0))
    return float(np.mean(vals)) if vals else float("nan")


def lag_frames(raw: Sequence[np.ndarray], smoothed: Sequence[np.ndarray]) -> tuple[float, float]:
    """Lag of the smoothed landmarks behind the raw ones, in frames: (least-squares, cross-correlation).

    Least squares: smoothed(t) ~ raw(t - tau) ~ raw(t) - tau * v(t) with v the (central-difference)
    velocity of the raw landmark centroid; solved for tau over the trajectory. Cross-correlation: the
    integer shift in [0, 5] that best aligns smoothed with raw centroid velocity.
    """
    c_raw = np.array([np.asarray(p).mean(axis=0) for p in raw])
    c_s = np.array([np.asarray(p).mean(axis=0) for p in smoothed])
    if len(c_raw) < 5:
        return float("nan"), float("nan")
    v = np.gradient(c_raw, axis=0)
    err = c_s - c_raw
    denom = float((v * v).sum())
    tau = float(-(err * v).sum() / denom) if denom > 0 else float("nan")
    vr, vs = np.diff(c_raw, axis=0), np.diff(c_s, axis=0)
    best, best_k = -np.inf, 0
    for k in range(0, min(6, len(vr) - 2)):
        a, b = vr[: len(vr) - k], vs[k:]
        score = float((a * b).sum()) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12)
        if score > best:
            best, best_k = score, k
    return tau, float(best_k)


def summarize(trajectories: Iterable[Trajectory], min_length: int = 5) -> dict:
    """Jitter raw vs smoothed and lag, averaged over tracks with at least `min_length` frames."""
    rows = []
    for t in trajectories:
        if len(t.frames) < min_length:
            continue
        jr, n = jitter(t.raw, t.size, t.frames)
        js, _ = jitter(t.smoothed, t.size, t.frames)
        ar = acceleration_jitter(t.raw, t.size, t.frames)
        as_ = acceleration_jitter(t.smoothed, t.size, t.frames)
        lag_ls, lag_xc = lag_frames(t.raw, t.smoothed)
        rows.append((jr, js, ar, as_, lag_ls, lag_xc, n))
    if not rows:
        return {"tracks": 0}
    a = np.array(rows, dtype=np.float64)
    w = a[:, 6]
    avg = lambda col: float(np.nansum(a[:, col] * w) / w[~np.isnan(a[:, col])].sum())  # noqa: E731
    return {
        "tracks": len(rows),
        "frame_pairs": int(w.sum()),
        "jitter_raw": avg(0),
        "jitter_smoothed": avg(1),
        "jitter_reduction": 1 - avg(1) / avg(0),
        "accel_jitter_raw": avg(2),
        "accel_jitter_smoothed": avg(3),
        "lag_frames_lsq": avg(4),
        "lag_frames_xcorr": avg(5),
    }


def collect(results: Iterable) -> dict[int, Trajectory]:
    """Per-track trajectories from pipeline FrameResults (faces with raw and smoothed landmarks)."""
    tracks: dict[int, Trajectory] = {}
    for result in results:
        for face in result.faces:
            t = tracks.setdefault(face.track_id, Trajectory())
            t.frames.append(result.index)
            t.raw.append(face.landmarks_raw)
            t.smoothed.append(face.landmarks_smoothed)
            t.size.append(face.face_px)
    return tracks


def resmooth(tracks: dict[int, Trajectory], measurement_noise: float, process_noise: float,
             shape_factor: float = SHAPE_FACTOR) -> dict[int, Trajectory]:
    """Re-run the smoother with other noise settings on recorded raw trajectories (for a sweep)."""
    out = {}
    for tid, t in tracks.items():
        sm = LandmarkSmoother(measurement_noise, process_noise, shape_factor=shape_factor)
        new = Trajectory(list(t.frames), list(t.raw), [], list(t.size))
        for f, p, s in zip(t.frames, t.raw, t.size):
            new.smoothed.append(sm.update(tid, p, s, f))
        out[tid] = new
    return out


def resmooth_with(tracks: dict[int, Trajectory], name: str, **options: float) -> dict[int, Trajectory]:
    """Re-run the recorded raw trajectories through the smoother registered as `name` (``options``: keyword
    arguments of its class, PipelineConfig.smoother_options; none: its defaults)."""
    from ..pipeline import PipelineConfig
    from ..smooth import make_smoother

    out = {}
    for tid, t in tracks.items():
        sm = make_smoother(PipelineConfig(smoother=name, smoother_options=dict(options)))
        out[tid] = Trajectory(list(t.frames), list(t.raw), [sm.update(tid, p, s, f) for f, p, s in
                                                             zip(t.frames, t.raw, t.size)], list(t.size))
    return out


def read_jsonl(path: str) -> dict[int, Trajectory]:
    """Per-track trajectories from a `jasr-video --json` file."""
    tracks: dict[int, Trajectory] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            for face in row.get("faces", []):
                t = tracks.setdefault(face["track_id"], Trajectory())
                t.frames.append(row["frame"])
                t.raw.append(np.array(face["landmarks_raw"]))
                t.smoothed.append(np.array(face["landmarks_smoothed"]))
                t.size.append(face["face_px"])
    return tracks


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure landmark jitter (raw vs smoothed) and lag on a video.")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--measure", metavar="VIDEO", help="video to run the pipeline on")
    src.add_argument("--from-jsonl", metavar="JSONL", help="measure a finished `jasr-video --json` output instead")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    parser.add_argument("--weights", default=None, help="JASRNet weights (default: shipped)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--sweep", action="store_true", help="also try other settings on the same raw landmarks "
                        "(kalman: noise; one-euro: min_cutoff and beta)")
    parser.add_argument("--detect-every", type=int, default=1, help="run MTCNN every N-th frame")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--smoother", choices=tuple(SMOOTHERS), default=None,
                        help="smoother to measure (default: the pipeline's); with --from-jsonl the file's raw "
                        "landmarks are smoothed again by it")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    if args.from_jsonl:
        tracks = read_jsonl(args.from_jsonl)
        if args.smoother:
            tracks = resmooth_with(tracks, args.smoother)
    else:
        from ..pipeline import Pipeline, PipelineConfig

        cfg = PipelineConfig(device=args.device, max_frames=args.max_frames, detect_every=args.detect_every)
        if args.smoother:
            cfg.smoother = args.smoother
        if args.weights:
            cfg.weights = args.weights
        tracks = collect(Pipeline(cfg).run(args.measure))
    result = summarize(tracks.values())
    result["smoother"] = args.smoother or "kalman"
    if result["smoother"] == "kalman":
        result["measurement_noise"], result["process_noise"] = MEASUREMENT_NOISE, PROCESS_NOISE
    if args.sweep and result["smoother"] == "one-euro":
        result["sweep"] = []
        for mc in (0.02, 0.05, 0.1):
            for beta in (0.5, 2.0, 5.0):
                s = summarize(resmooth_with(tracks, "one-euro", min_cutoff=mc, beta=beta).values())
                result["sweep"].append({"min_cutoff": mc, "beta": beta, **{key: s[key] for key in (
                    "jitter_smoothed", "accel_jitter_smoothed", "lag_frames_lsq")}})
    elif args.sweep:
        result["sweep"] = []
        for k in (1.0, 3.0, 6.0):
            for r in (0.02, 0.03, 0.05, 0.08):
                for q in (0.003, 0.01, 0.02):
                    s = summarize(resmooth(tracks, r, q, k).values())
                    result["sweep"].append({"k": k, "r": r, "q": q, **{key: s[key] for key in (
                        "jitter_smoothed", "accel_jitter_smoothed", "lag_frames_lsq")}})
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"tracks measured: {result.get('tracks')} ({result.get('frame_pairs')} frame pairs)")
    if result.get("tracks"):
        print(f"jitter raw      : {result['jitter_raw']:.4f} (mean landmark motion per frame / face size)")
        print(f"jitter smoothed : {result['jitter_smoothed']:.4f} ({-100 * result['jitter_reduction']:+.1f} %)")
        print(f"accel jitter raw/smoothed: {result['accel_jitter_raw']:.4f} / {result['accel_jitter_smoothed']:.4f}")
        print(f"lag: {result['lag_frames_lsq']:.2f} frames (least squares), {result['lag_frames_xcorr']:.2f} (cross-correlation)")
    for row in result.get("sweep", []):
        setting = (f"min_cutoff={row['min_cutoff']:<5} beta={row['beta']:<4}" if "beta" in row else
                   f"shape x{row['k']:<4} r={row['r']:<5} q={row['q']:<6}")
        print(f"  {setting} jitter={row['jitter_smoothed']:.4f} accel={row['accel_jitter_smoothed']:.4f} "
              f"lag={row['lag_frames_lsq']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
