"""Figures of the analyses (matplotlib, Agg backend, written atomically by the callers' folders)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def display(x: np.ndarray) -> np.ndarray:
    """A model input (C, H, W), normalized any way -> (H, W, 3) float in [0, 1] (min-max per image)."""
    x = np.asarray(x, dtype=np.float32)
    lo, hi = float(x.min()), float(x.max())
    x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    if x.shape[0] == 1:
        x = np.repeat(x, 3, 0)
    return x[:3].transpose(1, 2, 0)


def _heat_rgba(h: np.ndarray, top: float | None = None) -> np.ndarray:
    import matplotlib

    top = np.percentile(h, 99.5) if top is None else top
    v = np.clip(h / top, 0, 1) if top > 0 else np.zeros_like(h)
    rgba = matplotlib.colormaps["jet"](v)
    rgba[..., 3] = 0.15 + 0.75 * v  # faint where the attribution is low, so the image stays visible
    return rgba


def _boxes(ax, boxes: np.ndarray | None) -> None:
    if boxes is None:
        return
    from matplotlib.patches import Rectangle

    for b in np.asarray(boxes).reshape(-1, 4):
        if np.isfinite(b).all():
            ax.add_patch(Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False, lw=0.6, ec="white", ls="--"))


def overlay_grid(path: Path, images: np.ndarray, maps: dict[str, np.ndarray], boxes: np.ndarray | None,
                 title: str, rows: int = 8) -> None:
    """One row per sample: the image, then one overlay per target. images (N, C, H, W), maps (N, H, W)."""
    plt = _plt()
    n = min(rows, len(images))
    cols = 1 + len(maps)
    fig, axes = plt.subplots(n, cols, figsize=(1.9 * cols, 1.9 * n), squeeze=False)
    for i in range(n):
        img = display(images[i])
        axes[i, 0].imshow(img)
        if i == 0:
            axes[i, 0].set_title("input", fontsize=8)
        for j, (name, m) in enumerate(maps.items(), start=1):
            axes[i, j].imshow(img)
            axes[i, j].imshow(_heat_rgba(m[i]))
            _boxes(axes[i, j], None if boxes is None else boxes[i])
            if i == 0:
                axes[i, j].set_title(name, fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def track_grid(path: Path, images: np.ndarray, maps: dict[str, np.ndarray], boxes: np.ndarray | None,
               title: str, rows: int = 4) -> None:
    """Tracks: one row per (sample, target), one column per frame. images (N, T, C, H, W), maps (N, T, H, W)."""
    plt = _plt()
    n = min(rows, len(images))
    t = images.shape[1]
    keys = list(maps)
    fig, axes = plt.subplots(n * len(keys), t, figsize=(1.6 * t, 1.6 * n * len(keys)), squeeze=False)
    for i in range(n):
        for j, name in enumerate(keys):
            r = i * len(keys) + j
            top = float(np.percentile(maps[name][i], 99.5))
            for f in range(t):
                ax = axes[r, f]
                ax.imshow(display(images[i, f]))
                ax.imshow(_heat_rgba(maps[name][i, f], top))
                _boxes(ax, None if boxes is None else boxes[i, f])
                if r == 0:
                    ax.set_title(f"frame {f}", fontsize=8)
            axes[r, 0].set_ylabel(f"#{i} {name}", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title + " (the heat of all frames shares one scale per row)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def deletion_plot(path: Path, curves: dict[str, dict], metric: str, title: str) -> None:
    """Deletion curves, one panel per target: attribution order vs random orders (mean and band)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.4), squeeze=False)
    for ax, (name, c) in zip(axes[0], curves.items()):
        f = np.asarray(c["fractions"])
        rnd = np.asarray(c["random"])
        ax.plot(f, c["attribution"], "r-", lw=2, label=f"most attributed first (area {c['area_attribution']:.3g})")
        ax.plot(f, rnd.mean(0), "k--", label=f"random order (area {c['area_random']:.3g})")
        if len(rnd) > 1:
            ax.fill_between(f, rnd.min(0), rnd.max(0), color="k", alpha=0.15)
        ax.set_xlabel("fraction of pixels removed")
        ax.set_ylabel(metric)
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def randomization_plot(path: Path, steps: dict[str, list[dict]], title: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, rows in steps.items():
        x = [0] + [r["layers_reinitialized"] for r in rows]
        ax.plot(x, [1.0] + [r["spearman_abs"] for r in rows], "o-", label=f"{name}: |attr|")
        ax.plot(x, [1.0] + [r["spearman"] for r in rows], "s--", alpha=0.6, label=f"{name}: signed")
    ax.axhline(0.2, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("layers re-initialized, from the head down")
    ax.set_ylabel("Spearman vs trained map")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def pca_plot(path: Path, pcs: np.ndarray, labels: np.ndarray, names: Sequence[str], title: str) -> None:
    """PC1 vs PC2, one panel per label, coloured by it."""
    plt = _plt()
    k = max(1, len(names))
    fig, axes = plt.subplots(1, k, figsize=(4.4 * k, 3.8), squeeze=False)
    for j, ax in enumerate(axes[0]):
        c = labels[:, j] if labels is not None and len(names) else None
        sc = ax.scatter(pcs[:, 0], pcs[:, 1] if pcs.shape[1] > 1 else np.zeros(len(pcs)), c=c, s=6, cmap="coolwarm")
        if c is not None:
            fig.colorbar(sc, ax=ax, label=names[j])
            ax.set_title(f"coloured by {names[j]}", fontsize=9)
        ax.set_xlabel("PC1")
        ax.set_ylabel("PC2")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def fc_plot(path: Path, layers: dict[str, dict], criteria: Sequence[str], title: str) -> None:
    """Per layer: cumulative importance curves per criterion, and the Spearman agreement matrix."""
    plt = _plt()
    names = list(layers)
    fig, axes = plt.subplots(len(names), 2, figsize=(9, 3.3 * len(names)), squeeze=False)
    for r, name in enumerate(names):
        lay = layers[name]
        ax = axes[r, 0]
        for crit in criteria:
            curve = lay["cumulative"].get(crit)
            if curve:
                ax.plot(np.linspace(0, 1, len(curve)), curve, label=f"{crit} ({lay['share_for_90'][crit]:.2f})")
        ax.axhline(0.9, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("share of neurons (most important first)")
        ax.set_ylabel("share of importance")
        ax.set_title(f"{name} ({lay['out_features']} neurons{', head' if lay['is_head'] else ''})", fontsize=9)
        ax.legend(fontsize=6)
        ax = axes[r, 1]
        mat = np.array([[np.nan if v is None else v for v in row] for row in lay["agreement"]], dtype=float)
        im = ax.imshow(mat, vmin=-1, vmax=1, cmap="coolwarm")
        ax.set_xticks(range(len(criteria)), criteria, rotation=45, fontsize=7, ha="right")
        ax.set_yticks(range(len(criteria)), criteria, fontsize=7)
        for i in range(len(criteria)):
            for j in range(len(criteria)):
                if np.isfinite(mat[i, j]):
                    ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", fontsize=6)
        fig.colorbar(im, ax=ax, fraction=0.046)
        ax.set_title("Spearman agreement", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def cascade_grid(path: Path, images: np.ndarray, cols: list[tuple[str, np.ndarray]], title: str) -> None:
    """One row per sample, one column per (label, maps (N, H, W)); images (N, C, H, W)."""
    plt = _plt()
    fig, axes = plt.subplots(len(images), len(cols), figsize=(1.8 * len(cols), 1.9 * len(images)), squeeze=False)
    for i in range(len(images)):
        for j, (label, maps) in enumerate(cols):
            axes[i, j].imshow(display(images[i]))
            axes[i, j].imshow(_heat_rgba(maps[i]))
            axes[i, j].axis("off")
            if i == 0:
                axes[i, j].set_title(label, fontsize=7)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
