"""`jasr-video`'s options: the argument parser (defaults from :class:`~jasr_video.config.PipelineConfig`,
value lists from :mod:`jasr_video.config` and the stage registries) and the exit codes."""
from __future__ import annotations

import argparse
from typing import Callable

from .config import (AUTO_FULL_SCAN_EVERY_CPU, BACKENDS, DETECTOR_NAMES, DETECTOR_PRECISIONS, DETECTOR_SCORES, DEVICES,
                     LIVE_FRAME_BATCH, PRECISIONS, SR_FACTORS, PipelineConfig)
from .model.upright import check_upright
from .smooth import SMOOTHERS

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_SIGINT, EXIT_SIGTERM = 0, 1, 2, 130, 143


def _thresholds(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give three numbers, e.g. 0.6,0.7,0.7") from None
    if len(values) != 3 or not all(0 <= v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: give three numbers in [0, 1], e.g. 0.6,0.7,0.7")
    return values  # type: ignore[return-value]


def _whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= minimum, with a one-line message otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be >= {minimum}")
        return value

    return parse


_non_negative = _whole_number(0)
_positive = _whole_number(1)


def _degrees(text: str) -> float:
    """An argparse type: an angle in [0, 90) degrees."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of degrees") from None
    try:
        return check_upright(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} must be in [0, 90) degrees (0: off)") from None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse's own usage dump is noisy)
        self.exit(EXIT_USAGE, f"jasr-video: error: {message} (see jasr-video --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="jasr-video",
        description=(
            "Detect, track, super-resolve (to 128x128) and align (68 landmarks) the faces in a video with "
            "JASRNet. Each face goes to the model that uses its real pixels best (x8 for the smallest faces, x4 "
            "and x2 for larger ones; --sr-factor); the outputs say which route served it. In the project's tiny-face "
            "benchmark the default detector finds most faces from about 8-12 px in clean video and from 12-16 px "
            "in strongly compressed video (docs/benchmarks.md)."
        ),
        epilog=(
            "examples:\n"
            "  jasr-video clip.mp4 --out clip_annotated.mp4 --json clip.jsonl\n"
            "  jasr-video clip.mp4 --json clip.jsonl --detect-every 3 --max-frames 250\n"
            "  jasr-video rtsp://cam/stream --json events.jsonl --device cuda --precision fp16\n"
            "  jasr-video rtsp://cam1/s rtsp://cam2/s --json out/{stream}.jsonl --out out/ --reconnect\n"
            "  jasr-video --streams cameras.txt --json out/ --live\n"
            "  jasr-video --demo\n"
            "Outputs are written as NAME.partial and renamed when finished (or stopped with Ctrl-C);\n"
            "exit codes: 0 ok, 2 bad input/options, an input that ended early or an output that could\n"
            "not be finalised (or a stream that failed), 1 internal error, 130/143 stopped by Ctrl-C/SIGTERM."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="video file, rtsp:// / http(s):// / tcp:// URL, or webcam "
                   "(/dev/video0); several inputs run as streams of one process sharing one model")
    p.add_argument("--streams", metavar="FILE", help="read more inputs from FILE, one per line (# comments)")
    p.add_argument("--demo", action="store_true", help="render the demo clip (../shared/data or $JASR_VIDEO_DATA) "
                   "to demo/ and print where the outputs are")
    out = p.add_argument_group(
        "outputs (at least one)",
        "with several inputs each output is a path holding {stream} (replaced by the stream's label: file name "
        "without extension, camera device, or the URL's last path part; repeats get -2, -3) or a folder "
        "(ending in / or existing). Super-resolved faces are computed only when an output shows them (a video "
        "with insets, --save-crops, --tracks, --report); otherwise JASRNet finds the landmarks only")
    out.add_argument("--out", metavar="VIDEO", help="annotated video (.mp4/.mov/.mkv, H.264): boxes, track ids, landmarks "
                     "and a super-resolved inset per face, never over another face (see --draw, --inset); same size, frame count, timestamps and audio as the input")
    out.add_argument("--json", metavar="JSONL", help="JSON Lines, one object per frame: frame, pts (s), faces with track_id, "
                     "box (clipped to the frame), at_edge, score, 68 raw and smoothed landmarks, landmark_confidence, face_px, "
                     "below_16px, sr_factor, model_input_px (see --json-decimals, --json-landmarks)")
    out.add_argument("--csv", metavar="CSV", help="one row per face per frame: frame, pts, track_id, box (x0, y0, x1, "
                     "y1), score, track_score, detected, at_edge, face_px, below_16px, sr_factor, model_input_px and "
                     "the mean landmark confidence")
    out.add_argument("--save-crops", metavar="DIR", help="write each face's 128x128 super-resolved crop as "
                     "DIR/track_NNNN/frame_NNNNNN.png")
    out.add_argument("--even-size", action="store_true", help="for odd frame sizes (e.g. 641x479) pad the video by one "
                     "pixel to encode widely playable yuv420p instead of keeping the exact size in yuv444p")
    out.add_argument("--tracks", metavar="DIR", help="one result per person: per track its best face (DIR/track_NNNN_sr.png, "
                     "the super-resolved face, and DIR/track_NNNN_native.png, the crop at the video's resolution) and "
                     "DIR/tracks.csv + DIR/tracks.jsonl (first/last frame and time, frames seen, detected share, mean "
                     "size and confidence, best frame, file names)")
    out.add_argument("--report", metavar="DIR", help="DIR/index.html: one self-contained page (no network) with the run "
                     "summary, every person's best face (super-resolved beside native), a timeline of the tracks, faces "
                     "per frame and frames/s over the run; its images go to DIR/tracks/ unless --tracks is given")
    out.add_argument("--identity", action="store_true", help="who each person is: a face descriptor (128 numbers, "
                     "dlib's face recogniser) of each track's best face, in DIR/tracks.jsonl of --tracks / --report "
                     "(needs pip install 'jasr-video[identity]')")
    out.add_argument("--find", action="extend", nargs="+", default=[], metavar="PHOTO",
                     help="rank the run's tracks by how close their best face is to the person in each photo (its "
                     "largest face): nearest first in the summary, tracks.csv / tracks.jsonl (find_rank, find_photo, "
                     "find_distance, find_same) and the report, with the distance below which faces are taken for "
                     "one person; implies --identity; give it after the input")
    from .fusion import DEFAULT_KEEP, DEFAULT_METHOD, METHODS

    out.add_argument("--fusion", choices=(*METHODS, "off"), default=DEFAULT_METHOD,
                     help="--tracks / --report: per track, also one face fused from its best frames "
                     "(DIR/track_NNNN_fused.png; the frames used in tracks.csv / tracks.jsonl; jasr_video.fusion); "
                     "unless another output shows SR faces, the per-frame passes then find landmarks only and the "
                     "faces of --tracks / --report are super-resolved per person at the end; off: the best single "
                     f"frame only, every frame super-resolved (default: {DEFAULT_METHOD})")
    out.add_argument("--fusion-frames", type=_positive, default=DEFAULT_KEEP, metavar="K",
                     help=f"frames kept per track for --fusion, the best by quality (default: {DEFAULT_KEEP})")
    out.add_argument("--inset", choices=("auto", "side", "off"), default="auto",
                     help="super-resolved insets in the video: auto places each beside its face where there is room, "
                     "never over a face (none when there is no room); side puts them in a strip of slots along the "
                     "frame's edges, labelled with the track id; off draws none (default: auto)")
    out.add_argument("--no-inset", action="store_true", help="same as --inset off")
    out.add_argument("--draw", default="boxes,ids,landmarks,insets", metavar="LIST",
                     help="what the video shows, a comma list of boxes, ids, landmarks, insets (or all / none); "
                     "landmarks are left out on faces under 24 px and reduced to 5 key points under 48 px "
                     "(default: boxes,ids,landmarks,insets)")
    out.add_argument("--json-decimals", type=_non_negative, default=2, metavar="N",
                     help="decimal places of coordinates in the JSON Lines; 0 writes whole pixels (default: 2)")
    out.add_argument("--json-landmarks", choices=("both", "smoothed", "raw", "none"), default="both",
                     help="which 68-point landmark sets the JSON Lines hold; none also leaves out landmark_confidence "
                     "(default: both)")
    out.add_argument("--crf", type=int, default=20, help="H.264 quality, lower is better/bigger (default: 20)")
    out.add_argument("--sink-thread", choices=("auto", "on", "off"), default="auto",
                     help="annotate and encode in a thread of their own, overlapping detection (auto: on when "
                     "the model runs on CUDA, off on CPU, where torch's threads already use the cores; "
                     "figures in docs/benchmarks.md)")
    keep = p.add_argument_group(
        "output filters", "which faces the outputs keep (detection and tracking still see every face); faces left "
        "out are not drawn, not written to JSON / crops and not counted per person")
    keep.add_argument("--min-face-px", type=float, default=0.0, metavar="PX", help="leave out faces smaller than PX "
                      "pixels (longer box side) on that frame (default: 0, keep all)")
    keep.add_argument("--min-score-out", type=float, default=0.0, metavar="P", help="leave out faces whose detector "
                      "probability is below P (default: 0; the detector's own cut is --min-score)")
    keep.add_argument("--min-landmark-conf", type=float, default=0.0, metavar="C", help="leave out faces whose mean "
                      "landmark confidence (0-1) is below C (default: 0)")
    keep.add_argument("--min-track-frames", type=_positive, default=1, metavar="N", help="leave out people seen on "
                      "fewer than N frames; per-frame outputs are written without delay, so they show a person from "
                      "the N-th frame on (the first N-1 are left out), --tracks / --report apply it exactly (default: 1)")
    d = PipelineConfig()  # every pipeline option's default comes from the config
    model = p.add_argument_group("model")
    model.add_argument("--weights", default=d.weights, help="shipped weights name (looked up in the package's models/ "
                       "only) or a checkpoint path (anything with a folder part or a .pt suffix, e.g. ./my.pt); read "
                       f"as tensors only (torch weights_only) (default: {d.weights})")
    model.add_argument("--device", choices=DEVICES, default=d.device,
                       help=f"where MTCNN and JASRNet run; auto picks cuda when available (default: {d.device})")
    model.add_argument("--precision", choices=PRECISIONS, default=d.precision,
                       help=f"JASRNet precision (default {d.precision}: fp16 on CUDA; on CPU int8 where the CPU has int8 dot "
                            "products (VNNI/AMX) and the weights carry an int8 calibration, as the shipped ones do, "
                            "else bf16 on CPUs with native bf16, else fp32)")
    model.add_argument("--backend", choices=BACKENDS, default=d.backend,
                       help="JASRNet runtime: torch, or onnx (ONNX Runtime, fp32 or int8; needs the extra jasr-video[onnx]; "
                            f"--weights may then also be an .onnx file from jasr-export --onnx) (default: {d.backend})")
    model.add_argument("--sr-factor", choices=SR_FACTORS, default=d.sr_factor,
                       help="which JASRNet serves each face: auto routes by face size (small faces x8 at 16x16, larger "
                            "ones x4 / x2 at their own size, the largest keep their native crop), so no face loses "
                            "real pixels; 8 sends every face at 16x16 to x8; 4 / 2 send every face to that model "
                            f"(default: {d.sr_factor})")
    model.add_argument("--upright", type=_degrees, default=d.upright, metavar="DEG",
                       help="landmarks of a face whose eye line tilts more than DEG degrees come from a second JASRNet "
                            "pass on the face turned level (tilted heads); 0: one pass for every face "
                            f"(default: {d.upright:g})")
    model.add_argument("--batch-size", type=_positive, default=d.batch_size,
                       help=f"faces per JASRNet forward pass (default: {d.batch_size})")
    model.add_argument("--frame-batch", type=_non_negative, default=d.frame_batch, help="frames gathered per step, so "
                       "detection and enhancement batch across frames; adds that many frames of latency (default "
                       f"{d.frame_batch}: 16 on CUDA, 4 on CPU; live inputs {LIVE_FRAME_BATCH})")
    model.add_argument("--threads", type=_positive, help="CPU threads for torch (default: torch's choice)")
    model.add_argument("--lanes", type=_non_negative, default=d.lanes, metavar="N",
                       help="CPU: N lanes, each on its share of the torch threads: a video file's detection runs beside "
                            "JASRNet on the frames before, and JASRNet batches are cut into parts run side by side "
                            "(same results, results 2 frame batches later); 1: off (default 0: 2 lanes with 2 or more "
                            "threads)")
    det = p.add_argument_group("detection and tracking")
    det.add_argument("--detect-every", type=_positive, default=d.detect_every, metavar="N", help="run MTCNN on every "
                     f"N-th frame; boxes in between come from the tracker's Kalman prediction (default: {d.detect_every})")
    det.add_argument("--full-scan-every", type=_non_negative, default=d.full_scan_every, metavar="K",
                     help="MTCNN on the full frame every K-th frame only, and on the frames between on regions "
                     "around the tracks' predicted boxes (much cheaper than a full scan; new faces appear at the next "
                     f"full scan); 0 or 1: full frame every time (default: {AUTO_FULL_SCAN_EVERY_CPU} on CPU, 1 on CUDA "
                     "or with --detect-every)")
    det.add_argument("--min-face-size", type=_positive, default=d.min_face_size, metavar="PX", help="mtcnn detectors: "
                     "smallest face MTCNN looks for, in pixels; larger is faster (yunet: see --detector-upscale); the sizes found in clean and compressed video are in "
                     f"docs/benchmarks.md (default: {d.min_face_size})")
    det.add_argument("--thresholds", type=_thresholds, default=d.thresholds, metavar="P,R,O",
                     help=f"MTCNN P-, R- and O-net score thresholds (default: {','.join(map(str, d.thresholds))})")
    det.add_argument("--detector", choices=DETECTOR_NAMES, default=d.detector,
                     help="face detector: mtcnn (facenet's MTCNN weights), mtcnn-cctv (its R- and O-net tuned to "
                     "find compressed tiny faces) or yunet (YuNet, trained on WIDER FACE crowds; runs on the CPU); "
                     "docs/benchmarks.md (default: %(default)s)")
    det.add_argument("--detector-upscale", type=float, default=d.detector_upscale, metavar="X",
                     help="yunet: scan each frame enlarged X times, for faces below about 16 px; 0: x2 on frames "
                     f"of up to 540 px (shorter side), x1 on larger ones (default: {d.detector_upscale:g})")
    det.add_argument("--detector-precision", choices=DETECTOR_PRECISIONS, default=d.detector_precision,
                     help=f"MTCNN P-net precision (R-/O-net stay fp32) (default: {d.detector_precision})")
    per_detector = lambda k: ", ".join(f"{v[k]:g} for {n}" for n, v in DETECTOR_SCORES.items())  # noqa: E731
    det.add_argument("--min-score", type=float, default=d.min_score, help="drop detections below this detector score; "
                     f"those below --new-track-score only continue a track (default: {per_detector(0)})")
    det.add_argument("--new-track-score", type=float, default=d.new_track_score, help="score a detection needs "
                     f"to start a new track (default: {per_detector(1)})")
    det.add_argument("--coast", type=_non_negative, default=d.coast, metavar="N", help="frames a missed face is still "
                     f"reported at its predicted box, with detected: false (default: {d.coast})")
    det.add_argument("--max-age", type=_positive, default=d.max_age, help="frames a track keeps its id without a "
                     f"detection (default: {d.max_age})")
    det.add_argument("--min-hits", type=_positive, default=d.min_hits,
                     help=f"detections before a track is shown (default: {d.min_hits})")
    det.add_argument("--no-smooth", action="store_true", help="do not smooth landmarks (smoothed = raw)")
    det.add_argument("--smoother", choices=tuple(SMOOTHERS), default=d.smoother,
                     help="how landmarks are smoothed per track: kalman (constant-velocity Kalman filter, see "
                     "--smooth-noise / --smooth-process) or one-euro (One Euro filter: adaptive low-pass, less lag "
                     f"on fast motion) (default: {d.smoother})")
    det.add_argument("--smooth-noise", type=float, default=d.measurement_noise, metavar="R", help="kalman: landmark "
                     f"measurement noise as a fraction of face size; larger smooths more but lags more (default: "
                     f"{d.measurement_noise})")
    det.add_argument("--smooth-process", type=float, default=d.process_noise, metavar="Q", help="kalman: landmark "
                     "acceleration noise as a fraction of face size; smaller smooths more but lags more (default: "
                     f"{d.process_noise})")
    run = p.add_argument_group("run")
    run.add_argument("--max-frames", type=_positive, metavar="N", help="stop after N frames")
    run.add_argument("--live", action="store_true", help="latest-frame mode: drop frames when processing is slower than "
                     "the source (default for live URLs)")
    run.add_argument("--open-timeout", type=float, default=10.0, help="seconds to wait when opening / reading a "
                     "stream (default: 10)")
    run.add_argument("--rtsp-transport", choices=("tcp", "udp"), default="tcp",
                     help="RTSP transport (default: tcp; udp has lower latency but loses packets on busy networks)")
    run.add_argument("--reconnect", action=argparse.BooleanOptionalAction, default=None,
                     help="--reconnect: also wait for a live input that is down at startup (retried with back-off "
                     "0.5 s doubling to 30 s; implied by --live); --no-reconnect: end a live input when it drops "
                     "(default: reconnect after a drop, fail at once when down at startup)")
    run.add_argument("--max-reconnects", type=_positive, metavar="N", help="give up on a live input after N failed "
                     "attempts in a row (default: never)")
    ray = p.add_argument_group("Ray cluster (pip install \"jasr-video[ray]\"; docs/cluster.md)")
    ray.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                     help="run the streams on Ray: one actor per stream (decode, detect, track, outputs) and shared "
                     "model replicas; ADDRESS of a cluster (auto, host:6379, ray://host:10001), or none to start a "
                     "local Ray instance")
    ray.add_argument("--ray-replicas", type=_positive, default=1, metavar="N",
                     help="JASRNet model replicas shared by the streams (default: 1)")
    ray.add_argument("--ray-cpus", type=_positive, metavar="N", help="CPUs of the local Ray instance (default: all)")
    ray.add_argument("--ray-worker-cpus", type=float, default=0.5, metavar="C",
                     help="Ray CPUs reserved per stream actor; fractions let several share a core (default: 0.5)")
    run.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    run.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    return p
