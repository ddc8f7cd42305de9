"""Fakes of the renderer's views and round-trip helpers shared by the format tests."""

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
from workbench.data.formats._common import eye_boxes_from_corners
from workbench.data.formats.itracker import default_splits
from workbench.data.formats.npz import read_npz
from workbench.errors import DataError, WorkbenchError

LAYOUTS = ["mpiifacegaze", "mpiifacegaze-pre", "mc4", "evg", "itracker", "lam", "npz"]
#: keys a reader returns beyond its view's (sample names, for prediction files)
EXTRA_KEYS = {"mc4": ("name",), "lam": ("name",)}
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
    """Read every split of a layout (itracker splits by subject) into one dict.

    lam: the writer makes each 7-frame sample a 7-frame track, and the reader makes every frame a sample;
    the centre frame's window (frames 0..6, no padding) is the written sample, so only those are kept.
    """
    if fmt == "lam":
        return {k: v[3::7] for k, v in read(fmt, path).items()}
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
    if fmt in ("mpiifacegaze", "mpiifacegaze-pre", "itracker", "lam"):  # grouped by subject on disk
        data, out = by_subject({k: np.asarray(data[k]) for k in keys}), by_subject(out)
    np.testing.assert_array_equal(out["subject"], data["subject"])
    for key in keys:
        want, got = np.asarray(data[key]), out[key]
        if fmt in ("mpiifacegaze", "mpiifacegaze-pre") and key in ("landmarks", "eye_boxes"):
            assert_mpii_landmarks(data, out)
        elif fmt == "lam" and key in ("head_pose", "landmarks"):  # Ego4D ships no priors
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


def assert_mpii_landmarks(data: dict[str, np.ndarray], out: dict[str, np.ndarray]) -> None:
    """MPIIFaceGaze stores six points: SynthGaze's mouth corners exactly, its eye centres as the midpoints of
    the rebuilt eye corners, and eye boxes built from those corners (both data and out grouped by subject)."""
    lm, six = np.asarray(data["landmarks"]), out["landmarks"]
    assert six.shape == (len(lm), 6, 2) and out["eye_boxes"].shape == (len(lm), 2, 4)
    np.testing.assert_array_equal(six[:, 4:6], lm[:, 3:5])
    np.testing.assert_allclose((six[:, 0] + six[:, 1]) / 2, lm[:, 0], atol=1e-4)
    np.testing.assert_allclose((six[:, 2] + six[:, 3]) / 2, lm[:, 1], atol=1e-4)
    np.testing.assert_allclose(out["eye_boxes"], eye_boxes_from_corners(six[:, :4].reshape(-1, 2, 2, 2)), atol=1e-5)


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
