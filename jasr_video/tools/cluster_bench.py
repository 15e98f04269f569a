"""Streams on a local Ray instance against one process (MultiStreamRunner): frames/s and bytes per frame.

    python -m jasr_video.tools.cluster_bench CLIP --streams 2 --frames 10 --replicas 1,2 --cpus 2 [--json FILE]

Model loading and actor start-up are not timed; the table is in docs/benchmarks.md ("Streams on Ray").
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Sequence

from ..cluster import RayRunner, _ray
from ..multistream import MultiStreamRunner, OutputSpec, StreamSpec


def _bench_one_process(config: Any, specs: list[StreamSpec], folder: Path) -> dict[str, Any]:
    from ..pipeline import Pipeline

    template = Pipeline(config)  # model loading is not timed
    from ..multistream import SharedModel

    runner = MultiStreamRunner(config, specs, OutputSpec(json=f"{folder}/"),
                               model=SharedModel(template.enhancer, template.detector))
    t0 = time.perf_counter()
    reports = runner.run()
    seconds = time.perf_counter() - t0
    return {"frames": sum(r.frames for r in reports), "seconds": seconds, "status": [r.status for r in reports]}


def _bench_ray(config: Any, specs: list[StreamSpec], folder: Path, replicas: int, cpus: int) -> dict[str, Any]:
    ray = _ray()
    runner = RayRunner(config, specs, OutputSpec(json=f"{folder}/"), replicas=replicas,
                       worker_cpus=cpus / (2 * len(specs)), replica_cpus=cpus / (2 * replicas))
    runner.start()
    ray.get([w.pid.remote() for w in runner.workers.values()] + [r.info.remote() for r in runner.replicas])
    t0 = time.perf_counter()  # actors started and models loaded: not timed
    reports = runner.run()
    seconds = time.perf_counter() - t0
    frames = sum(r.frames for r in reports)
    return {"frames": frames, "seconds": seconds, "status": [r.status for r in reports],
            "bytes_sent_per_frame": runner.model_stats.get("bytes_sent", 0) / max(frames, 1),
            "bytes_received_per_frame": runner.model_stats.get("bytes_received", 0) / max(frames, 1),
            "faces_per_frame": runner.model_stats.get("faces", 0) / max(frames, 1)}


def main(argv: Sequence[str] | None = None) -> int:
    """Frames/s of S streams on Ray (1..N replicas) vs one process (MultiStreamRunner), JSON output."""
    import argparse
    import tempfile

    from ..pipeline import PipelineConfig
    from ..source import open_source

    p = argparse.ArgumentParser(prog="python -m jasr_video.tools.cluster_bench",
                                description="benchmark: streams on a local Ray instance vs one process (JSON output)")
    p.add_argument("clip", help="video file; every stream reads it")
    p.add_argument("--streams", type=int, default=2, help="streams (default: 2)")
    p.add_argument("--replicas", default="1,2", help="comma list of model replica counts (default: 1,2)")
    p.add_argument("--frames", type=int, default=10, help="frames per stream (default: 10)")
    p.add_argument("--cpus", type=int, default=os.cpu_count() or 1, help="CPUs of the local Ray instance")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    config = PipelineConfig(device="cpu", max_frames=args.frames)
    specs = [StreamSpec(f"s{i}", args.clip) for i in range(args.streams)]
    src = open_source(args.clip)
    width, height = src.info.width, src.info.height
    src.close()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "one").mkdir()
        base = _bench_one_process(config, specs, Path(tmp) / "one")
        rows.append({"mode": "one process (MultiStreamRunner), torch threads 1", "replicas": 0, **base})
        if args.cpus > 1:  # the same with torch using every core
            torch.set_num_threads(args.cpus)
            (Path(tmp) / "one-all").mkdir()
            rows.append({"mode": f"one process (MultiStreamRunner), torch threads {args.cpus}", "replicas": 0,
                         **_bench_one_process(config, specs, Path(tmp) / "one-all")})
            torch.set_num_threads(1)
        ray = _ray()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        try:
            for n in [int(x) for x in args.replicas.split(",")]:
                folder = Path(tmp) / f"ray{n}"
                folder.mkdir()
                rows.append({"mode": f"Ray, {args.streams} stream actors", "replicas": n,
                             **_bench_ray(config, specs, folder, n, args.cpus)})
        finally:
            ray.shutdown()
    base_fps = rows[0]["frames"] / rows[0]["seconds"] or float("nan")
    print(f"{args.streams} streams x {args.frames} frames of {args.clip} ({width}x{height}); JSON output; "
          f"torch threads 1 per Ray actor; {args.cpus} Ray CPUs; a full frame is {width * height * 3:,} bytes")
    print("| mode | replicas | frames/s (all streams) | vs first row | bytes sent / frame | bytes back / frame |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        fps = row["frames"] / row["seconds"]
        row["fps"], row["ratio"] = fps, fps / base_fps
        sent = f"{row['bytes_sent_per_frame']:,.0f}" if "bytes_sent_per_frame" in row else "-"
        back = f"{row['bytes_received_per_frame']:,.0f}" if "bytes_received_per_frame" in row else "-"
        print(f"| {row['mode']} | {row['replicas'] or '-'} | {fps:.2f} | {row['ratio']:.2f}x | {sent} | {back} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"clip": args.clip, "width": width, "height": height,
                                               "streams": args.streams, "frames": args.frames, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
