"""Readers/writers of the write-ups' data layouts: round trips, the view contract, and bad input."""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from workbench.data import formats
from workbench.data.formats import VIEW_KEYS, VIEW_OF_FORMAT, detect_format, read, write
from workbench.data.formats import _images
from workbench.data.formats.itracker import default_splits
from workbench.data.formats.npz import read_npz
from workbench.errors import DataError, WorkbenchError

from _support.formats_fakes import EXTRA_KEYS, LAYOUTS, N, assert_contract, assert_roundtrip, by_subject, fake_view, read_all, view_of, written  # noqa: F401
from _support.formats_fakes import _fail_after, _raise_disk_full  # noqa: F401

# ----------------------------------------------------------------------------------------------------
# Round trips and the view contract
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", LAYOUTS)
def test_roundtrip_every_layout(tmp_path: Path, fmt: str) -> None:
    data = fake_view(view_of(fmt))
    path = written(tmp_path, fmt, data)
    out = read_all(fmt, path)
    extra = ("pog_mm",) if fmt == "evg" else EXTRA_KEYS.get(fmt, ())
    if fmt == "npz":
        extra = ("index",)  # npz keeps every array it was given
    assert_contract(out, view_of(fmt), extra)
    assert_roundtrip(fmt, data, out)
    assert detect_format(path) == fmt
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_mc4_names_carry_subjects_and_labels_are_three_line_records(tmp_path: Path) -> None:
    data = fake_view("mc4")
    path = written(tmp_path, "mc4", data)
    lines = (path / "gaze_label.txt").read_text().splitlines()
    assert len(lines) == 3 * N
    assert lines[0] == "s012_000000"
    assert lines[1] == f"{data['gaze_lola'][0, 0]:0.3f}" and lines[2] == f"{data['gaze_lola'][0, 1]:0.3f}"
    assert sorted(p.name for p in (path / "head").iterdir())[0] == "s000_000001.png"


def test_mc4_unknown_names_read_as_subject_minus_one(tmp_path: Path) -> None:
    data = fake_view("mc4")
    data["subject"][:] = -1
    out = read("mc4", written(tmp_path, "mc4", data))
    assert (out["subject"] == -1).all()


def test_mc4_predictions_roundtrip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    names = [f"s001_{i:06d}" for i in range(5)]
    lola = rng.uniform(-50, 50, (5, 2))
    path = formats.write_mc4_predictions(tmp_path / "pred.txt", names, lola)
    got_names, got = formats.read_mc4_predictions(path)
    assert got_names == names
    np.testing.assert_allclose(got, lola, rtol=0, atol=5e-4 + 1e-5)
    assert path.read_text().splitlines()[:3] == [names[0], f"{lola[0, 0]:0.3f}", f"{lola[0, 1]:0.3f}"]
    with pytest.raises(DataError, match=r"pred\.txt: already exists"):
        formats.write_mc4_predictions(path, names, lola)
    with pytest.raises(DataError, match=r"gaze_lola is \(4, 2\), expected \(5,2\)"):
        formats.write_mc4_predictions(tmp_path / "p2.txt", names, lola[:4])
    assert not (tmp_path / "p2.txt").exists()


