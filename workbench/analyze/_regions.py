"""Eye-box regions and the two region scores: eye-mass and the pointing game."""

from __future__ import annotations

import numpy as np


def box_masks(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, [T,] K, 4) boxes (x0, y0, x1, y1) px -> (N, [T,] H, W) bool: pixel centres inside any box.

    Non-finite boxes are ignored; boxes reaching outside the image are clipped by construction.
    """
    b = np.asarray(boxes, dtype=np.float32)
    lead = b.shape[:-2]
    flat = b.reshape(-1, b.shape[-2], 4)
    xs = np.arange(width, dtype=np.float32) + 0.5
    ys = np.arange(height, dtype=np.float32) + 0.5
    out = np.zeros((len(flat), height, width), dtype=bool)
    for k in range(flat.shape[1]):
        x0, y0, x1, y1 = (flat[:, k, j][:, None] for j in range(4))
        ok = np.isfinite(flat[:, k]).all(-1)[:, None]
        inx = (xs[None] >= x0) & (xs[None] <= x1) & ok
        iny = (ys[None] >= y0) & (ys[None] <= y1) & ok
        out |= iny[:, :, None] & inx[:, None, :]
    return out.reshape(*lead, height, width)


def eye_mass(maps: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """Share of the attribution mass inside the boxes beside the boxes' share of the pixels.

    ``maps`` (N, [T,] H, W) non-negative; a track's frames count as one image per sample. Returns the
    mean per-sample ``share`` and ``area_share`` and ``ratio = share / area_share`` (1 = no preference).
    """
    n = len(maps)
    m = maps.reshape(n, -1).astype(np.float64)
    k = masks.reshape(n, -1)
    total = m.sum(1)
    ok = total > 0
    share = float(((m * k).sum(1)[ok] / total[ok]).mean()) if ok.any() else float("nan")
    area = float(k.mean(1).mean())
    return {"share": share, "area_share": area, "ratio": share / area if area > 0 else float("nan"),
            "samples": int(ok.sum())}


def pointing(maps: np.ndarray, masks: np.ndarray) -> float:
    """Fraction of images whose attribution maximum falls inside an eye box (each frame of a track is
    an image); images with an all-zero map count as misses."""
    h, w = maps.shape[-2:]
    m = maps.reshape(-1, h * w)
    k = masks.reshape(-1, h * w)
    top = m.argmax(1)
    hit = k[np.arange(len(m)), top] & (m.max(1) > 0)
    return float(hit.mean())
