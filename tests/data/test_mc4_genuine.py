"""MC4 read from files written here as the challenge ships them (``MC4/train`` with labels, ``MC4/test``
with images only), independently of ``write_mc4``: grey PNGs by ``cv2.imwrite`` in ``head/``, ``l_eye/``,
``r_eye/`` and 3-line label records (name without ``.png``, longitude, latitude), as the write-up's
``GazeDataset.load_gt`` reads them."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench.data.formats import detect_format, read, read_mc4_predictions
from workbench.data.formats.mc4 import name_subject
from workbench.errors import DataError

runner = CliRunner()
TRAIN_NAMES = [f"p{s:02d}_{i:06d}" for s in (1, 2, 3) for i in (3, 11, 12, 40)]
TEST_NAMES = ["000007", "000002", "000013"]  # no subject in these names


def _grey(seed: int, h: int, w: int) -> np.ndarray:
    """(h, w) uint8 with four distinct quadrants (orientation) and a per-sample level (identity)."""
    img = np.empty((h, w), np.uint8)
    img[: h // 2, : w // 2], img[: h // 2, w // 2:] = 30, 90
    img[h // 2:, : w // 2], img[h // 2:, w // 2:] = 150, 210
    img[h // 2 - 2: h // 2 + 2, w // 2 - 2: w // 2 + 2] = seed % 256
    return img


def _write_images(root: Path, names: list[str]) -> dict[str, dict[str, np.ndarray]]:
    images: dict[str, dict[str, np.ndarray]] = {}
    for folder, hw in (("head", (40, 36)), ("l_eye", (20, 24)), ("r_eye", (20, 24))):
        (root / folder).mkdir(parents=True)
        for k, name in enumerate(names):
            img = _grey(7 * k + len(folder), *hw)
            assert cv2.imwrite(str(root / folder / f"{name}.png"), img)
            images.setdefault(name, {})[folder] = img
    return images


def _lola(rng: np.random.Generator, names: list[str]) -> dict[str, list[str]]:
    return {n: [f"{v:.6f}" for v in rng.uniform(-60, 60, 2)] for n in names}


@pytest.fixture()
def mc4_train(tmp_path: Path) -> tuple[Path, dict, dict]:
    root = tmp_path / "MC4" / "train"
    images = _write_images(root, TRAIN_NAMES)
    rng = np.random.default_rng(0)
    labels = {}
    for file in ("head_label.txt", "eye_label.txt", "gaze_label.txt"):
        lab = _lola(rng, TRAIN_NAMES)
        order = TRAIN_NAMES[::-1] if file == "eye_label.txt" else TRAIN_NAMES  # files need not share an order
        (root / file).write_text("".join(f"{n}\n{lab[n][0]}\n{lab[n][1]}\n" for n in order))
        labels[file] = lab
    return root, images, labels


@pytest.fixture()
def mc4_test(tmp_path: Path) -> tuple[Path, dict]:
    root = tmp_path / "MC4" / "test"
    return root, _write_images(root, TEST_NAMES)


def test_train_split_pixels_labels_and_subjects(mc4_train) -> None:
    root, images, labels = mc4_train
    assert detect_format(root) == "mc4"
    out = read("mc4", root)
    assert [str(n) for n in out["name"]] == TRAIN_NAMES  # the order of head_label.txt
    for i, name in enumerate(TRAIN_NAMES):
        for folder, key in (("head", "face"), ("l_eye", "l_eye"), ("r_eye", "r_eye")):
            np.testing.assert_array_equal(out[key][i, 0], images[name][folder])  # PNG: byte-exact, not flipped
        for file, key in (("head_label.txt", "head_lola"), ("eye_label.txt", "eye_lola"), ("gaze_label.txt", "gaze_lola")):
            np.testing.assert_array_equal(out[key][i], np.float32([float(v) for v in labels[file][name]]))
    assert out["subject"].tolist() == [1] * 4 + [2] * 4 + [3] * 4


def test_subject_from_names_is_the_documented_assumption() -> None:
    assert [name_subject(n) for n in ("s012_000042", "p03_17", "7_0001", "000123", "abc_1", "p03", "p3x_1")] == \
        [12, 3, 7, -1, -1, -1, -1]


def test_test_split_only_for_predict(mc4_test) -> None:
    root, images = mc4_test
    assert detect_format(root) == "mc4"
    with pytest.raises(DataError, match=r"test: MC4 test split without labels .*`workbench predict` can read it") as e:
        read("mc4", root)
    assert "\n" not in str(e.value)
    out = read("mc4", root, unlabelled=True)
    assert [str(n) for n in out["name"]] == sorted(TEST_NAMES)
    for i, name in enumerate(sorted(TEST_NAMES)):
        np.testing.assert_array_equal(out["face"][i, 0], images[name]["head"])
        np.testing.assert_array_equal(out["r_eye"][i, 0], images[name]["r_eye"])
    assert np.isnan(out["gaze_lola"]).all() and (out["subject"] == -1).all()
    (root / "l_eye" / "000013.png").unlink()
    with pytest.raises(DataError, match=r"l_eye/000013\.png: missing \(head/ has 000013\.png\)"):
        read("mc4", root, unlabelled=True)


def test_half_labelled_folder_is_refused(mc4_train) -> None:
    root, _, _ = mc4_train
    (root / "eye_label.txt").unlink()
    with pytest.raises(DataError, match=r"eye_label\.txt: missing"):
        read("mc4", root, unlabelled=True)


def test_inspect_train_refuse_test_and_predict_the_submission_file(mc4_train, mc4_test, tmp_path: Path) -> None:
    train, _, _ = mc4_train
    test, _ = mc4_test
    res = runner.invoke(app, ["data", "inspect", str(train), "--json", "--out", str(tmp_path / "g.png"), "--n", "4"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["format"] == "mc4" and summary["samples"] == 12 and summary["subjects"]["count"] == 3

    res = runner.invoke(app, ["train", "mc4", "--data", str(test), "--epochs", "1", "--out", str(tmp_path / "bad")])
    assert res.exit_code == 2 and "MC4 test split without labels" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1

    run = tmp_path / "run"
    res = runner.invoke(app, ["train", "mc4", "--data", str(train), "--epochs", "1", "--out", str(run),
                              "--set", "batch_size=8", "--json"])
    assert res.exit_code == 0, res.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["data"]["split"] == "held-out subjects [3]"

    pred = tmp_path / "pred.txt"
    res = runner.invoke(app, ["predict", str(run), "--data", str(test), "--out", str(pred)])
    assert res.exit_code == 0, res.output
    lines = pred.read_text().splitlines()
    assert len(lines) == 3 * len(TEST_NAMES) and lines[0] == "000002"
    assert all(len(x.split(".")[-1]) == 3 for x in lines[1::3] + lines[2::3])  # "%0.3f" as output_predict writes
    names, lola = read_mc4_predictions(pred)
    assert names == sorted(TEST_NAMES) and np.all(np.abs(lola) <= 90.0)

    res = runner.invoke(app, ["eval", str(run), "--data", str(test)])
    assert res.exit_code == 2 and "test split without labels" in res.stderr