def test_mpiifacegaze_mat_layout_and_subject_selection(tmp_path: Path) -> None:
    data = fake_view("face")
    path = written(tmp_path, "mpiifacegaze", data)
    assert sorted(p.name for p in path.iterdir()) == ["p00.mat", "p03.mat", "p12.mat"]
    assert (path / "p03.mat").read_bytes()[:19] == b"MATLAB 7.3 MAT-file"
    with h5py.File(path / "p03.mat", "r") as f:
        label = f["Data/label"][()]
        assert f["Data/data"].dtype == np.uint8 and label.shape[1] == 16 and label.dtype == np.float64
        first = np.flatnonzero(data["subject"] == 3)[0]
        np.testing.assert_array_equal(f["Data/data"][0], data["image"][first][::-1])  # BGR on disk
    np.testing.assert_array_equal(label[0, :2], data["gaze_pitchyaw"][first])
    np.testing.assert_array_equal(label[0, 12:16], data["landmarks"][first, 3:5].ravel())  # mouth corners last
    out = read("mpiifacegaze", path, subjects=[3])
    assert (out["subject"] == 3).all() and len(out["subject"]) == (data["subject"] == 3).sum()
    with pytest.raises(DataError, match=r"p07\.mat: missing \(subject 7 was selected\)"):
        read("mpiifacegaze", path, subjects=[7])
    pre = written(tmp_path, "mpiifacegaze-pre", data, name="pre")
    assert len(read("mpiifacegaze-pre", pre, subjects=[0, 12])["subject"]) == np.isin(data["subject"], [0, 12]).sum()
    with pytest.raises(DataError, match=r"pre/07: missing \(subject 7 was selected\)"):
        read("mpiifacegaze-pre", pre, subjects=[7])


def test_mpiifacegaze_pre_labels_dict_is_the_scripts_pickle(tmp_path: Path) -> None:
    path = written(tmp_path, "mpiifacegaze-pre")
    assert sorted(p.name for p in path.iterdir()) == ["00", "03", "12"]
    with open(path / "00" / "labels.dict", "rb") as f:
        labels = pickle.load(f)
    assert set(labels) == {"subject_id", "images", "labels"} and labels["subject_id"] == "00"
    assert labels["images"][0] == str(path / "00" / "0000.png")
    assert labels["labels"][0].shape == (16,) and labels["labels"][0].dtype == np.float64


def test_evg_splits_share_one_folder(tmp_path: Path) -> None:
    train, val = fake_view("frame", seed=1), fake_view("frame", n=4, seed=2)
    path = written(tmp_path, "evg", train)
    write("evg", val, path, split="val")
    assert formats.evg.evg_splits(path) == ["train", "val"]
    assert_roundtrip("evg", train, read("evg", path))
    out = read("evg", path, split="val")
    assert_roundtrip("evg", val, out)
    np.testing.assert_allclose(out["pog_mm"], val["pog_px"] * np.float32([344 / 1920, 194 / 1080]), rtol=1e-6)
    doc = json.loads((path / "annotations_val.json").read_text())
    assert set(doc["images"][0]) == {
        "file", "screen_mm", "screen_px", "gaze_px", "face_box", "camera_screen_offset_mm", "subject"
    }
    with pytest.raises(DataError, match=r"annotations_val\.json: split 'val' already exists"):
        write("evg", val, path, split="val")
    with pytest.raises(DataError, match=r"annotations_test\.json: missing \(splits in .*: train, val\)"):
        read("evg", path, split="test")
    # Replacing a split keeps the others and drops the old split's images.
    write("evg", fake_view("frame", n=2, seed=3), path, split="val", overwrite=True)
    assert len(read("evg", path, split="val")["subject"]) == 2
    assert len(list((path / "images").glob("val_*.png"))) == 2
    assert_roundtrip("evg", train, read("evg", path))


