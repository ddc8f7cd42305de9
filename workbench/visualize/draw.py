"""Drawing primitives shared by the visualizations: colours, arrows, markers, text, panels.

Every mark is drawn without anti-aliasing in one of a few exact colours, so a test (or a script) can
find the ground truth and the prediction by their pixel values: ``GT`` green, ``PRED`` red.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

GT = (40, 220, 40)  # ground truth
PRED = (255, 40, 40)  # prediction
REF = (255, 220, 0)  # live mode's reference point
TEXT = (235, 235, 235)
DIM = (150, 150, 150)
BG = (24, 24, 28)
PANEL = (48, 48, 54)

Point = tuple[float, float]
Colour = tuple[int, int, int]
Line = str | tuple[str, Colour] | list[tuple[str, Colour]]


@dataclass
class Panel:
    """An image plus named anchors (points (x, y) or boxes (x0, y0, x1, y1) in its pixels), so callers and
    tests know where each mark was drawn after panels are stacked."""

    image: Image.Image
    anchors: dict[str, tuple[float, ...]] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


@lru_cache(maxsize=8)
def font(size: int = 13) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def to_pil(img: np.ndarray | torch.Tensor) -> Image.Image:
    """(C, H, W) or (H, W) uint8 -> an RGB PIL image (grey is repeated over three channels)."""
    arr = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
    if arr.ndim == 3:
        arr = arr.transpose(1, 2, 0)
        if arr.shape[2] == 1:
            arr = arr[:, :, 0]
    arr = np.ascontiguousarray(arr.astype(np.uint8))
    return Image.fromarray(arr).convert("RGB")


def resized(img: Image.Image, width: int, height: int | None = None) -> Image.Image:
    """Scale to ``width`` (keeping the aspect ratio unless ``height`` is given)."""
    height = height or max(1, round(img.height * width / img.width))
    return img.resize((width, height), Image.BILINEAR)


def arrow(draw: ImageDraw.ImageDraw, start: Sequence[float], end: Sequence[float], colour, width: int = 3,
          head: float = 9.0, dashed: bool = False) -> None:
    """A straight arrow from ``start`` to ``end`` with a filled head (dashed shaft when ``dashed``)."""
    s, e = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    d = e - s
    n = float(np.linalg.norm(d))
    if n < 1e-6:
        r = width
        draw.ellipse([s[0] - r, s[1] - r, s[0] + r, s[1] + r], fill=colour)
        return
    u = d / n
    head = min(head, 0.6 * n)
    shaft_end = e - u * head * 0.8
    if dashed:
        dash = 7.0
        t = 0.0
        while t < n - head:
            a, b = s + u * t, s + u * min(t + dash, n - head)
            draw.line([tuple(a), tuple(b)], fill=colour, width=width)
            t += 2 * dash
    else:
        draw.line([tuple(s), tuple(shaft_end)], fill=colour, width=width)
    side = np.array([-u[1], u[0]])
    back = e - u * head
    draw.polygon([tuple(e), tuple(back + side * head * 0.55), tuple(back - side * head * 0.55)], fill=colour)


def dot(draw: ImageDraw.ImageDraw, xy: Sequence[float], colour, r: float = 5.0, outline=None) -> None:
    x, y = float(xy[0]), float(xy[1])
    draw.ellipse([x - r, y - r, x + r, y + r], fill=colour, outline=outline)


def cross(draw: ImageDraw.ImageDraw, xy: Sequence[float], colour, r: float = 7.0, width: int = 3) -> None:
    """An x-shaped marker (the prediction), so it stays readable on top of a dot."""
    x, y = float(xy[0]), float(xy[1])
    draw.line([(x - r, y - r), (x + r, y + r)], fill=colour, width=width)
    draw.line([(x - r, y + r), (x + r, y - r)], fill=colour, width=width)


def ring(draw: ImageDraw.ImageDraw, xy: Sequence[float], colour, r: float = 9.0, width: int = 2) -> None:
    x, y = float(xy[0]), float(xy[1])
    draw.ellipse([x - r, y - r, x + r, y + r], outline=colour, width=width)


def segments(line: Line) -> list[tuple[str, Colour]]:
    """A line as (text, colour) segments: plain text, one (text, colour) pair, or a list of pairs."""
    if isinstance(line, str):
        return [(line, TEXT)]
    if isinstance(line, tuple):
        return [line]
    return list(line)


def text_lines(draw: ImageDraw.ImageDraw, xy: Point, lines: Iterable[Line], size: int = 13, spacing: int = 3) -> float:
    """Write lines from ``xy`` downwards (each in one colour or in coloured segments); returns the y below."""
    x0, y = xy
    f = font(size)
    for line in lines:
        x = x0
        for txt, colour in segments(line):
            draw.text((x, y), txt, fill=colour, font=f)
            x += f.getlength(txt)
        y += size + spacing
    return y


def text_width(txt: str, size: int = 13) -> float:
    return font(size).getlength(txt)


def wrap(txt: str, width: float, size: int = 13) -> list[str]:
    """Greedy word wrap of ``txt`` to ``width`` pixels."""
    out: list[str] = []
    line = ""
    for word in txt.split():
        cand = f"{line} {word}".strip()
        if line and text_width(cand, size) > width:
            out.append(line)
            line = word
        else:
            line = cand
    if line:
        out.append(line)
    return out


def caption(width: int, lines: Sequence[Line], *, size: int = 13,
            rows: int | None = None, pad: int = 6) -> Image.Image:
    """A fixed-width text block (``rows`` fixes its height, so every frame of a video has the same size)."""
    rows = max(rows or len(lines), 1)
    img = Image.new("RGB", (width, pad * 2 + rows * (size + 3)), BG)
    text_lines(ImageDraw.Draw(img), (pad, pad), list(lines)[:rows], size=size)
    return img


def stack(panels: Sequence[Panel], *, horizontal: bool, gap: int = 8, bg=BG, align: str = "start") -> Panel:
    """Place panels side by side (or top to bottom); anchors are offset into the new image."""
    if horizontal:
        w = sum(p.size[0] for p in panels) + gap * (len(panels) - 1)
        h = max(p.size[1] for p in panels)
    else:
        w = max(p.size[0] for p in panels)
        h = sum(p.size[1] for p in panels) + gap * (len(panels) - 1)
    out = Image.new("RGB", (w, h), bg)
    anchors: dict[str, tuple[float, ...]] = {}
    pos = 0
    for p in panels:
        if horizontal:
            off = (pos, (h - p.size[1]) // 2 if align == "center" else 0)
            pos += p.size[0] + gap
        else:
            off = ((w - p.size[0]) // 2 if align == "center" else 0, pos)
            pos += p.size[1] + gap
        out.paste(p.image, off)
        for k, v in p.anchors.items():
            anchors[k] = shift(v, off)
    return Panel(out, anchors)


def shift(v: tuple[float, ...], off: tuple[float, float]) -> tuple[float, ...]:
    """A point or box moved by ``off``."""
    return tuple(float(c) + off[i % 2] for i, c in enumerate(v))


def prefixed(panel: Panel, prefix: str) -> Panel:
    return Panel(panel.image, {f"{prefix}{k}": v for k, v in panel.anchors.items()})


def text_panel(lines: Sequence[str | tuple[str, Colour]], width: int, *, size: int = 13, rows: int | None = None) -> Panel:
    """Single-colour text lines, word-wrapped to ``width``, as a panel (``rows`` fixes the height)."""
    wrapped: list[Line] = []
    for line in lines:
        txt, colour = (line, TEXT) if isinstance(line, str) else line
        wrapped += [(w, colour) for w in wrap(txt, width - 12, size)] or [("", colour)]
    return Panel(caption(width, wrapped, size=size, rows=rows))


def even(img: Image.Image, bg=BG) -> Image.Image:
    """Pad to even width and height (video encoders with 4:2:0 chroma need them)."""
    w, h = img.size
    if w % 2 == 0 and h % 2 == 0:
        return img
    out = Image.new("RGB", (w + w % 2, h + h % 2), bg)
    out.paste(img, (0, 0))
    return out
