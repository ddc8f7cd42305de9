"""Pixel helpers for the visualization tests: find the exact mark colours where they should be."""

import numpy as np


def near(img, xy, colour, r: int = 2) -> bool:
    """True when a pixel within ``r`` of ``xy`` has exactly ``colour``."""
    a = np.asarray(img)
    x, y = round(xy[0]), round(xy[1])
    patch = a[max(0, y - r):y + r + 1, max(0, x - r):x + r + 1, :3]
    return bool((patch == np.asarray(colour)).all(-1).any())


def along(a, b, t: float) -> np.ndarray:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a + t * (b - a)


def count(img, colour) -> int:
    return int((np.asarray(img)[..., :3] == np.asarray(colour)).all(-1).sum())


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)
