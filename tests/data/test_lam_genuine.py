"""Ego4D Looking-At-Me read from files written here exactly as the data set and its code lay them out.

The files are written independently of ``write_lam``: crops with ``cv2.imwrite`` (as the LAM code's
preprocessing does, from BGR arrays) under ``face_imgs/<clip_uid>/<track_id>/face_%05d.jpg``, and the Ego4D
``av_<set>.json`` with its genuine keys (or the baseline's ``json_original/`` + ``result_LAM/``). Each crop is
colour-coded (red / green / blue quadrants) and carries its frame number as the grey level of the fourth
quadrant, so channel order, orientation and the frames of every window are checked.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench.data.formats import detect_format, read
from workbench.errors import DataError

S = 32
CLIP_A = "0c7b1b9d-4f21-4a3f-9a3e-6b1f0b7c1a11"  # two tracks: 9 frames and 3 frames
CLIP_B = "9e2d5c44-0b6a-4f61-8c2e-2f4d1a0e7b22"  # one track of 4 frames, another video
TRACK_9, TRACK_3, TRACK_4 = "3f0a", "7c1e", "b2d4"
FRAMES = {TRACK_9: list(range(100, 109)), TRACK_3: [5, 6, 7], TRACK_4: [40, 41, 42, 43]}
RED, GREEN, BLUE = (220, 30, 30), (30, 220, 30), (30, 30, 220)

runner = CliRunner()


def _grey_of(frame: int) -> int:
    """Grey level that names a frame (levels 12 apart survive JPEG)."""
    return 20 + 12 * (frame % 17)


def _crop(frame: int) -> np.ndarray:
    """(S, S, 3) RGB: red top-left, green top-right, blue bottom-left, the frame's grey bottom-right."""
    img = np.zeros((S, S, 3), np.uint8)
    h = S // 2
    img[:h, :h], img[:h, h:], img[h:, :h] = RED, GREEN, BLUE
    img[h:, h:] = _grey_of(frame)
    return img


def _frame_of(chw: np.ndarray) -> int:
    """Decode the frame code (frame mod 17; unique within a window) from a (3, S, S) crop's grey quadrant."""
    level = chw[:, S // 2 + 2:-2, S // 2 + 2:-2].mean()
    return int(round((level - 20) / 12))


def _codes(frames: list[int]) -> list[int]:
    return [f % 17 for f in frames]


def _write_crops(root: Path, folder: str = "face_imgs", test_names: bool = False) -> None:
    for clip, tracks in ((CLIP_A, (TRACK_9, TRACK_3)), (CLIP_B, (TRACK_4,))):
        for tid in tracks:
            d = root / folder / clip / tid
            d.mkdir(parents=True)
            for f in FRAMES[tid]:
                name = f"{f:05d}_u{f}x.jpg" if test_names else f"face_{f:05d}.jpg"
                assert cv2.imwrite(str(d / name), _crop(f)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])


def _track(frames: list[int]) -> list[dict]:
    return [{"x": 10.0 + f, "y": 20.0, "width": 50.0, "height": 60.0, "frame": f, "video_frame": f + 900,
             "clip_frame": None} for f in frames]


def _segment(person, start: int, end: int) -> dict:
    return {"start_time": start / 30, "end_time": end / 30, "start_frame": start, "end_frame": end,
            "video_start_time": 30 + start / 30, "video_end_time": 30 + end / 30, "video_start_frame": 900 + start,
            "video_end_frame": 900 + end, "person": person, "target": None, "is_at_me": True}


def _av_json() -> dict:
    """The Ego4D AV annotation (docs/benchmarks/av-diarization.md): persons[0] is the camera wearer."""
    wearer = {"person_id": "0", "camera_wearer": True, "tracking_paths": [], "voice_segments": []}

    def person(pid: str, tid: str) -> dict:
        return {"person_id": pid, "camera_wearer": False, "voice_segments": [],
                "tracking_paths": [{"track_id": tid, "track": _track(FRAMES[tid]), "suspect": False,
                                    "unmapped_frames_count": 0, "unmapped_frames": []}]}

    def clip(uid: str, persons: list, looking: list) -> dict:
        return {"clip_uid": uid, "source_clip_uid": uid, "video_start_sec": 30.0, "video_end_sec": 330.0,
                "video_start_frame": 900, "video_end_frame": 9900, "clip_start_sec": 0, "clip_end_sec": 300.0,
                "clip_start_frame": 0, "clip_end_frame": 9000, "valid": True, "camera_wearer": wearer,
                "persons": [wearer, *persons], "missing_voice_segments": [], "transcriptions": [],
                "social_segments_talking": [], "social_segments_looking": looking}

    looking_a = [_segment("1", 102, 104), _segment(None, 100, 108), _segment("2", 7, 7)]
    return {"date": "2022-02-01", "version": "v1", "description": "av val", "videos": [
        {"video_uid": "vid-a", "split": "val", "clips": [clip(CLIP_A, [person("1", TRACK_9), person("2", TRACK_3)], looking_a)]},
        {"video_uid": "vid-b", "split": "val", "clips": [clip(CLIP_B, [person("1", TRACK_4)], [_segment("1", 41, 42)])]},
    ]}


