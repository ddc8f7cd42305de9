"""PNG/JPEG files <-> channel-first uint8 arrays, with one-line errors that name the file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from workbench.errors import DataError

_MODES = {1: "L", 3: "RGB"}


def _to_pil(arr: np.ndarray, path: Path) -> Image.Image:
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[0] not in _MODES:
        raise DataError(f"{path}: cannot write image of shape {tuple(arr.shape)} {arr.dtype}: expected (1|3,H,W) uint8")
    hwc = np.ascontiguousarray(arr.transpose(1, 2, 0))
    return Image.fromarray(hwc[..., 0] if arr.shape[0] == 1 else hwc, _MODES[arr.shape[0]])


def write_png(path: str | os.PathLike, arr: np.ndarray) -> None:
    """Write a (1,H,W) grey or (3,H,W) RGB uint8 array as a lossless PNG."""
    path = Path(path)
    _to_pil(arr, path).save(path, format="PNG")


def write_jpeg(path: str | os.PathLike, arr: np.ndarray, quality: int = 95) -> None:
    """Write a (1,H,W) or (3,H,W) uint8 array as JPEG (no chroma subsampling, so colours stay close)."""
    path = Path(path)
    _to_pil(arr, path).save(path, format="JPEG", quality=quality, subsampling=0)


def read_image(path: str | os.PathLike, channels: int = 3) -> np.ndarray:
    """Read a PNG/JPEG file as a (channels,H,W) uint8 array (grey <-> RGB converted when needed).

    A missing, corrupt or truncated file raises :class:`DataError` naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image file is missing")
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode != _MODES[channels]:
                img = img.convert(_MODES[channels])
            arr = np.asarray(img, dtype=np.uint8)
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError, ... on bad files
        msg = " ".join(str(e).split()) or type(e).__name__
        raise DataError(f"{path}: cannot read image ({msg})") from None
    return arr[None] if arr.ndim == 2 else np.ascontiguousarray(arr.transpose(2, 0, 1))


def _peek_hw(path: str | os.PathLike) -> tuple[int, int] | None:
    """(H, W) from an image header without decoding it; None if unreadable."""
    try:
        with Image.open(path) as img:
            return img.size[1], img.size[0]
    except Exception:  # noqa: BLE001
        return None


def read_images(
    paths: Sequence[str | os.PathLike], channels: int = 3, size: tuple[int, int] | None = None
) -> np.ndarray:
    """Read files of one size into (N,channels,H,W) uint8; ``size`` (H, W) is checked when given.

    The first image of another size than the rest raises :class:`DataError` naming it.
    """
    out: np.ndarray | None = None
    first = ""
    for i, p in enumerate(paths):
        img = read_image(p, channels)
        if out is None:
            if size is not None and img.shape[1:] != tuple(size):
                raise DataError(
                    f"{p}: image is {img.shape[2]}x{img.shape[1]} but the data set's images are {size[1]}x{size[0]}"
                )
            out = np.empty((len(paths), *img.shape), dtype=np.uint8)
            first = str(p)
        elif img.shape != out.shape[1:]:
            odd, ref, odd_hw, ref_hw = str(p), first, img.shape[1:], out.shape[2:]
            if i == 1 and size is None and len(paths) > 2 and _peek_hw(paths[2]) == img.shape[1:]:
                odd, ref, odd_hw, ref_hw = first, str(p), out.shape[2:], img.shape[1:]  # the first one is odd
            raise DataError(
                f"{odd}: image is {odd_hw[1]}x{odd_hw[0]} but {ref} is {ref_hw[1]}x{ref_hw[0]}"
                " (all images of a data set must have one size)"
            )
        out[i] = img
    if out is None:
        h, w = size if size is not None else (0, 0)
        return np.zeros((0, channels, h, w), dtype=np.uint8)
    return out
