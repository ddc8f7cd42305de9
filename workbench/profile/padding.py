"""Padding-aware sizes: what a full-frame network really sees, and the MACs it spends on the padding.

A full-frame model (EVG) takes the camera frame resized (aspect kept) and padded with black to a
multiple of the network stride with CenterNet's rule (:func:`workbench.data.geometry.padded_size`):
480x270 -> 512x288, 640x360 -> 672x384 at stride 32. A profiler that counts at 480x270 under-reports
what runs; this module counts at the padded size and says how much of it is padding.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import torch

from workbench.data.geometry import pad_to_stride
from workbench.errors import WorkbenchError

Size = tuple[int, int]  # (width, height)


def parse_size(text: str, what: str = "--image") -> Size:
    """``"480x270"`` -> (480, 270), width first."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not m or int(m.group(1)) <= 0 or int(m.group(2)) <= 0:
        raise WorkbenchError(f"bad {what} {text!r}: expected WIDTHxHEIGHT with positive sizes, e.g. 480x270")
    return int(m.group(1)), int(m.group(2))


def network_size(image: Size, *, resize: int | None = None, stride: int = 32, mode: str = "centernet") -> dict[str, Any]:
    """The task's preprocessing of a ``image`` (w, h) frame: resize to width ``resize`` keeping the aspect
    (none if ``resize`` is None; the height rounds to the nearest pixel), then pad to a multiple of
    ``stride``. Returns {raw, resized, padded, stride, mode}, sizes as [w, h]."""
    w, h = image
    if stride <= 0:
        raise WorkbenchError(f"expected a positive --stride, got {stride}")
    if resize is not None:
        if resize <= 0:
            raise WorkbenchError(f"expected a positive --resize width, got {resize}")
        w, h = resize, max(1, round(h * resize / w))
    try:
        pw, ph = pad_to_stride(w, h, stride, mode)
    except ValueError as exc:
        raise WorkbenchError(str(exc)) from None
    return {"raw": [image[0], image[1]], "resized": [w, h], "padded": [pw, ph], "stride": stride, "mode": mode}


def padding_macs(count: Callable[[int, int], int], resized: Size, padded: Size, stride: int,
                 macs_padded: int | None = None) -> dict[str, Any]:
    """MACs a full-frame network spends on padding, measured.

    Definition. At sizes that are multiples of its stride, every layer of a fully convolutional network
    runs on a grid whose area is the input area over that layer's stride squared, so its MACs are
    exactly ``a + b * W * H``: ``b`` is the cost per input pixel, ``a`` the part that does not depend on
    the size (FC layers after global pooling). ``count(W, H)`` measures the MACs at two padded sizes,
    (W, H) and (W + stride, H + stride), which gives ``a`` and ``b``; a third size (W + stride, H)
    checks the linearity. The *raw-size equivalent* is ``a + b * w * h`` at the resized, unpadded frame
    (w, h): what the network would spend if it could run on exactly the pixels of the image. Padding
    MACs are ``macs(W, H) - (a + b * w * h) = b * (W * H - w * h)``.

    Returns {macs_padded, macs_raw_equivalent, macs_padding, padding_fraction, macs_per_pixel,
    macs_fixed, linear_check}.
    """
    (w, h), (pw, ph) = resized, padded
    m0 = int(macs_padded if macs_padded is not None else count(pw, ph))
    m1 = int(count(pw + stride, ph + stride))
    m2 = int(count(pw + stride, ph))
    a0, a1, a2 = pw * ph, (pw + stride) * (ph + stride), (pw + stride) * ph
    b = (m1 - m0) / (a1 - a0)
    a = m0 - b * a0
    predicted = a + b * a2
    check = abs(predicted - m2) / m2 if m2 else 0.0
    raw_equiv = a + b * (w * h)
    return {
        "macs_padded": m0,
        "macs_raw_equivalent": round(raw_equiv),
        "macs_padding": round(m0 - raw_equiv),
        "padding_fraction": (m0 - raw_equiv) / m0 if m0 else 0.0,
        "macs_per_pixel": b,
        "macs_fixed": round(a),
        "linear_check": {"size": [pw + stride, ph], "measured": m2, "predicted": round(predicted),
                         "rel_error": check},
    }


def frame_input(inputs: dict[str, torch.Tensor], preferred: str | None = None) -> str:
    """The name of the one image input of a full-frame model: ``preferred`` if given, else the only
    input with at least 3 dims (batch, ..., H, W)."""
    if preferred is not None:
        if preferred not in inputs:
            raise WorkbenchError(f"model has no input {preferred!r}; inputs: {list(inputs)}")
        return preferred
    images = [k for k, v in inputs.items() if v.dim() >= 4]
    if len(images) != 1:
        raise WorkbenchError(f"--image needs a model with exactly one image input, got {list(inputs)}")
    return images[0]


def with_size(inputs: dict[str, torch.Tensor], name: str, width: int, height: int) -> dict[str, torch.Tensor]:
    """``inputs`` with input ``name`` replaced by zeros of the same shape but spatial size (height, width)."""
    x = inputs[name]
    out = dict(inputs)
    out[name] = torch.zeros((*x.shape[:-2], height, width), dtype=x.dtype)
    return out
