"""Teach MTCNN's R-net and O-net to see compressed tiny faces as they see clean ones (``mtcnn-cctv`` weights).

After an H.264 round trip at CCTV bitrates most 12-24 px faces still get P-net candidates, but R-net and O-net,
trained on clean photos, score them as non-faces (docs/benchmarks.md, "Tiny faces"). This tool fine-tunes the
two networks by distillation from themselves across image quality, with no face labels:

- a *scene* is a mosaic of face photos with their surroundings (``faces68/train`` crops, ``faces-utk`` faces,
  and zoomed background corners of the faces68 crops) on a 1024 x 1024 canvas; ``--crowd-share`` also packs
  cells with 2 x 2 or 3 x 3 faces, as in a crowd (tried, not shipped: models/README.md);
- the *student view* is the scene reduced so that faces are about 8-40 px, then (mostly) degraded as CCTV
  does: a short H.264 run at 0.06-0.3 bit per pixel with a little camera motion, an H.264 intra frame at a high
  quantiser, or JPEG; a share stays clean so nothing is lost on clean video;
- the *teacher view* is the same scene, clean, at 4x the student's resolution;
- candidates are the boxes facenet's own P-net (and R-net, for O-net) propose on the student view; for each,
  the original network's outputs on the teacher view's crop of the same box (probability, box regression, and
  for O-net the five points) are the target of the tuned network on the student view's crop.

A compressed face is thus scored as the original networks score the clean face, a compressed non-face as
they score the clean non-face: the original networks' judgement of what is a face is kept. P-net (``--stages
pnet``) is taught the same way over every window of its image pyramid: the student view's levels against
facenet's P-net on the same levels of the clean student-size view (:func:`pnet_loss`). The training faces are
never the benchmark clips. ``--out`` gets a ``.pt`` with the three state dicts (``jasr_video.detect`` loads it
as the ``mtcnn-cctv`` detector) and a log; ``--init`` starts from earlier weights (the stages not tuned keep them).

    python -m jasr_video.tools.tune_detector --scenes 2000 --out models/detector/mtcnn-cctv.pt

Length: one training recipe (scenes, the student views, the losses of three networks, the loop) in one file, a
tool outside the library.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

SHARED = Path(__file__).resolve().parents[3] / "shared/data"
CELL, GRID = 256, 4  # scene: GRID x GRID cells of CELL px
TEACHER_ZOOM = 4  # the teacher sees the scene at this many times the student's resolution (at most 1:1)


def load_faces(folders: list[Path], limit: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Up to `limit` RGB images from each folder (image files with a .pts beside them), as CELL x CELL."""
    import cv2

    from ..model.data import find_pairs

    images = []
    for folder in folders:
        pairs = find_pairs(folder)
        for k in rng.permutation(len(pairs))[:limit]:
            image = cv2.cvtColor(cv2.imread(str(pairs[k][0])), cv2.COLOR_BGR2RGB)
            images.append(cv2.resize(image, (CELL, CELL), interpolation=cv2.INTER_AREA))
    return images


def crowd_cell(rng: np.random.Generator, faces: list[np.ndarray]) -> np.ndarray:
    """A CELL x CELL cell packed with k x k whole face photos (k = 2 or 3), each shrunk to CELL / k, so that
    neighbouring faces nearly touch, as in a crowd."""
    import cv2

    k = int(rng.integers(2, 4))
    side = CELL // k
    tiles = [cv2.resize(faces[int(rng.integers(len(faces)))], (side, side), interpolation=cv2.INTER_AREA)
             for _ in range(k * k)]
    grid = np.vstack([np.hstack(tiles[r * k:(r + 1) * k]) for r in range(k)])
    return grid if grid.shape[0] == CELL else cv2.resize(grid, (CELL, CELL), interpolation=cv2.INTER_LINEAR)


