"""Face verification benchmark: can a face recogniser still tell who a tiny face is after enhancement?

    python -m jasr_video.tools.verifybench --threads 2 --json verify.json

The JASRNet paper's test (its Table 3: verification accuracy of LFW pairs from 16x16 faces) on the
identity-labelled faces of ``../shared/data/faces-id`` (CelebA), with the LFW protocol:

- Pairs: the identities are dealt into ``--folds`` identity-disjoint folds (seeded); in each fold
  ``--ids-per-fold`` people with ``--photos-per-id`` photos each give every same-person pair of those photos, and
  as many different-person pairs drawn at random from the fold's photos.
- Accuracy: 10-fold, as LFW's: the distance threshold is chosen on 9 folds (the one of highest accuracy there) and
  the accuracy counted on the 10th; mean and standard deviation over the folds.
- Hallucination check: the false-accept rate (different-person pairs taken for one person) of each method at the
  HR thresholds (those chosen on the HR faces' 9 folds), on the held-out fold. Enhancement that makes two people
  look alike raises it.
- Gap closed: (method - bicubic) / (HR - bicubic) accuracy, per size.

Faces take the pipeline's frame path: each photo (192 px, 2x its landmark box) is padded into a larger canvas,
the canvas is reduced (OpenCV area filter) so that the face's training-style crop (1.4 x the landmark box) is
``--sizes`` px across, and the face is cut from that frame with the pipeline's own call
(:func:`jasr_video.route.cut_face`, at the route a :class:`~jasr_video.route.RoutedEnhancer` picks for its size,
on whole pixels where the crop is at the frame's scale) and enhanced through :class:`~jasr_video.route.RoutedCrops`.
Detection is left out: the box given to ``cut_face`` is the one whose crop is the true crop, so that every method
sees the same face. Rows: ``HR`` (the true crop at full resolution), ``bicubic`` (the network's input: the LR face
bicubic-upsampled to 128 px) and each weight set of ``--weights`` (with its x4 / x2 siblings). The recogniser
(:class:`jasr_video.identity.Recognizer`) aligns every variant from the true 68 points mapped into that variant's
crop, so only the pixels differ.

``--fused K`` adds three rows per size for a track of each photo (both photos of every pair: the pair then
compares two faces of the same kind, as every other row does, and as a track in a clip would be compared with a
track in another): K frames of the photo made exactly as :mod:`jasr_video.tools.fusionbench` makes them
(``--fused-condition cctv``: sub-pixel motion, small rotation / scale, blur, noise, H.264; ``clean``: motion
only), cut and enhanced by the pipeline's code, ranked by the fuser's :class:`~jasr_video.fusion.FrameKeeper`.
Rows (first weight set of ``--weights``): ``bicubic, best of K`` (the best frame's network input), ``W, best
of K`` (the best frame's SR face: what a track keeps without fusion) and ``W, fused K (sr-trim)``
(:class:`~jasr_video.fusion.TrackFuser`'s default method, in the best frame's crop); each aligned from the
true points in the best frame's crop. Their gap closed is counted from ``bicubic, best of K``.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

DATA = Path(__file__).resolve().parents[3] / "shared/data/faces-id"
DEFAULT_SIZES = (16, 24, 32)
DEFAULT_WEIGHTS = ("jasr-cpu", "jasr-cpu-robust")
PAD = 96  # canvas padding around each 192 px photo (reflected), so the reduced frame has room around the face


# ---------------------------------------------------------------------------------------------
# protocol


def best_threshold(d: np.ndarray, same: np.ndarray) -> float:
    """The distance threshold (pairs below it: one person) of highest accuracy on these pairs: a midpoint
    between consecutive distinct distances, or just outside their range."""
    d, same = np.asarray(d, np.float64), np.asarray(same, bool)
    values = np.unique(d)
    candidates = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])
    accuracy = ((d[None, :] < candidates[:, None]) == same[None, :]).mean(axis=1)
    return float(candidates[int(np.argmax(accuracy))])


def fold_thresholds(d: np.ndarray, same: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Per fold k, the threshold chosen on every other fold."""
    fold = np.asarray(fold)
    return np.array([best_threshold(d[fold != k], same[fold != k]) for k in np.unique(fold)])


