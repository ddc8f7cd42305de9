"""Vectorized anti-aliased 2D drawing for the SynthGaze renderer.

Every function works on a batch of N images at once. Shape parameters are arrays of shape (N,) (or
(N, 2) for points); pixel grids are the centres of a window of the image. A coverage map is float32 in
[0, 1] with a one-pixel soft edge, which keeps sub-pixel iris shifts visible in small images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

F32 = np.float32


@dataclass
class Window:
    """A rectangle ``[y0:y1, x0:x1]`` of the image with its pixel-centre grids, shaped for broadcasting."""

    y0: int
    y1: int
    x0: int
    x1: int

    def __post_init__(self) -> None:
        self.X = (np.arange(self.x0, self.x1, dtype=F32) + F32(0.5))[None, None, :]
        self.Y = (np.arange(self.y0, self.y1, dtype=F32) + F32(0.5))[None, :, None]

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    @staticmethod
    def around(boxes: np.ndarray, height: int, width: int, margin: float = 2.0) -> "Window | None":
        """The smallest window holding every (x0, y0, x1, y1) box of (..., 4), clipped to the image."""
        b = boxes.reshape(-1, 4)
        b = b[np.isfinite(b).all(axis=1)]
        if len(b) == 0:
            return None
        x0 = int(np.clip(np.floor(b[:, 0].min() - margin), 0, width))
        y0 = int(np.clip(np.floor(b[:, 1].min() - margin), 0, height))
        x1 = int(np.clip(np.ceil(b[:, 2].max() + margin), 0, width))
        y1 = int(np.clip(np.ceil(b[:, 3].max() + margin), 0, height))
        if x1 <= x0 or y1 <= y0:
            return None
        return Window(y0, y1, x0, x1)


def _c(a: np.ndarray) -> np.ndarray:
    """(N,) -> (N, 1, 1) float32 for broadcasting against (N, h, w) maps."""
    return np.asarray(a, dtype=F32).reshape(-1, 1, 1)


def ellipse(win: Window, center: np.ndarray, axes: np.ndarray, cos_sin: np.ndarray) -> tuple[np.ndarray, ...]:
    """Coverage of rotated ellipses and the pixel's normalized ellipse coordinates.

    center (N, 2) px, axes (N, 2) semi-axes px, cos_sin (N, 2) of the first axis's angle.
    Returns (coverage (N,h,w), u (N,h,w), v (N,h,w)) with u, v in units of the semi-axes.
    """
    dx = win.X - _c(center[:, 0])
    dy = win.Y - _c(center[:, 1])
    c, s = _c(cos_sin[:, 0]), _c(cos_sin[:, 1])
    ax, ay = _c(axes[:, 0]), _c(axes[:, 1])
    u = (dx * c + dy * s) / ax
    v = (dy * c - dx * s) / ay
    rho = np.sqrt(u * u + v * v)
    cov = np.clip(F32(0.5) + (F32(1.0) - rho) * np.sqrt(ax * ay), 0.0, 1.0)
    return cov, u, v


def capsule(win: Window, p0: np.ndarray, p1: np.ndarray, half_width: np.ndarray) -> np.ndarray:
    """Coverage (N,h,w) of thick line segments from p0 to p1 (N, 2) with rounded ends."""
    x0, y0 = _c(p0[:, 0]), _c(p0[:, 1])
    dx, dy = _c(p1[:, 0] - p0[:, 0]), _c(p1[:, 1] - p0[:, 1])
    L2 = np.maximum(dx * dx + dy * dy, F32(1e-6))
    px, py = win.X - x0, win.Y - y0
    t = np.clip((px * dx + py * dy) / L2, 0.0, 1.0)
    ex, ey = px - t * dx, py - t * dy
    return np.clip(F32(0.5) + _c(half_width) - np.sqrt(ex * ex + ey * ey), 0.0, 1.0)


def draw_capsule(img: np.ndarray, p0: np.ndarray, p1: np.ndarray, half_width: np.ndarray, color: np.ndarray,
                 alpha: float = 1.0) -> None:
    """Blend thick segments into img (N,3,H,W), computing them only inside the batch's bounding window."""
    hw = np.asarray(half_width, dtype=np.float64)[:, None]
    boxes = np.concatenate([np.minimum(p0, p1) - hw - 1, np.maximum(p0, p1) + hw + 1], axis=-1)
    win = Window.around(boxes, img.shape[-2], img.shape[-1], margin=1.0)
    if win is None:
        return
    cov = capsule(win, p0, p1, half_width)
    if alpha != 1.0:
        cov *= F32(alpha)
    blend(img, win, cov, color)


