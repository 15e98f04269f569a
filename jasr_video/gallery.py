"""One result per person: per track, its best face and a summary (tracks.csv / tracks.jsonl).

    from jasr_video.gallery import TrackGallery

    gallery = TrackGallery("tracks/")                 # or TrackGallery() to keep it in memory only
    for result in pipeline.run("clip.mp4"):
        gallery.write(result)
    for t in gallery.tracks():                        # the same summary as tracks.csv, as TrackSummary objects
        print(t.track_id, t.first_frame, t.last_frame, t.best.frame)
    gallery.close()                                   # writes the PNGs, tracks.csv and tracks.jsonl

Best face: the face of the track with the highest :func:`quality`, which weighs its mean landmark
confidence, its size (up to 64 px) and its sharpness (variance of the Laplacian of the native crop), and
counts a Kalman-predicted box (no detection on that frame) or a face at the frame edge for less.
Each track's best face is written as ``track_NNNN_sr.png`` (the 128x128 super-resolved face; where the
crop reached past the frame edge that part is flat grey) and ``track_NNNN_native.png`` (the same square
crop at the frame's own resolution, grey outside the frame).

Fused face (``fuser``, a :class:`~jasr_video.fusion.TrackFuser`): the gallery also keeps each track's ``keep``
best frames (their LR faces, landmarks and quality; :class:`~jasr_video.fusion.FrameKeeper`, so memory is
bounded per track) and at ``close`` fuses them into ``track_NNNN_fused.png`` (128x128, in the best frame's
crop) with its 68 landmarks (tracks.jsonl); tracks.csv / tracks.jsonl name the frames fused, or say
"single frame" and why (too few usable frames: the fused face is then the best frame's own SR face).
With a fuser the run's per-frame passes may skip SR (``PipelineConfig.sr_faces`` off, landmarks only): each
best face then gets its SR face at ``close``, from the kept LR face of its frame ("SR on demand").

Filters (:class:`~jasr_video.filters.OutputFilter`): faces failing its per-face rules are not counted;
tracks kept on fewer than ``min_track_frames`` frames are left out of every per-track output.

Identity (``recognizer``, a :class:`jasr_video.identity.Recognizer`): each track's ``descriptor`` (128 numbers) from
its best face (the super-resolved face, else the native crop, aligned by its own 68 points) goes to tracks.jsonl;
``find`` (photo name -> descriptor, :func:`jasr_video.find.photo_descriptors`) ranks the tracks by distance to those
people: :meth:`TrackGallery.matches` per photo, and tracks.csv / tracks.jsonl nearest first with ``find_photo``,
``find_distance``, ``find_rank`` and ``find_same`` (distance below the threshold).

``python -m jasr_video.tools.best_face --sheets DIR VIDEO`` writes one contact sheet per track (every frame's native
crop, numbered) for picking best faces by eye; ``--compare PICKS.json`` measures how often the automatic pick
agrees with such picks (docs/benchmarks.md).
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from .fusion import DEFAULT_KEEP, FrameKeeper, FusedFace, KeptFrame
from .layout import OUTSIDE_GREY, mask_outside

CSV_FIELDS = ("track_id", "first_frame", "last_frame", "first_pts", "last_pts", "frames", "detected_share",
              "mean_face_px", "mean_score", "mean_landmark_conf", "best_frame", "best_pts", "best_face_px",
              "best_quality", "at_edge_share", "sr_png", "native_png", "fused_png", "fused_method",
              "fused_frames", "fused_note")
FIND_FIELDS = ("find_rank", "find_photo", "find_distance", "find_same")


def native_crop(image: np.ndarray, crop: Any) -> np.ndarray:
    """The face's square crop at the frame's resolution (side rounded up), grey outside the frame."""
    n = int(np.clip(np.ceil(crop.side), 4, 1024))
    zoom = n / crop.side
    c = (n - 1) / 2
    m = np.array([[zoom, 0.0, c - zoom * crop.cx], [0.0, zoom, c - zoom * crop.cy]])
    return cv2.warpAffine(image, m, (n, n), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=OUTSIDE_GREY)


def sharpness(native: np.ndarray) -> float:
    """Variance of the Laplacian of the crop's central half (the face, without the background margin)."""
    n = native.shape[0]
    a, b = n // 4, n - n // 4
    grey = cv2.cvtColor(native[a:b, a:b], cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var()) if grey.size else 0.0


