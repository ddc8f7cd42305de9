"""Format readers/writers on bad input: one-line DataErrors naming the file; failed writes leave nothing."""

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

from _support.formats_fakes import LAYOUTS, N, assert_contract, assert_roundtrip, by_subject, fake_view, read_all, view_of, written  # noqa: F401
from _support.formats_fakes import _fail_after, _raise_disk_full  # noqa: F401

# ----------------------------------------------------------------------------------------------------
# Bad input: one-line DataErrors that name the file; failed writes leave nothing behind
# ----------------------------------------------------------------------------------------------------


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("fmt", LAYOUTS)
def test_missing_folder(tmp_path: Path, fmt: str) -> None:
    with pytest.raises(DataError, match=r"nope.*does not exist") as e:
        read(fmt, tmp_path / "nope")
    _one_line(e)


def test_unknown_layout_and_unknown_format_name(tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "readme.txt").write_text("hi")
    looked = r"junk: unknown data layout \(looked for mpiifacegaze: pNN\.mat.*lam: face_imgs/"
    with pytest.raises(DataError, match=looked) as e:
        detect_format(tmp_path / "junk")
    _one_line(e)
    with pytest.raises(DataError, match="unknown data layout"):
        read("auto", tmp_path / "junk")
    with pytest.raises(DataError, match="does not exist"):
        detect_format(tmp_path / "absent")
    with pytest.raises(ValueError, match=r"unknown data format 'hdf5': expected one of mpiifacegaze, "):
        read("hdf5", tmp_path / "junk")
    with pytest.raises(DataError, match=r"no pNN\.mat files"):
        read("mpiifacegaze", tmp_path / "junk")
    with pytest.raises(TypeError, match=r"format 'lam' has no option 'split' \(its options: stride, unlabelled\)"):
        read("lam", tmp_path / "junk", split="val")
    with pytest.raises(WorkbenchError, match=r"format 'mc4' has no option 'split' \(its options: overwrite\)"):
        write("mc4", fake_view("mc4"), tmp_path / "x", split="val")


def _first_image(path: Path, fmt: str) -> Path:
    pattern = "*.jpg" if fmt == "lam" else "*.png"
    return sorted(path.rglob(pattern))[0]


