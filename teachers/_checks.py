"""Input validation shared by the teachers: a wrong shape ends in one clear ValueError."""

from __future__ import annotations

from typing import Optional, Sequence

import torch


def _fmt(shape: Sequence[Optional[int]], batch: str = "B") -> str:
    return "(" + ", ".join(batch if i == 0 and d is None else ("*" if d is None else str(d))
                           for i, d in enumerate(shape)) + ")"


def expect_shape(x: torch.Tensor, name: str, shape: Sequence[Optional[int]]) -> None:
    """Raise ``ValueError("expected face of shape (B, 3, 112, 112), got (2, 3, 64, 64)")`` on a mismatch.

    ``None`` in ``shape`` accepts any size there (the batch dimension, free spatial sizes).
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"expected {name} to be a tensor of shape {_fmt(shape)}, got {type(x).__name__}")
    ok = x.ndim == len(shape) and all(d is None or int(s) == d for s, d in zip(x.shape, shape))
    if not ok:
        raise ValueError(f"expected {name} of shape {_fmt(shape)}, got {tuple(x.shape)}")


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a conv/pool along one axis (floor mode)."""
    return (size + 2 * padding - kernel) // stride + 1
