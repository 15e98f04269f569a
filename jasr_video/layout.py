"""Where annotations go on a frame: boxes, ids, landmarks and super-resolved insets that never cover a face.

:func:`plan` turns a :class:`~jasr_video.pipeline.FrameResult` into a :class:`Layout` (a list of drawn
items with their pixel rectangles); :func:`render` draws it; :func:`covered_fraction` measures, from the
same layout, how much of each face box is covered by drawings other than the face's own box and landmarks.

Placement (``inset``):

- ``auto``: each face's inset (its 128x128 super-resolved face, shown at 2x the face size, 48-128 px, or
  smaller down to 32 px when that is what fits) goes at the first free spot of a list of candidates around
  the face (right, left, above, below; aligned to the box's sides and centre), inside the frame, clear of
  every face box (with a 2 px gap) and of every inset and label already placed. Larger faces are placed
  first. A face with no free spot gets no inset.
- ``side``: insets go to a gallery strip of fixed-size slots along the frame's right, left, bottom and top
  edges, each labelled with the track id; slots that would cover a face are skipped.
- ``off``: no insets.

Ids go above the box, else below it, else are left out, with the same rule. Drawing scales with the face:
line width and dot radius grow with the face size, the label's font too; below ``landmarks_min_px`` no
landmarks are drawn, below ``all_landmarks_px`` only five key points (eye centres, nose tip, mouth corners).
Landmark dots that would fall inside another face's box are not drawn. Where the crop of a face reached
past the frame edge (its pixels there are the edge replicated), that part of the inset is drawn flat grey
(:func:`mask_outside`) instead of showing streaks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import cv2
import numpy as np

DRAW_ITEMS = ("boxes", "ids", "landmarks", "insets")
INSET_MODES = ("auto", "side", "off")
OUTSIDE_GREY = (128, 128, 128)
GAP = 2  # px kept free around every face box
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def parse_draw(text: str) -> frozenset[str]:
    """``"boxes,ids"`` -> {"boxes", "ids"}; ``all`` or ``none`` also accepted. ValueError names a bad item."""
    items = {t.strip().lower() for t in text.replace(" ", ",").split(",") if t.strip()}
    if items == {"all"}:
        return frozenset(DRAW_ITEMS)
    if items == {"none"}:
        return frozenset()
    bad = sorted(items - set(DRAW_ITEMS))
    if bad:
        raise ValueError(f"unknown --draw item {', '.join(bad)} (choose from {', '.join(DRAW_ITEMS)}, all, none)")
    return frozenset(items)


@dataclass
class DrawStyle:
    """What to draw and how insets are placed (see the module docstring)."""

    draw: frozenset[str] = frozenset(DRAW_ITEMS)
    inset: str = "auto"  # auto, side or off
    raw_landmarks: bool = False  # draw the raw landmarks instead of the smoothed ones
    landmarks_min_px: float = 24.0  # faces smaller than this get no landmark dots
    all_landmarks_px: float = 48.0  # faces smaller than this get 5 key points instead of 68

    def __post_init__(self) -> None:
        if self.inset not in INSET_MODES:
            raise ValueError(f"inset must be one of {', '.join(INSET_MODES)}")
        self.draw = frozenset(self.draw)

    @property
    def insets(self) -> str:
        return self.inset if "insets" in self.draw else "off"


@dataclass
class Item:
    """One drawn thing: kind ``box`` / ``points`` / ``label`` / ``inset``; rect is [x0, x1) x [y0, y1) in pixels."""

    kind: str
    track_id: int
    rect: tuple[int, int, int, int]
    thickness: int = 1  # box outline width
    points: np.ndarray | None = None  # (n, 2) int dot centres (``points``)
    radius: int = 1  # dot radius (``points``)
    text: str = ""  # ``label``, or the id written on a side-strip inset
    scale: float = 0.4  # font scale (``label``)
    face: int = -1  # index of the face in FrameResult.faces
    holes: list[tuple[int, int, int, int]] = field(default_factory=list)  # (``box``) other faces' boxes it skips


@dataclass
class Layout:
    width: int
    height: int
    face_rects: list[tuple[int, int, int, int]]  # per face, its clipped box as integer [x0, x1) x [y0, y1)
    track_ids: list[int]
    items: list[Item] = field(default_factory=list)
    no_room: int = 0  # faces whose inset found no free spot


def face_rect(box: Sequence[float], w: int, h: int) -> tuple[int, int, int, int]:
    """A box (x0, y0, x1, y1) as the integer pixel rectangle it covers, clipped to the frame."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return (int(np.clip(np.floor(x0), 0, w)), int(np.clip(np.floor(y0), 0, h)),
            int(np.clip(np.ceil(x1), 0, w)), int(np.clip(np.ceil(y1), 0, h)))