def quality(face_px: float, landmark_conf: float, sharp: float, detected: bool = True, at_edge: bool = False) -> float:
    """How good a face is as the one picture of its person (higher is better).

    Mostly the mean landmark confidence (it drops when the face turns away, is occluded or blurred), plus a
    little for size (up to 64 px) and for sharpness (saturating early: it only marks down very blurred crops,
    as occluding hands and clutter also raise the Laplacian); less for a Kalman-predicted box or an edge face.
    """
    q = landmark_conf + 0.1 * min(face_px / 64.0, 1.0) + 0.05 * sharp / (sharp + 50.0)
    return q - (0.0 if detected else 0.1) - (0.2 if at_edge else 0.0)


@dataclass
class BestFace:
    frame: int
    pts: float | None
    quality: float
    face_px: float
    landmark_conf: float
    sharpness: float
    sr: np.ndarray | None = field(repr=False)  # 128x128 RGB, grey where the crop was outside the frame; None: no SR faces
    native: np.ndarray = field(repr=False)  # native-resolution crop, RGB
    points: np.ndarray | None = field(default=None, repr=False)  # the 68 raw landmarks in the 128x128 crop's pixels

    def face(self) -> tuple[np.ndarray, np.ndarray]:
        """The face to describe (128x128: the SR face, else the native crop resized) and its 68 points there."""
        img = self.sr if self.sr is not None else cv2.resize(self.native, (128, 128), interpolation=cv2.INTER_AREA)
        return img, self.points


@dataclass
class TrackSummary:
    """One person (track): when it was seen, how well, and its best face."""

    track_id: int
    first_frame: int
    last_frame: int
    first_pts: float | None
    last_pts: float | None
    frames: int = 0  # frames the face was written on (after the per-face filters)
    detected: int = 0  # of them, frames with a real detection (not a Kalman prediction)
    at_edge: int = 0
    sum_face_px: float = 0.0
    sum_score: float = 0.0
    sum_conf: float = 0.0
    best: BestFace | None = None
    sr_png: str = ""  # file names in the gallery folder, once written ("" for sr_png: the run computed no SR faces)
    native_png: str = ""
    descriptor: np.ndarray | None = field(default=None, repr=False)  # identity of the best face (jasr_video.identity)
    match: tuple[int, str, float, bool] | None = None  # with ``find``: (rank, nearest photo, distance, below threshold)
    fused: FusedFace | None = None  # the fused face (TrackGallery with a fuser, after close)
    fused_png: str = ""

    @property
    def detected_share(self) -> float:
        return self.detected / self.frames if self.frames else 0.0

    def row(self) -> dict[str, Any]:
        n = max(self.frames, 1)
        b = self.best
        return {
            "track_id": self.track_id, "first_frame": self.first_frame, "last_frame": self.last_frame,
            "first_pts": None if self.first_pts is None else round(self.first_pts, 3),
            "last_pts": None if self.last_pts is None else round(self.last_pts, 3),
            "frames": self.frames, "detected_share": round(self.detected_share, 3),
            "mean_face_px": round(self.sum_face_px / n, 1), "mean_score": round(self.sum_score / n, 4),
            "mean_landmark_conf": round(self.sum_conf / n, 3),
            "best_frame": b.frame if b else None, "best_pts": None if b is None or b.pts is None else round(b.pts, 3),
            "best_face_px": round(b.face_px, 1) if b else None, "best_quality": round(b.quality, 3) if b else None,
            "at_edge_share": round(self.at_edge / n, 3), "sr_png": self.sr_png, "native_png": self.native_png,
            "fused_png": self.fused_png, "fused_method": self.fused.method if self.fused else "",
            "fused_frames": ";".join(str(f) for f in self.fused.frames) if self.fused else "",
            "fused_note": self.fused.note if self.fused else "",
            **({} if self.match is None else dict(zip(FIND_FIELDS, (self.match[0], self.match[1],
                                                                   round(self.match[2], 4), self.match[3])))),
            **({} if self.descriptor is None else {"descriptor": np.round(self.descriptor.astype(np.float64), 5).tolist()}),
        }