def make_scene(rng: np.random.Generator, faces: list[np.ndarray], crowd_share: float = 0.0) -> np.ndarray:
    """A GRID x GRID mosaic: mostly whole face photos (a random zoom 0.5-1.0 about the centre, the rest of the
    cell its border stretched), a quarter zoomed corners of them (hair, clothes, background: non-faces), and a
    `crowd_share` of crowd cells (:func:`crowd_cell`; 0 draws none and leaves the random stream as it was)."""
    import cv2

    rows = []
    for _ in range(GRID):
        row = []
        for _ in range(GRID):
            image = faces[int(rng.integers(len(faces)))]
            if crowd_share and rng.random() < crowd_share:
                cell = crowd_cell(rng, faces)
            elif rng.random() < 0.25:  # a corner, zoomed 2-3x: no whole face
                side = int(CELL / rng.uniform(2, 3))
                x, y = (int(v) for v in rng.choice([0, CELL - side], 2))
                cell = cv2.resize(image[y:y + side, x:x + side], (CELL, CELL), interpolation=cv2.INTER_LINEAR)
            else:
                zoom = rng.uniform(0.5, 1.0)
                side = int(CELL * zoom)
                small = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
                x, y = (int(v) for v in rng.integers(0, CELL - side + 1, 2))
                cell = cv2.copyMakeBorder(small, y, CELL - side - y, x, CELL - side - x, cv2.BORDER_REFLECT)
            row.append(cell[:, ::-1] if rng.random() < 0.5 else cell)
        rows.append(np.hstack(row))
    return np.ascontiguousarray(np.vstack(rows))


def student_view(rng: np.random.Generator, scene: np.ndarray) -> tuple[np.ndarray, float, str]:
    """The scene reduced (faces ~8-40 px) and degraded. Returns (image, reduction factor, degradation name)."""
    small, factor = reduce_scene(rng, scene)
    image, kind = degrade(rng, small)
    return image, factor, kind


def reduce_scene(rng: np.random.Generator, scene: np.ndarray) -> tuple[np.ndarray, float]:
    """The scene reduced by a random factor 3-14 (faces ~8-40 px), clean. Returns (image, reduction factor)."""
    import cv2

    factor = float(rng.uniform(3.0, 14.0))
    side = int(round(scene.shape[0] / factor)) // 2 * 2
    factor = scene.shape[0] / side
    return cv2.resize(scene, (side, side), interpolation=cv2.INTER_AREA), factor


def degrade(rng: np.random.Generator, small: np.ndarray) -> tuple[np.ndarray, str]:
    """`small` as CCTV would deliver it (or clean, a fifth of the time). Returns (image, degradation name)."""
    import cv2

    from ..model.degradations import h264_frame, jpeg

    side = small.shape[0]
    kind = rng.choice(["clean", "h264-run", "h264-intra", "jpeg"], p=[0.2, 0.5, 0.2, 0.1])
    if kind == "h264-run":  # a few frames with a little camera motion, the last one kept (a P-frame)
        from .tinybench import h264_roundtrip

        frames = []
        for k in range(4, -1, -1):
            shift = np.float32([[1, 0, k * rng.uniform(-1, 1)], [0, 1, k * rng.uniform(-1, 1)]])
            frames.append(cv2.warpAffine(small, shift, (side, side), borderMode=cv2.BORDER_REFLECT))
        small = h264_roundtrip([frames], float(rng.uniform(0.06, 0.3)))[0][-1]
    elif kind == "h264-intra":
        small = h264_frame(small, int(rng.integers(30, 43)))
    elif kind == "jpeg":
        small = jpeg(small, int(rng.integers(10, 40)))
    return small, str(kind)


class Nets:
    """facenet's MTCNN networks (the teachers; facenet's P-net proposes the R-/O-net candidates) and trainable
    copies of the three (`init`: weights file to start the copies from, e.g. earlier ``mtcnn-cctv`` weights)."""

    def __init__(self, init: str | None = None) -> None:
        from ..facenet_compat import import_facenet

        facenet = import_facenet()
        mtcnn = facenet.MTCNN(device="cpu").eval()
        self.pnet, self.rnet, self.onet = mtcnn.pnet, mtcnn.rnet, mtcnn.onet
        self.student_pnet, self.student_rnet, self.student_onet = (copy.deepcopy(n) for n in (self.pnet, self.rnet, self.onet))
        self.init_meta: dict[str, Any] = {}  # the `init` file's "meta" (its validation figures)
        if init:
            from ..detect import detector_weights_path

            state = torch.load(detector_weights_path(init), map_location="cpu", weights_only=True)
            for stage in ("pnet", "rnet", "onet"):
                if stage in state:
                    getattr(self, f"student_{stage}").load_state_dict({k: v.float() for k, v in state[stage].items()})
            self.init_meta = state.get("meta", {})

    def student(self, stage: str) -> torch.nn.Module:
        return getattr(self, f"student_{stage}")


