"""The mtcnn-cctv detector (facenet's MTCNN with R-net and O-net tuned on compressed tiny faces): what it loads,
that it finds more of a real frame's faces after an H.264 round trip than facenet's weights without losing them on
clean frames, and the tool that makes its weights (jasr_video.tools.tune_detector)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import FACES_TRAIN, SHARED_DATA, need
from jasr_video.config import DETECTOR_NAMES, PipelineConfig
from jasr_video.detect import DETECTORS, CctvFaceDetector, FaceDetector, make_detector

STADIUM = SHARED_DATA / "video" / "stadium_crowd_720p25.mp4"


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_cctv_detector_replaces_only_rnet_and_onet():
    assert set(DETECTORS) == set(DETECTOR_NAMES)
    facenet, cctv = FaceDetector(12), make_detector(PipelineConfig(detector="mtcnn-cctv", device="cpu"), torch.device("cpu"))
    assert isinstance(cctv, CctvFaceDetector) and cctv.refine_weights == "mtcnn-cctv"
    assert _same(facenet.mtcnn.pnet, cctv.mtcnn.pnet)
    assert not _same(facenet.mtcnn.rnet, cctv.mtcnn.rnet) and not _same(facenet.mtcnn.onet, cctv.mtcnn.onet)
    with pytest.raises(FileNotFoundError, match="mtcnn-cctv"):
        FaceDetector(12, refine_weights="no-such-weights")
    with pytest.raises(ValueError, match="detector must be"):
        PipelineConfig(detector="yolo").validate()


def _frames_and_truth(scale: int):
    """One stadium frame reduced `scale` x (raw, and the last of 5 frames after an H.264 round trip at 0.15 bit
    per pixel), and the faces facenet finds at full resolution (probability >= 0.95) as the truth."""
    from jasr_video.tinybench import downscale, ground_truth, h264_roundtrip, read_runs

    _, runs = read_runs(need(STADIUM), 1, 5)
    truth, unsure = ground_truth(FaceDetector(12, min_score=0.0), runs[0][-1], 1, 0.95)
    small = [downscale(f, scale) for f in runs[0]]
    return small[-1], h264_roundtrip([small], 0.15)[0][-1], truth / scale, unsure / scale


def test_cctv_detector_finds_more_compressed_tiny_faces():
    from jasr_video.tinybench import score_frame

    raw, coded, truth, unsure = _frames_and_truth(3)  # faces of about 10-18 px
    assert len(truth) > 50
    found = {}
    for name in ("mtcnn", "mtcnn-cctv"):
        det = make_detector(PipelineConfig(detector=name, device="cpu"), torch.device("cpu"))
        for kind, image in (("raw", raw), ("h264", coded)):
            boxes = np.array([d.box for d in det.detect([image])[0]], np.float32).reshape(-1, 4)
            s = score_frame(truth, boxes, unsure, 0.5)
            found[name, kind] = (int(s.found.sum()), len(s.fp_sizes))
    print(found)
    assert found["mtcnn-cctv", "h264"][0] >= 1.5 * found["mtcnn", "h264"][0], found
    assert found["mtcnn-cctv", "raw"][0] >= 0.95 * found["mtcnn", "raw"][0], found


def test_distillation_targets_are_the_teachers_outputs_on_its_own_view():
    """With the student's view equal to the teacher's, the targets are facenet's own outputs on those crops, and
    facenet's networks agree with them (up to the crops' fp16 storage)."""
    import cv2

    from jasr_video.tools.tune_detector import Nets, agreement, load_faces, make_scene, scene_samples

    rng = np.random.default_rng(0)
    faces = load_faces([need(FACES_TRAIN)], 16, rng)
    scene = make_scene(rng, faces)
    assert scene.shape == (1024, 1024, 3) and scene.dtype == np.uint8
    view = cv2.resize(scene, (256, 256), interpolation=cv2.INTER_AREA)  # faces of about 16-32 px
    nets = Nets()
    samples = scene_samples(nets, view, view, 1.0, rng)
    assert len(samples["rnet"]["x"]) > 20 and len(samples["onet"]["x"]) > 0
    with torch.inference_mode():
        prob = nets.rnet(samples["rnet"]["x"].float())[1][:, 1]
    assert torch.allclose(prob, samples["rnet"]["prob"], atol=0.02)
    for stage, net in (("rnet", nets.rnet), ("onet", nets.onet)):
        agree = agreement(net, samples[stage])
        assert agree["faces"] > 0 and agree["faces_kept"] >= 0.97 and (agree["non_faces_rejected"] or 1.0) >= 0.97, agree


def test_crowd_cells_pack_several_whole_faces():
    """A crowd cell holds k x k face photos shrunk side by side: facenet's MTCNN finds several faces in it, where a
    cell of one photo holds one."""
    from jasr_video.tools.tune_detector import CELL, crowd_cell, load_faces

    rng = np.random.default_rng(0)
    faces = load_faces([need(FACES_TRAIN)], 24, rng)
    detector = FaceDetector(12)
    counts = []
    for seed in range(4):
        cell = crowd_cell(np.random.default_rng(seed), faces)
        assert cell.shape == (CELL, CELL, 3) and cell.dtype == np.uint8
        counts.append(len(detector.detect([np.ascontiguousarray(cell)])[0]))
    assert min(counts) >= 3, counts  # 4 or 9 photos a cell; a face may be cut or turned away
    single = [len(detector.detect([np.ascontiguousarray(f)])[0]) for f in faces[:4]]
    assert max(single) <= 2 and sum(counts) > 2 * sum(single), (counts, single)


def test_tune_detector_writes_weights_the_detector_loads(tmp_path):
    from jasr_video.tools.tune_detector import main

    out = tmp_path / "tuned.pt"
    assert main(["--faces", str(need(FACES_TRAIN)), "--per-folder", "24", "--scenes", "4", "--val-scenes", "2",
                 "--epochs", "1", "--out", str(out)]) == 0
    det = FaceDetector(12, refine_weights=str(out))
    assert not _same(det.mtcnn.onet, FaceDetector(12).mtcnn.onet)
    assert Path(str(out).replace(".pt", ".log.json")).is_file()
    assert main(["--faces", str(tmp_path / "missing"), "--out", str(out)]) == 2


def test_pnet_distillation_moves_pnet_towards_the_teachers_clean_judgement():
    """P-net tuned on H.264-degraded views of a few scenes keeps more of the windows facenet's P-net passes on the
    clean views than facenet's P-net does on the degraded ones, and passes the clean views' windows as before."""
    from jasr_video.model.degradations import h264_frame
    from jasr_video.tools.tune_detector import (Nets, distil_pnet, load_faces, make_scene, pnet_agreement, pyramid,
                                                reduce_scene)

    rng = np.random.default_rng(0)
    faces = load_faces([need(FACES_TRAIN)], 24, rng)

    pairs = []
    for _ in range(6):
        clean, _ = reduce_scene(rng, make_scene(rng, faces))
        pairs.append((h264_frame(clean, 40), clean))
    nets = Nets()
    assert [tuple(x.shape[-2:]) for x in pyramid(pairs[0][1])][0] == tuple(int(s + 1) for s in pairs[0][1].shape[:2])
    before = pnet_agreement(nets.student_pnet, nets.pnet, pairs)
    distil_pnet(nets.student_pnet, nets.pnet, pairs, epochs=6, lr=3e-3, seed=0, batch=2)
    after = pnet_agreement(nets.student_pnet, nets.pnet, pairs)
    assert before["faces"] > 100 and after["faces_kept"] >= before["faces_kept"] + 0.05, (before, after)
    clean_views = [(clean, clean) for _, clean in pairs]
    assert pnet_agreement(nets.student_pnet, nets.pnet, clean_views)["faces_kept"] >= 0.85


def test_tune_detector_tunes_pnet_on_top_of_given_weights(tmp_path):
    from jasr_video.tools.tune_detector import main

    out = tmp_path / "pnet.pt"
    assert main(["--faces", str(need(FACES_TRAIN)), "--per-folder", "24", "--stages", "pnet", "--init", "mtcnn-cctv",
                 "--pnet-scenes", "4", "--val-scenes", "2", "--epochs", "1", "--out", str(out)]) == 0
    tuned, shipped, facenet = FaceDetector(12, refine_weights=str(out)), CctvFaceDetector(12), FaceDetector(12)
    assert not _same(tuned.mtcnn.pnet, facenet.mtcnn.pnet)
    assert _same(tuned.mtcnn.rnet, shipped.mtcnn.rnet) and _same(tuned.mtcnn.onet, shipped.mtcnn.onet)
    assert main(["--faces", str(need(FACES_TRAIN)), "--init", str(tmp_path / "missing.pt"), "--out", str(out)]) == 2
