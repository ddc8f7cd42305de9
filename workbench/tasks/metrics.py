"""Metrics shared by tasks (kept free of torch.distributed and sklearn)."""

from __future__ import annotations

import torch


def average_precision(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Average precision (area under the precision-recall curve, step-wise as in sklearn/mAP).

    scores (N,) any real; labels (N,) in {0, 1}. Ties are broken pessimistically-free by sorting stably.
    Returns NaN when there is no positive label.
    """
    scores = scores.detach().double().flatten()
    labels = labels.detach().double().flatten()
    n_pos = float(labels.sum())
    if n_pos == 0:
        return float("nan")
    order = torch.argsort(scores, descending=True, stable=True)
    s, y = scores[order], labels[order]
    # Group tied scores: precision/recall are only evaluated at the end of each group of ties.
    last_of_group = torch.ones_like(s, dtype=torch.bool)
    last_of_group[:-1] = s[1:] != s[:-1]
    tp = torch.cumsum(y, 0)[last_of_group]
    k = torch.arange(1, len(s) + 1, dtype=torch.float64)[last_of_group]
    precision = tp / k
    recall = tp / n_pos
    prev_recall = torch.cat([torch.zeros(1, dtype=torch.float64), recall[:-1]])
    return float(((recall - prev_recall) * precision).sum())


def binary_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float(((logits.flatten() > 0).double() == labels.flatten().double()).double().mean())