def crops(image: np.ndarray, boxes: torch.Tensor, size: int) -> tuple[torch.Tensor, np.ndarray]:
    """The networks' inputs for `boxes` (N, >=4) in `image`, cut as the detector cuts them; and the usable mask."""
    from ..mtcnn import face_crops, net_input

    h, w = image.shape[:2]
    out, valid = face_crops(torch.empty(0), np.zeros(len(boxes), int), boxes, size, w, h, [image.astype(np.float32)])
    return net_input(out), valid


@torch.inference_mode()
def scene_samples(nets: Nets, student: np.ndarray, teacher: np.ndarray, ratio: float,
                  rng: np.random.Generator, max_per_stage: int = 400) -> dict[str, dict[str, torch.Tensor]]:
    """Training samples of one scene: per stage ("rnet", "onet"), the student's crops of the candidate boxes and
    the teacher network's outputs on the teacher view's crops of the same boxes (`ratio`: teacher px per student px)."""
    from facenet_pytorch.models.utils import detect_face as fd

    from ..mtcnn import pnet_stage, pyramid_scales

    image = torch.from_numpy(student).permute(2, 0, 1)[None].float()
    scales = pyramid_scales(student.shape[0], student.shape[1], 12, 0.709)
    boxes, _ = pnet_stage(image, [student.astype(np.float32)], scales, nets.pnet, 0.6, torch.device("cpu"), torch.float32)
    out: dict[str, dict[str, torch.Tensor]] = {}
    for stage, size, net in (("rnet", 24, nets.rnet), ("onet", 48, nets.onet)):
        if not len(boxes):
            break
        if len(boxes) > max_per_stage:
            boxes = boxes[torch.from_numpy(np.sort(rng.choice(len(boxes), max_per_stage, replace=False)))]
        boxes = boxes[:, :4].clone()
        x_student, valid_s = crops(student, boxes, size)
        scaled = boxes * ratio
        x_teacher, valid_t = crops(teacher, scaled, size)
        both = valid_s & valid_t
        x_student = x_student[torch.from_numpy(both[valid_s])]
        x_teacher = x_teacher[torch.from_numpy(both[valid_t])]
        boxes = boxes[torch.from_numpy(both)]
        targets = net(x_teacher)
        out[stage] = {"x": x_student.to(torch.float16), "prob": targets[-1][:, 1], "reg": targets[0]}
        if stage == "onet":
            out[stage]["points"] = targets[1]
        else:  # the next stage's candidates: what the original R-net would pass on, and more (threshold 0.05)
            reg, probs = fd.fixed_batch_process(x_student, nets.rnet)  # the crops above, cut once
            keep = probs[:, 1] > 0.05
            scored = torch.cat((boxes[keep], probs[keep, 1:2]), dim=1)
            pick = fd.batched_nms(scored[:, :4], scored[:, 4], torch.zeros(len(scored)), 0.7)
            boxes = fd.rerec(fd.bbreg(scored[pick], reg[keep][pick]))
    return out


def generate(nets: Nets, faces: list[np.ndarray], scenes: int, seed: int, log: Any = None,
             crowd_share: float = 0.0) -> dict[str, dict[str, torch.Tensor]]:
    import cv2

    rng = np.random.default_rng(seed)
    parts: dict[str, list[dict[str, torch.Tensor]]] = {"rnet": [], "onet": []}
    started = time.perf_counter()
    for k in range(scenes):
        scene = make_scene(rng, faces, crowd_share)
        student, factor, _ = student_view(rng, scene)
        ratio = min(TEACHER_ZOOM, factor)
        side = int(round(student.shape[0] * ratio))
        teacher = scene if side >= scene.shape[0] else cv2.resize(scene, (side, side), interpolation=cv2.INTER_AREA)
        ratio = teacher.shape[0] / student.shape[0]
        for stage, sample in scene_samples(nets, student, teacher, ratio, rng).items():
            parts[stage].append(sample)
        if log and (k + 1) % 100 == 0:
            log(f"{k + 1} scenes, {time.perf_counter() - started:.0f} s, "
                + ", ".join(f"{s}: {sum(len(p['x']) for p in v)} crops" for s, v in parts.items()))
    return {stage: {key: torch.cat([p[key] for p in v]) for key in v[0]} for stage, v in parts.items() if v}