class TrackGallery:
    """A sink collecting per-track summaries and best faces; ``close`` writes them to ``folder`` (if given)."""

    def __init__(self, folder: str | Path | None = None, output_filter: Any = None, recognizer: Any = None,
                 find: dict[str, np.ndarray] | None = None, threshold: float | None = None, fuser: Any = None,
                 keep: int = DEFAULT_KEEP) -> None:
        self.folder = Path(folder) if folder is not None else None
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        self.filter = output_filter
        self.min_track_frames = getattr(output_filter, "min_track_frames", 1)
        self._tracks: dict[int, TrackSummary] = {}
        self._closed = False
        self.recognizer = recognizer
        self.find = dict(find or {})
        if threshold is None:
            from .identity import MATCH_THRESHOLD as threshold
        self.threshold = float(threshold)
        self.fuser = fuser
        self.keeper = FrameKeeper(keep) if fuser is not None else None
        self._frame_size = (0, 0)

    def write(self, result: Any) -> None:
        h, w = result.image.shape[:2]
        self._frame_size = (w, h)
        faces = list(result.faces) + list(getattr(result, "hidden_faces", ()))
        for face in faces:
            if self.filter is not None and self.filter.face_reason(face) is not None:
                continue
            t = self._tracks.get(face.track_id)
            if t is None:
                t = self._tracks[face.track_id] = TrackSummary(face.track_id, result.index, result.index,
                                                               result.pts, result.pts)
            t.last_frame, t.last_pts = result.index, result.pts
            conf = float(np.mean(face.landmark_confidence))
            edge = bool(getattr(face, "at_edge", False))
            t.frames += 1
            t.detected += bool(face.detected)
            t.at_edge += edge
            t.sum_face_px += float(face.face_px)
            t.sum_score += float(face.score)
            t.sum_conf += conf
            native = native_crop(result.image, face.crop)
            sharp = sharpness(native)
            q = quality(float(face.face_px), conf, sharp, bool(face.detected), edge)
            if t.best is None or q > t.best.quality:
                t.best = BestFace(result.index, result.pts, q, float(face.face_px), conf, sharp,
                                  None if face.sr is None else mask_outside(face.sr, face.crop, w, h).copy(), native,
                                  face.crop.to_crop(face.landmarks_raw).astype(np.float32))
            if self.keeper is not None:
                self.keeper.offer(face.track_id, q, result.index, lambda: self._kept(result, face, q))

    def _kept(self, result: Any, face: Any, q: float) -> KeptFrame:
        """The face's LR image as the pipeline fed it to JASRNet (cut again from the frame), for fusion."""
        from .model.routing import Route, lr_faces
        from .route import cut

        route_of = getattr(self.fuser.enhancer, "route", None)
        route = route_of(face.crop.side) if route_of is not None else Route(8, 16, 16)
        crop = torch.from_numpy(np.array(cut(result.image, face.crop, route))).permute(2, 0, 1)[None].float().div_(255.0)
        landmarks = face.crop.to_crop(face.landmarks_raw).astype(np.float32)
        native = (crop[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy() if route.keep_native else None
        return KeptFrame(result.index, q, lr_faces(crop, route.model_input_px)[0], landmarks, route, face.crop,
                         native)

    def _sr_pass(self, frames: list[KeptFrame]) -> Any:
        """JASRNet with SR on kept frames, as one batched call (the enhancer cuts it into its batches)."""
        from .model.config import HR_SIZE
        from .model.data import upsample
        from .route import RoutedCrops

        inputs = torch.cat([upsample(f.lr.float()[None], HR_SIZE) for f in frames])
        if hasattr(self.fuser.enhancer, "route"):
            return self.fuser.enhancer(RoutedCrops(inputs, [f.route for f in frames], [f.native for f in frames]),
                                       sr=True)
        return self.fuser.enhancer(inputs, prepared=True, sr=True)

    def fuse(self) -> None:
        """Fuse every kept track's frames (``close`` does it; once). SR on demand: a best face without its SR face
        (landmarks-only passes) gets it here, from its kept LR face (the same network input as a per-frame pass).
        The SR passes of every track run as one batched call."""
        from .enhance import EnhancedFaces

        if self.keeper is None:
            return
        w, h = self._frame_size
        todo = [(t, self.keeper.frames(t.track_id)) for t in self.tracks() if t.fused is None]
        todo = [(t, frames) for t, frames in todo if frames]
        every = self.fuser.method.startswith("sr")  # SR-space fusion: every kept frame's SR face

        def wants_best(t: TrackSummary, frames: list[KeptFrame]) -> bool:
            return t.best is not None and t.best.sr is None and frames[0].frame == t.best.frame

        counts = [len(frames) if every else int(wants_best(t, frames)) for t, frames in todo]
        flat = [f for (_, frames), n in zip(todo, counts) for f in frames[:n]]
        out = self._sr_pass(flat) if flat else None
        k = 0
        for (t, frames), n in zip(todo, counts):
            part = EnhancedFaces(out.sr[k:k + n], out.landmarks[k:k + n], out.confidence[k:k + n]) if n else None
            k += n
            if part is not None and wants_best(t, frames):
                t.best.sr = mask_outside(part.sr[0], frames[0].crop, w, h).copy()
            fused = self.fuser.fuse(frames, single=part if every else None)
            if fused.method == "single frame" and t.best is not None and t.best.sr is not None:
                fused.sr = t.best.sr  # exactly the best frame's own SR face
            elif frames[0].crop is not None:
                fused.sr = mask_outside(fused.sr, frames[0].crop, w, h).copy()
            t.fused = fused

    def tracks(self) -> list[TrackSummary]:
        """Every track kept on at least ``min_track_frames`` frames, by track id."""
        return [t for _, t in sorted(self._tracks.items()) if t.frames >= self.min_track_frames]

    def identify(self) -> list[TrackSummary]:
        """Every kept track with its ``descriptor`` (computed once, from its best face), and with ``find`` its
        ``match``; nearest first with ``find``, else by track id."""
        tracks = self.tracks()
        todo = [t for t in tracks if t.descriptor is None and t.best is not None and t.best.points is not None]
        if self.recognizer is not None and todo:
            faces = [t.best.face() for t in todo]
            for t, d in zip(todo, self.recognizer.describe_many([f for f, _ in faces], [p for _, p in faces])):
                t.descriptor = d
        if not self.find:
            return tracks
        from .identity import distance

        names = list(self.find)
        described = [t for t in tracks if t.descriptor is not None]
        if described:
            d = distance(np.stack([t.descriptor for t in described]), np.stack([self.find[n] for n in names]))
            order = np.argsort(d.min(axis=1), kind="stable")
            for rank, i in enumerate(order, 1):
                j = int(np.argmin(d[i]))
                described[i].match = (rank, names[j], float(d[i, j]), bool(d[i, j] < self.threshold))
        return sorted(tracks, key=lambda t: t.match[0] if t.match else len(tracks) + t.track_id)

    def matches(self) -> dict[str, list[tuple[TrackSummary, float]]]:
        """Per ``find`` photo, the described tracks and their distance to it, nearest first."""
        from .identity import distance

        tracks = [t for t in self.identify() if t.descriptor is not None]
        out = {}
        for name, desc in self.find.items():
            d = [float(distance(t.descriptor, desc)) for t in tracks]
            out[name] = sorted(zip(tracks, d), key=lambda td: td[1])
        return out

    def close(self, complete: bool = True) -> Path | None:
        """Fuse the kept frames (with a fuser), describe the tracks (with a recognizer), then write each track's best
        face (SR and native PNG), tracks.csv and tracks.jsonl (when a folder was given)."""
        if not self._closed:
            self.fuse()
        if self._closed:
            return self.folder
        self._closed = True
        tracks = self.identify() if self.recognizer is not None or self.find else self.tracks()
        if self.folder is None:
            return None
        for t in tracks:
            if t.best is None:
                continue
            t.native_png = f"track_{t.track_id:04d}_native.png"
            t.sr_png = f"track_{t.track_id:04d}_sr.png" if t.best.sr is not None else ""
            t.fused_png = f"track_{t.track_id:04d}_fused.png" if t.fused is not None else ""
            for name, img in ((t.sr_png, t.best.sr), (t.native_png, t.best.native),
                              (t.fused_png, t.fused.sr if t.fused else None)):
                if name:
                    _write_png(self.folder / name, img)
        rows = [t.row() for t in tracks]
        tmp = self.folder / "tracks.csv.partial"
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_FIELDS + (FIND_FIELDS if self.find else ()), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.folder / "tracks.csv")
        tmp = self.folder / "tracks.jsonl.partial"
        with open(tmp, "w", encoding="utf-8") as f:
            for t, row in zip(tracks, rows):
                if t.fused is not None:  # the frames as a list, and the fused face's landmarks (128x128 px)
                    row = {**row, "fused_frames": t.fused.frames, "fused_rejected": t.fused.rejected,
                           "fused_landmarks": np.round(t.fused.landmarks.astype(np.float64), 2).tolist()}
                f.write(json.dumps(row, separators=(",", ":")) + "\n")
        os.replace(tmp, self.folder / "tracks.jsonl")
        return self.folder


def _write_png(path: Path, rgb: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if ok:
        tmp = path.with_name("." + path.name + ".partial")
        tmp.write_bytes(buf.tobytes())
        os.replace(tmp, path)