def ten_fold(d: np.ndarray, same: np.ndarray, fold: np.ndarray,
             thresholds: np.ndarray | None = None) -> dict[str, Any]:
    """LFW-style accuracy: per fold, pairs below the threshold chosen on the other folds (or ``thresholds[k]``)
    are "same"; accuracy and false-accept rate (share of different-person pairs called same) per fold."""
    d, same, fold = np.asarray(d, np.float64), np.asarray(same, bool), np.asarray(fold)
    t = fold_thresholds(d, same, fold) if thresholds is None else np.asarray(thresholds, np.float64)
    acc, far, tar = [], [], []
    for k, key in enumerate(np.unique(fold)):
        m = fold == key
        called = d[m] < t[k]
        acc.append(float((called == same[m]).mean()))
        far.append(float(called[~same[m]].mean()) if (~same[m]).any() else 0.0)
        tar.append(float(called[same[m]].mean()) if same[m].any() else 0.0)
    return {"accuracy": float(np.mean(acc)), "std": float(np.std(acc)), "far": float(np.mean(far)),
            "tar": float(np.mean(tar)), "per_fold": acc, "thresholds": t.tolist()}


def make_pairs(identities: dict[str, list[str]], folds: int, ids_per_fold: int, photos_per_id: int,
               seed: int) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Seeded pairs: (photos used, pairs (P, 2) of indices into them, same (P,), fold (P,))."""
    rng = np.random.default_rng(seed)
    eligible = sorted(i for i, photos in identities.items() if len(photos) >= photos_per_id)
    need = folds * ids_per_fold
    if len(eligible) < need:
        raise ValueError(f"{need} people with >= {photos_per_id} photos needed, {len(eligible)} found")
    chosen = [eligible[k] for k in rng.permutation(len(eligible))[:need]]
    photos: list[str] = []
    pairs, same, fold = [], [], []
    for k in range(folds):
        members: list[tuple[int, str]] = []
        for person in chosen[k * ids_per_fold:(k + 1) * ids_per_fold]:
            files = sorted(identities[person])
            for f in (files[j] for j in sorted(rng.choice(len(files), photos_per_id, replace=False))):
                members.append((len(photos), person))
                photos.append(f)
        positives = [(a, b) for (a, pa), (b, pb) in itertools.combinations(members, 2) if pa == pb]
        negatives = [(a, b) for (a, pa), (b, pb) in itertools.combinations(members, 2) if pa != pb]
        picked = rng.choice(len(negatives), min(len(positives), len(negatives)), replace=False)
        for group, flag in ((positives, True), ([negatives[j] for j in sorted(picked)], False)):
            pairs += group
            same += [flag] * len(group)
            fold += [k] * len(group)
    return photos, np.array(pairs, np.int64).reshape(-1, 2), np.array(same, bool), np.array(fold, np.int64)


def read_identities(data: Path) -> dict[str, list[str]]:
    """identity -> photo files (relative to ``data``) from faces-id's manifest.csv."""
    manifest = data / "manifest.csv"
    if not manifest.exists():
        raise FileNotFoundError(f"{manifest} not found (give --data the faces-id folder)")
    out: dict[str, list[str]] = {}
    with open(manifest, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            out.setdefault(row["identity"], []).append(row["file"])
    return out


# ---------------------------------------------------------------------------------------------
# faces through the frame path


def load_face(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A faces-id photo (uint8 RGB) and its 68 points."""
    import cv2

    from ..model.data import read_pts

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), read_pts(path.with_suffix(".pts"))


def canvas_and_geometry(image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, Any, np.ndarray]:
    """The photo padded into a canvas, its training-style crop (1.4 x the landmark box) there, and the 68 points in
    the canvas."""
    import cv2

    from ..crop import DEFAULT_MARGIN, CropGeometry

    canvas = cv2.copyMakeBorder(image, PAD, PAD, PAD, PAD, cv2.BORDER_REFLECT_101)
    pts = np.asarray(points, np.float64) + PAD
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    geometry = CropGeometry((x0 + x1) / 2, (y0 + y1) / 2, DEFAULT_MARGIN * max(x1 - x0, y1 - y0))
    return canvas, geometry, pts


def frame_at(canvas: np.ndarray, geometry: Any, size: int) -> tuple[np.ndarray, Any, float]:
    """The canvas reduced (area filter) so that the crop is ``size`` px across, the crop in that frame, and the
    scale."""
    import cv2

    from ..crop import CropGeometry

    n = max(int(round(canvas.shape[1] * size / geometry.side)), 1)
    frame = cv2.resize(canvas, (n, n), interpolation=cv2.INTER_AREA)
    r = n / canvas.shape[1]
    return frame, CropGeometry((geometry.cx + 0.5) * r - 0.5, (geometry.cy + 0.5) * r - 0.5, geometry.side * r), r


def enhance_at(enhancer: Any, faces: Sequence[tuple[np.ndarray, Any, np.ndarray]],
               size: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[str]]:
    """Faces (canvas, crop geometry, 68 points in the canvas) at ``size`` px through the pipeline's own cut
    (:func:`~jasr_video.route.cut_face` of the detection box whose crop is the true one) and routing: (enhanced
    (N, 128, 128, 3), bicubic network inputs (N, 128, 128, 3), the true points in each face's cut crop (128 px),
    route names)."""
    from ..crop import DEFAULT_MARGIN
    from ..route import RoutedCrops, cut_face

    crops, routes, points = [], [], []
    for canvas, geometry, pts in faces:
        frame, g, r = frame_at(canvas, geometry, size)
        cut, route, crop = cut_face(frame, g.detection_box(DEFAULT_MARGIN), DEFAULT_MARGIN, enhancer.route)
        crops.append(crop)
        routes.append(route)
        points.append(cut.to_crop((np.asarray(pts, np.float64) + 0.5) * r - 0.5))
    batch = RoutedCrops.from_crops(crops, routes)
    bicubic = (batch.inputs.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)
    return enhancer(batch).sr, bicubic, points, [r.name for r in routes]


def fused_at(enhancer: Any, fuser: Any, image: np.ndarray, points: np.ndarray, size: int, k: int, condition: str,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, str]:
    """A synthetic track of ``k`` frames of a photo (:func:`jasr_video.tools.fusionbench.make_track`) at
    ``size`` px: (the best frame's SR face, the fused face, the best frame's bicubic network input, the true
    points in the best frame's crop, frames fused, the best frame's route)."""
    from .fusionbench import BPP, enhance_track, keep_best, make_track

    frames, geoms, _, marks = make_track(image, points, size, condition, rng, BPP, k)
    crops, out, quals = enhance_track(enhancer, frames, geoms)
    order, kept, single = keep_best(crops, out, quals, geoms, k)
    ref = order[0]
    fused = fuser.fuse(kept, single=single)
    bicubic = (crops.inputs[ref].clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    return out.sr[ref], fused.sr, bicubic, marks[ref], len(fused.frames), crops.routes[ref].name


# ---------------------------------------------------------------------------------------------
# the benchmark


def run(data: Path = DATA, sizes: Sequence[int] = DEFAULT_SIZES, weights: Sequence[str] = DEFAULT_WEIGHTS,
        folds: int = 10, ids_per_fold: int = 8, photos_per_id: int = 4, seed: int = 0, precision: str = "fp32",
        chunk: int = 64, log: Any = None, sr_factor: str = "auto", fused: int = 0,
        fused_condition: str = "cctv") -> dict[str, Any]:
    """Every row's 10-fold accuracy, false-accept rate at the HR thresholds and share of the gap closed."""
    from ..crop import crop_face
    from ..identity import Recognizer
    from ..route import RoutedEnhancer

    say = (lambda m: print(m, file=log, flush=True)) if log else (lambda m: None)
    recognizer = Recognizer()
    photos, pairs, same, fold = make_pairs(read_identities(data), folds, ids_per_fold, photos_per_id, seed)
    enhancers = {w: RoutedEnhancer(w, device="cpu", precision=precision, sr_factor=sr_factor) for w in weights}
    from ..fusion import DEFAULT_METHOD, TrackFuser
    from .fusionbench import CONDITIONS

    track_rows = (f"bicubic, best of {fused}", f"{weights[0]}, best of {fused}",
                  f"{weights[0]}, fused {fused} ({DEFAULT_METHOD})") if fused else ()
    fuser = TrackFuser(enhancers[weights[0]]) if fused else None
    used: dict[int, list[int]] = {s: [] for s in sizes}
    methods = [("HR", None)] + [(m, s) for s in sizes for m in ("bicubic", *weights, *track_rows)]
    desc = {m: np.zeros((len(photos), 128), np.float32) for m in methods}
    route_names: dict[str, set[str]] = {}
    seconds = {"enhance": 0.0, "describe": 0.0}
    started = time.monotonic()
    for a in range(0, len(photos), chunk):
        faces = [canvas_and_geometry(*load_face(data / f)) for f in photos[a:a + chunk]]
        images: dict[tuple[str, int | None], np.ndarray] = {("HR", None): np.stack([crop_face(c, g) for c, g, _ in faces])}
        points: dict[tuple[str, int | None], list[np.ndarray]] = {("HR", None): [g.to_crop(p) for _, g, p in faces]}
        t0 = time.monotonic()
        for s in sizes:
            for k, w in enumerate(weights):
                out, bicubic, pts, names = enhance_at(enhancers[w], faces, s)
                images[(w, s)], points[(w, s)] = out, pts
                route_names[f"{w}@{s}"] = set(names) | route_names.get(f"{w}@{s}", set())
                if k == 0:
                    images[("bicubic", s)], points[("bicubic", s)] = bicubic, pts
            if fused:
                tracks = []
                for j, f in enumerate(photos[a:a + chunk]):
                    rng = np.random.default_rng([seed, a + j, s, CONDITIONS.index(fused_condition)])
                    tracks.append(fused_at(enhancers[weights[0]], fuser, *load_face(data / f), s, fused,
                                           fused_condition, rng))
                used[s] += [t[4] for t in tracks]
                for m in track_rows[1:]:
                    route_names[f"{m}@{s}"] = {t[5] for t in tracks} | route_names.get(f"{m}@{s}", set())
                for m, n in zip(track_rows, (2, 0, 1)):
                    images[(m, s)] = np.stack([t[n] for t in tracks])
                    points[(m, s)] = [t[3] for t in tracks]
        t1 = time.monotonic()
        for m in methods:
            desc[m][a:a + len(faces)] = recognizer.describe_many(list(images[m]), points[m])
        seconds["enhance"] += t1 - t0
        seconds["describe"] += time.monotonic() - t1
        say(f"{min(a + chunk, len(photos))}/{len(photos)} faces, {time.monotonic() - started:.0f} s")

    def distances(m: tuple[str, int | None]) -> np.ndarray:
        return np.linalg.norm(desc[m][pairs[:, 0]] - desc[m][pairs[:, 1]], axis=1)

    hr = ten_fold(distances(("HR", None)), same, fold)
    rows = [{"size": None, "method": "HR", **hr, "far_at_hr": hr["far"], "gap_closed": None}]
    for s in sizes:
        base = None
        for m in ("bicubic", *weights, *track_rows):
            d = distances((m, s))
            r = ten_fold(d, same, fold)
            r["far_at_hr"] = ten_fold(d, same, fold, hr["thresholds"])["far"]
            is_base = m in ("bicubic", track_rows[0] if track_rows else None)
            base = r["accuracy"] if is_base else base
            gap = hr["accuracy"] - base
            r["gap_closed"] = None if is_base or gap <= 0 else (r["accuracy"] - base) / gap
            extra = {"frames_fused": float(np.mean(used[s]))} if m in track_rows[2:] else {}
            rows.append({"size": s, "method": m, **r, "routes": sorted(route_names.get(f"{m}@{s}", [])), **extra})
    return {"data": str(data), "photos": len(photos), "pairs": int(len(pairs)), "same_pairs": int(same.sum()),
            "folds": folds, "seed": seed, "precision": precision, "sr_factor": sr_factor, "weights": list(weights),
            "fused": fused, "fused_condition": fused_condition if fused else None, "hr_threshold": float(np.mean(hr["thresholds"])), "rows": rows,
            "seconds": {k: round(v, 1) for k, v in seconds.items()}}


def format_table(result: dict[str, Any]) -> str:
    """Markdown: per size and method, 10-fold accuracy, gap closed, false-accept rate at the HR threshold."""
    lines = ["| size (px) | method | accuracy % (10-fold) | gap closed % | FAR at HR threshold % | route |",
             "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        gap = "" if r["gap_closed"] is None else f"{100 * r['gap_closed']:.0f}"
        lines.append(f"| {r['size'] or 'full'} | {r['method']} | {100 * r['accuracy']:.1f} ± {100 * r['std']:.1f} | "
                     f"{gap} | {100 * r['far_at_hr']:.1f} | {', '.join(r.get('routes', []))} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jasr_video.tools.verifybench", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DATA, help="the faces-id folder (default: ../shared/data/faces-id)")
    p.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="crop sides in px (default: 16 24 32)")
    p.add_argument("--weights", nargs="+", default=list(DEFAULT_WEIGHTS), help="weight sets, each with its x4 / x2 "
                   "siblings (default: jasr-cpu jasr-cpu-robust)")
    p.add_argument("--folds", type=int, default=10)
    p.add_argument("--ids-per-fold", type=int, default=8, help="people per fold (default: 8)")
    p.add_argument("--photos-per-id", type=int, default=4, help="photos per person (default: 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", default="fp32", help="JASRNet precision (default: fp32, the library's)")
    p.add_argument("--sr-factor", choices=("auto", "8", "4", "2"), default="auto", help="routing, as jasr-video's "
                   "--sr-factor: auto by size, or every face to one model (8: brought to 16x16) (default: auto)")
    p.add_argument("--fused", type=int, default=0, metavar="K", help="add rows for a synthetic K-frame track of "
                   "each photo: its best frame (bicubic and SR) and its fused face (default: 0, off)")
    p.add_argument("--fused-condition", choices=("clean", "cctv"), default="cctv", help="the tracks' frames, as "
                   "fusionbench's conditions (default: cctv: blur, noise, H.264)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--json", type=Path, help="write the result as JSON here")
    args = p.parse_args(argv)
    from ..identity import IdentityUnavailable

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if any(s < 4 for s in args.sizes) or args.folds < 2 or args.photos_per_id < 2 or args.ids_per_fold < 2 \
            or not 0 <= args.fused <= 16:
        print("verifybench: error: sizes >= 4 px, --folds, --ids-per-fold and --photos-per-id >= 2, --fused 0 to 16",
              file=sys.stderr)
        return 2
    try:
        result = run(args.data, args.sizes, args.weights, args.folds, args.ids_per_fold, args.photos_per_id,
                     args.seed, args.precision, log=sys.stderr, sr_factor=args.sr_factor, fused=args.fused,
                     fused_condition=args.fused_condition)
    except (IdentityUnavailable, FileNotFoundError, ValueError) as exc:
        print(f"verifybench: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    print(format_table(result))
    print(f"{result['pairs']} pairs ({result['same_pairs']} same) of {result['photos']} photos; HR threshold "
          f"{result['hr_threshold']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