def pyramid(image: np.ndarray, min_face_size: int = 12, factor: float = 0.709) -> list[torch.Tensor]:
    """P-net's inputs for `image` (HxWx3 uint8): MTCNN's pyramid levels, each (1, 3, h, w) in the networks' range,
    at the detector's scales and sizes, each reduced from `image` with OpenCV's area filter (the detector's CPU path,
    :func:`jasr_video.mtcnn.pyramid_level`, reduces each level from the one before instead)."""
    import cv2

    from ..mtcnn import net_input, pyramid_scales

    h, w = image.shape[:2]
    pixels = image.astype(np.float32)
    levels = []
    for scale in pyramid_scales(h, w, min_face_size, factor):
        level = cv2.resize(pixels, (int(w * scale + 1), int(h * scale + 1)), interpolation=cv2.INTER_AREA)
        levels.append(net_input(torch.from_numpy(level).permute(2, 0, 1)[None]))
    return levels


def generate_pnet(faces: list[np.ndarray], scenes: int, seed: int, log: Any = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """P-net's training scenes: (student view, the same view clean) per scene, both uint8 at the student's size."""
    rng = np.random.default_rng(seed)
    pairs = []
    started = time.perf_counter()
    for k in range(scenes):
        clean, _ = reduce_scene(rng, make_scene(rng, faces))
        student, _ = degrade(rng, clean)
        pairs.append((student, clean))
        if log and (k + 1) % 200 == 0:
            log(f"pnet: {k + 1} scenes, {time.perf_counter() - started:.0f} s")
    return pairs


def soft_cross_entropy(prob: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Element-wise binary cross-entropy of probabilities `prob` against the teacher's probabilities `target`."""
    p = prob.clamp(1e-6, 1 - 1e-6)
    return -(target * p.log() + (1 - target) * (1 - p).log())


def pnet_loss(net: torch.nn.Module, teacher: torch.nn.Module, student: np.ndarray, clean: np.ndarray,
              face_weight: float = 1.0) -> torch.Tensor:
    """P-net on every pyramid level of the student view against facenet's P-net on the same level of the clean view:
    cross-entropy on the face probability of every window (mean over all windows, plus `face_weight` x the mean
    weighted by the teacher's probability, so that the rare face windows count more), and the box regression
    weighted by the teacher's probability; levels weigh equally."""
    total = torch.zeros(())
    levels = list(zip(pyramid(student), pyramid(clean)))
    for x, x_clean in levels:
        with torch.no_grad():
            t_reg, t_prob = teacher(x_clean)
        reg, prob = net(x)
        t = t_prob[:, 1]
        ce = soft_cross_entropy(prob[:, 1], t)
        weight = t.sum().clamp_min(1)
        total = total + ce.mean() + face_weight * (ce * t).sum() / weight + (((reg - t_reg) ** 2).sum(1) * t).sum() / weight
    return total / max(len(levels), 1)


def distil_pnet(net: torch.nn.Module, teacher: torch.nn.Module, pairs: list[tuple[np.ndarray, np.ndarray]],
                epochs: int, lr: float, seed: int, log: Any = None, batch: int = 8,
                face_weight: float = 1.0) -> list[dict[str, float]]:
    """Fit `net` (a P-net) so that it scores the student views as `teacher` scores the clean ones (:func:`pnet_loss`)."""
    torch.manual_seed(seed)
    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * max(len(pairs) // batch, 1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps)
    history = []
    for epoch in range(epochs):
        order = np.random.default_rng(seed + epoch).permutation(len(pairs))
        total = 0.0
        for start in range(0, max(len(pairs) - batch + 1, 1), batch):
            loss = sum(pnet_loss(net, teacher, *pairs[k], face_weight) for k in order[start:start + batch]) / batch
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.detach())
        record = {"net": "pnet", "epoch": epoch + 1, "loss": round(total / max(len(pairs) // batch, 1), 5)}
        history.append(record)
        if log:
            log(json.dumps(record))
    net.eval()
    return history


@torch.inference_mode()
def pnet_agreement(net: torch.nn.Module, teacher: torch.nn.Module, pairs: list[tuple[np.ndarray, np.ndarray]],
                   threshold: float = 0.6) -> dict[str, float]:
    """Over all windows of the pyramids: of the windows facenet's P-net passes (>= `threshold`) on the clean view,
    the share `net` passes on the student view; of those it does not pass, the share `net` does not pass either;
    and how many windows `net` passes per window the teacher passes (the candidates R-net gets to see)."""
    faces = kept = non_faces = rejected = passed = 0
    for student, clean in pairs:
        for x, x_clean in zip(pyramid(student), pyramid(clean)):
            t = teacher(x_clean)[1][:, 1] >= threshold
            s = net(x)[1][:, 1] >= threshold
            faces += int(t.sum())
            kept += int((s & t).sum())
            non_faces += int((~t).sum())
            rejected += int((~s & ~t).sum())
            passed += int(s.sum())
    return {"faces": faces, "non_faces": non_faces, "faces_kept": round(kept / max(faces, 1), 4),
            "non_faces_rejected": round(rejected / max(non_faces, 1), 6),
            "candidates_per_teacher_candidate": round(passed / max(faces, 1), 3)}


def distil(net: torch.nn.Module, data: dict[str, torch.Tensor], epochs: int, lr: float, seed: int,
           log: Any = None, name: str = "") -> list[dict[str, float]]:
    """Fit `net` (R-net or O-net) to the teacher's outputs: cross-entropy on the face probability, and the box
    regression (and O-net's points) weighted by the teacher's probability."""
    torch.manual_seed(seed)
    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    n = len(data["x"])
    history = []
    steps = epochs * (n // 256)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=max(steps, 1))
    for epoch in range(epochs):
        order = torch.randperm(n)
        totals = np.zeros(3)
        for start in range(0, n - 255, 256):
            idx = order[start:start + 256]
            x = data["x"][idx].float()
            outputs = net(x)
            t = data["prob"][idx]
            ce = soft_cross_entropy(outputs[-1][:, 1], t).mean()
            reg = ((outputs[0] - data["reg"][idx]) ** 2).sum(1)
            reg = (reg * t).sum() / t.sum().clamp_min(1)
            loss = ce + reg
            if "points" in data:
                pts = (((outputs[1] - data["points"][idx]) ** 2).sum(1) * t).sum() / t.sum().clamp_min(1)
                loss = loss + pts
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            totals += [float(loss.detach()), float(ce.detach()), float(reg.detach())]
        record = {"net": name, "epoch": epoch + 1, **dict(zip(("loss", "ce", "reg"), (totals / max(n // 256, 1)).round(5)))}
        history.append(record)
        if log:
            log(json.dumps(record))
    net.eval()
    return history


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jasr_video.tools.tune_detector", description=__doc__.split("\n\n")[0])
    p.add_argument("--faces", nargs="*", default=[str(SHARED / "faces68/train"), str(SHARED / "faces-utk/train")],
                   help="folders of face photos (image + .pts; the points are not used)")
    p.add_argument("--per-folder", type=int, default=1200, help="photos taken from each folder (default: 1200)")
    p.add_argument("--scenes", type=int, default=1500, help="training scenes (default: 1500)")
    p.add_argument("--pnet-scenes", type=int, default=3000, help="P-net's training scenes (default: 3000)")
    p.add_argument("--pnet-face-weight", type=float, default=1.0,
                   help="P-net: extra weight of the windows facenet's P-net scores as faces (default: 1.0)")
    p.add_argument("--val-scenes", type=int, default=150, help="held-out scenes for the validation figures (default: 150)")
    p.add_argument("--stages", nargs="+", choices=("pnet", "rnet", "onet"), default=["rnet", "onet"],
                   help="networks to tune (default: rnet onet, as the shipped mtcnn-cctv); the others keep their --init "
                        "(or facenet's) weights")
    p.add_argument("--init", default=None,
                   help="detector weights to start from (a name in models/detector or a path; default: facenet's)")
    p.add_argument("--crowd-share", type=float, default=0.0,
                   help="R-/O-net scenes: share of mosaic cells packed with 2x2 or 3x3 faces, as in a crowd "
                        "(default: 0, as the shipped mtcnn-cctv)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--out", default="runs/detector/mtcnn-cctv.pt",
                   help="weights file to write (default: runs/detector/mtcnn-cctv.pt; the detector reads shipped "
                        "weights from models/detector/, tinybench rows take any file: weights=FILE)")
    return p


def agreement(net: torch.nn.Module, data: dict[str, torch.Tensor]) -> dict[str, float]:
    """How often `net` on the student crops takes the teacher's side of 0.5, for faces and non-faces."""
    with torch.inference_mode():
        p = torch.cat([net(data["x"][k:k + 1024].float())[-1][:, 1] for k in range(0, len(data["x"]), 1024)])
    face = data["prob"] >= 0.5
    return {"faces": int(face.sum()), "non_faces": int((~face).sum()),
            "faces_kept": round(float((p[face] >= 0.5).float().mean()), 4) if face.any() else None,
            "non_faces_rejected": round(float((p[~face] < 0.5).float().mean()), 4) if (~face).any() else None}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    for folder in args.faces:
        if not Path(folder).is_dir():
            print(f"tune_detector: error: face folder not found: {folder} (give --faces DIR ...)", file=sys.stderr)
            return 2

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    rng = np.random.default_rng(args.seed)
    faces = load_faces([Path(f) for f in args.faces], args.per_folder, rng)
    try:
        nets = Nets(args.init)
    except (FileNotFoundError, ValueError, RuntimeError, KeyError) as exc:
        print(f"tune_detector: error: --init {args.init}: {exc}", file=sys.stderr)
        return 2
    report: dict[str, Any] = {"settings": vars(args), "before": {}, "after": {}, "history": []}
    if args.init:  # the figures of the stages not trained here come with their weights
        for key in ("before", "after"):
            report[key].update({k: v for k, v in nets.init_meta.get(key, {}).items() if k not in args.stages})
    if "pnet" in args.stages:
        log(f"{len(faces)} face photos; P-net: generating {args.pnet_scenes} + {args.val_scenes} scenes")
        train_pairs = generate_pnet(faces, args.pnet_scenes, args.seed + 3, log)
        val_pairs = generate_pnet(faces, args.val_scenes, args.seed + 4)
        report["before"]["pnet"] = pnet_agreement(nets.student_pnet, nets.pnet, val_pairs)
        report["history"] += distil_pnet(nets.student_pnet, nets.pnet, train_pairs, args.epochs, args.lr, args.seed, log,
                                         face_weight=args.pnet_face_weight)
        report["after"]["pnet"] = pnet_agreement(nets.student_pnet, nets.pnet, val_pairs)
        log(f"pnet: validation before {report['before']['pnet']}, after {report['after']['pnet']}")
    refine = [stage for stage in ("rnet", "onet") if stage in args.stages]
    if refine:
        log(f"{len(faces)} face photos; R-/O-net: generating {args.scenes} + {args.val_scenes} scenes")
        train_data = generate(nets, faces, args.scenes, args.seed + 1, log, args.crowd_share)
        val_data = generate(nets, faces, args.val_scenes, args.seed + 2, crowd_share=args.crowd_share)
        for stage in refine:
            net = nets.student(stage)
            report["before"][stage] = agreement(net, val_data[stage])
            report["history"] += distil(net, train_data[stage], args.epochs, args.lr, args.seed, log, stage)
            report["after"][stage] = agreement(net, val_data[stage])
            log(f"{stage}: validation before {report['before'][stage]}, after {report['after'][stage]}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**{stage: nets.student(stage).state_dict() for stage in ("pnet", "rnet", "onet")},
                "meta": {"tool": "jasr_video.tools.tune_detector", **{k: report[k] for k in ("settings", "before", "after")}}},
               out)
    out.with_suffix(".log.json").write_text(json.dumps(report, indent=1, default=str))
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
