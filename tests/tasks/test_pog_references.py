"""The reference predictors of benchmarks/pog_references.py: the crop lands on the face box, the head-only
regression uses what the frame shows, and both beat the constant only when the data carries the signal."""

import importlib.util
from pathlib import Path

import numpy as np
import torch

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "pog_references.py"
_spec = importlib.util.spec_from_file_location("pog_references", _PATH)
refs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(refs)


def _frames(n, rng, h=90, w=160):
    """Grey frames with a white square 'face' at a random place; its box and five landmarks inside it."""
    img = np.full((n, 3, h, w), 60, np.uint8)
    x0 = rng.integers(15, w - 45, n)  # the enlarged box stays inside the frame
    y0 = rng.integers(15, h - 45, n)
    box = np.stack([x0, y0, x0 + 30, y0 + 36], 1).astype(np.float32)
    for i in range(n):
        img[i, :, y0[i]:y0[i] + 36, x0[i]:x0[i] + 30] = 255
    lm = box[:, None, :2] + rng.uniform(0, 30, (n, 5, 2)).astype(np.float32)
    return {"image": img, "face_box": box, "landmarks": lm}


def test_the_face_crop_is_the_enlarged_face_box():
    raw = _frames(4, np.random.default_rng(0))
    crops = refs.face_crops(raw)
    assert crops.shape == (4, 3, refs.CROP, refs.CROP)
    white, grey = (1.0 - 0.45) / 0.25, (60 / 255 - 0.45) / 0.25
    c = refs.CROP // 2
    # The centre of the crop is the face; its corners (1.3x the box's longer side) are the frame around it.
    assert torch.allclose(crops[:, :, c - 4:c + 4, c - 4:c + 4], torch.tensor(white), atol=1e-4)
    assert torch.allclose(crops[:, :, :2, :2], torch.tensor(grey), atol=1e-4)


def test_head_only_regression_finds_a_pog_that_follows_the_head_and_not_one_that_does_not():
    rng = np.random.default_rng(1)
    train, val = _frames(300, rng), _frames(100, rng)
    follows = lambda raw: np.stack([raw["face_box"][:, 0] * 3.0, raw["face_box"][:, 1] * -2.0], 1)  # noqa: E731
    y_t, y_v = follows(train), follows(val)
    constant = np.linalg.norm(y_t.mean(0) - y_v, axis=1).mean()
    assert refs.head_only_linear(train, val, y_t, y_v) < 0.05 * constant
    noise_t, noise_v = rng.normal(0, 100, (300, 2)), rng.normal(0, 100, (100, 2))  # unrelated to the head
    assert refs.head_only_linear(train, val, noise_t, noise_v) > 0.9 * np.linalg.norm(noise_t.mean(0) - noise_v, axis=1).mean()
