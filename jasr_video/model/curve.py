"""Print a training run's validation curve (from its log.jsonl) as a Markdown table.

    python -m jasr_video.model.curve runs/cpu/log.jsonl --every 3
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def validation_rows(log: Path) -> list[dict]:
    """One row per validation record: epoch, step, wall time, PSNR gain over bicubic, NME."""
    rows = []
    for line in log.read_text().splitlines():
        record = json.loads(line)
        if "val" not in record:
            continue
        val = record["val"]
        rows.append({"epoch": record["epoch"], "step": record["step"], "minutes": record["seconds"] / 60,
                     "psnr_gain_db": val["model"]["psnr_y_face"] - val["bicubic"]["psnr_y_face"],
                     "nme_percent": val["model"].get("nme_percent")})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jasr_video.model.curve", description=__doc__.split("\n\n")[0])
    parser.add_argument("log", type=Path, help="a run's log.jsonl")
    parser.add_argument("--every", type=int, default=1, help="show every N-th validation (the last always)")
    args = parser.parse_args(argv)
    if not args.log.is_file():
        print(f"curve: error: {args.log} not found; give a training run's log.jsonl", file=sys.stderr)
        return 2
    rows = validation_rows(args.log)
    print("| epoch | step | minutes | val PSNR gain over bicubic (dB) | val NME (%) |")
    print("|---:|---:|---:|---:|---:|")
    for i, row in enumerate(rows):
        if i % args.every == args.every - 1 or i == len(rows) - 1:
            print(f"| {row['epoch']} | {row['step']} | {row['minutes']:.1f} | {row['psnr_gain_db']:+.2f} | "
                  f"{row['nme_percent']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