def clip_box(box: Sequence[float], width: int, height: int, edge: float = 1.0) -> tuple[np.ndarray, bool]:
    """A box clipped to the frame, and whether it touched or crossed the frame edge (within ``edge`` px)."""
    b = np.asarray(box, np.float32)
    at_edge = bool(b[0] < edge or b[1] < edge or b[2] > width - edge or b[3] > height - edge)
    clipped = np.array([np.clip(b[0], 0, width), np.clip(b[1], 0, height),
                        np.clip(b[2], 0, width), np.clip(b[3], 0, height)], np.float32)
    return clipped, at_edge


def mask_outside(sr: np.ndarray, crop: Any, width: int, height: int) -> np.ndarray:
    """The super-resolved face with the part whose crop lay outside the frame painted flat grey.

    Outside the frame the crop replicates the edge pixels (streaks); this marks that part instead.
    ``crop`` is the face's :class:`~jasr_video.crop.CropGeometry`. Returns ``sr`` itself when nothing is outside.
    """
    n = sr.shape[0]
    zoom = n / crop.side
    c = (n - 1) / 2
    coords = (np.arange(n) - c) / zoom
    xs, ys = coords + crop.cx, coords + crop.cy
    out_x = (xs < -0.5) | (xs > width - 0.5)
    out_y = (ys < -0.5) | (ys > height - 0.5)
    if not out_x.any() and not out_y.any():
        return sr
    out = sr.copy()
    out[:, out_x] = OUTSIDE_GREY
    out[out_y, :] = OUTSIDE_GREY
    return out


def _line_width(face_px: float) -> int:
    return int(np.clip(round(face_px / 40), 1, 3))


def _dot_radius(face_px: float) -> int:
    return int(np.clip(round(face_px / 60), 1, 3))


def _font_scale(face_px: float) -> float:
    return float(np.clip(face_px / 80, 0.35, 0.7))


KEY_POINTS = ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47), (30,), (48,), (54,))


def landmark_points(points: np.ndarray, face_px: float, style: DrawStyle) -> np.ndarray:
    """The dots drawn for a face of this size: none, five key points, or all 68."""
    pts = np.asarray(points, np.float32).reshape(-1, 2)
    if face_px < style.landmarks_min_px or len(pts) < 68:  # too small, or a face without landmarks
        return np.zeros((0, 2), np.float32)
    if face_px < style.all_landmarks_px:
        return np.stack([pts[list(idx)].mean(0) for idx in KEY_POINTS])
    return pts


class _Occupancy:
    """Pixels taken by face boxes (with a gap) and by placed labels/insets; rectangle queries."""

    def __init__(self, w: int, h: int) -> None:
        self.w, self.h = w, h
        self.mask = np.zeros((h, w), bool)

    def take(self, rect: tuple[int, int, int, int], gap: int = 0) -> None:
        x0, y0, x1, y1 = rect
        self.mask[max(y0 - gap, 0):max(y1 + gap, 0), max(x0 - gap, 0):max(x1 + gap, 0)] = True

    def free(self, rect: tuple[int, int, int, int]) -> bool:
        x0, y0, x1, y1 = rect
        if x0 < 0 or y0 < 0 or x1 > self.w or y1 > self.h or x1 <= x0 or y1 <= y0:
            return False
        return not self.mask[y0:y1, x0:x1].any()


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int], pad: int = 0) -> bool:
    return a[0] < b[2] + pad and b[0] - pad < a[2] and a[1] < b[3] + pad and b[1] - pad < a[3]


def _inset_candidates(rect: tuple[int, int, int, int], s: int) -> Iterable[tuple[int, int, int, int]]:
    x0, y0, x1, y1 = rect
    g = GAP + 1
    cx, cy = (x0 + x1) // 2 - s // 2, (y0 + y1) // 2 - s // 2
    for ix, iy in ((x1 + g, y0), (x1 + g, cy), (x1 + g, y1 - s), (x0 - g - s, y0), (x0 - g - s, cy), (x0 - g - s, y1 - s),
                   (cx, y0 - g - s), (x0, y0 - g - s), (x1 - s, y0 - g - s),
                   (cx, y1 + g), (x0, y1 + g), (x1 - s, y1 + g)):
        yield ix, iy, ix + s, iy + s


