"""`--report DIR`: one self-contained HTML page of a run (no network: inline CSS and SVG, images by relative link).

    log = RunLog()                                   # a sink: faces and wall time per frame
    gallery = TrackGallery("report/tracks")
    for result in pipeline.run("clip.mp4"):
        log.write(result); gallery.write(result)
    gallery.close()
    write_report("report", log, gallery.tracks(), "report/tracks", summary_rows)

The page: the run summary (rows given by the caller), the gallery (per track the super-resolved best face,
the face fused from the track's best frames where the gallery fused them, and the native crop), a timeline of
the tracks, and the faces per frame and frames per second over the run.
"""
from __future__ import annotations

import html
import os
import time
from pathlib import Path
from typing import Any, Sequence

from .layout import track_color

FIND_SHOWN = 10  # nearest tracks shown per --find photo


class RunLog:
    """A sink recording, per frame, its number, pts, faces written and when it was written (monotonic s)."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, float | None, int, float]] = []

    def write(self, result: Any) -> None:
        self.frames.append((result.index, result.pts, len(result.faces), time.monotonic()))

    def close(self, complete: bool = True) -> None:
        return None

    def fps_series(self, window: int = 10) -> list[tuple[int, float]]:
        """(frame, frames per second over the last ``window`` frames) from the write times."""
        out = []
        for k in range(1, len(self.frames)):
            j = max(0, k - window)
            dt = self.frames[k][3] - self.frames[j][3]
            if dt > 0:
                out.append((self.frames[k][0], (k - j) / dt))
        return out


def _polyline_svg(points: Sequence[tuple[float, float]], title: str, y_label: str, width: int = 720,
                  height: int = 160) -> str:
    if not points:
        return f"<p>{html.escape(title)}: no data</p>"
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)
    y1 = max(max(ys), 1e-9) * 1.1
    pad = 36

    def sx(x: float) -> float:
        return pad + (x - x0) / (x1 - x0) * (width - pad - 8)

    def sy(y: float) -> float:
        return height - 20 - y / y1 * (height - 30)

    path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
    return (f'<svg role="img" aria-label="{html.escape(title)}" width="{width}" height="{height}" '
            f'xmlns="http://www.w3.org/2000/svg"><title>{html.escape(title)}</title>'
            f'<line x1="{pad}" y1="{height - 20}" x2="{width - 8}" y2="{height - 20}" stroke="#888"/>'
            f'<line x1="{pad}" y1="10" x2="{pad}" y2="{height - 20}" stroke="#888"/>'
            f'<text x="2" y="14" font-size="11">{y1 / 1.1:.1f}</text><text x="2" y="{height - 22}" font-size="11">0</text>'
            f'<text x="{pad}" y="{height - 4}" font-size="11">frame {x0:g}</text>'
            f'<text x="{width - 80}" y="{height - 4}" font-size="11">frame {x1:g}</text>'
            f'<text x="{width // 2 - 40}" y="12" font-size="11">{html.escape(y_label)}</text>'
            f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{path}"/></svg>')


def _timeline_svg(tracks: Sequence[Any], first: int, last: int, width: int = 720) -> str:
    if not tracks:
        return "<p>No tracks.</p>"
    row, pad = (12, 48) if len(tracks) <= 100 else (6, 48)  # with room for an id per row
    height = 24 + row * len(tracks)
    span = max(last - first, 1)
    parts = [f'<svg role="img" aria-label="track timeline" width="{width}" height="{height}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>track timeline</title>',
             f'<text x="{pad}" y="{height - 4}" font-size="11">frame {first}</text>',
             f'<text x="{width - 80}" y="{height - 4}" font-size="11">frame {last}</text>']
    for k, t in enumerate(tracks):
        x0 = pad + (t.first_frame - first) / span * (width - pad - 8)
        x1 = pad + (t.last_frame - first) / span * (width - pad - 8)
        r, g, b = track_color(t.track_id)
        parts.append(f'<rect x="{x0:.1f}" y="{4 + k * row}" width="{max(x1 - x0, 1.5):.1f}" height="{row - 1}" '
                     f'fill="rgb({r},{g},{b})"><title>#{t.track_id}: frames {t.first_frame}-{t.last_frame}</title></rect>')
        if row >= 12:
            parts.append(f'<text x="2" y="{4 + k * row + row - 3}" font-size="10">#{t.track_id}</text>')
    parts.append("</svg>")
    return "".join(parts)


_CSS = """body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse}
td,th{padding:2px 8px;text-align:left;vertical-align:top}.gallery{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #ccc;padding:4px;font-size:12px;width:394px}.card img{width:128px;height:128px}
img.native{image-rendering:pixelated}"""


def write_report(folder: str | Path, log: RunLog, tracks: Sequence[Any], tracks_dir: str | Path,
                 summary_rows: Sequence[tuple[str, str]], title: str = "jasr-video report",
                 matches: dict[str, Sequence[tuple[Any, float]]] | None = None, threshold: float | None = None) -> Path:
    """Write ``folder/index.html`` and return its path; images link into ``tracks_dir`` relatively. ``matches``
    (``--find``): per photo, tracks and their distance to it, nearest first (:meth:`TrackGallery.matches`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rel = Path(os.path.relpath(Path(tracks_dir).resolve(), folder.resolve())).as_posix()
    esc = html.escape
    body = [f"<h1>{esc(title)}</h1>", "<h2>Run</h2><table>"]
    body += [f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in summary_rows]
    body.append("</table>")
    for name, ranked in (matches or {}).items():
        body.append(f"<h2>Find: {esc(name)}</h2><p>The tracks nearest the person in {esc(name)}, nearest first "
                    f"(face-descriptor distance; below {threshold:.2f} the faces are taken for one person).</p>"
                    '<div class="gallery">')
        for t, d in list(ranked)[:FIND_SHOWN]:
            img = t.sr_png or t.native_png
            pic = f'<img src="{esc(rel + "/" + img)}" alt="track {t.track_id}">' if img else ""
            same = " &mdash; same person" if threshold is not None and d < threshold else ""
            body.append(f'<div class="card">{pic}<br><b>#{t.track_id}</b> distance {d:.3f}{same}; frames '
                        f"{t.first_frame}-{t.last_frame}</div>")
        body.append("</div>")
    body.append(f"<h2>People ({len(tracks)} tracks)</h2><p>Per track its best face: super-resolved (left), the face "
                "fused from the track's best frames (middle, where fusion ran: the frames used are listed) and the same "
                "crop at the video's own resolution (right, enlarged). Grey marks parts outside the frame.</p>")
    body.append('<div class="gallery">')
    for t in tracks:
        r = t.row()
        imgs = "".join(f'<img class="{cls}" src="{esc(rel + "/" + name)}" alt="track {t.track_id} {cls}">'
                       for cls, name in (("sr", t.sr_png), ("fused", getattr(t, "fused_png", "")),
                                         ("native", t.native_png)) if name)
        fused = getattr(t, "fused", None)
        fused_text = ("" if fused is None else f"; fused: {esc(fused.method)}, frames "
                      f"{esc(', '.join(str(f) for f in fused.frames))}" + (f" ({esc(fused.note)})" if fused.note else ""))
        pts = "" if r["first_pts"] is None else f", {r['first_pts']:.2f}-{r['last_pts']:.2f} s"
        body.append(f'<div class="card">{imgs}<br><b>#{t.track_id}</b> frames {t.first_frame}-{t.last_frame}{pts}; '
                    f'seen on {t.frames} ({r["detected_share"]:.0%} detected); {r["mean_face_px"]:.0f} px on average; '
                    f'best frame {r["best_frame"]}{fused_text}</div>')
    body.append("</div>")
    first = log.frames[0][0] if log.frames else 0
    last = log.frames[-1][0] if log.frames else 0
    body.append("<h2>Timeline</h2>" + _timeline_svg(tracks, first, last))
    body.append("<h2>Faces per frame</h2>" + _polyline_svg([(f, n) for f, _, n, _ in log.frames], "faces per frame",
                                                          "faces written"))
    body.append("<h2>Speed</h2>" + _polyline_svg(log.fps_series(), "frames per second", "frames/s (10-frame window)"))
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n")
    path = folder / "index.html"
    tmp = folder / "index.html.partial"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path
