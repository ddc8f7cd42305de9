"""The report's figures (matplotlib, Agg): Pareto plot, saliency side by side, training curves. Each
function writes one PNG and returns its path, or None when there is nothing to draw. (The analysis
stages draw their own figures, which the report copies.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from workbench.report.collect import load_attributions

COLORS = {"teacher": "#1f77b4", "pruned": "#ff7f0e", "student": "#2ca02c", "control": "#7f7f7f", "int8": "#d62728"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    _plt().close(fig)
    return path


def pareto_front(points: list[tuple[float, float]], higher_is_better: bool) -> list[int]:
    """Indices of the points no other point beats on both cost (x, lower is better) and metric (y), by cost."""
    from workbench.utils.stats import pareto_front as undominated

    sign = -1.0 if higher_is_better else 1.0
    return sorted(undominated({i: (x, sign * y) for i, (x, y) in enumerate(points)}), key=lambda i: points[i][0])


def pareto(cards: list[dict[str, Any]], title: str, path: Path) -> Path | None:
    """Metric vs MACs at the padded input, one point per model, the Pareto front joined."""
    pts = [(c, float(c["macs"]), float(c["value"])) for c in cards if c.get("macs") and c.get("value") is not None]
    if len(pts) < 1:
        return None
    plt = _plt()
    hib = bool(pts[0][0].get("higher_is_better"))
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (c, x, y) in enumerate(pts):
        ax.scatter([x / 1e6], [y], s=60, color=COLORS.get(c["name"], "k"), zorder=3, label=c["name"])
        # Models of equal MACs (student, control, int8) sit on one vertical: stagger their labels.
        ax.annotate(c["name"], (x / 1e6, y), textcoords="offset points", xytext=(7, 8 - 11 * (i % 3)), fontsize=9)
    front = pareto_front([(x, y) for _, x, y in pts], hib)
    if len(front) > 1:
        ax.plot([pts[i][1] / 1e6 for i in front], [pts[i][2] for i in front], "--", color="0.5", zorder=2,
                label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("MACs at the padded input (millions, log scale)")
    metric = pts[0][0].get("primary_metric") or "metric"
    ax.set_ylabel(f"{metric} ({'higher' if hib else 'lower'} is better)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def _panel_heat(a: np.ndarray) -> np.ndarray:
    """One sample's attribution -> a 2-D |attribution| map (channels summed; a track's centre frame)."""
    a = np.abs(a)
    if a.ndim == 4:  # (T, C, H, W)
        a = a[a.shape[0] // 2]
    if a.ndim == 3:
        a = a.sum(0)
    return a


def saliency_side_by_side(folders: dict[str, Path], agreement: dict[str, Any], title: str, path: Path,
                          rows: int = 4) -> Path | None:
    """Heat maps of the teacher, the pruned model and the student on the same samples (one row per
    sample), each titled with its per-sample Spearman correlation with the teacher's map."""
    models = [m for m in ("teacher", "pruned", "student") if m in folders]
    if not models:
        return None
    arrays = {m: load_attributions(folders[m]) for m in models}
    keys = [k for k in arrays[models[0]] if "__" in k and not k.startswith("boxes__")
            and all(k in arrays[m] for m in models)]
    if not keys:
        return None
    key = keys[0]
    n = min(rows, len(arrays[models[0]][key]))
    plt = _plt()
    fig, axes = plt.subplots(n, len(models), figsize=(2.3 * len(models), 2.3 * n), squeeze=False)
    pairs = agreement.get("pairs", {}) if isinstance(agreement, dict) else {}
    for j, m in enumerate(models):
        for i in range(n):
            ax = axes[i][j]
            h = _panel_heat(arrays[m][key][i])
            ax.imshow(h / (h.max() or 1.0), cmap="inferno", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            label = m
            rho = pairs.get(m, {}).get("maps", {}).get(key, {}).get("per_sample") if m != "teacher" else None
            if rho and i < len(rho) and rho[i] is not None:
                label += f"  ρ={rho[i]:.2f}"
            ax.set_title(label, fontsize=9)
    fig.suptitle(f"{title}: |attribution| of {key.replace('__', ' → ')}", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def training_curves(curves: dict[str, dict[str, Any]], title: str, path: Path) -> Path | None:
    """Train loss and the validation primary metric per epoch, one line per model."""
    if not curves:
        return None
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    metric = None
    for name, c in curves.items():
        color = COLORS.get(name, "k")
        loss = [np.nan if v is None else v for v in c["train_loss"]]
        ax1.plot(c["epoch"], loss, "o-", color=color, label=name, ms=3)
        metric = c.get("primary_metric") or metric
        vals = c["val"].get(c.get("primary_metric") or "", [])
        if vals:
            ax2.plot(c["epoch"], [np.nan if v is None else v for v in vals], "o-", color=color, label=name, ms=3)
        if c.get("constant") is not None and name == "teacher":
            ax2.axhline(c["constant"], color="0.6", ls=":", label="constant predictor")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("training loss")
    if all(v is None or v > 0 for c in curves.values() for v in c["train_loss"]):
        ax1.set_yscale("log")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel(f"validation {metric or 'metric'}")
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)