def plan(result: Any, style: DrawStyle | None = None) -> Layout:
    """Decide every drawn item of a frame (see the module docstring); nothing is drawn yet."""
    style = style or DrawStyle()
    h, w = result.image.shape[:2]
    faces = list(result.faces)
    rects = [face_rect(f.box, w, h) for f in faces]
    layout = Layout(w, h, rects, [f.track_id for f in faces])
    occ = _Occupancy(w, h)
    hidden = [face_rect(f.box, w, h) for f in getattr(result, "hidden_faces", ())]
    for r in rects + hidden:  # faces left out by output filters are not drawn, but not covered either
        occ.take(r, GAP)
    order = sorted(range(len(faces)), key=lambda i: -faces[i].face_px)
    all_rects = np.array(rects + hidden, int).reshape(-1, 4)
    draw = style.draw
    for i in order:
        face, r = faces[i], rects[i]
        if "boxes" in draw:
            t = _line_width(face.face_px)
            holes = [o for j, o in enumerate(rects + hidden) if j != i and _overlaps(o, r, t)]
            layout.items.append(Item("box", face.track_id, r, t, face=i, holes=holes))
        if "landmarks" in draw:
            pts = landmark_points(face.landmarks_raw if style.raw_landmarks else face.landmarks_smoothed,
                                  face.face_px, style)
            rad = _dot_radius(face.face_px)
            p = np.round(pts).astype(int).reshape(-1, 2)
            others = np.delete(all_rects, i, axis=0)
            x, y = p[:, :1], p[:, 1:]
            inside_other = ((others[:, 0] - rad <= x) & (x < others[:, 2] + rad)
                            & (others[:, 1] - rad <= y) & (y < others[:, 3] + rad)).any(axis=1)
            in_frame = (p[:, 0] >= 0) & (p[:, 0] < w) & (p[:, 1] >= 0) & (p[:, 1] < h)
            keep = p[in_frame & ~inside_other]
            if len(keep):
                p = keep
                bbox = (int(p[:, 0].min()) - rad, int(p[:, 1].min()) - rad, int(p[:, 0].max()) + rad + 1,
                        int(p[:, 1].max()) + rad + 1)
                layout.items.append(Item("points", face.track_id, bbox, points=p, radius=rad, face=i))
    if "ids" in draw:
        for i in order:
            face, (x0, y0, x1, y1) = faces[i], rects[i]
            text = f"#{face.track_id}" + ("" if face.detected else "*")
            scale = _font_scale(face.face_px)
            (tw, th), base = cv2.getTextSize(text, _FONT, scale, 1)
            th += base
            for lx, ly in ((x0, y0 - GAP - 1 - th), (x0, y1 + GAP + 1), (x0 - GAP - 1 - tw, y0), (x1 + GAP + 1, y0)):
                cand = (lx, ly, lx + tw, ly + th)
                if occ.free(cand):
                    occ.take(cand)
                    layout.items.append(Item("label", face.track_id, cand, text=text, scale=scale, face=i))
                    break
    mode = style.insets
    order = [i for i in order if faces[i].sr is not None]  # no SR face computed (sr_faces off): no inset
    if mode == "auto":
        for i in order:
            face = faces[i]
            want = int(np.clip(2 * face.face_px, 48, 128))
            placed = False
            for s in sorted({want, int(want * 0.75), 48, 32}, reverse=True):
                if s > want or s > min(w, h):
                    continue
                for cand in _inset_candidates(rects[i], s):
                    if occ.free(cand):
                        occ.take(cand, 1)
                        layout.items.append(Item("inset", face.track_id, cand, face=i))
                        placed = True
                        break
                if placed:
                    break
            layout.no_room += not placed
    elif mode == "side":
        s = int(np.clip(min(w, h) // 8, 40, 96))
        slots = [(w - s - 2, y) for y in range(2, h - s, s + 2)] + [(2, y) for y in range(2, h - s, s + 2)]
        slots += [(x, h - s - 2) for x in range(s + 4, w - 2 * s - 4, s + 2)]
        slots += [(x, 2) for x in range(s + 4, w - 2 * s - 4, s + 2)]
        free = iter([(x, y, x + s, y + s) for x, y in slots if occ.free((x, y, x + s, y + s))])
        for i in order:
            slot = next(free, None)
            if slot is None:
                layout.no_room += len(order) - order.index(i)
                break
            occ.take(slot)
            layout.items.append(Item("inset", faces[i].track_id, slot, text=f"#{faces[i].track_id}", face=i))
    return layout


def track_color(track_id: int) -> tuple[int, int, int]:
    """A stable, distinct RGB colour per track id (golden-ratio hue steps)."""
    hue = int((track_id * 0.618033988749895 % 1.0) * 180)
    hsv = np.uint8([[[hue, 220, 255]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])  # type: ignore[return-value]


def render(result: Any, layout: Layout) -> np.ndarray:
    """Draw a layout on a copy of the frame (RGB uint8)."""
    img = np.ascontiguousarray(result.image.copy())
    h, w = img.shape[:2]
    for it in layout.items:
        color = track_color(it.track_id)
        x0, y0, x1, y1 = it.rect
        if it.kind == "box":  # drawn through a mask so that it skips the boxes of overlapping faces
            t = it.thickness
            ox, oy = max(x0 - t, 0), max(y0 - t, 0)
            mask = np.zeros((min(y1 + t, h) - oy, min(x1 + t, w) - ox), bool)
            _footprint(it, mask, ox, oy)
            img[oy:oy + mask.shape[0], ox:ox + mask.shape[1]][mask] = color
        elif it.kind == "points":
            for x, y in it.points:
                cv2.circle(img, (int(x), int(y)), it.radius, (0, 255, 0), -1, cv2.LINE_4)
        elif it.kind == "label":
            cv2.putText(img, it.text, (x0, y1 - 2), _FONT, it.scale, color, 1, cv2.LINE_AA)
        elif it.kind == "inset":
            face = result.faces[it.face]
            s = x1 - x0
            sr = mask_outside(face.sr, face.crop, w, h)
            img[y0:y1, x0:x1] = cv2.resize(sr, (s, s), interpolation=cv2.INTER_AREA)
            cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), color, 1)
            if it.text:
                cv2.putText(img, it.text, (x0 + 2, y1 - 4), _FONT, 0.4, color, 1, cv2.LINE_AA)
    return img


def annotate(result: Any, style: DrawStyle | None = None) -> np.ndarray:
    """Plan and draw the annotations of one frame (a copy; the frame itself is not changed)."""
    return render(result, plan(result, style))


def _footprint(it: Item, mask: np.ndarray, ox: int, oy: int) -> None:
    """Paint the pixels an item draws into ``mask`` (a face's box, whose top-left is (ox, oy))."""
    mh, mw = mask.shape

    def fill(x0: int, y0: int, x1: int, y1: int) -> None:
        a, b = max(x0 - ox, 0), min(x1 - ox, mw)
        c, d = max(y0 - oy, 0), min(y1 - oy, mh)
        if a < b and c < d:
            mask[c:d, a:b] = True

    x0, y0, x1, y1 = it.rect
    if it.kind == "box":  # a line of width t centred on the border pixels, minus other faces' boxes
        t = it.thickness
        lo, hi = t // 2, t - t // 2
        fill(x0 - lo, y0 - lo, x1 + hi, y0 + hi)
        fill(x0 - lo, y1 - 1 - lo, x1 + hi, y1 - 1 + hi)
        fill(x0 - lo, y0 - lo, x0 + hi, y1 + hi)
        fill(x1 - 1 - lo, y0 - lo, x1 - 1 + hi, y1 + hi)
        for hx0, hy0, hx1, hy1 in it.holes:
            a, b = max(hx0 - ox, 0), min(hx1 - ox, mw)
            c, d = max(hy0 - oy, 0), min(hy1 - oy, mh)
            if a < b and c < d:
                mask[c:d, a:b] = False
    elif it.kind == "points":
        r = it.radius
        for x, y in it.points:
            fill(int(x) - r, int(y) - r, int(x) + r + 1, int(y) + r + 1)
    else:
        fill(x0, y0, x1, y1)


def covered_fraction(layout: Layout, kinds: Sequence[str] = ("box", "points", "label", "inset")) -> list[float]:
    """Per face: the fraction of its box's pixels covered by drawn items of ``kinds`` other than the face's
    own box outline and its own landmark dots (its own label and inset count)."""
    out = []
    for i, (x0, y0, x1, y1) in enumerate(layout.face_rects):
        if x1 <= x0 or y1 <= y0:
            out.append(0.0)
            continue
        mask = np.zeros((y1 - y0, x1 - x0), bool)
        for it in layout.items:
            if it.kind not in kinds or (it.face == i and it.kind in ("box", "points")):
                continue
            ix0, iy0, ix1, iy1 = it.rect
            pad = it.thickness + it.radius
            if ix1 + pad <= x0 or ix0 - pad >= x1 or iy1 + pad <= y0 or iy0 - pad >= y1:
                continue
            _footprint(it, mask, x0, y0)
        out.append(float(mask.mean()))
    return out


def fit_into(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """`image` scaled to fit `width` x `height` with its aspect kept, centred and padded with black."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    scale = min(width / w, height / h)
    nw, nh = max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale)))
    small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    x, y = (width - nw) // 2, (height - nh) // 2
    return cv2.copyMakeBorder(small, y, height - nh - y, x, width - nw - x, cv2.BORDER_CONSTANT, value=(0, 0, 0))