@pytest.fixture()
def lam_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    _write_crops(root)
    (root / "json").mkdir()
    (root / "json" / "av_val.json").write_text(json.dumps(_av_json()))
    return root


def _expected_labels(tid: str, frame: int) -> int:
    if tid == TRACK_9:
        return int(102 <= frame <= 104)
    if tid == TRACK_4:
        return int(41 <= frame <= 42)
    return int(frame == 7)


def _check(out: dict[str, np.ndarray]) -> None:
    names = [str(n) for n in out["name"]]
    want = [f"{c}/{t}/{f}" for c, ts in ((CLIP_A, (TRACK_9, TRACK_3)), (CLIP_B, (TRACK_4,))) for t in ts for f in FRAMES[t]]
    assert names == want  # every frame a sample: 9 + 3 + 4
    assert out["frames"].shape == (16, 7, 3, S, S) and out["frames"].dtype == np.uint8
    h = S // 2
    for i, name in enumerate(names):
        clip, tid, frame = name.split("/")
        frames = FRAMES[tid]
        k = frames.index(int(frame))
        # the window frame-3..frame+3, the ends of the track repeated (pad_video's mode='edge')
        window = [frames[min(max(k + d, 0), len(frames) - 1)] for d in range(-3, 4)]
        got = [_frame_of(img) for img in out["frames"][i]]
        assert got == _codes(window), (name, got, window)
        centre = out["frames"][i, 3].astype(int)
        for (y, x), rgb in (((0, 0), RED), ((0, h), GREEN), ((h, 0), BLUE)):
            block = centre[:, y + 2:y + h - 2, x + 2:x + h - 2].reshape(3, -1).mean(1)
            assert np.abs(block - np.asarray(rgb)).max() < 12, (name, block, rgb)  # swapped channels: ~190 off
        np.testing.assert_array_equal(out["frame_labels"][i], [_expected_labels(tid, f) for f in window])
        assert out["label"][i] == _expected_labels(tid, int(frame))
    assert np.isnan(out["head_pose"]).all() and np.isnan(out["landmarks"]).all()


def test_av_json_layout_reads_every_frame_with_edge_padded_windows(lam_root: Path) -> None:
    assert detect_format(lam_root) == "lam"
    out = read("lam", lam_root)
    _check(out)
    # subjects per video: the two clips come from two videos
    assert out["subject"].tolist() == [0] * 12 + [1] * 4
    # the 9-frame track's first and last windows, spelled out
    assert [_frame_of(x) for x in out["frames"][0]] == _codes([100] * 4 + [101, 102, 103])
    assert [_frame_of(x) for x in out["frames"][8]] == _codes([105, 106, 107] + [108] * 4)
    strided = read("lam", lam_root, stride=4)
    assert [str(n) for n in strided["name"]][:3] == [f"{CLIP_A}/{TRACK_9}/{f}" for f in (100, 104, 108)]


def test_baseline_preprocessed_json_reads_the_same(tmp_path: Path) -> None:
    """scripts/preprocessing.py's outputs: json_original/<clip>/<track>.json and result_LAM/<clip>.json."""
    root = tmp_path / "data"
    _write_crops(root)
    for clip in _av_json()["videos"]:
        c = clip["clips"][0]
        uid = c["clip_uid"]
        for p in c["persons"][1:]:
            for tp in p["tracking_paths"]:
                rows = [{"clip_uid": uid, "frameNumber": t["frame"], "Person ID": p["person_id"], "x": t["x"],
                         "y": t["y"], "height": t["height"], "width": t["width"]} for t in tp["track"]]
                (root / "json_original" / uid).mkdir(parents=True, exist_ok=True)
                (root / "json_original" / uid / f"{tp['track_id']}.json").write_text(json.dumps(rows))
        segs = [{"label": s["person"], "start_frame": s["start_frame"], "end_frame": s["end_frame"]}
                for s in c["social_segments_looking"] if s["person"] is not None]
        (root / "result_LAM").mkdir(exist_ok=True)
        (root / "result_LAM" / f"{uid}.json").write_text(json.dumps(segs))
    out = read("lam", root)
    _check(out)
    assert len(np.unique(out["subject"])) == 2  # per clip here (no video uids in these files)
    # get_lam_result.py writes no file for a clip without looking segments: all its frames are 0
    (root / "result_LAM" / f"{CLIP_B}.json").unlink()
    out = read("lam", root)
    assert out["label"][:12].sum() == 4 and (out["frame_labels"][12:] == 0).all()


