"""Face identity (jasr_video.identity) and the verification benchmark (jasr_video.tools.verifybench)."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from conftest import SHARED_DATA, need
from jasr_video.tools import verifybench as vb

FACES_ID = SHARED_DATA / "faces-id"


def test_ten_fold_threshold_comes_from_the_other_folds():
    # folds 0-8: same pairs at 0.3, different at 0.7; fold 9's same pairs at 0.6 sit above every threshold the
    # other folds choose (between 0.3 and 0.7, nearest the middle of the gap: 0.5), so fold 9 gets only its
    # different pairs right: 50 %
    d, same, fold = [], [], []
    for k in range(10):
        d += [0.6 if k == 9 else 0.3] * 5 + [0.7] * 5
        same += [True] * 5 + [False] * 5
        fold += [k] * 10
    d, same, fold = np.array(d), np.array(same), np.array(fold)
    r = vb.ten_fold(d, same, fold)
    assert r["per_fold"][:9] == [1.0] * 9 and r["per_fold"][9] == 0.5
    assert r["accuracy"] == pytest.approx(0.95)
    assert 0.3 < r["thresholds"][9] < 0.6  # fold 9's own pairs would have moved it past 0.6
    assert r["far"] == 0.0
    # at given thresholds (the HR ones): a threshold above 0.7 accepts every different pair
    assert vb.ten_fold(d, same, fold, np.full(10, 0.8))["far"] == 1.0


def test_best_threshold_separates_when_it_can():
    t = vb.best_threshold(np.array([0.2, 0.4, 0.5, 0.9]), np.array([True, True, False, False]))
    assert 0.4 < t < 0.5


def test_pairs_are_seeded_balanced_and_identity_disjoint_across_folds():
    ids = {f"p{i}": [f"p{i}_{j}.jpg" for j in range(5)] for i in range(30)}
    photos, pairs, same, fold = vb.make_pairs(ids, 5, 3, 3, seed=1)
    assert (photos, pairs.tolist()) == (lambda r: (r[0], r[1].tolist()))(vb.make_pairs(ids, 5, 3, 3, seed=1))
    assert same.sum() == (~same).sum() == 5 * 3 * 3  # 3 same pairs per person (3 photos), as many different
    person = np.array([p.split("_")[0] for p in photos])
    assert (person[pairs[:, 0]] == person[pairs[:, 1]]).tolist() == same.tolist()
    for k in range(5):
        others = set(person[pairs[fold != k].ravel()])
        assert not others & set(person[pairs[fold == k].ravel()])


def test_missing_dlib_is_one_line_naming_the_extra(monkeypatch):
    from jasr_video import identity

    monkeypatch.setitem(sys.modules, "dlib", None)  # as if not installed
    with pytest.raises(identity.IdentityUnavailable, match=r"pip install 'jasr-video\[identity\]'") as info:
        identity.Recognizer()
    assert "\n" not in str(info.value)


def test_recognizer_tells_people_apart():
    pytest.importorskip("dlib", reason="needs the extra jasr-video[identity]")
    data = need(FACES_ID)
    from jasr_video.identity import Recognizer, compare, distance

    ids = vb.read_identities(data)
    a, b = sorted(ids)[:2]
    faces = [vb.load_face(data / f) for f in (ids[a][0], ids[a][1], ids[b][0])]
    rec = Recognizer()
    d = rec.describe_many([f for f, _ in faces], [p for _, p in faces])
    assert d.shape == (3, 128)
    m = distance(d, d)
    assert m.shape == (3, 3) and m[0, 1] < m[0, 2] and m[0, 1] < m[1, 2]
    assert compare(d[0], d[1]) and not compare(d[0], d[2])


def test_verifybench_on_a_handful_of_pairs(tmp_path):
    pytest.importorskip("dlib", reason="needs the extra jasr-video[identity]")
    data = need(FACES_ID)
    out = tmp_path / "v.json"
    assert vb.main(["--data", str(data), "--ids-per-fold", "2", "--photos-per-id", "2", "--sizes", "16",
                    "--weights", "jasr-cpu", "--threads", "1", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert (r["pairs"], r["same_pairs"], r["photos"]) == (40, 20, 40)
    rows = {(row["size"], row["method"]): row for row in r["rows"]}
    assert set(rows) == {(None, "HR"), (16, "bicubic"), (16, "jasr-cpu")}
    assert rows[(None, "HR")]["accuracy"] >= 0.8  # chance is 0.5
    assert rows[(16, "jasr-cpu")]["routes"] == ["x8"]
    assert rows[(16, "bicubic")]["gap_closed"] is None
    for row in r["rows"]:
        assert 0 <= row["far_at_hr"] <= 1 and len(row["per_fold"]) == 10


def test_verifybench_fused_track_rows(tmp_path):
    pytest.importorskip("dlib", reason="needs the extra jasr-video[identity]")
    data = need(FACES_ID)
    out = tmp_path / "v.json"
    assert vb.main(["--data", str(data), "--ids-per-fold", "2", "--photos-per-id", "2", "--sizes", "16",
                    "--weights", "jasr-cpu", "--threads", "1", "--fused", "3", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert (r["fused"], r["fused_condition"]) == (3, "cctv")
    rows = {(row["size"], row["method"]): row for row in r["rows"]}
    track = [(16, "bicubic, best of 3"), (16, "jasr-cpu, best of 3"), (16, "jasr-cpu, fused 3 (sr-trim)")]
    assert set(rows) == {(None, "HR"), (16, "bicubic"), (16, "jasr-cpu"), *track}
    assert rows[track[0]]["gap_closed"] is None  # the track rows' own baseline
    assert rows[track[1]]["routes"] == rows[track[2]]["routes"] == ["x8"]
    assert 1 <= rows[track[2]]["frames_fused"] <= 3
    for key in track:  # a recogniser still sees faces: well above chance at HR's own level of noise
        assert 0.5 <= rows[key]["accuracy"] <= 1 and 0 <= rows[key]["far_at_hr"] <= 1
        assert len(rows[key]["per_fold"]) == 10


def test_fused_option_off_by_default_and_checked():
    assert vb.main(["--fused", "17"]) == 2