@pytest.mark.parametrize("fmt", ["mpiifacegaze-pre", "mc4", "evg", "itracker", "lam"])
@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_image_names_the_file(tmp_path: Path, fmt: str, damage: str) -> None:
    path = written(tmp_path, fmt)
    img = _first_image(path, fmt)
    raw = img.read_bytes()
    img.write_bytes(raw[: len(raw) // 2] if damage == "truncated" else b"not an image at all")
    with pytest.raises(DataError, match=re.escape(img.name) + r": cannot read image") as e:
        read_all(fmt, path)
    _one_line(e)


def _write_png(path: Path, size: int, channels: int = 3) -> None:
    arr = np.full((size, size, channels), 100, np.uint8)
    Image.fromarray(arr[..., 0] if channels == 1 else arr).save(path)


@pytest.mark.parametrize("fmt", ["mpiifacegaze-pre", "mc4", "evg", "itracker"])
def test_wrong_image_size_inside_one_data_set(tmp_path: Path, fmt: str) -> None:
    path = written(tmp_path, fmt)
    victim = sorted(path.rglob("*.png"))[-1]
    _write_png(victim, 8, channels=1 if fmt == "mc4" else 3)
    with pytest.raises(DataError, match=re.escape(victim.name) + r": image is 8x8 but .* (is|are) \d+x\d+") as e:
        read_all(fmt, path)
    _one_line(e)


def test_wrong_image_size_lam_and_mat(tmp_path: Path) -> None:
    path = written(tmp_path, "lam")
    victim = sorted(path.rglob("*.jpg"))[-1]
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(victim, format="JPEG")
    with pytest.raises(DataError, match=re.escape(victim.name) + r": image is 8x8 but"):
        read("lam", path)
    mat = written(tmp_path, "mpiifacegaze", name="mat")
    with h5py.File(mat / "p12.mat", "w") as f:
        f["Data/data"] = np.zeros((2, 3, 8, 8), np.uint8)
        f["Data/label"] = np.zeros((2, 16), np.float32)
    with pytest.raises(DataError, match=r"p12\.mat: images are 8x8 but p00\.mat has 16x16"):
        read("mpiifacegaze", mat)


def test_label_count_not_matching_image_count_mat(tmp_path: Path) -> None:
    path = written(tmp_path, "mpiifacegaze")
    with h5py.File(path / "p00.mat", "w") as f:
        f["Data/data"] = np.zeros((10, 3, 16, 16), np.uint8)
        f["Data/label"] = np.zeros((12, 16), np.float32)
    with pytest.raises(DataError, match=r"p00\.mat: Data/label has 12 rows but Data/data has 10 images") as e:
        read("mpiifacegaze", path)
    _one_line(e)


def test_label_count_not_matching_image_count_folders(tmp_path: Path) -> None:
    pre = written(tmp_path, "mpiifacegaze-pre", name="pre")
    (pre / "00" / "0000.png").unlink()
    with pytest.raises(DataError, match=r"00/labels\.dict: lists '.*0000\.png', but .*00/0000\.png is missing"):
        read("mpiifacegaze-pre", pre)

    mc4 = written(tmp_path, "mc4", name="mc4")
    sorted((mc4 / "r_eye").iterdir())[0].unlink()
    with pytest.raises(DataError, match=r"r_eye: has 5 PNG images but head_label\.txt has 6 records"):
        read("mc4", mc4)

    mc4b = written(tmp_path, "mc4", name="mc4b")
    lines = (mc4b / "eye_label.txt").read_text().splitlines()
    (mc4b / "eye_label.txt").write_text("\n".join(lines[:-3]) + "\n")
    with pytest.raises(DataError, match=r"eye_label\.txt: names differ from head_label\.txt \(5 vs 6 records"):
        read("mc4", mc4b)
    (mc4b / "eye_label.txt").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DataError, match=r"eye_label\.txt: 17 non-empty lines is not a whole number of 3-line records"):
        read("mc4", mc4b)

    itr = written(tmp_path, "itracker", name="itr")
    labels = itr / "train" / "00000" / "labels.csv"
    labels.write_text(labels.read_text() + "00099,1.0,2.0\n")
    with pytest.raises(DataError, match=r"00000/labels\.csv: has \d+ rows but 00000/ has \d+ samples of eye images"):
        read("itracker", itr, split="train")

    lam = written(tmp_path, "lam", name="lam")
    (lam / "face_imgs" / "s003_clip" / "000002" / "face_00017.jpg").unlink()
    with pytest.raises(DataError, match=r"000002/face_00017\.jpg: missing \(the track has frames 15\.\.21 with a gap at 17\)"):
        read("lam", lam)

    evg = written(tmp_path, "evg", name="evg")
    (evg / "images" / "train_000004.png").unlink()
    with pytest.raises(DataError, match=r"train_000004\.png: image file is missing"):
        read("evg", evg)


def test_nan_labels_name_the_file_and_row(tmp_path: Path) -> None:
    mat = written(tmp_path, "mpiifacegaze", name="mat")
    with h5py.File(mat / "p03.mat", "r+") as f:
        label = f["Data/label"][()]
        row = len(label) - 1
        assert row >= 1
        label[row, 3] = np.nan
        f["Data/label"][...] = label
    with pytest.raises(DataError, match=rf"p03\.mat: Data/label row {row} is not finite") as e:
        read("mpiifacegaze", mat)
    _one_line(e)

    pre = written(tmp_path, "mpiifacegaze-pre", name="pre")
    labels = pickle.loads((pre / "03" / "labels.dict").read_bytes())
    labels["labels"][1][0] = np.nan
    (pre / "03" / "labels.dict").write_bytes(pickle.dumps(labels))
    with pytest.raises(DataError, match=r"03/labels\.dict: label of image '0001\.png' is not finite"):
        read("mpiifacegaze-pre", pre)

    mc4 = written(tmp_path, "mc4", name="mc4")
    lines = (mc4 / "gaze_label.txt").read_text().splitlines()
    lines[7] = "nan"
    (mc4 / "gaze_label.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"gaze_label\.txt: record '{lines[6]}' \(line 7\) is not finite"):
        read("mc4", mc4)
    lines[7] = "abc"
    (mc4 / "gaze_label.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"gaze_label\.txt: line 8: 'abc' is not a number"):
        read("mc4", mc4)

    evg = written(tmp_path, "evg", name="evg")
    doc = json.loads((evg / "annotations_train.json").read_text())
    doc["images"][2]["gaze_px"][1] = float("nan")
    (evg / "annotations_train.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"annotations_train\.json: gaze_px of images\[2\] is not finite"):
        read("evg", evg)
    doc["images"][2]["gaze_px"] = [1.0]
    (evg / "annotations_train.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"train\.json: images\[2\]\.gaze_px is \[1\.0\], expected 2 numbers"):
        read("evg", evg)

    itr = written(tmp_path, "itracker", name="itr")
    labels_csv = itr / "train" / "00000" / "labels.csv"
    rows = labels_csv.read_text().splitlines()
    rows[1] = rows[1].split(",")[0] + ",nan,3.0"
    labels_csv.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"00000/labels\.csv: pog of sample '00000' is not finite"):
        read("itracker", itr)


def test_hostile_labels_dict_does_not_run(tmp_path: Path) -> None:
    pre = written(tmp_path, "mpiifacegaze-pre")
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (pre / "00" / "labels.dict").write_bytes(pickle.dumps({"subject_id": "00", "images": [Payload()], "labels": []}))
    with pytest.raises(DataError, match=r"00/labels\.dict: refused to unpickle \w+\.system: only plain") as e:
        read("mpiifacegaze-pre", pre)
    _one_line(e)
    assert not marker.exists()


@pytest.mark.parametrize("fmt", LAYOUTS)
def test_failed_write_leaves_nothing(tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = fake_view(view_of(fmt))
    out = tmp_path / "parent"
    out.mkdir()
    target = out / ("x.npz" if fmt == "npz" else "x")
    # 1) bad input caught before writing
    bad = dict(data)
    bad.pop(next(iter(VIEW_KEYS[view_of(fmt)])))
    with pytest.raises(DataError, match=r"x(\.npz)?: cannot write .*(has no|needs|cannot tell)") as e:
        write(fmt, bad, target)
    _one_line(e)
    assert list(out.iterdir()) == []
    # 2) a crash half-way through writing
    if fmt == "npz":
        import workbench.data.formats.npz as npz_mod

        monkeypatch.setattr(npz_mod.np, "savez_compressed", _raise_disk_full)
    elif fmt == "mpiifacegaze":
        import workbench.data.formats.mpiifacegaze as m

        calls = {"n": 0}
        real = m.h5py.File

        def flaky(*a, **k):
            calls["n"] += 1
            if calls["n"] > 1:
                raise OSError("disk full")
            return real(*a, **k)

        monkeypatch.setattr(m.h5py, "File", flaky)
    else:
        _fail_after(monkeypatch, 3)
    with pytest.raises(OSError, match="disk full"):
        write(fmt, data, target)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("fmt", LAYOUTS)
def test_writers_refuse_existing_output(tmp_path: Path, fmt: str) -> None:
    path = written(tmp_path, fmt)
    with pytest.raises(DataError, match="already exists"):
        write(fmt, fake_view(view_of(fmt), seed=5), path, **({"split": "train"} if fmt == "evg" else {}))
    write(fmt, fake_view(view_of(fmt), seed=5), path, overwrite=True)
    assert_roundtrip(fmt, fake_view(view_of(fmt), seed=5), read_all(fmt, path))


def test_writer_input_checks(tmp_path: Path) -> None:
    data = fake_view("face")
    data["gaze_pitchyaw"] = data["gaze_pitchyaw"][:4]
    with pytest.raises(DataError, match=r"cannot write mpiifacegaze: 'gaze_pitchyaw' has 4 samples but 'image' has 6"):
        write("mpiifacegaze", data, tmp_path / "a")
    data = fake_view("face")
    data["head_pitchyaw"][2, 0] = np.nan
    with pytest.raises(DataError, match=r"cannot write mpiifacegaze: 'head_pitchyaw' row 2 is not finite"):
        write("mpiifacegaze", data, tmp_path / "a")
    data = fake_view("mc4")
    data["face"] = np.repeat(data["face"], 3, axis=1)
    with pytest.raises(DataError, match=r"cannot write mc4: 'face' is \(6, 3, 24, 24\), expected \(N,1,\*,\*\)"):
        write("mc4", data, tmp_path / "a")
    data = fake_view("frame")
    data["image"] = data["image"].astype(np.float32)
    with pytest.raises(DataError, match=r"cannot write evg: 'image' is float32, expected uint8 images"):
        write("evg", data, tmp_path / "a")
    assert list(tmp_path.iterdir()) == []


def test_npz_bad_files(tmp_path: Path) -> None:
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(DataError, match=r"bad\.npz: not a readable npz file"):
        read("npz", tmp_path / "bad.npz")
    np.savez(tmp_path / "noview.npz", image=np.zeros((2, 3, 4, 4), np.uint8))
    with pytest.raises(DataError, match=r"noview\.npz: has no 'view' entry"):
        read("npz", tmp_path / "noview.npz")
    with pytest.raises(DataError, match=r"cannot tell the view"):
        write("npz", {"foo": np.zeros(3)}, tmp_path / "foo.npz")


