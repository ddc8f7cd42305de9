"""MPIIFaceGaze read as it ships, on files this test writes independently of the workbench's writers:

- ``pNN.mat`` the way MATLAB wrote the normalized release: the data set page's Caffe preparation
  (``img(:,:,[3 2 1])``, ``flip(., 2)``, ``imrotate(., 90)``) on colour-coded images, stacked into a MATLAB
  (W, H, 3, N) array and stored column-major (HDF5 dims reversed) behind MATLAB's 512-byte v7.3 header;
- ``<sid>/NNNN.png`` + ``<sid>/labels.dict`` the way write-up 000's conversion script writes them
  (``cv2.imwrite`` of the .mat's BGR array, ``pickle.dump`` of its dict with another machine's paths).

The images are not square and have a different pure colour in each quadrant, so a transpose, a flip or
swapped channels cannot pass; labels and landmarks are distinct per sample and must come back exactly.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from workbench.cli import app
from workbench.data import formats
from workbench.data.formats._common import FACE_LANDMARKS, eye_boxes_from_corners
from workbench.data.formats.mpiifacegaze import mpii_landmarks
from workbench.data.safe_pickle import safe_load
from workbench.errors import DataError

runner = CliRunner()
H, W = 40, 56
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
MARK = (200, 120, 40)  # one colour that differs in every channel: its position encodes the sample


def colour_image(k: int) -> np.ndarray:
    """(H, W, 3) RGB: red | green over blue | white quadrants, a MARK pixel at row 3, column 3 + k."""
    img = np.zeros((H, W, 3), np.uint8)
    img[: H // 2, : W // 2], img[: H // 2, W // 2:] = RED, GREEN
    img[H // 2:, : W // 2], img[H // 2:, W // 2:] = BLUE, WHITE
    img[3, 3 + k] = MARK
    return img


def label_row(k: int) -> np.ndarray:
    """Data/label row of sample k: gaze, head pose, six landmarks with level eye corners 12 px apart."""
    gaze, head = [0.1 * k - 0.25, -0.05 * k + 0.3], [0.02 * k, -0.125]
    lms = [10 + k, 12, 22 + k, 12, 32 + k, 12, 44 + k, 12, 18 + k, 30.5, 38 + k, 30.5]
    return np.array(gaze + head + lms, dtype=np.float64)


def expected_boxes(k: int) -> np.ndarray:
    """Hand-computed eye boxes of label_row(k): corners 12 px apart -> 0.2*12 = 2.4 px beyond them along x,
    0.4*12 = 4.8 px above and below."""
    return np.array([[7.6 + k, 7.2, 24.4 + k, 16.8], [29.6 + k, 7.2, 46.4 + k, 16.8]], dtype=np.float32)


def matlab_v73_mat(path: Path, images: list[np.ndarray], labels: np.ndarray) -> Path:
    """Write ``path`` as MATLAB -v7.3 saved the release: struct Data with data (W,H,3,N) uint8 and label
    (16,N) double, column-major, after the Caffe preparation the data set page quotes."""
    # numpy's rot90 turns counter-clockwise like MATLAB's rot90/imrotate(., 90): rot90([1 2; 3 4]) = [2 4; 1 3].
    assert np.rot90(np.array([[1, 2], [3, 4]])).tolist() == [[2, 4], [1, 3]]
    prepared = []
    for img in images:  # img(row, col, channel) as MATLAB indexes it
        new = img[:, :, [2, 1, 0]]  # new_image = original_image(:,:,[3 2 1]);
        new = np.flip(new, axis=1)  # new_image = flip(new_image, 2);
        new = np.rot90(new, 1)  # new_image = imrotate(new_image, 90);
        prepared.append(new)
    arrays = {"data": (np.stack(prepared, axis=3), "uint8"), "label": (np.asarray(labels, np.float64).T, "double")}
    with h5py.File(path, "w", userblock_size=512) as f:
        grp = f.create_group("Data")
        grp.attrs["MATLAB_class"] = np.bytes_("struct")
        for name, (arr, cls) in arrays.items():
            # Column-major: the file holds the bytes in Fortran order and HDF5 lists the dimensions reversed.
            stored = np.frombuffer(arr.tobytes(order="F"), dtype=arr.dtype).reshape(arr.shape[::-1])
            grp.create_dataset(name, data=stored).attrs["MATLAB_class"] = np.bytes_(cls)
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Tue Mar 21 10:00:00 2017 HDF5 schema 1.00 ."
    with open(path, "r+b") as f:
        f.write(text.ljust(116, b" ") + bytes(8) + b"\x00\x02IM")
    return path


def genuine_release(root: Path, counts: dict[int, int]) -> Path:
    """``root/pNN.mat`` for subjects -> sample counts; sample k of every subject is colour_image(k)/label_row(k)."""
    root.mkdir(parents=True, exist_ok=True)
    for s, n in counts.items():
        images, labels = [colour_image(k) for k in range(n)], np.stack([label_row(k) for k in range(n)])
        matlab_v73_mat(root / f"p{s:02d}.mat", images, labels)
    return root


FOREIGN = {
    "posix": "/home/someone/MPIIFaceGaze_pre/{sid}/{name}",
    "relative": "raw/{sid}/{name}",  # what the script itself joins: dest = 'raw/'
    "windows": "C:\\Users\\someone\\raw\\{sid}\\{name}",
}


def genuine_pre(root: Path, counts: dict[int, int], style: str = "posix", protocol: int | None = None) -> Path:
    """write-up 000's script: for each .mat, <dest>/<sid>/NNNN.png via cv2.imwrite(img.transpose(1,2,0)) of the
    BGR Data/data array, and <dest>/<sid>/labels.dict = pickle of its dict, paths as on the converting machine."""
    for s, n in counts.items():
        sid = f"{s:02d}"
        (root / sid).mkdir(parents=True)
        data = np.stack([colour_image(k)[:, :, ::-1].transpose(2, 0, 1) for k in range(n)])  # h5py's (N,3,H,W) BGR
        label = np.stack([label_row(k) for k in range(n)])
        gt = {"subject_id": sid, "images": [], "labels": []}
        for idx, (img, row) in enumerate(zip(data, label)):
            name = f"{idx:04}.png"
            assert cv2.imwrite(str(root / sid / name), img.transpose(1, 2, 0))
            gt["images"].append(FOREIGN[style].format(sid=sid, name=name))
            gt["labels"].append(row)
        with open(root / sid / "labels.dict", "wb") as f:
            pickle.dump(gt, f, protocol=protocol)
    return root


def check_samples(out: dict[str, np.ndarray], counts: dict[int, int]) -> None:
    """Pixel-exact RGB, orientation, sample order, exact labels, landmarks and eye boxes."""
    ks = [k for s in sorted(counts) for k in range(counts[s])]
    np.testing.assert_array_equal(out["subject"], [s for s in sorted(counts) for _ in range(counts[s])])
    assert out["image"].shape == (len(ks), 3, H, W)
    for i, k in enumerate(ks):
        img = out["image"][i]
        np.testing.assert_array_equal(img, colour_image(k).transpose(2, 0, 1))
        assert tuple(img[:, 10, 5]) == RED and tuple(img[:, 10, W - 5]) == GREEN
        assert tuple(img[:, H - 5, 5]) == BLUE and tuple(img[:, H - 5, W - 5]) == WHITE and tuple(img[:, 3, 3 + k]) == MARK
        row = label_row(k).astype(np.float32)
        np.testing.assert_array_equal(out["gaze_pitchyaw"][i], row[0:2])
        np.testing.assert_array_equal(out["head_pitchyaw"][i], row[2:4])
        np.testing.assert_array_equal(out["landmarks"][i], row[4:16].reshape(6, 2))
        np.testing.assert_allclose(out["eye_boxes"][i], expected_boxes(k), rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------------------------------
# The normalized release: pNN.mat
# ----------------------------------------------------------------------------------------------------


def test_genuine_mat_reads_rgb_upright_with_exact_labels(tmp_path: Path) -> None:
    root = genuine_release(tmp_path / "MPIIFaceGaze_normalizad", {0: 3, 1: 2})
    assert formats.detect_format(root) == "mpiifacegaze"
    out = formats.read("auto", root)
    check_samples(out, {0: 3, 1: 2})
    assert len(FACE_LANDMARKS[out["landmarks"].shape[1]]) == 6
    only = formats.read("mpiifacegaze", root, subjects=[1])
    np.testing.assert_array_equal(only["image"], out["image"][3:])


def test_eye_box_rule() -> None:
    # A 3-4-5 eye (corners 5 px apart): 1 px beyond the corners along x, 2 px above and below.
    corners = np.array([[[[40.0, 10.0], [43.0, 14.0]], [[10.0, 12.0], [13.0, 16.0]]]])  # image-right eye first
    boxes = eye_boxes_from_corners(corners)
    np.testing.assert_allclose(boxes[0], [[9.0, 10.0, 14.0, 18.0], [39.0, 8.0, 44.0, 16.0]])  # image-left first
    corners[0, 1, 0, 0] = np.nan
    boxes = eye_boxes_from_corners(corners)
    assert np.isnan(boxes[0, 1]).all() and np.isfinite(boxes[0, 0]).all()
    corners[0, 1] = 0.0  # both corners at (0, 0): no width, no box
    assert np.isnan(eye_boxes_from_corners(corners)[0, 1]).all()


def test_writer_writes_what_matlab_wrote(tmp_path: Path) -> None:
    from workbench.data.synth import render

    data = render("face", 24, seed=3, subjects=2, size=64)
    root = formats.write("mpiifacegaze", data, tmp_path / "m")
    raw = (root / "p01.mat").read_bytes()
    assert raw[:19] == b"MATLAB 7.3 MAT-file" and raw[116:124] == bytes(8) and raw[124:128] == b"\x00\x02IM"
    assert raw[128:512] == bytes(384) and raw[512:520] == b"\x89HDF\r\n\x1a\n"  # HDF5 superblock after the userblock
    idx = np.flatnonzero(data["subject"] == 1)
    with h5py.File(root / "p01.mat", "r") as f:
        stored, label = f["Data/data"][()], f["Data/label"][()]
        assert f["Data"].attrs["MATLAB_class"] == b"struct" and f["Data/data"].attrs["MATLAB_class"] == b"uint8"
        assert f["Data/label"].attrs["MATLAB_class"] == b"double"
    # Undo MATLAB's column-major storage and the Caffe preparation, as a MATLAB user would see the images.
    matlab = np.frombuffer(stored.tobytes(), np.uint8).reshape(stored.shape[::-1], order="F")  # (W,H,3,N)
    for j, i in enumerate(idx):
        img = np.flip(np.rot90(matlab[..., j], -1), axis=1)[:, :, [2, 1, 0]]
        np.testing.assert_array_equal(img, data["image"][i].transpose(1, 2, 0))
    labels_matlab = np.frombuffer(label.tobytes(), np.float64).reshape(label.shape[::-1], order="F")  # (16, N)
    np.testing.assert_array_equal(labels_matlab[0:2].T, data["gaze_pitchyaw"][idx])
    np.testing.assert_array_equal(labels_matlab[2:4].T, data["head_pitchyaw"][idx])
    np.testing.assert_array_equal(labels_matlab[12:16].T, data["landmarks"][idx, 3:5].reshape(-1, 4))  # mouth
    mid = (labels_matlab[[4, 5]] + labels_matlab[[6, 7]]).T / 2  # the right eye's corners meet at its centre
    np.testing.assert_allclose(mid, data["landmarks"][idx, 0], atol=1e-4)

    out = formats.read("auto", root)
    order = np.argsort(data["subject"], kind="stable")
    np.testing.assert_array_equal(out["image"], data["image"][order])
    np.testing.assert_array_equal(out["gaze_pitchyaw"], data["gaze_pitchyaw"][order])
    # Eye boxes from the corners cover SynthGaze's own eye boxes closely (so eye-mass means the same).
    a, b = out["eye_boxes"], data["eye_boxes"][order]
    inter = np.prod(np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0, None), -1)
    area = lambda z: np.prod(z[..., 2:] - z[..., :2], -1)  # noqa: E731
    iou = inter / (area(a) + area(b) - inter)
    assert iou.min() > 0.7 and iou.mean() > 0.85, (iou.min(), iou.mean())


def test_synthgaze_eye_corners_are_the_renderers() -> None:
    """The writer's six points for SynthGaze are the renderer's own projected eye and mouth corners."""
    from workbench.data import _head, synth

    rng, cfg, n = np.random.default_rng(5), synth.SynthConfig(), 64
    heads, _, _ = synth._screen_heads(rng, n, np.arange(15), cfg, cfg.target_margin)
    cam = synth._look_at_camera(heads, heads.face_center(), cfg.face_span, 448)
    out = _head.render(heads, cam, 448, 448, _head.Lighting.sample(rng, n), _head.background(rng, n, 448, 448))
    uv, _ = cam.project(heads.to_camera(_head._feature_points(heads)))
    names = ("cornerL0", "cornerL1", "cornerR0", "cornerR1", "mouth0", "mouth1")
    true = np.stack([uv[:, _head._P[k]] for k in names], 1)
    np.testing.assert_allclose(mpii_landmarks(out.landmarks, out.eye_boxes), true, rtol=0, atol=1e-3)


# ----------------------------------------------------------------------------------------------------
# write-up 000's preprocessed form: <sid>/NNNN.png + <sid>/labels.dict
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", sorted(FOREIGN))
def test_genuine_pre_reads_true_colours_and_resolves_foreign_paths(tmp_path: Path, style: str) -> None:
    root = genuine_pre(tmp_path / "raw", {0: 3, 2: 2}, style)
    png = np.asarray(Image.open(root / "00" / "0000.png"))  # cv2 wrote the BGR array: the file holds RGB
    assert tuple(png[10, 5]) == RED
    (root / "00" / "extra.png").write_bytes((root / "00" / "0001.png").read_bytes())  # not listed: ignored
    (root / "00" / "Thumbs.db").write_bytes(b"\x00junk")
    (root / "README.txt").write_text("converted with the write-up's script\n")
    (root / "7").mkdir()  # an unrelated numbered folder without images
    assert formats.detect_format(root) == "mpiifacegaze-pre"
    check_samples(formats.read("auto", root), {0: 3, 2: 2})


@pytest.mark.parametrize("protocol", [0, 2, 5])  # a Python 2 era conversion, and the newest protocol
def test_pre_labels_dict_of_any_pickle_protocol(tmp_path: Path, protocol: int) -> None:
    check_samples(formats.read("mpiifacegaze-pre", genuine_pre(tmp_path / "raw", {1: 2}, protocol=protocol)), {1: 2})


def test_pre_writer_writes_the_scripts_layout(tmp_path: Path) -> None:
    from workbench.data.synth import render

    data = render("face", 8, seed=1, subjects=[4], size=32)
    root = formats.write("mpiifacegaze-pre", data, tmp_path / "raw")
    assert sorted(p.name for p in root.iterdir()) == ["04"]
    assert sorted(p.name for p in (root / "04").iterdir()) == [f"{i:04d}.png" for i in range(8)] + ["labels.dict"]
    obj = safe_load(root / "04" / "labels.dict")
    assert obj["subject_id"] == "04" and obj["images"][7] == str(root / "04" / "0007.png")
    np.testing.assert_array_equal(np.asarray(Image.open(root / "04" / "0003.png")), data["image"][3].transpose(1, 2, 0))
    np.testing.assert_array_equal(np.stack(obj["labels"])[:, 0:2], data["gaze_pitchyaw"])


# ----------------------------------------------------------------------------------------------------
# Bad input: one line naming the file
# ----------------------------------------------------------------------------------------------------


def _raises(match: str, fn, *a, **k) -> None:
    with pytest.raises(DataError, match=match) as e:
        fn(*a, **k)
    assert "\n" not in str(e.value)


def test_missing_selected_mat(tmp_path: Path) -> None:
    root = genuine_release(tmp_path / "m", {0: 2})
    _raises(r"m/p05\.mat: missing \(subject 5 was selected\)", formats.read, "mpiifacegaze", root, subjects=[0, 5])


@pytest.mark.parametrize("keep,why", [(0.6, r"cannot read MATLAB v7\.3 \(HDF5\) file"),
                                      (100, r"is 100 bytes long, too short for a MAT-file")])
def test_truncated_mat(tmp_path: Path, keep: float, why: str) -> None:
    root = genuine_release(tmp_path / "m", {0: 3})
    raw = (root / "p00.mat").read_bytes()
    (root / "p00.mat").write_bytes(raw[: int(keep * len(raw)) if keep < 1 else int(keep)])
    _raises(r"p00\.mat: " + why, formats.read, "mpiifacegaze", root)


def test_mat_without_label(tmp_path: Path) -> None:
    root = genuine_release(tmp_path / "m", {0: 2})
    with h5py.File(root / "p00.mat", "r+") as f:
        del f["Data/label"]
    _raises(r"p00\.mat: has no Data/label", formats.read, "mpiifacegaze", root)


def test_mat_v5_is_named(tmp_path: Path) -> None:
    root = tmp_path / "m"
    root.mkdir()
    (root / "p00.mat").write_bytes(b"MATLAB 5.0 MAT-file, Platform: PCWIN64".ljust(128, b" ") + bytes(64))
    _raises(r"p00\.mat: is a MATLAB v5/v7 MAT-file; the MPIIFaceGaze release is v7\.3", formats.read, "mpiifacegaze", root)


def test_label_rows_not_matching_images(tmp_path: Path) -> None:
    root = tmp_path / "m"
    root.mkdir()
    matlab_v73_mat(root / "p00.mat", [colour_image(k) for k in range(3)], np.stack([label_row(k) for k in range(4)]))
    _raises(r"p00\.mat: Data/label has 4 rows but Data/data has 3 images", formats.read, "mpiifacegaze", root)
    pre = genuine_pre(tmp_path / "raw", {0: 3})
    obj = pickle.loads((pre / "00" / "labels.dict").read_bytes())
    obj["labels"].pop()
    (pre / "00" / "labels.dict").write_bytes(pickle.dumps(obj))
    _raises(r"00/labels\.dict: lists 3 images but 2 label rows", formats.read, "mpiifacegaze-pre", pre)


def test_extra_unrelated_files_are_ignored(tmp_path: Path) -> None:
    root = genuine_release(tmp_path / "m", {0: 2})
    (root / "Readme.txt").write_text("MPIIFaceGaze normalized\n")
    (root / "p00.mat.bak").write_bytes(b"old")
    (root / "landmarks").mkdir()
    (root / "landmarks" / "p00.mat").write_bytes(b"not ours")
    (root / ".DS_Store").write_bytes(b"\x00\x01")
    assert formats.detect_format(root) == "mpiifacegaze"
    check_samples(formats.read("mpiifacegaze", root), {0: 2})


def test_labels_dict_lists_a_missing_image(tmp_path: Path) -> None:
    root = genuine_pre(tmp_path / "raw", {0: 3})
    (root / "00" / "0002.png").unlink()
    _raises(r"00/labels\.dict: lists '/home/someone/MPIIFaceGaze_pre/00/0002\.png', but .*raw/00/0002\.png is missing",
            formats.read, "mpiifacegaze-pre", root)


def test_hostile_labels_dict_is_refused(tmp_path: Path) -> None:
    root = genuine_pre(tmp_path / "raw", {0: 2})
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    obj = pickle.loads((root / "00" / "labels.dict").read_bytes())
    obj["subject_id"] = Payload()
    (root / "00" / "labels.dict").write_bytes(pickle.dumps(obj))
    _raises(r"00/labels\.dict: refused to unpickle \w+\.system", formats.read, "mpiifacegaze-pre", root)
    assert not marker.exists()


def test_nan_labels(tmp_path: Path) -> None:
    root = tmp_path / "m"
    root.mkdir()
    rows = np.stack([label_row(k) for k in range(3)])
    rows[1, 9] = np.nan
    matlab_v73_mat(root / "p00.mat", [colour_image(k) for k in range(3)], rows)
    _raises(r"p00\.mat: Data/label row 1 is not finite", formats.read, "mpiifacegaze", root)
    pre = genuine_pre(tmp_path / "raw", {0: 3})
    obj = pickle.loads((pre / "00" / "labels.dict").read_bytes())
    obj["labels"][2][0] = np.nan
    (pre / "00" / "labels.dict").write_bytes(pickle.dumps(obj))
    _raises(r"00/labels\.dict: label of image '0002\.png' is not finite", formats.read, "mpiifacegaze-pre", pre)


# ----------------------------------------------------------------------------------------------------
# The command line
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["mpiifacegaze", "mpiifacegaze-pre"])
def test_cli_inspect_reads_both_genuine_layouts(tmp_path: Path, layout: str) -> None:
    counts = {0: 3, 1: 2}
    root = genuine_release(tmp_path / "d", counts) if layout == "mpiifacegaze" else genuine_pre(tmp_path / "d", counts)
    grid = tmp_path / "grid.png"
    res = runner.invoke(app, ["data", "inspect", str(root), "--out", str(grid), "--json", "--n", "4"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["format"] == layout and summary["view"] == "face" and summary["samples"] == 5
    assert summary["images"]["image"] == [3, H, W] and summary["subjects"]["ids"] == [0, 1]
    assert summary["labels"]["landmarks"]["shape"] == [6, 2] and summary["labels"]["eye_boxes"]["missing"] == 0
    assert summary["labels"]["gaze_pitchyaw"]["min"] == [pytest.approx(-0.25), pytest.approx(0.2)]
    assert np.asarray(Image.open(grid)).std() > 10


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    root = genuine_release(tmp_path / "m", {0: 2})
    raw = (root / "p00.mat").read_bytes()
    (root / "p00.mat").write_bytes(raw[: len(raw) // 2])
    res = runner.invoke(app, ["data", "inspect", str(root), "--out", str(tmp_path / "g.png")])
    assert res.exit_code == 2 and re.search(r"p00\.mat: cannot read", res.stderr)
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "g.png").exists()


@pytest.mark.parametrize("layout", ["mpiifacegaze", "mpiifacegaze-pre"])
def test_cli_synth_writes_the_genuine_layouts(tmp_path: Path, layout: str) -> None:
    out = tmp_path / "d"
    res = runner.invoke(app, ["data", "synth", "--format", layout, "--n", "6", "--subjects", "2", "--size", "32",
                              "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    if layout == "mpiifacegaze":
        mats = sorted(out.glob("p*.mat"))
        assert [p.name for p in mats] == ["p00.mat", "p01.mat"]
        assert all(p.read_bytes()[:19] == b"MATLAB 7.3 MAT-file" for p in mats)
    else:
        assert sorted(p.name for p in out.iterdir()) == ["00", "01"]
        obj = safe_load(out / "00" / "labels.dict")
        assert obj["subject_id"] == "00" and Path(obj["images"][0]).name == "0000.png"
    assert formats.detect_format(out) == layout


def test_cli_trains_and_checks_gazenet_on_the_genuine_release(tmp_path: Path) -> None:
    root = genuine_release(tmp_path / "m", {0: 6, 1: 6, 2: 6})
    res = runner.invoke(app, ["train", "gazenet", "--data", str(root), "--epochs", "1", "--batch-size", "6",
                              "--out", str(tmp_path / "run"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["data"]["resized"] == {"image": {"from": [H, W], "to": [112, 112]}}
    # The faithfulness checks see the eye boxes built from the .mat's corners, resized with the image.
    res = runner.invoke(app, ["analyze", "check", str(tmp_path / "run"), "--data", str(root), "--n", "4", "--steps", "4",
                              "--cascade-steps", "1", "--randomization-n", "4", "--fractions", "3", "--random-orders", "1",
                              "--out", str(tmp_path / "chk"), "--json"])
    assert res.exit_code == 0, res.output
    mass = json.loads(res.stdout)["eye_mass"]["pitch"]
    # Sample k's boxes x (7.6..24.4) + k and (29.6..46.4) + k, y 7.2..16.8, scaled by 112/56 and 112/40, hold the
    # pixel centres of 34 columns each (15+2k..48+2k, 59+2k..92+2k) and of rows 20..46 (27): 2*34*27 of 112*112.
    assert mass["area_share"] == pytest.approx(2 * 34 * 27 / 112**2, abs=1e-5)
    assert np.isfinite(mass["share"]) and np.isfinite(mass["ratio"])


def test_cli_trains_gazenet_on_the_scripts_folders(tmp_path: Path) -> None:
    """write-up 000's PNG folders train with nothing but --data, like the .mat release."""
    root = genuine_pre(tmp_path / "raw", {0: 6, 1: 6, 2: 6}, sorted(FOREIGN)[0])
    res = runner.invoke(app, ["train", "gazenet", "--data", str(root), "--epochs", "1", "--batch-size", "6",
                              "--out", str(tmp_path / "run"), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)["data"]
    assert data["format"] == "mpiifacegaze-pre" and data["split"] == "held-out subjects [2]"
    assert data["resized"] == {"image": {"from": [H, W], "to": [112, 112]}}
