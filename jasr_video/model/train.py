"""`jasr-train`: train JASRNet on any folder of image + 300-W .pts faces, with periodic validation,
atomic checkpoints, resume after a kill, AMP and a device flag.

Length: one job (a training run: its data, loop, validation, checkpoints and command line) in one file, so that a
recipe reads top to bottom."""
from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .checkpoint import read_checkpoint, save_checkpoint
from .config import (ABLATIONS, ADDED_PARTS, HR_SIZE, LANDMARK_PARTS, PRESETS, SR_FACTORS, TRAIN_ONLY, TRAINED_PARTS,
                     ModelConfig, TrainConfig, from_dict, model_config, to_dict)
from .data import FaceDataset, find_pairs, lr_inputs
from .degradations import TRAIN as TRAIN_DEGRADATION
from .degradations import DegradationConfig, degrade_batch, sample_params, with_clean_probability
from .evaluate import evaluate
from .landmarks import gaussian_heatmaps, pixels_to_cells
from .network import JASRNet, JASROutput, count_parameters


def jasr_loss(
    out: JASROutput, hr: torch.Tensor, landmarks: torch.Tensor, visible: torch.Tensor, config: ModelConfig,
    alpha: float, sigma: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 1: L1(SR, HR) + alpha * sum over stages of the L2 heatmap loss (invisible points masked). Targets
    are Gaussians of `sigma` cells at each stage's heatmap side."""
    terms: dict[str, float] = {}
    total = hr.new_zeros(())
    if out.sr is not None:
        sr_loss = F.l1_loss(out.sr.float(), hr)
        total = total + sr_loss
        terms["sr"] = float(sr_loss.detach())
    if out.heatmaps:
        mask = torch.ones(hr.shape[0], config.heatmap_channels, device=hr.device)
        mask[:, : config.num_landmarks] = visible
        targets: dict[int, torch.Tensor] = {}  # one target per heatmap side (16 for the CPM stages, 32 refine)
        for h in out.heatmaps:
            side = h.shape[-1]
            if side not in targets:
                targets[side] = gaussian_heatmaps(pixels_to_cells(landmarks, hr.shape[-1] // side), side, sigma,
                                                  config.background_channel)
        heat_loss = sum(((h.float() - targets[h.shape[-1]]) ** 2).sum(dim=(2, 3)).mul(mask).mean()
                        for h in out.heatmaps)
        total = total + alpha * heat_loss
        terms["heatmap"] = float(heat_loss.detach())
    terms["total"] = float(total.detach())
    return total, terms


def split_pairs(pairs: list, fraction: float, seed: int) -> tuple[list, list]:
    """Deterministic train / validation split of one folder's pairs."""
    order = np.random.default_rng(seed).permutation(len(pairs))
    n_val = max(1, int(round(fraction * len(pairs)))) if fraction > 0 else 0
    val = [pairs[i] for i in sorted(order[:n_val])]
    train = [pairs[i] for i in sorted(order[n_val:])]
    return train, val


def training_loader(dataset: Any, batch_size: int, generator: torch.Generator, workers: int, collate: Any,
                    drop_last: bool = True, pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """The training batches: shuffled by `generator`, made by `collate` in `workers` forked processes (0: here).

    With workers, OpenCV's thread pool is stopped first (its functions run on one thread in this process from then
    on): a forked worker inherits the pool's state without its threads, and its first parallel OpenCV call (the
    degradations' blurs) or any change of the pool waits for them for ever, once this process has run a parallel
    OpenCV function (a large warp, a validation pass)."""
    if workers:
        cv2.setNumThreads(0)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=drop_last,
                                       generator=generator, num_workers=workers,
                                       worker_init_fn=_seed_worker if workers else None, collate_fn=collate,
                                       pin_memory=pin_memory, persistent_workers=False)


class TrainingFaces(torch.utils.data.ConcatDataset):
    """The training folder's faces followed by those of the extra folders, one augmentation stream each."""

    def reseed(self, seed: Any) -> None:
        for k, part in enumerate(self.datasets):
            part.rng = np.random.default_rng([*np.atleast_1d(seed).tolist(), k] if k else seed)


def _seed_worker(worker_id: int) -> None:
    info = torch.utils.data.get_worker_info()
    info.dataset.reseed(torch.initial_seed() % 2**32)


class TrainingBatches:
    """The data loader's ``collate_fn``: stacks the faces and makes the network inputs — each face reduced to a
    random size in `sizes` (inclusive), CCTV-degraded as `degradation` says when one is given (clean bicubic
    otherwise). It runs where the batch is built: in the data-loader workers when there are any (``--workers``),
    so the degradations (blur, noise, JPEG, libx264 on the CPU) overlap the optimiser steps instead of stalling
    them. In the main process the sizes and degradations come from `seed`'s stream; in a worker from the
    worker's seed (set by the loader's generator, so a run repeats itself). Returns (inputs, hr, landmarks,
    visible); `hr` is the SR target (a degraded face's colour cast included)."""

    def __init__(self, sizes: tuple[int, int], degradation: DegradationConfig | None, seed: Any) -> None:
        self.sizes, self.degradation = sizes, degradation
        self.rng = np.random.default_rng(seed)
        self._worker_seed: int | None = None

    def __call__(self, items: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
        info = torch.utils.data.get_worker_info()
        if info is not None and info.seed != self._worker_seed:  # a (new) worker: its own stream
            self._worker_seed = info.seed
            self.rng = np.random.default_rng([info.seed % 2**63, 2])
        hr, landmarks, visible = torch.utils.data.default_collate(items)
        sizes = self.rng.integers(self.sizes[0], self.sizes[1] + 1, size=hr.shape[0])
        if self.degradation is None:
            return lr_inputs(hr, sizes), hr, landmarks, visible
        params = [sample_params(self.rng, self.degradation) for _ in range(hr.shape[0])]
        inputs, hr, _ = degrade_batch(hr, sizes, params)
        return inputs, hr, landmarks, visible


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jasr-train", description="Train JASRNet (joint x8 / x4 / x2 face SR + 68 landmarks).")
    p.add_argument("--data", required=True, help="training folder of image + .pts pairs (e.g. ../shared/data/faces68/train); "
                                                 "the validation faces are held out from it")
    p.add_argument("--extra-data", action="append", default=[], metavar="FOLDER",
                   help="more training faces (image + .pts), e.g. ../shared/data/faces-utk/train; repeatable; "
                        "never used for validation; crops padded by edge replication")
    p.add_argument("--extra-landmark-weight", type=float, default=TrainConfig().extra_landmark_weight,
                   help="heatmap-loss weight of the extra faces' points (machine-made points: < 1; 0 = SR only)")
    p.add_argument("--data-repeat", type=int, default=1, metavar="N",
                   help="count each --data training face N times per epoch (weighs human labels against --extra-data)")
    p.add_argument("--degrade", type=float, default=0.0, metavar="SHARE",
                   help="share of training faces degraded as CCTV does (blur, noise, JPEG / H.264, kernels, colour "
                        "casts; jasr_video/model/degradations.py); the rest keep the paper's clean protocol (default 0)")
    p.add_argument("--out", default="runs/jasr", help="run folder: checkpoints (last.pt, best.pt) and log.jsonl")
    p.add_argument("--preset", default="paper", choices=sorted(PRESETS), help="model size (default: paper)")
    p.add_argument("--ablation", choices=sorted(ABLATIONS), help="ablation variant of Tables 4-5")
    p.add_argument("--width", type=int, help="override: channels")
    p.add_argument("--feature-blocks", type=int, help="override: T residual blocks at 16x16")
    p.add_argument("--encoder-blocks", type=int, help="override: residual blocks per encoder level")
    defaults = TrainConfig()
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--milestones", type=int, nargs="*", default=list(defaults.lr_milestones), help="epochs where lr is multiplied by --gamma")
    p.add_argument("--gamma", type=float, default=defaults.lr_gamma)
    p.add_argument("--time-budget", type=float, default=0.0, metavar="MINUTES",
                   help="train for this much wall time with a cosine lr decay, then stop (for fixed compute leases)")
    p.add_argument("--sr-factor", type=int, choices=sorted(SR_FACTORS), default=8,
                   help="upscale factor: 8 (16 px faces), 4 (32 px) or 2 (64 px) -> 128 px (default 8)")
    p.add_argument("--lr-sizes", type=int, nargs=2, metavar=("MIN", "MAX"),
                   help="reduce each training face to a random side in [MIN, MAX] px (default: the factor's "
                        "nominal side only); the network input is always that face bicubic-upsampled to 128")
    p.add_argument("--init", metavar="WEIGHTS", help="start from these weights (name or path; their config is used)")
    p.add_argument("--detail-head", type=int, default=0, metavar="WIDTH",
                   help="add a full-resolution detail head of WIDTH channels to the network (or to the --init "
                        "weights, which then keep their output until it trains; default 0 = none)")
    p.add_argument("--detail-layers", type=int, default=ModelConfig().detail_layers, help="3x3 convs of the detail head")
    p.add_argument("--refine-blocks", type=int, default=0, metavar="N",
                   help="add a last alignment stage at 32x32 with N residual blocks (landmarks in 4 px cells, not 8) "
                        "to the network or to the --init weights (default 0 = none)")
    p.add_argument("--train-only", choices=TRAIN_ONLY, default="all",
                   help="detail: train the detail head only, every other weight frozen (landmarks unchanged; the "
                        "best checkpoint is picked by validation PSNR); refine: the 32x32 stage only; align: the "
                        "alignment branch (CPM stages and refine stage; the shared encoder frozen). refine and align "
                        "leave the SR image unchanged and train without the SR branch (landmark loss only)")
    p.add_argument("--alpha", type=float, default=defaults.alpha, help="heatmap loss weight")
    p.add_argument("--sigma", type=float, default=defaults.heatmap_sigma, help="heatmap Gaussian sigma (cells)")
    p.add_argument("--rotation", type=float, default=defaults.aug_rotation, help="rotation augmentation, +- degrees")
    p.add_argument("--rotation-upright", type=float, default=defaults.aug_rotation_upright, metavar="SHARE",
                   help="share of faces rotated within +-15 deg only, the rest within +- --rotation deg (default 0)")
    p.add_argument("--aug-scale", type=float, default=defaults.aug_scale, help="random crop scale, +- fraction")
    p.add_argument("--aug-shift", type=float, default=defaults.aug_shift, help="random crop shift, +- fraction of the side")
    p.add_argument("--margin", type=float, default=defaults.crop_margin, help="crop side / landmark box side")
    p.add_argument("--val-fraction", type=float, default=defaults.val_fraction)
    p.add_argument("--limit", type=int, default=0, help="use only the first N faces of --data (0 = all)")
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many optimiser steps (0 = no limit)")
    p.add_argument("--val-every", type=int, default=1, help="validate every N epochs")
    p.add_argument("--warmup-steps", type=int, default=0, help="raise lr linearly over the first N steps (fine-tunes)")
    p.add_argument("--val-every-steps", type=int, default=0, help="also validate every N optimiser steps (0 = off)")
    p.add_argument("--log-every", type=int, default=20, help="append the training loss to log.jsonl every N steps")
    p.add_argument("--checkpoint-minutes", type=float, default=5.0, help="save last.pt at most this often (always at the end)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--amp", action="store_true", help="mixed precision (fp16 on CUDA, bf16 on CPU)")
    p.add_argument("--workers", type=int, default=0, help="data-loader worker processes")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = torch default)")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--no-resume", action="store_true", help="start afresh even if OUT/last.pt exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


@dataclass(frozen=True)
class TrainRun:
    """Where a training run reads and writes and how it runs; the hyper-parameters are a TrainConfig."""

    data: str  # folder of image + .pts pairs; the validation faces are held out from it
    out: str = "runs/jasr"  # run folder: last.pt, best.pt, log.jsonl
    extra_data: tuple[str, ...] = ()  # more training folders (never validation), edge-padded crops
    data_repeat: int = 1  # each `data` training face counted this many times per epoch
    init: str | None = None  # start from these weights (name or path; their model config is used)
    limit: int = 0  # first N faces of `data` only (0 = all)
    max_steps: int = 0  # stop after this many optimiser steps (0 = no limit)
    warmup_steps: int = 0  # linear lr warm-up
    val_every: int = 1  # validate every N epochs
    val_every_steps: int = 0  # and every N steps (0 = off)
    log_every: int = 20  # training loss to log.jsonl every N steps
    checkpoint_minutes: float = 5.0  # last.pt at most this often (always at the end)
    device: str = "auto"
    amp: bool = False
    workers: int = 0
    threads: int = 0  # torch CPU threads (0 = torch default)
    resume: bool = True  # continue from out/last.pt when it exists
    quiet: bool = False


def configs_from_args(args: argparse.Namespace) -> tuple[TrainConfig, TrainRun, ModelConfig]:
    """The parsed `jasr-train` command line as (hyper-parameters, run settings, architecture)."""
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         lr_milestones=tuple(args.milestones) if not args.time_budget else (),
                         lr_gamma=args.gamma, time_budget_minutes=args.time_budget, alpha=args.alpha,
                         heatmap_sigma=args.sigma, crop_margin=args.margin, val_fraction=args.val_fraction,
                         seed=args.seed, lr_size=SR_FACTORS[args.sr_factor],
                         lr_size_range=tuple(args.lr_sizes) if args.lr_sizes else (),
                         aug_rotation=args.rotation, aug_rotation_upright=args.rotation_upright,
                         aug_scale=args.aug_scale, aug_shift=args.aug_shift, degradation=args.degrade,
                         extra_landmark_weight=args.extra_landmark_weight, train_only=args.train_only)
    run = TrainRun(data=args.data, out=args.out, extra_data=tuple(args.extra_data), data_repeat=args.data_repeat,
                   init=args.init, limit=args.limit, max_steps=args.max_steps, warmup_steps=args.warmup_steps,
                   val_every=args.val_every, val_every_steps=args.val_every_steps, log_every=args.log_every,
                   checkpoint_minutes=args.checkpoint_minutes, device=args.device, amp=args.amp,
                   workers=args.workers, threads=args.threads, resume=not args.no_resume, quiet=args.quiet)
    architecture = model_config(args.preset, args.ablation, width=args.width, feature_blocks=args.feature_blocks,
                                encoder_blocks=args.encoder_blocks,
                                detail_width=args.detail_head or None, detail_layers=args.detail_layers,
                                refine_blocks=args.refine_blocks or None)
    return config, run, architecture


def train(config: TrainConfig, run: TrainRun, architecture: ModelConfig | None = None,
          console: Console | None = None) -> dict[str, Any]:
    """Train JASRNet with hyper-parameters `config` as `run` says; returns the final metadata.

    `architecture`: the network to build (default: preset `paper`); ignored when `run.init` gives weights
    (their config is used) or when resuming from `run.out`/last.pt (its config and hyper-parameters are
    used, with `config.epochs`).
    """
    from .inference import pick_device

    console = console or Console(stderr=True)
    device = pick_device(run.device)
    if run.threads:
        torch.set_num_threads(run.threads)
    out = Path(run.out)
    out.mkdir(parents=True, exist_ok=True)
    last_path, best_path, log_path = out / "last.pt", out / "best.pt", out / "log.jsonl"

    resume = read_checkpoint(last_path) if run.resume and last_path.exists() else None
    init = None
    if resume:
        mconf = from_dict(ModelConfig, resume["model_config"])
        tconf = from_dict(TrainConfig, resume["meta"]["train_config"])
        tconf = replace(tconf, epochs=config.epochs)
        console.print(f"resuming {last_path}: epoch {resume['meta']['epoch']}, batch {resume['meta']['batches_done']}")
    else:
        init = read_checkpoint(run.init) if run.init else None
        mconf = from_dict(ModelConfig, init["model_config"]) if init else (architecture or ModelConfig())
        if init and architecture:  # parts the command line adds to the --init weights
            for part_fields in ADDED_PARTS.values():
                if getattr(architecture, part_fields[0]) and not getattr(mconf, part_fields[0]):
                    mconf = replace(mconf, **{name: getattr(architecture, name) for name in part_fields})
        tconf = config
    if tconf.train_only == "detail" and not mconf.detail_width:
        raise ValueError("--train-only detail needs a detail head: add --detail-head WIDTH")
    if tconf.train_only == "refine" and not (mconf.refine_blocks and mconf.does_align):
        raise ValueError("--train-only refine needs a joint network with a refine stage: add --refine-blocks N")
    if tconf.train_only == "align" and not mconf.does_align:
        raise ValueError("--train-only align needs a network that finds landmarks (not an SR-only ablation)")
    torch.manual_seed(tconf.seed)

    pairs = find_pairs(run.data)
    if run.limit:
        pairs = pairs[: run.limit]
    train_pairs, val_pairs = split_pairs(pairs, tconf.val_fraction, tconf.seed)
    augmentation = dict(augment=True, aug_scale=tconf.aug_scale, aug_rotation=tconf.aug_rotation,
                        aug_shift=tconf.aug_shift, aug_flip=tconf.aug_flip, aug_rotation_upright=tconf.aug_rotation_upright)
    parts = [FaceDataset(train_pairs, tconf.crop_margin, seed=tconf.seed, **augmentation)] * max(1, run.data_repeat)
    for k, folder in enumerate(run.extra_data):
        parts.append(FaceDataset(find_pairs(folder), tconf.crop_margin, seed=tconf.seed + 1 + k, border="edge",
                                 landmark_weight=tconf.extra_landmark_weight, **augmentation))
    train_set = TrainingFaces(parts)
    val_set = FaceDataset(val_pairs, tconf.crop_margin) if val_pairs else None

    model = JASRNet(mconf)
    if not resume and init:
        missing, unexpected = model.load_state_dict({k: v.float() for k, v in init["state_dict"].items()}, strict=False)
        if unexpected or any(not key.startswith(tuple(f"{part}." for part in ADDED_PARTS)) for key in missing):
            raise ValueError(f"{run.init}: weights do not fit the network (missing {missing[:3]}, unexpected {unexpected[:3]})")
    if tconf.train_only != "all":
        model.requires_grad_(False)
        for part in TRAINED_PARTS[tconf.train_only]:
            if hasattr(model, part):
                getattr(model, part).requires_grad_(True)
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=tconf.lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(tconf.lr_milestones), tconf.lr_gamma)
    amp_dtype = torch.bfloat16
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        amp_dtype = torch.float16
    scaler = torch.amp.GradScaler(device.type, enabled=run.amp and amp_dtype == torch.float16)
    epoch, batches_done, step, best = 0, 0, 0, None
    elapsed_before = 0.0
    if resume:
        model.load_state_dict(resume["state_dict"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        if "scaler" in resume:
            scaler.load_state_dict(resume["scaler"])
        meta = resume["meta"]
        epoch, batches_done, step, best = meta["epoch"], meta["batches_done"], meta["step"], meta.get("best")
        elapsed_before = meta.get("train_seconds", 0.0)
        train_set.reseed([tconf.seed, epoch, batches_done])

    data_info = {"folder": str(Path(run.data).resolve()), "train_faces": len(train_pairs), "val_faces": len(val_pairs)}
    if run.extra_data:
        data_info["extra"] = [{"folder": str(Path(f).resolve()), "faces": len(d)}
                              for f, d in zip(run.extra_data, parts[max(1, run.data_repeat):])]
        data_info["data_repeat"] = max(1, run.data_repeat)
    if init:
        kept = ("epoch", "step", "data", "train_seconds")
        data_info["initialised_from"] = {"weights": str(run.init), "meta": {k: init["meta"].get(k) for k in kept}}
    elif resume and "initialised_from" in resume["meta"].get("data", {}):
        data_info["initialised_from"] = resume["meta"]["data"]["initialised_from"]
    size_low, size_high = tconf.training_lr_sizes()
    console.print(f"JASRNet x{tconf.sr_factor} ({size_low}-{size_high} px faces -> {HR_SIZE} px), "
                  f"{count_parameters(model) / 1e6:.2f} M parameters on {device}; "
                  f"{len(train_set)} training faces, {len(val_pairs)} validation faces"
                  + (f", {tconf.degradation:.0%} CCTV-degraded" if tconf.degradation else ""))
    started = time.perf_counter()

    def metadata(metrics: dict | None = None) -> dict[str, Any]:
        return {"epoch": epoch, "batches_done": batches_done, "step": step, "best": best,
                "train_config": to_dict(tconf), "sr_factor": tconf.sr_factor, "lr_size": tconf.lr_size,
                "lr_size_range": list(tconf.training_lr_sizes()), "data": data_info, "metrics": metrics,
                "train_seconds": elapsed_before + time.perf_counter() - started, "device": str(device),
                "torch": torch.__version__}

    def save_last(metrics: dict | None = None) -> None:
        save_checkpoint(last_path, model, metadata(metrics), optimizer=optimizer.state_dict(),
                        scheduler=scheduler.state_dict(), scaler=scaler.state_dict())

    def budget_fraction() -> float:
        return (elapsed_before + time.perf_counter() - started) / (tconf.time_budget_minutes * 60)

    def validate() -> dict | None:
        nonlocal best
        if val_set is None:
            return None
        metrics = evaluate(model, val_set, device, lr_size=tconf.lr_size)["summary"]
        key = metrics.get("model", {}).get("nme_percent")
        score = key if key is not None and tconf.train_only != "detail" else -metrics["model"]["psnr_y_face"]
        log({"epoch": epoch, "step": step, "val": metrics, "seconds": elapsed_before + time.perf_counter() - started})
        console.print(f"epoch {epoch}: val {json.dumps(metrics)}")
        if best is None or score < best:
            best = score
            save_checkpoint(best_path, model, metadata(metrics))
        return metrics

    def log(record: dict[str, Any]) -> None:
        with log_path.open("a") as f:
            f.write(json.dumps(record) + "\n")

    batches_per_epoch = max(1, len(train_set) // tconf.batch_size)
    collate = TrainingBatches((size_low, size_high), with_clean_probability(TRAIN_DEGRADATION, 1 - tconf.degradation)
                              if tconf.degradation else None, [tconf.seed, epoch, batches_done, 2])
    last_save = time.perf_counter()
    stop = False
    with Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn(), TimeRemainingColumn(),
                  console=console, disable=run.quiet) as progress:
        task = progress.add_task("train", total=batches_per_epoch, epoch=epoch, loss=0.0)
        while epoch < tconf.epochs and not stop:
            model.train()
            generator = torch.Generator().manual_seed(tconf.seed * 1000 + epoch)
            loader = training_loader(train_set, tconf.batch_size, generator, run.workers, collate,
                                     pin_memory=device.type == "cuda")
            progress.update(task, completed=batches_done, epoch=epoch)
            running: list[float] = []
            for inputs, hr, landmarks, visible in itertools.islice(loader, batches_done, None):
                if tconf.time_budget_minutes:
                    fraction = budget_fraction()
                    if fraction >= 1:
                        stop = True
                        break
                    for group in optimizer.param_groups:
                        group["lr"] = tconf.lr * 0.5 * (1 + math.cos(math.pi * fraction))
                if run.warmup_steps and step < run.warmup_steps:
                    for group in optimizer.param_groups:
                        group["lr"] = (group["lr"] if tconf.time_budget_minutes else tconf.lr) * (step + 1) / run.warmup_steps
                inputs, hr, landmarks, visible = (t.to(device, non_blocking=True)
                                                  for t in (inputs, hr, landmarks, visible))
                if device.type == "cuda":
                    inputs = inputs.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=run.amp):
                    out = model(inputs, sr=tconf.train_only not in LANDMARK_PARTS)
                loss, terms = jasr_loss(out, hr, landmarks, visible, mconf, tconf.alpha, tconf.heatmap_sigma)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                step += 1
                batches_done += 1
                running.append(terms["total"])
                progress.update(task, advance=1, loss=float(np.mean(running[-50:])))
                if step % run.log_every == 0:
                    log({"step": step, "epoch": epoch, "lr": optimizer.param_groups[0]["lr"], **terms,
                         "seconds": elapsed_before + time.perf_counter() - started})
                if run.max_steps and step >= run.max_steps:
                    stop = True
                    break
                if run.val_every_steps and step % run.val_every_steps == 0:
                    save_last(validate())
                    last_save = time.perf_counter()
                    model.train()
                if time.perf_counter() - last_save > run.checkpoint_minutes * 60:
                    save_last()
                    last_save = time.perf_counter()
            if stop:
                break
            epoch += 1
            batches_done = 0
            scheduler.step()
            metrics = None
            if epoch % run.val_every == 0 or epoch == tconf.epochs:
                metrics = validate()
            if epoch == tconf.epochs or time.perf_counter() - last_save > run.checkpoint_minutes * 60:
                save_last(metrics)
                last_save = time.perf_counter()
    if stop:
        # A spent time budget ends training: validate the final weights too.
        save_last(validate() if tconf.time_budget_minutes else None)
    return metadata()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        meta = train(*configs_from_args(args))
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"jasr-train: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("jasr-train: interrupted; resume by running the same command again", file=sys.stderr)
        return 130
    print(json.dumps({k: meta[k] for k in ("epoch", "step", "best", "train_seconds")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