def almond(
    win: Window, a: np.ndarray, b: np.ndarray, up: np.ndarray, down: np.ndarray, lash: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Coverage of eye openings between corners a and b (N, 2) with parabolic lids.

    ``up``/``down`` (N,) are the lids' heights (px) above/below the corner line at mid-width.
    When ``lash`` (N,) is given, also returns the coverage of a dark line of that half-width along the
    upper lid (the lash line), which marks the lid's position even where the sclera is dim.
    """
    ax_, ay_ = _c(a[:, 0]), _c(a[:, 1])
    dx, dy = _c(b[:, 0] - a[:, 0]), _c(b[:, 1] - a[:, 1])
    L = np.maximum(np.sqrt(dx * dx + dy * dy), F32(1e-3))
    ex, ey = dx / L, dy / L
    px, py = win.X - ax_, win.Y - ay_
    t = (px * ex + py * ey) / L
    s = py * ex - px * ey  # distance below the corner line, px
    bulge = np.clip(F32(4.0) * t * (F32(1.0) - t), 0.0, 1.0)
    upper = -_c(up) * bulge
    lower = _c(down) * bulge
    inside = np.minimum(s - upper, lower - s)
    ends = np.clip(F32(0.5) + np.minimum(t, F32(1.0) - t) * L, 0.0, 1.0)
    cov = np.clip(F32(0.5) + inside, 0.0, 1.0) * ends
    lash_cov = None
    if lash is not None:
        lash_cov = np.clip(F32(0.5) + _c(lash) - np.abs(s - upper + _c(lash) * F32(0.5)), 0.0, 1.0) * ends
    return cov, lash_cov


def blend(img: np.ndarray, win: Window, cov: np.ndarray, color: np.ndarray) -> None:
    """In place: img[:, :, window] = lerp(img, color, cov). img (N,3,H,W), cov (N,h,w), color (N,3) or (N,3,h,w)."""
    sy, sx = win.slices
    view = img[:, :, sy, sx]
    col = color if color.ndim == 4 else color.astype(F32)[:, :, None, None]
    diff = np.subtract(col, view, dtype=F32)
    diff *= cov[:, None]
    view += diff


def gaussian_blur(img: np.ndarray, sigma: np.ndarray, radius: int = 2) -> np.ndarray:
    """Separable Gaussian blur with a per-image sigma (N,) in pixels (edges replicated); sigma 0 is a no-op.

    One grouped convolution per axis (torch's depthwise kernels are about twice as fast as shifted numpy
    adds on one core).
    """
    import torch
    import torch.nn.functional as Fnn

    n, c, h, w = img.shape
    k = np.arange(-radius, radius + 1, dtype=F32)
    s = np.maximum(np.asarray(sigma, dtype=F32), F32(1e-3))[:, None]
    wts = np.exp(-(k[None, :] ** 2) / (F32(2.0) * s * s))
    wts = np.repeat(wts / wts.sum(axis=1, keepdims=True), c, axis=0).astype(F32)
    kern = torch.from_numpy(wts)
    t = torch.from_numpy(np.ascontiguousarray(img, dtype=F32)).reshape(1, n * c, h, w)
    with torch.no_grad():
        t = Fnn.pad(t, (radius, radius, radius, radius), mode="replicate")
        t = Fnn.conv2d(t, kern.view(n * c, 1, 1, 2 * radius + 1), groups=n * c)
        t = Fnn.conv2d(t, kern.view(n * c, 1, 2 * radius + 1, 1), groups=n * c)
    return t.reshape(n, c, h, w).numpy()


def smooth_field(rng: np.random.Generator, n: int, channels: int, height: int, width: int, cells: int = 3) -> np.ndarray:
    """Low-frequency random field (N, C, H, W) in about [-1, 1]: a cells x cells grid, bilinearly upsampled."""
    grid = rng.uniform(-1.0, 1.0, size=(n, channels, cells, cells)).astype(F32)
    wy = _interp_matrix(height, cells)
    wx = _interp_matrix(width, cells)
    return np.einsum("hi,ncij,wj->nchw", wy, grid, wx, optimize=True).astype(F32)


def _interp_matrix(size: int, cells: int) -> np.ndarray:
    pos = (np.arange(size, dtype=F32) + F32(0.5)) / F32(size) * F32(cells - 1)
    i0 = np.clip(np.floor(pos).astype(int), 0, cells - 2)
    f = pos - i0
    m = np.zeros((size, cells), dtype=F32)
    m[np.arange(size), i0] = F32(1.0) - f
    m[np.arange(size), i0 + 1] = f
    return m
