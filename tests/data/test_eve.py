"""EVE as downloaded: a folder written here the way the data set ships (swook/EVE DATASET.md), read back.

The genuine folder is built with h5py and OpenCV directly, not with our writer: participant folders
``train01/``, ``val01/``, ``test01/``, step folders ``stepNNN_<type>_<name>/`` with ``webcam_c.mp4``,
``webcam_c.h5`` (top-level matrices plus label groups holding ``data`` and ``validity``) and
``webcam_c.timestamps.txt``, next to files the reader must leave alone. Its video is colour-coded (flat
red/green/blue regions, the frame number in six black/white blocks), so colour order, orientation and
the frame stride can be checked through MPEG's loss.
"""

import json
import logging
import shutil

import cv2
import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench.data import formats
from workbench.data.formats.eve import read_eve
from workbench.errors import DataError

runner = CliRunner()
W, H, N = 96, 64, 64  # frame size, frames per step
MMPP = np.array([553.0 / 1920, 311.0 / 1080])  # a 25-inch 1920x1080 screen
K = np.array([[900.0, 0, 48], [0, 900.0, 32], [0, 0, 1]])
# The screen as EVE's camera_transformation gives it: x runs towards the camera's -x (the user's right is
# the image's left), y down, z away from the user; its top-left pixel corner at (280, 10, 0) mm.
T_FLAT = np.array([[-1.0, 0, 0, 280], [0, 1, 0, 10], [0, 0, -1, 0], [0, 0, 0, 1]])
_a = np.deg2rad(12.0)
_Rx = np.array([[1, 0, 0], [0, np.cos(_a), -np.sin(_a)], [0, np.sin(_a), np.cos(_a)]])
T_TILT = np.eye(4)
T_TILT[:3, :3] = _Rx @ np.diag([-1.0, 1, -1])
T_TILT[:3, 3] = [276.0, 15.0, -30.0]

# Face landmarks of frame i: x shifted by i/4 px; extremes at x 30..60, y 8..50; eyes 36-41 span x 34..42,
# y 20..24, eyes 42-47 span x 48..56, y 21..25.
FACE = np.array([30.0, 8.0, 60.0, 50.0])
EYES = np.array([[34.0, 20.0, 42.0, 24.0], [48.0, 21.0, 56.0, 25.0]])


def frame_bgr(i: int) -> np.ndarray:
    """Frame i as OpenCV writes it (BGR): red top-left, green top-right, a blue band, frame-number bits."""
    img = np.zeros((H, W, 3), np.uint8)
    img[:32, :48] = (0, 0, 255)
    img[:32, 48:] = (0, 255, 0)
    img[32:48] = (255, 0, 0)
    for b in range(6):
        if i >> b & 1:
            img[48:, 16 * b:16 * b + 16] = 255
    return img


def frame_number(img: np.ndarray) -> int:
    """Decode the six blocks of a (3,H,W) frame."""
    row = img[:, 52:60].astype(float).mean(axis=(0, 1))
    return sum(1 << b for b in range(6) if row[16 * b + 4:16 * b + 12].mean() > 128)


