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

LAYOUTS = ["mpiifacegaze", "mpiifacegaze-pre", "mc4", "evg", "itracker", "lam", "npz"]
N = 6


# ----------------------------------------------------------------------------------------------------
# A small fake of the renderer's views (random smooth images, plausible labels), seeded.
# ----------------------------------------------------------------------------------------------------


def _images_u8(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Smooth random uint8 images (..., C, H, W): 8x8 blocks plus a little noise (JPEG-friendly)."""
    *lead, h, w = shape
    low = rng.uniform(30, 225, (*lead, -(-h // 8), -(-w // 8)))
    up = np.repeat(np.repeat(low, 8, -2), 8, -1)[..., :h, :w]
    return np.clip(up + rng.normal(0, 2, up.shape), 0, 255).astype(np.uint8)


def fake_view(view: str, n: int = N, seed: int = 0, size: int = 16) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    f32 = lambda lo, hi, *shape: rng.uniform(lo, hi, (n, *shape)).astype(np.float32)  # noqa: E731
    subject = np.array([12, 0, 3], dtype=np.int64)[np.arange(n) % 3]  # interleaved subjects
    if view == "face":
        return {
            "image": _images_u8(rng, (n, 3, size, size)),
            "gaze_pitchyaw": f32(-0.6, 0.6, 2),
            "head_pitchyaw": f32(-0.4, 0.4, 2),
            "landmarks": f32(0, size, 5, 2),
            "eye_boxes": f32(0, size, 2, 4),
            "subject": subject,
            "index": np.arange(n, dtype=np.int64),  # an extra key writers must ignore
        }
    if view == "mc4":
        return {
            "face": _images_u8(rng, (n, 1, size + 8, size + 8)),
            "l_eye": _images_u8(rng, (n, 1, size, size)),
            "r_eye": _images_u8(rng, (n, 1, size, size)),
            "head_lola": f32(-40, 40, 2),
            "eye_lola": f32(-25, 25, 2),
            "gaze_lola": f32(-60, 60, 2),
            "subject": subject,
            "eye_boxes": f32(0, size, 2, 4),
        }
    if view == "itracker":
        return {
            "eyes": _images_u8(rng, (n, 4, 3, size, size)),
            "pog_px": np.stack([rng.uniform(0, 1920, n), rng.uniform(0, 1080, n)], 1).astype(np.float32),
            "subject": rng.permutation(np.arange(n)).astype(np.int64) % 5,
            "pog_mm": f32(0, 300, 2),
        }
    if view == "frame":
        return {
            "image": _images_u8(rng, (n, 3, size + 8, size * 2)),
            "pog_px": np.stack([rng.uniform(0, 1920, n), rng.uniform(0, 1080, n)], 1).astype(np.float32),
            "screen_mm": np.tile(np.float32([344.0, 194.0]), (n, 1)),
            "screen_px": np.tile(np.float32([1920, 1080]), (n, 1)),
            "offset_mm": np.tile(np.float32([-172.0, 8.0]), (n, 1)),
            "face_box": np.concatenate([f32(0, 10, 2), f32(12, 24, 2)], 1),
            "subject": subject,
            "gaze": f32(-1, 1, 3),
        }
    if view == "track":
        frame_labels = rng.integers(0, 2, (n, 7)).astype(np.int64)
        return {
            "frames": _images_u8(rng, (n, 7, 3, size, size)),
            "label": frame_labels[:, 3].copy(),
            "frame_labels": frame_labels,
            "head_pose": f32(-40, 40, 7, 3),
            "landmarks": f32(0, 1, 7, 5, 2),
            "subject": subject,
        }
    raise ValueError(view)


def view_of(fmt: str) -> str:
    return VIEW_OF_FORMAT[fmt] or "face"


def written(tmp_path: Path, fmt: str, data: dict | None = None, name: str = "out", **kw) -> Path:
    data = fake_view(view_of(fmt)) if data is None else data
    path = tmp_path / (name + (".npz" if fmt == "npz" else ""))
    assert write(fmt, data, path, **kw) == path
    return path


def read_all(fmt: str, path: Path) -> dict[str, np.ndarray]:
    """Read every split of a layout (itracker splits by subject) into one dict."""
    if fmt != "itracker":
        return read(fmt, path)
    parts = []
    for split in ("train", "val", "test"):
        try:
            parts.append(read(fmt, path, split=split))
        except DataError as e:
            if "no samples" not in str(e):
                raise
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def by_subject(d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    order = np.argsort(d["subject"], kind="stable")
    return {k: v[order] for k, v in d.items()}


def assert_contract(out: dict[str, np.ndarray], view: str, extra: tuple[str, ...] = ()) -> None:
    assert set(out) == set(VIEW_KEYS[view]) | set(extra)
    n = len(out["subject"])
    for key, (dtype, shape) in VIEW_KEYS[view].items():
        assert out[key].dtype == dtype, key
        assert out[key].shape[0] == n, key
        assert len(out[key].shape) == len(shape) + 1, key
        for want, got in zip(shape, out[key].shape[1:]):
            assert want is None or want == got, key


def assert_roundtrip(fmt: str, data: dict[str, np.ndarray], out: dict[str, np.ndarray]) -> None:
    view = view_of(fmt)
    keys = [k for k in VIEW_KEYS[view] if k in data]
    if fmt in ("mpiifacegaze", "mpiifacegaze-pre", "itracker"):  # grouped by subject on disk
        data, out = by_subject({k: np.asarray(data[k]) for k in keys}), by_subject(out)
    np.testing.assert_array_equal(out["subject"], data["subject"])
    for key in keys:
        want, got = np.asarray(data[key]), out[key]
        if fmt in ("mpiifacegaze", "mpiifacegaze-pre") and key == "eye_boxes":
            assert np.isnan(got).all() and got.shape == want.shape
        elif want.dtype == np.uint8 and fmt == "lam":
            assert got.shape == want.shape
            assert np.abs(got.astype(float) - want).mean() < 3.0
        elif want.dtype == np.uint8:
            np.testing.assert_array_equal(got, want, err_msg=key)  # PNG: byte-exact
        elif fmt == "mc4" and key != "subject":
            np.testing.assert_allclose(got, want, rtol=0, atol=5e-4 + 1e-5, err_msg=key)  # %0.3f
        else:
            np.testing.assert_array_equal(got, want.astype(got.dtype), err_msg=key)


# ----------------------------------------------------------------------------------------------------
# Round trips and the view contract
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", LAYOUTS)
def test_roundtrip_every_layout(tmp_path: Path, fmt: str) -> None:
    data = fake_view(view_of(fmt))
    path = written(tmp_path, fmt, data)
    out = read_all(fmt, path)
    extra = ("pog_mm",) if fmt == "evg" else ()
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
    with h5py.File(path / "p03.mat", "r") as f:
        label = f["Data/label"][()]
        assert f["Data/data"].dtype == np.uint8 and label.shape[1] == 16 and label.dtype == np.float32
    first = np.flatnonzero(data["subject"] == 3)[0]
    np.testing.assert_array_equal(label[0, 4:14], data["landmarks"][first].ravel())
    assert (label[:, 14:] == 0).all()
    out = read("mpiifacegaze", path, subjects=[3])
    assert (out["subject"] == 3).all() and len(out["subject"]) == (data["subject"] == 3).sum()
    with pytest.raises(DataError, match=r"p07\.mat: missing \(subject 7 was selected\)"):
        read("mpiifacegaze", path, subjects=[7])
    pre = written(tmp_path, "mpiifacegaze-pre", data, name="pre")
    assert len(read("mpiifacegaze-pre", pre, subjects=[0, 12])["subject"]) == np.isin(data["subject"], [0, 12]).sum()


def test_mpiifacegaze_pre_labels_dict_is_plain_pickle(tmp_path: Path) -> None:
    path = written(tmp_path, "mpiifacegaze-pre")
    with open(path / "p00" / "labels.dict", "rb") as f:
        labels = pickle.load(f)
    assert isinstance(labels, dict) and sorted(labels)[0] == "00000.png"
    entry = labels["00000.png"]
    assert set(entry) == {"gaze", "head", "landmarks"}
    assert entry["gaze"].dtype == np.float32 and entry["landmarks"].shape == (5, 2)


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


def test_lam_without_priors_reads_nan(tmp_path: Path) -> None:
    data = fake_view("track")
    data["head_pose"][:] = np.nan
    data["landmarks"][:] = np.nan
    path = written(tmp_path, "lam", data)
    assert not (path / "priors.csv").exists()
    out = read("lam", path)
    assert np.isnan(out["head_pose"]).all() and np.isnan(out["landmarks"]).all()
    np.testing.assert_array_equal(out["label"], data["frame_labels"][:, 3])
    uid_dirs = sorted(p.name for p in (path / "face_imgs").iterdir())
    assert uid_dirs == ["s000", "s003", "s012"]


def test_lam_labels_csv_columns(tmp_path: Path) -> None:
    path = written(tmp_path, "lam")
    lines = (path / "labels.csv").read_text().splitlines()
    assert lines[0] == "uid,track,frame,label" and len(lines) == 1 + 7 * N
    assert lines[1].startswith("s012,000000,0,")
    header = (path / "priors.csv").read_text().splitlines()[0].split(",")
    assert header[:6] == ["uid", "track", "frame", "yaw", "pitch", "roll"] and header[-1] == "lm4y"
    assert (path / "face_imgs" / "s012" / "000000" / "face_6.jpg").is_file()
    assert (path / "face_imgs" / "s000" / "000001" / "face_7.jpg").is_file()


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
    with pytest.raises(TypeError, match=r"format 'lam' has no option 'split' \(its options: none\)"):
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
    (pre / "p00" / "00000.png").unlink()
    with pytest.raises(DataError, match=r"p00/labels\.dict: has \d+ entries but p00/ has \d+ PNG images"):
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
    (lam / "face_imgs" / "s003" / "000002" / "face_16.jpg").unlink()
    with pytest.raises(DataError, match=r"000002: has 6 face_\*\.jpg images but labels\.csv has 7 rows"):
        read("lam", lam)

    evg = written(tmp_path, "evg", name="evg")
    (evg / "images" / "train_000004.png").unlink()
    with pytest.raises(DataError, match=r"train_000004\.png: image file is missing"):
        read("evg", evg)


def test_lam_track_with_wrong_frame_count(tmp_path: Path) -> None:
    path = written(tmp_path, "lam")
    lines = (path / "labels.csv").read_text().splitlines()
    dropped = [ln for ln in lines if not ln.startswith("s000,000001,13,")]
    (path / "labels.csv").write_text("\n".join(dropped) + "\n")
    with pytest.raises(DataError, match=r"labels\.csv: track s000/000001 has 6 frames, expected 7") as e:
        read("lam", path)
    _one_line(e)
    (path / "labels.csv").write_text("\n".join(lines).replace("s000,000001,13,", "s000,000001,12,") + "\n")
    with pytest.raises(DataError, match=r"labels\.csv: line 15: frame 12 of track s000/000001 appears twice"):
        read("lam", path)
    (path / "labels.csv").write_text("\n".join(lines[:2] + ["s012,000000,1,2"] + lines[3:]) + "\n")
    with pytest.raises(DataError, match=r"labels\.csv: line 3: label '2' is not 0 or 1"):
        read("lam", path)


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
    labels = pickle.loads((pre / "p03" / "labels.dict").read_bytes())
    labels["00001.png"]["gaze"][0] = np.nan
    (pre / "p03" / "labels.dict").write_bytes(pickle.dumps(labels))
    with pytest.raises(DataError, match=r"p03/labels\.dict: gaze of entry '00001\.png' is not finite"):
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

    lam = written(tmp_path, "lam", name="lam")
    rows = (lam / "priors.csv").read_text().splitlines()
    cells = rows[9].split(",")
    cells[4] = "nan"
    rows[9] = ",".join(cells)
    (lam / "priors.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"priors\.csv: line 10: priors of s000/000001 frame 8 are not finite"):
        read("lam", lam)


def test_hostile_labels_dict_does_not_run(tmp_path: Path) -> None:
    pre = written(tmp_path, "mpiifacegaze-pre")
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (pre / "p00" / "labels.dict").write_bytes(pickle.dumps({"00000.png": Payload()}))
    with pytest.raises(DataError, match=r"p00/labels\.dict: refused to unpickle \w+\.system: only plain") as e:
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


def _raise_disk_full(*a, **k):
    raise OSError("disk full")


def _fail_after(monkeypatch: pytest.MonkeyPatch, n_ok: int) -> None:
    """Make the image writers of every layout raise after ``n_ok`` files."""
    calls = {"n": 0}
    import workbench.data.formats.evg as evg
    import workbench.data.formats.itracker as itr
    import workbench.data.formats.lam as lam
    import workbench.data.formats.mc4 as mc4
    import workbench.data.formats.mpiifacegaze as mpii

    def wrap(real):
        def flaky(*a, **k):
            calls["n"] += 1
            if calls["n"] > n_ok:
                raise OSError("disk full")
            return real(*a, **k)

        return flaky

    for mod in (evg, itr, mc4, mpii):
        monkeypatch.setattr(mod, "write_png", wrap(_images.write_png))
    monkeypatch.setattr(lam, "write_jpeg", wrap(_images.write_jpeg))


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
        assert_contract(out, view, ("pog_mm",) if fmt == "evg" else ())
    assert_roundtrip(fmt, data, out)
    if fmt == "evg":
        np.testing.assert_allclose(out["pog_mm"], data["pog_mm"], rtol=1e-5, atol=1e-3)
