"""Pack training faces small enough to travel to a GPU machine (whose upload limit is 64 MiB with the
checkout): each image + .pts folder is copied with its images resized so that the 1.4-margin 128 px
training crop still samples them at about 1:1 or finer, re-encoded as WebP (quality 90: about 40 dB PSNR
against the resized image, 0.6x the bytes of JPEG at that quality), and the points scaled to match.

    python scripts/pack_device_data.py ../shared/data/faces68/train .gpu/data/faces68-train --side 200
    python scripts/pack_device_data.py ../shared/data/faces-utk/train .gpu/data/utk-train --side 112

Beside PyAV (for the H.264 degradation of `scripts/h200_session.sh`'s robust runs) the faces-utk share is
smaller: `--max-faces 5000 --quality 80`.

faces68 images are 256 px with a landmark box of ~128 px (crop side 180 px): 200 px keeps the crop at 140 px.
faces-utk images are 200 px with a box of ~182 px (crop side 255 px): 112 px keeps the crop at 143 px.
The output is an ordinary folder of image + .pts pairs that `jasr-train --data / --extra-data` reads
(`tar czf` it: the .pts text compresses about 4x).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from jasr_video.model.data import find_pairs, read_pts  # noqa: E402


def write_pts(path: Path, points) -> None:
    body = "\n".join(f"{x:.2f} {y:.2f}" for x, y in points)
    path.write_text(f"version: 1\nn_points: {len(points)}\n{{\n{body}\n}}\n")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="folder of image + .pts pairs")
    p.add_argument("dest", help="output folder (created)")
    p.add_argument("--side", type=int, required=True, help="longer side of the resized images, pixels")
    p.add_argument("--quality", type=int, default=90, help="WebP quality (default 90)")
    p.add_argument("--max-faces", type=int, default=0, metavar="N",
                   help="keep N faces spread evenly over the folder's sorted list (0 = all)")
    args = p.parse_args()
    dest = Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    total = 0
    pairs = find_pairs(args.source)
    if 0 < args.max_faces < len(pairs):
        pairs = [pairs[round(i * len(pairs) / args.max_faces)] for i in range(args.max_faces)]
    for image_path, pts_path in pairs:
        image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        height, width = image.shape[:2]
        scale = args.side / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA) if scale < 1 else image
        factor = (small.shape[1] / width, small.shape[0] / height)
        points = read_pts(pts_path)
        # pixel centres: x' = (x + 0.5) * f - 0.5
        points = [((x + 0.5) * factor[0] - 0.5, (y + 0.5) * factor[1] - 0.5) for x, y in points]
        out = dest / (image_path.stem + ".webp")
        cv2.imwrite(str(out), small, [cv2.IMWRITE_WEBP_QUALITY, args.quality])
        write_pts(out.with_suffix(".pts"), points)
        total += out.stat().st_size
    print(f"{dest}: {len(list(dest.glob('*.webp')))} faces, {total / 2**20:.1f} MiB of WebP")
    return 0


if __name__ == "__main__":
    sys.exit(main())
