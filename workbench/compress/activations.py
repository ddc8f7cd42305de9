"""What the pruning groups' root layers compute on calibration samples: per-channel rank scores (HRank) and
each group's effective rank, the two ways analysis of the activations drives structural pruning.

Both hook the output of each group's root layer (conv, transposed conv, Linear, LSTM: the channels the
pruner removes), before any BatchNorm or activation, in eval mode, over the pruner's calibration samples.
A layer that runs several times in one forward pass (a backbone run once per frame of a track) adds every
call. The channel axis follows the layer: dim 1 of a conv's (B, C, *spatial) output, the last dim of a
Linear's (..., C) or an LSTM's (..., D*H) output.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from workbench.tasks import Task, TaskData
from workbench.utils.hooks import forward_hooks

__all__ = ["ERANK_MEASURES", "RANK_RTOL", "channel_rank_scores", "effective_ranks", "erank_record", "run_hooked"]

# Singular values below RANK_RTOL x the largest one of the same map do not count towards its rank: float32
# convolutions leave ~1e-6 relative noise, so LAPACK's default (eps x max(H, W)) calls a rank-2 map full rank.
RANK_RTOL = 1e-3
_ATOL = 1e-8  # an all-but-zero map (a dead channel's rounding noise) has rank 0
TIE_BREAK = 1e-4  # weight of a map's (relative) variance beside its mean rank


def _output(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out  # LSTM: (output, (h, c))


def _is_conv(m: nn.Module) -> bool:
    return isinstance(m, nn.modules.conv._ConvNd)


@torch.no_grad()
def run_hooked(model: nn.Module, task: Task, data: TaskData, layers: Iterable[str],
               hook: Callable[[str, nn.Module, torch.Tensor], None], batch_size: int = 32) -> None:
    """Run ``model`` (eval mode) over ``data`` with ``hook(name, module, output tensor)`` after each of ``layers``."""
    modules = dict(model.named_modules())
    model.eval()
    with forward_hooks([(n, modules[n]) for n in layers], lambda name, m, _a, out: hook(name, m, _output(out))):
        for start in range(0, len(data), batch_size):
            model(*task.inputs(data.batch(torch.arange(start, min(start + batch_size, len(data))))))


class _ChannelScore:
    """Sum of per-sample map ranks, or the running moments of the values, per channel."""

    def __init__(self) -> None:
        self.rank_sum: torch.Tensor | None = None
        self.maps = 0
        self.s1 = self.s2 = None
        self.n = 0

    def add(self, m: nn.Module, out: torch.Tensor) -> None:
        out = out.detach().float()
        if _is_conv(m) and out.dim() >= 4 and min(math.prod(out.shape[2:-1]), out.shape[-1]) >= 2:
            b, c = out.shape[:2]
            maps = out.reshape(b, c, -1, out.shape[-1])  # (B, C, H [x D], W)
            ranks = torch.linalg.matrix_rank(maps, atol=_ATOL, rtol=RANK_RTOL).to(torch.float64).sum(0)
            self.rank_sum = ranks if self.rank_sum is None else self.rank_sum + ranks
            self.maps += b
        # A scalar (a Linear unit, an LSTM hidden unit at one time step) or a 1-wide/1-D map: its "rank" is 0
        # or 1 (zero or not), which ranks nothing, so the unit's variance over samples (and positions) scores it.
        # (Maps with a rank keep the variance too, to break ties among maps of equal rank.)
        x = (out.movedim(1, -1) if _is_conv(m) else out).reshape(-1, out.shape[1 if _is_conv(m) else -1])
        x = x.to(torch.float64)
        self.s1 = x.sum(0) if self.s1 is None else self.s1 + x.sum(0)
        self.s2 = (x * x).sum(0) if self.s2 is None else self.s2 + (x * x).sum(0)
        self.n += x.shape[0]

    def result(self) -> torch.Tensor:
        mean = self.s1 / self.n
        var = (self.s2 / self.n - mean * mean).clamp_min(0)
        if self.rank_sum is None:
            return var.float()
        # Mean ranks over N maps differ by at least 1/N; the variance term (< TIE_BREAK, so below 1/N up to
        # 10,000 maps) only orders maps of equal mean rank (many maps of a small layer are full rank).
        top = float(var.max())
        return (self.rank_sum / self.maps + (TIE_BREAK * var / top if top > 0 else 0.0)).float()


def channel_rank_scores(model: nn.Module, task: Task, data: TaskData, layers: Iterable[str]) -> dict[str, torch.Tensor]:
    """{layer: (C,) score} for the output channels of each of ``layers`` over ``data``.

    A conv channel with an H x W map (H, W >= 2) scores the mean over samples of its map's matrix rank
    (HRank, Lin et al. 2020: a map of low rank carries little information; an all-zero map has rank 0),
    plus at most ``TIE_BREAK`` times its variance relative to the layer's largest, which orders only maps
    of equal mean rank; 3-D maps are read as (D*H) x W matrices. A channel whose output is a scalar per sample (Linear, LSTM) or
    a map of height or width 1 scores its variance over samples and positions instead: the rank of a
    scalar is only 0 or 1, while its variance is 0 exactly for a dead or constant unit and grows with how
    much the unit tells the samples apart.
    """
    layers = list(layers)
    stats = {n: _ChannelScore() for n in layers}
    run_hooked(model, task, data, layers, lambda name, m, out: stats[name].add(m, out))
    return {n: s.result() for n, s in stats.items() if s.rank_sum is not None or s.n}


ERANK_MEASURES = ("entropy", "pr")  # how --scope erank turns a layer's spectrum into its effective rank


def effective_ranks(model: nn.Module, task: Task, data: TaskData, layers: Iterable[str], *,
                    measure: str = "entropy") -> dict[str, dict[str, Any]]:
    """{layer: {"effective_rank": r, "width": C, "rows": N}}: the effective rank of the eigenvalues ``l`` of
    the correlation matrix of each layer's C output channels over ``data``
    (:func:`workbench.analyze.embeddings.spectrum` of the standardized channels). ``measure``: ``entropy``
    (Roy & Vetterli's effective rank, ``exp(entropy(l / sum l))``) or ``pr`` (the participation ratio
    ``(sum l)^2 / sum l^2``). Both give C for C uncorrelated live channels, 1 for C copies of one signal and
    0 for a layer whose output never varies; on heavy-tailed spectra the participation ratio counts only
    the dominant directions (itracker's fc1: 2.5 against an entropy rank of 15 of 128), and pruning layers
    toward it cut the weak directions gaze needs (benchmarks/analysis_links.py). Channels that never vary
    (dead or constant) are left out, so they lower r.

    Standardized, not raw covariance: the roots are read before their BatchNorm, which rescales every
    channel anyway, and a Linear's next layer can scale any unit up; with raw covariance one channel of large
    scale would make r ~ 1 however many independent channels sit beside it, so r would measure scale
    spread, not redundancy.

    Features are channels and rows are samples: a conv map is reduced to its per-channel spatial mean, a
    Linear/LSTM output is a row per sample (and per time step). Rows are per sample, not per spatial
    position, because (i) the question is how many of the C channels carry independent information about
    the input, which is what a pooled head or a following FC reads, while position rows would also
    count spatial texture inside one image and let an early 56x56 map outvote a late 4x4 one by 200x
    the rows; (ii) conv and FC groups are then measured alike, one row per sample, so their ratios compare.
    ``r`` is estimated from N rows, so it is at most min(N - 1, C): use many more calibration samples than
    channels in the widest group for a faithful figure.
    """
    from workbench.analyze.embeddings import spectrum

    layers = list(layers)
    rows: dict[str, list[torch.Tensor]] = {n: [] for n in layers}

    def add(name: str, m: nn.Module, out: torch.Tensor) -> None:
        out = out.detach().to(torch.float64)
        if _is_conv(m):
            rows[name].append(out.flatten(2).mean(2) if out.dim() > 2 else out.reshape(1, -1))
        else:
            rows[name].append(out.reshape(-1, out.shape[-1]))

    run_hooked(model, task, data, layers, add)
    out = {}
    for name, chunks in rows.items():
        if not chunks:
            continue
        x = torch.cat(chunks).numpy()
        sd = x.std(0)
        live = sd > 1e-9 * max(float(sd.max()), 1e-30)
        z = (x[:, live] - x[:, live].mean(0)) / sd[live]
        key = {"entropy": "effective_rank", "pr": "participation_ratio"}[measure]
        pr = spectrum(z)[key] if len(x) > 1 and live.any() else 0.0
        out[name] = {"effective_rank": float(pr if np.isfinite(pr) else 0.0), "width": int(x.shape[1]),
                     "rows": int(x.shape[0])}
    return out


def _out_width(m: nn.Module) -> int:
    if isinstance(m, nn.LSTM):
        return m.hidden_size * (2 if m.bidirectional else 1)
    return m.out_features if isinstance(m, nn.Linear) else m.out_channels


def erank_record(erank: dict[str, dict[str, Any]], model: nn.Module) -> dict[str, dict[str, Any]]:
    """Per group root, what analysis said beside what pruning did (the prune summary's ``erank``):
    {"effective_rank": r (of the unpruned root's output channels, see
    :func:`effective_ranks`), "width": its original channels, "keep": the channels pruned ``model`` keeps}."""
    return {r: {"effective_rank": round(e["effective_rank"], 4), "width": e["width"],
                "keep": _out_width(model.get_submodule(r))} for r, e in erank.items()}