def landmarks(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    lm = np.stack([rng.uniform(FACE[0] + 2, FACE[2] - 2, (n, 68)), rng.uniform(FACE[1] + 2, FACE[3] - 2, (n, 68))], -1)
    lm[:, 0], lm[:, 16] = (FACE[0], 30), (FACE[2], 30)  # jaw ends
    lm[:, 8], lm[:, 19] = (45, FACE[3]), (45, FACE[1])  # chin, brow
    for k, s in enumerate((36, 42)):
        x0, y0, x1, y1 = EYES[k]
        lm[:, s:s + 6] = [(x0, (y0 + y1) / 2), (x0 + 3, y0), (x1 - 3, y0), (x1, (y0 + y1) / 2), (x1 - 3, y1), (x0 + 3, y1)]
    lm[..., 0] += np.arange(n)[:, None] / 4
    return lm.astype(np.float32)


def labels(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    pog = np.stack([rng.uniform(0, 1920, n), rng.uniform(0, 1080, n)], 1).astype(np.float32)
    origin = np.stack([rng.uniform(-60, 60, n), rng.uniform(-40, 80, n), rng.uniform(450, 700, n)], 1).astype(np.float32)
    return {"pog": pog, "o": origin, "lm": landmarks(n)}


def write_step(folder, lab, T, *, invalid=None, n_video=None, test=False, camera="webcam_c", validity=bool):
    """One step folder as EVE ships it; ``invalid`` maps a label group to the frames whose validity is 0."""
    folder.mkdir(parents=True)
    invalid = invalid or {}
    n = len(lab["pog"])
    vw = cv2.VideoWriter(str(folder / f"{camera}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (W, H))
    for i in range(n if n_video is None else n_video):
        vw.write(frame_bgr(i))
    vw.release()
    np.savetxt(folder / f"{camera}.timestamps.txt", 1_600_000_000_000 + np.arange(n) * 33_333_333, fmt="%d")
    with h5py.File(folder / f"{camera}.h5", "w") as f:
        f["camera_matrix"] = K
        f["camera_transformation"] = T
        f["inv_camera_transformation"] = np.linalg.inv(T)
        f["millimeters_per_pixel"] = MMPP
        f["pixels_per_millimeter"] = 1.0 / MMPP

        def group(key, data):
            v = np.ones(n, bool)
            data = np.array(data)
            v[invalid.get(key, [])] = False
            data[~v] = np.nan  # what an invalid row holds must not matter
            f[f"{key}/data"] = data
            f[f"{key}/validity"] = v.astype(validity)

        if not test:  # the test split ships without gaze labels
            group("face_PoG_tobii", lab["pog"])
            group("face_g_tobii", np.zeros((n, 2), np.float32))
        group("face_o", lab["o"])
        group("facial_landmarks", lab["lm"])
        group("face_h", np.zeros((n, 2), np.float32))
        group("head_rvec", np.zeros((n, 3, 1), np.float32))
        group("left_p", np.full(n, 3.5, np.float32))
    # Files the reader must not open: normalized patches, the screen recording, the mouse log.
    (folder / f"{camera}_eyes.mp4").write_bytes(b"not read")
    (folder / f"{camera}_face.mp4").write_bytes(b"not read")
    (folder / "screen.mouse.txt").write_text("0 10 10\n")


LABELS = {"train01": labels(N, 1), "train02": labels(N, 2), "val01": labels(N, 3), "test01": labels(N, 4)}
INVALID = {"face_PoG_tobii": [3, 7, 30], "face_o": [9], "facial_landmarks": [12]}


@pytest.fixture(scope="module")
def eve_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("eve") / "eve_dataset"
    write_step(root / "train01" / "step008_image_MIT-i2263021117", LABELS["train01"], T_FLAT, invalid=INVALID)
    write_step(root / "train02" / "step030_video_diem-harry-potter-6-trailer", LABELS["train02"], T_TILT,
               validity=np.uint8)
    write_step(root / "val01" / "step120_wikipedia_wikipedia-random", LABELS["val01"], T_FLAT)
    write_step(root / "test01" / "step008_image_MIT-i2263021117", LABELS["test01"], T_FLAT, test=True)
    # Calibration steps are not stimuli (EVESequencesBase skips them): a broken one must not be read.
    calib = root / "train01" / "step001_eye_tracker_calibration"
    calib.mkdir(parents=True)
    (calib / "webcam_c.h5").write_bytes(b"broken")
    return root


def test_colours_orientation_stride_and_skipped_frames(eve_root, caplog):
    with caplog.at_level(logging.WARNING, logger="workbench.data"):
        out = read_eve(eve_root, split="train", stride=3, participants=["train01"])
    # Sampled 0, 3, ..., 63; frames 3 and 30 (PoG), 9 (face_o) and 12 (landmarks) have validity 0.
    expect = [i for i in range(0, N, 3) if i not in (3, 30, 9, 12)]
    np.testing.assert_array_equal(out["frame_index"], expect)
    assert [frame_number(im) for im in out["image"]] == expect  # the pixels are those frames
    assert "skipped 4 of 22 sampled webcam_c frames" in caplog.text
    assert "face_PoG_tobii validity 0: 2" in caplog.text and "face_o validity 0: 1" in caplog.text
    assert "facial_landmarks validity 0: 1" in caplog.text
    img = out["image"].astype(float)
    assert out["image"].dtype == np.uint8 and out["image"].shape == (len(expect), 3, H, W)
    # RGB, upright, not mirrored: red top-left, green top-right, blue band below (MPEG loss: +-40).
    np.testing.assert_allclose(img[:, :, 4:28, 4:44].mean(axis=(2, 3)), np.tile([255, 0, 0], (len(expect), 1)), atol=40)
    np.testing.assert_allclose(img[:, :, 4:28, 52:92].mean(axis=(2, 3)), np.tile([0, 255, 0], (len(expect), 1)), atol=40)
    np.testing.assert_allclose(img[:, :, 35:45, 4:92].mean(axis=(2, 3)), np.tile([0, 0, 255], (len(expect), 1)), atol=40)


def test_labels_of_a_screen_in_the_camera_plane(eve_root):
    out = read_eve(eve_root, split="train", stride=3, participants=["train01"])
    lab = LABELS["train01"]
    i = out["frame_index"]
    assert out["subject"].tolist() == [1] * len(i) and out["step"].tolist() == [8] * len(i)
    np.testing.assert_allclose(out["screen_px"], np.tile([1920, 1080], (len(i), 1)))
    np.testing.assert_allclose(out["screen_mm"], np.tile([553, 311], (len(i), 1)), rtol=1e-6)
    # Screen x runs against the camera's x: mirrored to 1920 - x; the screen's image-left top corner is
    # at x = 280 - 553 mm, y = 10 mm, for every frame.
    np.testing.assert_allclose(out["pog_px"][:, 0], 1920 - lab["pog"][i, 0], rtol=1e-6)
    np.testing.assert_allclose(out["pog_px"][:, 1], lab["pog"][i, 1], rtol=1e-6)
    np.testing.assert_allclose(out["offset_mm"], np.tile([280 - 553, 10], (len(i), 1)), atol=1e-3)
    np.testing.assert_allclose(out["pog_mm"], out["pog_px"] * MMPP, rtol=1e-5)
    # The target in camera mm is (280 - x * mm/px, 10 + y * mm/px, 0).
    cam = out["pog_px"] * MMPP + out["offset_mm"]
    np.testing.assert_allclose(cam, np.stack([280 - lab["pog"][i, 0] * MMPP[0], 10 + lab["pog"][i, 1] * MMPP[1]], 1),
                               atol=1e-3)
    np.testing.assert_allclose(out["eye_center"], lab["o"][i])
    g = np.concatenate([cam, np.zeros((len(i), 1))], 1) - lab["o"][i]
    np.testing.assert_allclose(out["gaze"], g / np.linalg.norm(g, axis=1, keepdims=True), atol=1e-6)
    # Face box: landmark extent 30..60 x 8..50 grown 1.2x about its centre; eye boxes padded 0.2 / 0.25
    # of the 8 px eye width. Both move with the frame's x shift i/4.
    shift = (i / 4)[:, None] * np.array([1, 0, 1, 0])
    np.testing.assert_allclose(out["face_box"], np.array([27, 3.8, 63, 54.2]) + shift, atol=1e-4)
    np.testing.assert_allclose(out["eye_boxes"][:, 0], np.array([32.4, 18, 43.6, 26]) + shift, atol=1e-4)
    np.testing.assert_allclose(out["eye_boxes"][:, 1], np.array([46.4, 19, 57.6, 27]) + shift, atol=1e-4)


def test_tilted_screen_maps_along_the_gaze_ray(eve_root):
    out = read_eve(eve_root, split="train", stride=5, participants=["train02"])
    i = out["frame_index"]
    assert out["subject"].tolist() == [2] * len(i) and i.tolist() == list(range(0, N, 5))  # uint8 validity read
    lab = LABELS["train02"]
    mm = lab["pog"][i].astype(float) * MMPP
    target = mm @ T_TILT[:3, :2].T + T_TILT[:3, 3]  # the PoG in camera mm, off the camera plane
    assert np.abs(target[:, 2]).max() > 20
    cam = np.concatenate([out["pog_px"] * MMPP + out["offset_mm"], np.zeros((len(i), 1))], 1)
    o = lab["o"][i].astype(float)
    # The camera-plane point lies on the ray from face_o through the target; gaze points along it.
    cross = np.cross(cam - o, target - o) / (np.linalg.norm(cam - o, axis=1) * np.linalg.norm(target - o, axis=1))[:, None]
    assert np.abs(cross).max() < 1e-5
    np.testing.assert_allclose(out["gaze"], (target - o) / np.linalg.norm(target - o, axis=1, keepdims=True), atol=1e-6)


def test_splits_subject_ids_and_withheld_test_labels(eve_root):
    both = read_eve(eve_root, stride=30)  # default: train and val
    assert sorted(set(both["subject"].tolist())) == [1, 2, 101]
    val = read_eve(eve_root, split="val", stride=30)
    assert set(val["subject"].tolist()) == {101} and val["frame_index"].tolist() == [0, 30, 60]
    with pytest.raises(DataError, match=r"test01.*webcam_c\.h5: no label 'face_PoG_tobii'.*withholds"):
        read_eve(eve_root, split="test")
    assert formats.detect_format(eve_root) == "eve"
    assert formats.detect_format(eve_root / "val01") == "eve"
    one = formats.read("auto", eve_root / "val01", stride=30)
    np.testing.assert_array_equal(one["pog_px"], val["pog_px"])


def test_downscale_on_decode_keeps_boxes_on_the_pixels(eve_root):
    full = read_eve(eve_root, split="val", stride=30)
    half = read_eve(eve_root, split="val", stride=30, width=48)
    assert half["image"].shape == (3, 3, 32, 48)
    np.testing.assert_allclose(half["face_box"], full["face_box"] / 2, rtol=1e-6)
    np.testing.assert_allclose(half["eye_boxes"], full["eye_boxes"] / 2, rtol=1e-6)
    np.testing.assert_array_equal(half["pog_px"], full["pog_px"])
    red = half["image"][:, :, 2:14, 2:22].astype(float).mean(axis=(2, 3))
    np.testing.assert_allclose(red, np.tile([255, 0, 0], (3, 1)), atol=40)
    with pytest.raises(DataError, match=r"need .* GiB \(limit 1e-06\)"):
        read_eve(eve_root, split="val", stride=30, max_gib=1e-6)


def _copy_val(eve_root, tmp_path):
    root = tmp_path / "eve"
    shutil.copytree(eve_root / "val01", root / "val01")
    return root, root / "val01" / "step120_wikipedia_wikipedia-random"


def test_bad_files_name_the_file(eve_root, tmp_path):
    root, step = _copy_val(eve_root, tmp_path)
    h5 = step / "webcam_c.h5"
    raw = h5.read_bytes()
    h5.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(DataError, match=r"webcam_c\.h5: not a readable HDF5 file"):
        read_eve(root)
    h5.write_bytes(raw)
    with h5py.File(h5, "a") as f:
        del f["face_o"]
    with pytest.raises(DataError, match=r"webcam_c\.h5: no label 'face_o'"):
        read_eve(root)

    root, step = _copy_val(eve_root, tmp_path / "b")
    mp4 = step / "webcam_c.mp4"
    mp4.write_bytes(mp4.read_bytes()[:2000])
    with pytest.raises(DataError, match=r"webcam_c\.mp4: (cannot open|the video ends after)"):
        read_eve(root)

    root, step = _copy_val(eve_root, tmp_path / "c")
    (step / "webcam_c.timestamps.txt").write_text("1\n2\n")
    with pytest.raises(DataError, match=r"webcam_c\.timestamps\.txt: 2 timestamps, but webcam_c\.h5 labels 64"):
        read_eve(root)


def test_video_shorter_than_its_labels(tmp_path):
    step = tmp_path / "eve" / "train05" / "step010_image_x"
    write_step(step, labels(N, 5), T_FLAT, n_video=40)
    with pytest.raises(DataError, match=r"webcam_c\.mp4: the video ends after 40 frames, but its labels have 64"):
        read_eve(tmp_path / "eve", stride=30)


def test_cli_inspect_and_bad_input(eve_root, tmp_path):
    res = runner.invoke(app, ["data", "inspect", str(eve_root), "--out", str(tmp_path / "g.png"), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["format"] == "eve" and summary["view"] == "frame"
    assert summary["samples"] == 8 and summary["subjects"]["ids"] == [1, 2, 101]  # stride 30, frame 30 invalid
    root, step = _copy_val(eve_root, tmp_path)
    (step / "webcam_c.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)
    res = runner.invoke(app, ["data", "inspect", str(root), "--out", str(tmp_path / "g2.png")])
    assert res.exit_code == 2
    assert "webcam_c.h5: not a readable HDF5 file" in res.output and "Traceback" not in res.output


def test_writer_writes_the_genuine_files(tmp_path):
    out = tmp_path / "synth_eve"
    res = runner.invoke(app, ["data", "synth", "--format", "eve", "--n", "12", "--subjects", "3", "--size", "96x64",
                              "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    from workbench.data.synth import render

    data = render("frame", 12, seed=0, subjects=3, size=(96, 64))
    rows = np.flatnonzero(data["subject"] == 1)
    step = out / "train01" / "step001_video_synthgaze"
    with h5py.File(step / "webcam_c.h5", "r") as f:
        for key in ("face_PoG_tobii", "face_o", "facial_landmarks"):
            assert set(f[key]) == {"data", "validity"} and f[key]["validity"][()].all()
        np.testing.assert_array_equal(f["face_PoG_tobii/data"][()], data["pog_px"][rows])
        np.testing.assert_array_equal(f["face_o/data"][()], data["eye_center"][rows].astype(np.float32))
        assert f["facial_landmarks/data"].shape == (len(rows), 68, 2)
        T = f["camera_transformation"][()]
        np.testing.assert_allclose(T[:3, :3], np.eye(3))
        np.testing.assert_allclose(T[:2, 3], data["offset_mm"][rows[0]])
        np.testing.assert_allclose(f["millimeters_per_pixel"][()], data["screen_mm"][0] / data["screen_px"][0], rtol=1e-6)
    assert len(np.loadtxt(step / "webcam_c.timestamps.txt")) == len(rows)
    cap = cv2.VideoCapture(str(step / "webcam_c.mp4"))
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(bgr[..., ::-1].transpose(2, 0, 1).astype(float))
    cap.release()
    assert len(frames) == len(rows)
    assert np.abs(np.stack(frames) - data["image"][rows]).mean() < 8  # RGB written as BGR, MPEG loss only
    back = read_eve(out, stride=1)
    order = np.argsort(data["subject"], kind="stable")
    for key in ("pog_px", "offset_mm", "screen_mm", "eye_center"):
        np.testing.assert_allclose(back[key], data[key][order], atol=1e-4)
    np.testing.assert_allclose(back["face_box"], data["face_box"][order], atol=1e-3)
    np.testing.assert_allclose(back["eye_boxes"], data["eye_boxes"][order], atol=1e-3)
    np.testing.assert_array_equal(back["subject"], data["subject"][order])


def test_train_evg_on_the_genuine_folder(eve_root, tmp_path):
    run = tmp_path / "run"
    res = runner.invoke(app, ["train", "evg", "--data", str(eve_root), "--epochs", "1", "--batch-size", "4",
                              "--out", str(run), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    # Frames 96x64 are resized to the cpu preset's 480x270 on the way in; EVE's own valNN folders validate.
    assert summary["data"]["format"] == "eve" and summary["data"]["split"] == "layout splits train/val"
    assert summary["data"]["resized"] == {"image": {"from": [64, 96], "to": [270, 480]}}
    # face_o gives the gaze origin, so the angular error is defined on EVE.
    assert all(np.isfinite(v) for v in summary["final"].values()) and summary["final"]["angular_error"] > 0


def test_writer_refuses_what_eve_cannot_hold_and_leaves_nothing(tmp_path):
    from workbench.data.synth import render

    data = render("frame", 6, seed=1, subjects=2, size=(64, 48))
    parent = tmp_path / "parent"
    parent.mkdir()
    bad = dict(data, subject=data["subject"] + 150)
    with pytest.raises(DataError, match=r"x: cannot write eve: subject ids must be 0\.\.99"):
        formats.write("eve", bad, parent / "x")
    # Two screens for one subject is found after the first participant folder was written.
    bad = dict(data, offset_mm=data["offset_mm"] + (np.arange(6) >= 4)[:, None], subject=np.array([0, 0, 0, 1, 1, 1]))
    with pytest.raises(DataError, match=r"subject 1 has more than one screen size or offset"):
        formats.write("eve", bad, parent / "x")
    bad = dict(data, screen_px=data["screen_px"] / 2)
    with pytest.raises(DataError, match=r"EVE's screen is 1920x1080"):
        formats.write("eve", bad, parent / "x")
    assert list(parent.iterdir()) == []