def test_evg_failed_split_write_keeps_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train = fake_view("frame", seed=1)
    path = written(tmp_path, "evg", train)
    before = sorted(str(p.relative_to(path)) for p in path.rglob("*"))
    _fail_after(monkeypatch, 2)
    with pytest.raises(OSError, match="disk full"):
        write("evg", fake_view("frame", seed=2), path, split="val")
    assert sorted(str(p.relative_to(path)) for p in path.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert_roundtrip("evg", train, read("evg", path))


def test_itracker_default_and_custom_splits(tmp_path: Path) -> None:
    assert default_splits([0, 1, 2, 3, 4]) == {0: "train", 1: "train", 2: "train", 3: "val", 4: "test"}
    assert default_splits([5]) == {5: "train"}
    want = {**{i: "train" for i in range(16)}, 16: "val", 17: "val", 18: "test", 19: "test"}
    assert default_splits(range(20)) == want
    data = fake_view("itracker")
    path = written(tmp_path, "itracker", data, splits={s: "test" if s == 1 else "train" for s in range(5)})
    out = read("itracker", path, split="test")
    assert (out["subject"] == 1).all() and len(out["subject"]) == (data["subject"] == 1).sum()
    names = sorted(p.name for p in (path / "test" / "00001").iterdir())
    assert names[:4] == ["00000_v0_left.png", "00000_v0_right.png", "00000_v1_left.png", "00000_v1_right.png"]
    assert names[-1] == "labels.csv"
    with pytest.raises(DataError, match=r"subject 4 has split 'holdout'"):
        write("itracker", data, tmp_path / "bad", splits={s: "holdout" if s == 4 else "train" for s in range(5)})
    with pytest.raises(DataError, match=r"valid.*missing split folder \(splits in .*: train, val, test\)"):
        read("itracker", path, split="valid")


def test_lam_writer_writes_the_ego4d_layout(tmp_path: Path) -> None:
    data = fake_view("track")
    path = written(tmp_path, "lam", data)
    assert sorted(p.name for p in path.iterdir()) == ["face_imgs", "json"]
    assert sorted(p.name for p in (path / "face_imgs").iterdir()) == ["s000_clip", "s003_clip", "s012_clip"]
    # sample 0 (subject 12) is track 000000 with frames 1..7, zero-padded like the LAM code's face_{:05d}.jpg
    assert sorted(p.name for p in (path / "face_imgs" / "s012_clip" / "000000").iterdir()) == [
        f"face_{f:05d}.jpg" for f in range(1, 8)]
    doc = json.loads((path / "json" / "av_train.json").read_text())
    video = next(v for v in doc["videos"] if v["video_uid"] == "s012")
    clip = video["clips"][0]
    assert clip["persons"][0]["camera_wearer"] is True  # get_json.py skips persons[0]
    person = clip["persons"][1]
    assert person["tracking_paths"][0]["track_id"] == "000000"
    assert [t["frame"] for t in person["tracking_paths"][0]["track"]] == list(range(1, 8))
    # looking segments: the runs of frame label 1, both ends included
    looking = np.zeros(7, dtype=int)
    for seg in clip["social_segments_looking"]:
        if seg["person"] == person["person_id"]:
            looking[seg["start_frame"] - 1: seg["end_frame"]] = 1
    np.testing.assert_array_equal(looking, data["frame_labels"][0])


def test_npz_keeps_the_view_name(tmp_path: Path) -> None:
    data = fake_view("track")
    path = written(tmp_path, "npz", data)
    out, view = read_npz(path)
    assert view == "track"
    assert formats.read_with_view("auto", path)[1] == "track"
    assert formats.read_with_view("lam", written(tmp_path, "lam", data, name="lam"))[1] == "track"
    path2 = write("npz", fake_view("mc4"), tmp_path / "explicit.npz", view="mc4")
    assert read_npz(path2)[1] == "mc4"


# ----------------------------------------------------------------------------------------------------
# End to end with the renderer
# ----------------------------------------------------------------------------------------------------

SYNTH_SIZE = {"face": 32, "mc4": 32, "itracker": 16, "frame": (64, 48), "track": 16}


@pytest.mark.parametrize("fmt", LAYOUTS)
def test_synthgaze_roundtrip(tmp_path: Path, fmt: str) -> None:
    synth = pytest.importorskip("workbench.data.synth")
    view = view_of(fmt)
    data = synth.render(view, N, seed=0, subjects=3, size=SYNTH_SIZE[view])
    path = written(tmp_path, fmt, data)
    out = read_all(fmt, path)
    if fmt != "npz":
        assert_contract(out, view, ("pog_mm",) if fmt == "evg" else EXTRA_KEYS.get(fmt, ()))
    assert_roundtrip(fmt, data, out)
    if fmt == "evg":
        np.testing.assert_allclose(out["pog_mm"], data["pog_mm"], rtol=1e-5, atol=1e-3)
