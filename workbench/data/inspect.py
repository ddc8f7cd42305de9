"""Look at a data set before training: a summary of counts, subjects and label ranges, and a grid of
samples with the gaze drawn the way a person reads it (arrows from the eyes, PoG dots on the screen)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from workbench.data import geometry as G
from workbench.errors import DataError

# The image arrays of each view, in the order they are shown.
IMAGE_KEYS = {"face": ("image",), "mc4": ("face", "l_eye", "r_eye"), "itracker": ("eyes",), "frame": ("image",),
              "track": ("frames",)}


def guess_view(data: dict[str, np.ndarray]) -> str:
    """The SynthGaze view a data dict belongs to, from its keys."""
    for view, key in (("mc4", "l_eye"), ("itracker", "eyes"), ("track", "frames"), ("frame", "pog_px"), ("face", "image")):
        if key in data:
            return view
    raise DataError(f"cannot tell the view of a data set with keys {sorted(data)}")


def summarize(data: dict[str, np.ndarray], view: str | None = None) -> dict[str, Any]:
    """Counts, subjects, image sizes and per-label ranges (min, max, mean per column) as plain JSON data."""
    view = view or guess_view(data)
    images = {k: list(data[k].shape[1:]) for k in IMAGE_KEYS[view] if k in data}
    n = len(next(iter(data[k] for k in IMAGE_KEYS[view] if k in data)))
    subjects = np.asarray(data.get("subject", np.full(n, -1)))
    ids, counts = np.unique(subjects, return_counts=True)
    labels = {}
    for key, arr in data.items():
        if key in images or key in ("subject", "index") or not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
            continue
        a = arr.reshape(n, -1).astype(np.float64) if arr.ndim > 1 else arr.astype(np.float64)[:, None]
        finite = np.isfinite(a)
        cols = a.shape[1]
        labels[key] = {
            "shape": list(arr.shape[1:]),
            "min": [float(a[finite[:, c], c].min()) if finite[:, c].any() else None for c in range(min(cols, 8))],
            "max": [float(a[finite[:, c], c].max()) if finite[:, c].any() else None for c in range(min(cols, 8))],
            "mean": [float(a[finite[:, c], c].mean()) if finite[:, c].any() else None for c in range(min(cols, 8))],
            "missing": int((~finite).any(axis=1).sum()),
        }
    summary = {
        "view": view, "samples": int(n), "images": images,
        "subjects": {"count": int(len(ids)), "ids": [int(i) for i in ids[:50]],
                     "samples_per_subject": {"min": int(counts.min()), "max": int(counts.max())}},
        "labels": labels,
    }
    if isinstance(data.get("counts"), dict):  # what a reader read and skipped (GazeCapture: invalid frames)
        summary["counts"] = dict(data["counts"])
    return summary


def _to_pil(img: np.ndarray, size: int) -> Image.Image:
    """(C, H, W) uint8 -> RGB PIL image scaled so its longer side is ``size``."""
    arr = np.repeat(img, 3, 0) if img.shape[0] == 1 else img
    pil = Image.fromarray(np.ascontiguousarray(arr.transpose(1, 2, 0)))
    scale = size / max(pil.size)
    return pil.resize((max(1, round(pil.width * scale)), max(1, round(pil.height * scale))), Image.BILINEAR)


def _arrow(draw: ImageDraw.ImageDraw, start: np.ndarray, pitchyaw: np.ndarray, length: float, color: str, width: int = 2) -> None:
    """A gaze arrow: the image-plane projection of the gaze vector (x right, y down) from ``start``."""
    v = G.pitchyaw_to_vector(np.asarray(pitchyaw, dtype=np.float64))
    end = start + length * v[:2]
    draw.line([tuple(start), tuple(end)], fill=color, width=width)
    d = end - start
    n = np.linalg.norm(d)
    if n > 1e-6:
        d /= n
        side = np.array([-d[1], d[0]])
        head = 0.25 * length * 0.5
        draw.polygon([tuple(end), tuple(end - head * d + 0.6 * head * side), tuple(end - head * d - 0.6 * head * side)], fill=color)


def _eye_centres(data: dict[str, np.ndarray], i: int, frame: int | None = None) -> np.ndarray | None:
    boxes = data.get("eye_boxes")
    if boxes is None:
        return None
    b = boxes[i] if frame is None else boxes[i, frame]
    if b.shape != (2, 4) or not np.isfinite(b).all():
        return None
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], -1)


def _screen_inset(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], pog_px: np.ndarray, screen_px: np.ndarray,
                  color: str = "#ff3030") -> None:
    """A small screen with the PoG drawn as a dot (outside the screen: clamped, drawn hollow)."""
    x0, y0, x1, y1 = box
    draw.rectangle(box, outline="white", fill="#202020")
    u = np.clip(pog_px[0] / screen_px[0], 0, 1)
    v = np.clip(pog_px[1] / screen_px[1], 0, 1)
    cx, cy = x0 + u * (x1 - x0), y0 + v * (y1 - y0)
    r = max(2, (x1 - x0) // 18)
    inside = 0 <= pog_px[0] <= screen_px[0] and 0 <= pog_px[1] <= screen_px[1]
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color if inside else None, outline=color)


def _camera_inset(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], pog_cm: np.ndarray,
                  half_cm: float = 25.0, color: str = "#ff3030") -> None:
    """The PoG in cm from the camera (x right, y up; GazeCapture's XCam/YCam) as a dot in a square of
    +-``half_cm`` around the camera (the cross); beyond it: clamped, drawn hollow."""
    x0, y0, x1, y1 = box
    draw.rectangle(box, outline="white", fill="#202020")
    cx0, cy0 = (x0 + x1) / 2, (y0 + y1) / 2
    draw.line([(cx0 - 3, cy0), (cx0 + 3, cy0)], fill="white")
    draw.line([(cx0, cy0 - 3), (cx0, cy0 + 3)], fill="white")
    u, v = float(pog_cm[0]) / half_cm, -float(pog_cm[1]) / half_cm  # y up in cm, down in the image
    inside = abs(u) <= 1 and abs(v) <= 1
    cx = cx0 + np.clip(u, -1, 1) * (x1 - x0) / 2
    cy = cy0 + np.clip(v, -1, 1) * (y1 - y0) / 2
    r = max(2, (x1 - x0) // 18)
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color if inside else None, outline=color)


def _tile(data: dict[str, np.ndarray], view: str, i: int, size: int) -> Image.Image:
    """One annotated sample as a PIL image."""
    if view == "face":
        img = data["image"][i]
        tile = _to_pil(img, size)
        s = size / max(img.shape[1:])
        draw = ImageDraw.Draw(tile)
        eyes = _eye_centres(data, i)
        if eyes is None and "landmarks" in data and np.isfinite(data["landmarks"][i, :2]).all():
            eyes = data["landmarks"][i, :2]
        if eyes is not None:
            for e in eyes:
                _arrow(draw, e * s, data["gaze_pitchyaw"][i], 0.35 * size, "#ffe000")
        return tile
    if view == "mc4":
        img = data["face"][i]
        s = size / max(img.shape[1:])
        face = _to_pil(img, size)
        draw = ImageDraw.Draw(face)
        eyes = _eye_centres(data, i)
        centre = eyes.mean(0) * s if eyes is not None else np.array([size / 2, size * 0.4])
        for key, color in (("head_lola", "#40c0ff"), ("gaze_lola", "#ffe000")):
            if key in data:
                _arrow(draw, centre, G.lola_to_pitchyaw(data[key][i].astype(np.float64)), 0.35 * size, color)
        tile = Image.new("RGB", (size + size // 2, size))
        tile.paste(face, (0, 0))
        for k, key in enumerate(("r_eye", "l_eye")):
            if key in data:
                tile.paste(_to_pil(data[key][i], size // 2), (size, k * (size // 2)))
        return tile
    if view == "itracker":
        eyes = data["eyes"][i]
        half = size // 2
        tile = Image.new("RGB", (size + half, size))
        for k in range(min(4, len(eyes))):
            tile.paste(_to_pil(eyes[k], half), ((k % 2) * half, (k // 2) * half))
        draw = ImageDraw.Draw(tile)
        if "pog_cm" in data:
            _camera_inset(draw, (size + 4, size // 4, size + half - 4, size // 4 + half - 8), data["pog_cm"][i])
            return tile
        _screen_inset(draw, (size + 4, size // 3, size + half - 4, size // 3 + (half - 8) * 9 // 16), data["pog_px"][i],
                      np.array([1920.0, 1080.0]) if "screen_px" not in data else data["screen_px"][i])
        return tile
    if view == "frame":
        img = data["image"][i]
        tile = _to_pil(img, size)
        s = size / max(img.shape[1:])
        draw = ImageDraw.Draw(tile)
        if "face_box" in data and np.isfinite(data["face_box"][i]).all():
            draw.rectangle(list(data["face_box"][i] * s), outline="#40ff40")
        eyes = _eye_centres(data, i)
        if eyes is not None and "gaze" in data:
            for e in eyes:
                _arrow(draw, e * s, G.vector_to_pitchyaw(data["gaze"][i].astype(np.float64)), 0.12 * size, "#ffe000")
        w = size // 4
        _screen_inset(draw, (tile.width - w - 4, 4, tile.width - 4, 4 + w * 9 // 16), data["pog_px"][i], data["screen_px"][i])
        return tile
    if view == "track":
        frames = data["frames"][i]
        small = size // 2
        tile = Image.new("RGB", (small * len(frames), small + 14))
        draw = ImageDraw.Draw(tile)
        for k, fr in enumerate(frames):
            tile.paste(_to_pil(fr, small), (k * small, 14))
            if "frame_labels" in data:
                look = int(data["frame_labels"][i, k])
                draw.rectangle([k * small, 14, (k + 1) * small - 1, 13 + small], outline="#40ff40" if look else "#ff4040",
                               width=2 if k == len(frames) // 2 else 1)
        draw.text((2, 1), f"looking: {int(data['label'][i])}", fill="white")
        return tile
    raise DataError(f"cannot draw view {view!r}")


def draw_grid(data: dict[str, np.ndarray], path: str | Path, *, view: str | None = None, n: int = 16,
              tile: int = 160, cols: int | None = None) -> Path:
    """Save a grid of the first ``n`` samples with the gaze drawn; returns the path (PNG)."""
    view = view or guess_view(data)
    if view == "frame":
        tile *= 2  # a full frame needs room for the face, its arrows and the screen inset
    count = len(data[IMAGE_KEYS[view][0]])
    idx = np.arange(min(n, count))
    tiles = [_tile(data, view, int(i), tile) for i in idx]
    cols = cols or (2 if view == "track" else min(len(tiles), 8 if view != "frame" else 4))
    w = max(t.width for t in tiles)
    h = max(t.height for t in tiles)
    rows = (len(tiles) + cols - 1) // cols
    grid = Image.new("RGB", (cols * w, rows * h), "black")
    for k, t in enumerate(tiles):
        grid.paste(t, ((k % cols) * w, (k // cols) * h))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    grid.save(tmp, format="PNG")
    tmp.replace(path)
    return path