def test_challenge_test_split_is_read_only_unlabelled(tmp_path: Path) -> None:
    root = tmp_path / "test"
    _write_crops(root, "videos_challenge", test_names=True)
    assert detect_format(root) == "lam"
    with pytest.raises(DataError, match=r"no looking-at-me annotation .*`workbench predict`") as e:
        read("lam", root)
    assert "\n" not in str(e.value)
    out = read("lam", root, unlabelled=True)
    assert (out["label"] == -1).all() and (out["frame_labels"] == -1).all()
    assert str(out["name"][0]) == f"{CLIP_A}/{TRACK_9}/100/u100x"
    assert [_frame_of(x) for x in out["frames"][9 + 1]] == _codes([5, 5, 5, 6, 7, 7, 7])


# ----------------------------------------------------------------------------------------------------
# Bad input: one line naming the file
# ----------------------------------------------------------------------------------------------------


def _one_line_error(root: Path, pattern: str) -> None:
    with pytest.raises(DataError, match=pattern) as e:
        read("lam", root)
    assert "\n" not in str(e.value)


def test_truncated_annotation(lam_root: Path) -> None:
    path = lam_root / "json" / "av_val.json"
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    _one_line_error(lam_root, r"json/av_val\.json: not valid JSON \(")


def test_missing_frame_in_the_middle_of_a_track(lam_root: Path) -> None:
    (lam_root / "face_imgs" / CLIP_A / TRACK_9 / "face_00104.jpg").unlink()
    _one_line_error(lam_root, re.escape(f"{TRACK_9}/face_00104.jpg: missing (the track has frames 100..108 with a gap at 104)"))


def test_label_for_an_unknown_track(lam_root: Path) -> None:
    doc = _av_json()
    doc["videos"][0]["clips"][0]["social_segments_looking"].append(_segment("5", 3, 9))
    (lam_root / "json" / "av_val.json").write_text(json.dumps(doc))
    _one_line_error(lam_root, r"av_val\.json: videos\[0\]\.clips\[0\]\.social_segments_looking\[3\] labels person '5'.*no track")


def test_crops_of_a_track_the_annotation_does_not_know(lam_root: Path) -> None:
    extra = lam_root / "face_imgs" / CLIP_B / "ffff"
    extra.mkdir()
    assert cv2.imwrite(str(extra / "face_00001.jpg"), _crop(1))
    _one_line_error(lam_root, r"ffff: track 'ffff' is not in av_val\.json")


def test_annotation_missing_a_key(lam_root: Path) -> None:
    doc = _av_json()
    del doc["videos"][1]["clips"][0]["persons"][1]["tracking_paths"][0]["track_id"]
    (lam_root / "json" / "av_val.json").write_text(json.dumps(doc))
    _one_line_error(lam_root, r"av_val\.json: videos\[1\]\.clips\[0\]\.persons\[1\]\.tracking_paths\[0\] has no 'track_id'")


# ----------------------------------------------------------------------------------------------------
# The CLI on the genuine layout
# ----------------------------------------------------------------------------------------------------


def test_inspect_and_tiny_training(lam_root: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["data", "inspect", str(lam_root), "--json", "--out", str(tmp_path / "g.png"), "--n", "4"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["format"] == "lam" and summary["view"] == "track" and summary["samples"] == 16
    assert summary["subjects"]["count"] == 2
    for teacher in ("gazelstm", "gazepose"):  # gazepose trains with the priors absent (NaN -> zero priors)
        run = tmp_path / teacher
        res = runner.invoke(app, ["train", teacher, "--data", str(lam_root), "--epochs", "1", "--out", str(run),
                                  "--set", "batch_size=8", "--json"])
        assert res.exit_code == 0, res.output
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["data"]["format"] == "lam" and metrics["data"]["split"] == "held-out subjects [1]"
        assert 0.0 <= metrics["final"]["ap"] <= 1.0  # the held-out video has both classes
    # The challenge's unlabelled test crops: refused for training, predicted with their genuine ids.
    test = tmp_path / "test"
    _write_crops(test, "videos_challenge", test_names=True)
    res = runner.invoke(app, ["train", "gazelstm", "--data", str(test), "--epochs", "1", "--out", str(tmp_path / "bad")])
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1 and "no looking-at-me annotation" in res.stderr
    pred = tmp_path / "pred.csv"
    res = runner.invoke(app, ["predict", str(tmp_path / "gazelstm"), "--data", str(test), "--out", str(pred)])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(pred.open()))
    assert len(rows) == 16
    assert rows[0] == {**rows[0], "uid": CLIP_A, "track": TRACK_9, "frame": "100", "unique_id": "u100x"}
    assert all(0.0 <= float(r["score"]) <= 1.0 and r["label"] in ("0", "1") for r in rows)
