"""`--find PHOTO`: the people in photos, described as the tracks are, and the run's tracks ranked by distance to them.

    from jasr_video.find import photo_descriptors

    photos = photo_descriptors(["suspect.jpg"], pipeline, Recognizer())    # name -> descriptor
    gallery = TrackGallery("tracks/", recognizer=recognizer, find=photos)
    ...                                                                     # run the pipeline into the gallery
    for name, ranked in gallery.matches().items():                          # nearest tracks first
        print(name, [(t.track_id, round(d, 3)) for t, d in ranked[:5]])

Each photo's face is found with the pipeline's own detector (the largest face in the photo), cut with the
pipeline's crop code at its route's size and passed through the same JASRNet routing as a track's faces; its
descriptor comes from that 128x128 face and JASRNet's 68 points, as a track's best face does. A distance below
:data:`jasr_video.identity.MATCH_THRESHOLD` is taken for one person (the threshold of ``python -m
jasr_video.tools.verifybench``; its accuracy per face size is in docs/benchmarks.md).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

SHOWN = 5  # best matches per photo in the run summary


def read_photo(path: str | Path) -> np.ndarray:
    """A photo as uint8 RGB; ValueError (one line) when it cannot be read."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"--find {path}: not a readable image (give a JPEG or PNG photo of the person)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def photo_face(image: np.ndarray, pipeline: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """The largest face of ``image`` as the pipeline makes a track's face: (128x128 face, its 68 points), or None."""
    from .route import RoutedCrops, cut_face

    dets = pipeline.detector.detect([image])[0]
    if not dets:
        return None
    det = max(dets, key=lambda d: d.size)
    route_of = getattr(pipeline.enhancer, "route", None)
    _, route, crop = cut_face(image, det.box, pipeline.margin, route_of)
    out = pipeline.enhancer(RoutedCrops.from_crops([crop], [route]) if route is not None else
                            _tensor(crop), sr=True)
    return out.sr[0], out.landmarks[0]


def _tensor(crop: np.ndarray) -> Any:
    import torch

    return torch.from_numpy(crop[None]).permute(0, 3, 1, 2).float().div_(255.0)


def photo_descriptors(paths: Sequence[str | Path], pipeline: Any, recognizer: Any) -> dict[str, np.ndarray]:
    """Photo name (its file name; repeats get their path) -> descriptor of its largest face. ValueError (one line)
    for a photo that cannot be read or shows no face."""
    out: dict[str, np.ndarray] = {}
    for path in paths:
        face = photo_face(read_photo(path), pipeline)
        if face is None:
            raise ValueError(f"--find {path}: no face found in the photo (give a photo where the face is clearly "
                             "visible, at least 20 px across)")
        name = Path(path).name if Path(path).name not in out else str(path)
        out[name] = recognizer.describe(*face)
    return out


def summary_rows(gallery: Any) -> list[tuple[str, str]]:
    """Run-summary rows: per photo its nearest tracks with their distances, and the threshold."""
    rows = []
    for name, ranked in gallery.matches().items():
        if not ranked:
            rows.append((f"find {name}", "no track has a face to compare"))
            continue
        best = ", ".join(f"#{t.track_id} {d:.3f}" + (" (same person)" if d < gallery.threshold else "")
                         for t, d in ranked[:SHOWN])
        rows.append((f"find {name}", f"nearest tracks (distance, lower is closer): {best}; below "
                     f"{gallery.threshold:.2f} the faces are taken for one person"))
    return rows
