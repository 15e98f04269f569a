"""The pipeline's settings in one place: :class:`PipelineConfig` (every knob; the CLI's options and their
defaults are taken from it) and the value lists that options accept. Imports neither torch nor the model, so
the command line can build its options and check them before anything heavy loads.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .model.upright import DEFAULT_UPRIGHT_DEGREES, check_upright
from .smooth import MEASUREMENT_NOISE, PROCESS_NOISE, SMOOTHERS

PRECISIONS = ("auto", "fp32", "fp16", "bf16", "int8")  # JASRNet (auto: jasr_video.model.inference.resolve_precision)
ONNX_PRECISIONS = ("auto", "fp32", "int8")  # JASRNet on ONNX Runtime (jasr_video.model.onnx_backend)
DETECTOR_PRECISIONS = ("fp32", "fp16", "bf16")  # MTCNN's P-net (FaceDetector also takes "auto")
# jasr_video.detect.DETECTORS' names: facenet's MTCNN weights, its R-/O-net tuned on compressed tiny faces, YuNet
DETECTOR_NAMES = ("mtcnn", "mtcnn-cctv", "yunet")
# (min_score, new_track_score) where PipelineConfig leaves them unset: the detectors score on different scales
# (MTCNN's O-net probability, YuNet's sqrt(class x objectness)); chosen with tinybench (docs/benchmarks.md)
DETECTOR_SCORES: dict[str, tuple[float, float]] = {"mtcnn": (0.7, 0.7), "mtcnn-cctv": (0.7, 0.7), "yunet": (0.4, 0.6)}
BACKENDS = ("torch", "onnx")  # JASRNet runtime
SR_FACTORS = ("auto", "8", "4", "2")  # auto: x8 / x4 / x2 by face size (jasr_video.model.routing)
DEVICES = ("auto", "cpu", "cuda")


def _one_of(values: tuple[str, ...]) -> str:
    return ", ".join(values[:-1]) + " or " + values[-1]


@dataclass
class PipelineConfig:
    """Every knob of the pipeline (the CLI options map 1:1 onto these)."""

    weights: str = "jasr-cpu"  # shipped weights name or a checkpoint path
    device: str = "auto"  # auto, cpu or cuda (model and detector)
    precision: str = "auto"  # PRECISIONS; JASRNet: auto (CPU: int8 when the weights are calibrated, else bf16 with native bf16, else fp32; CUDA: fp16), fp32, fp16, bf16, int8
    backend: str = "torch"  # BACKENDS; JASRNet runtime: torch, or onnx (ONNX Runtime, fp32 / int8; extra jasr-video[onnx])
    detector: str = "yunet"  # a name in jasr_video.detect.DETECTORS (DETECTOR_NAMES)
    tracker: str = "sort"  # a name in jasr_video.track.TRACKERS
    detector_precision: str = "fp32"  # DETECTOR_PRECISIONS; MTCNN's P-net (R-/O-net stay fp32)
    # yunet: each full-frame scan on the frame enlarged this many times (>= 1; 1: off); 0: auto, x2 for frames whose
    # shorter side is <= 540 px (jasr_video.yunet.AUTO_UPSCALE_MAX_SIDE), else x1
    detector_upscale: float = 0.0
    batch_size: int = 32  # faces per JASRNet forward
    sr_factor: str = "auto"  # auto: x8 / x4 / x2 JASRNet by face size (jasr_video.model.routing); "8": every face at 16x16
    # landmarks of faces whose eye line tilts beyond this many degrees come from a second JASRNet pass on the
    # face turned level (jasr_video.model.upright); 0: one pass for every face
    upright: float = DEFAULT_UPRIGHT_DEGREES
    # super-resolved face images; False: landmarks only (FaceResult.sr None), JASRNet skips its SR branch. The CLI
    # turns it off when no output shows SR faces (JSON / CSV only, or a video without insets)
    sr_faces: bool = True
    # CPU (torch): lanes, each on its share of torch's threads (jasr_video.lanes): a file's detection beside JASRNet
    # on the frames before, JASRNet batches in parts side by side; 0: automatic (2 with >= 2 threads), 1: off
    lanes: int = 0
    frame_batch: int = 0  # frames gathered per step (MTCNN and JASRNet batch across them); 0: 16 on CUDA, 4 on CPU
    detect_every: int = 1  # run MTCNN on every N-th frame; Kalman prediction in between
    # full-frame MTCNN every N-th frame, MTCNN on regions around the tracks between; 0/1: full frame every
    # time; None: auto (CPU: every 5th frame, CUDA: every frame; every frame with detect_every > 1)
    full_scan_every: int | None = None
    min_face_size: int = 12  # smallest face MTCNN searches for, px
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)  # MTCNN P-, R-, O-net thresholds
    pyramid_factor: float = 0.709  # MTCNN image pyramid scale step
    # drop detections below this detector score (below new_track_score: continue only); None: DETECTOR_SCORES'
    min_score: float | None = None
    # detections below this score only continue tracks (ByteTrack); 0: all start; None: DETECTOR_SCORES'
    new_track_score: float | None = None
    coast: int = 5  # frames a missed track is still reported at its predicted box (detected: false)
    gate: float = 1.0  # re-associate a missed track with a detection within this many face sizes (0: IoU only)
    max_age: int = 25  # frames a track survives unmatched
    min_hits: int = 2  # matched detections before a track is reported
    iou_threshold: float = 0.3  # IoU needed to match a detection to a track
    smooth: bool = True  # smooth landmarks per track (False: smoothed = raw)
    smoother: str = "kalman"  # a name in jasr_video.smooth.SMOOTHERS: kalman or one-euro
    smoother_options: dict[str, Any] = field(default_factory=dict)  # keyword arguments of that smoother's class
    stable_crops: bool = True  # crop around the tracker's filtered box (less crop jitter) instead of the raw detection
    measurement_noise: float = MEASUREMENT_NOISE  # kalman: landmark noise std / face size
    process_noise: float = PROCESS_NOISE  # kalman: landmark acceleration std / face size
    margin: float | None = None  # crop margin; None: the weights' training crop margin
    max_frames: int | None = None  # stop after this many frames
    source_options: dict[str, Any] = field(default_factory=dict)  # passed to open_source

    def scores(self) -> tuple[float, float]:
        """(min_score, new_track_score): as set, or the detector's defaults (:data:`DETECTOR_SCORES`)."""
        default = DETECTOR_SCORES.get(self.detector, DETECTOR_SCORES["mtcnn"])
        return (default[0] if self.min_score is None else self.min_score,
                default[1] if self.new_track_score is None else self.new_track_score)

    def validate(self) -> None:
        if self.detect_every < 1:
            raise ValueError("detect_every must be >= 1")
        if self.full_scan_every is not None and self.full_scan_every < 0:
            raise ValueError("full_scan_every must be >= 0 (0 or 1: full-frame detection on every detection frame)")
        if (self.full_scan_every or 0) > 1 and self.detect_every > 1:
            raise ValueError("full_scan_every and detect_every > 1 do not combine: pick one")
        if self.batch_size < 1 or self.frame_batch < 0 or self.lanes < 0:
            raise ValueError("batch_size must be >= 1, frame_batch and lanes >= 0 (0: automatic)")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be {_one_of(PRECISIONS)}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be {_one_of(BACKENDS)}")
        if self.backend == "onnx" and self.precision not in ONNX_PRECISIONS:
            raise ValueError(f"the onnx backend runs fp32 or int8: use precision {_one_of(ONNX_PRECISIONS)}, or "
                             f"backend torch")
        if str(self.sr_factor) not in SR_FACTORS:
            raise ValueError(f"sr_factor must be {_one_of(SR_FACTORS)}")
        check_upright(self.upright)
        if self.detector not in DETECTOR_NAMES:
            raise ValueError(f"detector must be {_one_of(DETECTOR_NAMES)}")
        if self.detector_upscale < 1.0 and self.detector_upscale != 0:
            raise ValueError("detector_upscale must be >= 1 (1: the frame as it is), or 0 (auto)")
        if self.detector_precision not in DETECTOR_PRECISIONS:
            raise ValueError(f"detector_precision must be {_one_of(DETECTOR_PRECISIONS)}")
        if self.smoother not in SMOOTHERS:
            raise ValueError(f"smoother must be {_one_of(tuple(SMOOTHERS))}")
        if not all(0.0 <= score <= 1.0 for score in self.scores()):
            raise ValueError("min_score and new_track_score must be probabilities in [0, 1]")
        if self.coast < 0 or self.gate < 0:
            raise ValueError("coast and gate must be >= 0 (0: off)")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError("max_frames must be >= 1")


def config_dict(config: PipelineConfig) -> dict[str, Any]:
    return asdict(config)


AUTO_FULL_SCAN_EVERY_CPU = 5  # full_scan_every=None on CPU: a full-frame scan every 5th frame (pipeline.auto_full_scan_every)
LIVE_FRAME_BATCH = 1  # frames per step on live inputs when frame_batch is automatic (0): the lowest latency


def live_frame_batch(frame_batch: int) -> int:
    """The frame_batch a live input runs with: ``LIVE_FRAME_BATCH`` when automatic (0), else as given."""
    return frame_batch or LIVE_FRAME_BATCH
