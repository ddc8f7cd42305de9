"""One painter per task: ground truth and prediction of one sample, drawn the way a person reads them.

- ``face_angles``: the face with gaze arrows from both eye centres (ground truth green, prediction red).
- ``face_eye_lola``: the face with head arrows (dashed, from the face centre) and gaze arrows (from the
  eyes), and the eye crop the model saw with the eye-in-head arrows.
- ``eyes_pog``: the four eye images and the screen with the true and predicted point of gaze.
- ``plane_pog``: the padded frame the model saw (gaze rays from the eyes when the scene is known) and the
  virtual plane with the predicted heatmap, the screen, the camera and both points of gaze.
- ``look_at_me``: the 7-frame track with a looking-at-me score per frame.

A painter returns a :class:`~workbench.visualize.draw.Panel` of a fixed size, with anchors naming where
each mark went (``gt``, ``pred``, ``gt_tip_0``, ``screen``...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from workbench.data import geometry as G
from workbench.tasks import Task, TaskData
from workbench.visualize import draw as D

FACE = 256  # display size of face crops
EYE = 128  # display size of mc4's eye crop
ITR_EYE = 96  # display size of each of itracker's four eye images
SCREEN_W = 384  # display width of a screen
FRAME_W = 512  # display width of a full (padded) frame
PLANE_W = 400  # display width of the virtual plane
TRACK = 96  # display size of each frame of a track
CAPTION_ROWS = 4


@dataclass
class Context:
    """What every painter reads: the task, the data, the model's outputs on it (plus painter extras) and
    whether the data is SynthGaze (whose camera and screen are known exactly)."""

    task: Task
    data: TaskData
    outputs: dict[str, torch.Tensor]
    synthetic: bool = False


# ---- shared geometry --------------------------------------------------------------------------------


def gaze_dir(pitchyaw: Any) -> np.ndarray:
    """(pitch, yaw) radians -> the image-plane direction (x right, y down) of the gaze vector (length <= 1)."""
    return np.asarray(G.pitchyaw_to_vector(np.asarray(pitchyaw, dtype=np.float64))[:2])


def lola_dir(lola_deg: Any) -> np.ndarray:
    """MC4 lo/la (degrees) -> the image-plane direction of the same vector."""
    return gaze_dir(G.lola_to_pitchyaw(np.asarray(lola_deg, dtype=np.float64)))


def eye_centres(meta: dict[str, Any], i: int, t: int | None = None) -> np.ndarray | None:
    """(2, 2) centres of sample ``i``'s eye boxes (frame ``t`` of a track), or None when unknown."""
    boxes = meta.get("eye_boxes")
    if boxes is None:
        return None
    b = np.asarray(boxes[i] if t is None else boxes[i][t], dtype=np.float64)
    if b.shape != (2, 4) or not np.isfinite(b).all():
        return None
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], -1)


Panel = D.Panel


def _with_caption(body: Panel, lines: list, rows: int = CAPTION_ROWS) -> Panel:
    return D.stack([body, Panel(D.caption(body.size[0], lines, rows=rows))], horizontal=False, gap=2)


def _deg(x: float) -> str:
    return f"{x:+.1f}\u00b0"


# ---- face_angles ------------------------------------------------------------------------------------


def paint_face_angles(ctx: Context, i: int) -> Panel:
    face = ctx.data.tensors["face"][i]
    k = FACE / face.shape[-1]
    img = D.resized(D.to_pil(face), FACE, FACE)
    gt = ctx.data.tensors["gaze"][i].double().numpy()
    pred = ctx.outputs["gaze"][i].double().numpy()
    eyes = eye_centres(ctx.data.meta, i)
    origins = eyes * k if eyes is not None else np.array([[FACE / 2, FACE * 0.42]])
    length = 0.6 * FACE  # long enough that small angles stay readable, short enough to stay on the face
    d = ImageDraw.Draw(img)
    anchors: dict[str, tuple[float, ...]] = {"image": (0, 0, FACE, FACE)}
    for name, value, colour in (("gt", gt, D.GT), ("pred", pred, D.PRED)):
        for j, o in enumerate(origins):
            tip = o + length * gaze_dir(value)
            D.arrow(d, o, tip, colour, width=3)
            anchors[f"{name}_tip_{j}"] = tuple(tip)
    for j, o in enumerate(origins):
        anchors[f"origin_{j}"] = tuple(o)
    err = float(G.angular_error(torch.tensor(pred), torch.tensor(gt)))
    p, y = np.rad2deg(gt)
    pp, py = np.rad2deg(pred)
    lines = [(f"truth       pitch {_deg(p)}  yaw {_deg(y)}", D.GT),
             (f"prediction  pitch {_deg(pp)}  yaw {_deg(py)}", D.PRED),
             f"angular error {err:.1f}\u00b0"]
    return _with_caption(Panel(img, anchors), lines)


# ---- face_eye_lola ----------------------------------------------------------------------------------


def paint_face_eye_lola(ctx: Context, i: int) -> Panel:
    t, o = ctx.data.tensors, ctx.outputs
    face = t["face"][i]
    k = FACE / face.shape[-1]
    lola = {name: (G.denormalize_angle01(t[name][i].double()).numpy(), G.denormalize_angle01(o[name][i].double()).numpy())
            for name in ("head", "eye", "gaze")}
    img = Image.new("RGB", (FACE + 8 + EYE, FACE), D.BG)
    img.paste(D.resized(D.to_pil(face), FACE, FACE), (0, 0))
    # The eye the model sees at evaluation: the subject's left eye (the image-right one).
    img.paste(D.resized(D.to_pil(t["l_eye"][i]), EYE, EYE), (FACE + 8, 0))
    d = ImageDraw.Draw(img)
    D.text_lines(d, (FACE + 12, EYE + 4), [("eye input", D.DIM), ("(eye-in-head", D.DIM), (" arrows)", D.DIM)], size=12)
    anchors: dict[str, tuple[float, ...]] = {"face": (0, 0, FACE, FACE), "eye": (FACE + 8, 0, FACE + 8 + EYE, EYE)}
    centre = np.array([FACE / 2, FACE / 2])  # normalized crops are centred on the face
    eyes = eye_centres(ctx.data.meta, i)
    origins = eyes * k if eyes is not None else np.array([[FACE * 0.33, FACE * 0.4], [FACE * 0.67, FACE * 0.4]])
    eye_centre = np.array([FACE + 8 + EYE / 2, EYE / 2])
    for which, colour in ((0, D.GT), (1, D.PRED)):
        name = "gt" if which == 0 else "pred"
        tip = centre + 0.6 * FACE * lola_dir(lola["head"][which])
        D.arrow(d, centre, tip, colour, width=4, head=12, dashed=True)
        anchors[f"{name}_head_tip"] = tuple(tip)
        for j, e in enumerate(origins):
            tip = e + 0.6 * FACE * lola_dir(lola["gaze"][which])
            D.arrow(d, e, tip, colour, width=2)
            anchors[f"{name}_gaze_tip_{j}"] = tuple(tip)
        tip = eye_centre + 1.2 * EYE * lola_dir(lola["eye"][which])  # eye-in-head angles are small
        D.arrow(d, eye_centre, tip, colour, width=3)
        anchors[f"{name}_eye_tip"] = tuple(tip)
    anchors["head_origin"], anchors["eye_origin"] = tuple(centre), tuple(eye_centre)
    for j, e in enumerate(origins):
        anchors[f"gaze_origin_{j}"] = tuple(e)
    lines = []
    for name in ("gaze", "head", "eye"):
        g, p = lola[name]
        err = float(G.angular_error(G.lola_to_vector(torch.tensor(p)), G.lola_to_vector(torch.tensor(g))))
        lines.append([(f"{name:<5}", D.TEXT), (f"truth ({g[0]:+.1f}, {g[1]:+.1f})  ", D.GT),
                      (f"pred ({p[0]:+.1f}, {p[1]:+.1f})  ", D.PRED), (f"error {err:.1f}\u00b0", D.TEXT)])
    lines.append(("longitude/latitude in degrees", D.DIM))
    return _with_caption(Panel(img, anchors), lines)


# ---- eyes_pog ---------------------------------------------------------------------------------------


def _screen_box(draw: ImageDraw.ImageDraw, x0: float, y0: float, w: float, h: float) -> None:
    draw.rectangle([x0, y0, x0 + w, y0 + h], fill=D.PANEL, outline=D.TEXT)
    for fx in (1 / 6, 3 / 6, 5 / 6):  # the 3x3 reference grid, faint, to help read positions
        for fy in (1 / 6, 3 / 6, 5 / 6):
            D.dot(draw, (x0 + fx * w, y0 + fy * h), D.DIM, r=1.5)


def _clip_to(xy: np.ndarray, box: tuple[float, float, float, float], margin: float = 8.0) -> np.ndarray:
    return np.array([np.clip(xy[0], box[0] - margin, box[2] + margin), np.clip(xy[1], box[1] - margin, box[3] + margin)])


def _paint_camera_cm(grid: Image.Image, gt: np.ndarray, pred: np.ndarray, half_cm: float = 25.0) -> Panel:
    """The PoG in cm from the camera (x right, y up) in a square of +-``half_cm`` around the camera."""
    side = float(SCREEN_W)
    scr = Image.new("RGB", (SCREEN_W + 24, SCREEN_W + 40), D.BG)
    d = ImageDraw.Draw(scr)
    x0, y0 = 12.0, 24.0
    _screen_box(d, x0, y0, side, side)
    box = (x0, y0, x0 + side, y0 + side)
    centre = np.array([x0 + side / 2, y0 + side / 2])
    d.rectangle([centre[0] - 5, centre[1] - 4, centre[0] + 5, centre[1] + 4], fill=D.DIM)
    d.text((centre[0] + 8, centre[1] - 9), "camera", fill=D.DIM, font=D.font(11))
    to_xy = lambda cm: _clip_to(centre + np.array([cm[0], -cm[1]]) / half_cm * side / 2, box)  # noqa: E731
    gt_xy, pred_xy = to_xy(gt), to_xy(pred)
    d.line([tuple(gt_xy), tuple(pred_xy)], fill=D.TEXT, width=1)
    D.dot(d, gt_xy, D.GT, r=6)
    D.cross(d, pred_xy, D.PRED)
    body = D.stack([Panel(grid), Panel(scr, {"screen": box, "gt": tuple(gt_xy), "pred": tuple(pred_xy)})],
                   horizontal=True, gap=8)
    lines = [[("truth ", D.GT), (f"({gt[0]:+.1f}, {gt[1]:+.1f}) cm", D.GT)],
             [("prediction ", D.PRED), (f"({pred[0]:+.1f}, {pred[1]:+.1f}) cm", D.PRED)],
             (f"error {np.linalg.norm(pred - gt):.1f} cm; cm from the camera, x right, y up (+-{half_cm:.0f} cm shown)")]
    return _with_caption(body, lines)


def paint_eyes_pog(ctx: Context, i: int) -> Panel:
    task, t = ctx.task, ctx.data.tensors
    s = task.screen
    names = task.input_names
    grid = Image.new("RGB", (2 * ITR_EYE + 4, 2 * ITR_EYE + 4 + 28), D.BG)
    gd = ImageDraw.Draw(grid)
    for j, name in enumerate(names):
        x, y = (j % 2) * (ITR_EYE + 4), (j // 2) * (ITR_EYE + 4 + 14) + 14
        grid.paste(D.resized(D.to_pil(t[name][i]), ITR_EYE, ITR_EYE), (x, y))
        if j % 2 == 0:
            gd.text((x + 2, y - 14), f"camera {j // 2}: both eyes", fill=D.DIM, font=D.font(12))
    if getattr(task, "unit", None) == "cm":  # GazeCapture: cm from the camera, each device's screen unknown
        return _paint_camera_cm(grid, t["pog"][i].double().numpy(), ctx.outputs["pog"][i].double().numpy())
    sh = SCREEN_W * s.height_px / s.width_px
    scr = Image.new("RGB", (SCREEN_W + 24, int(sh) + 40), D.BG)
    d = ImageDraw.Draw(scr)
    x0, y0 = 12.0, 24.0
    _screen_box(d, x0, y0, SCREEN_W, sh)
    box = (x0, y0, x0 + SCREEN_W, y0 + sh)
    # The camera sits at the origin of the camera plane: -offset in screen millimetres.
    cam = np.array([x0 + -s.offset_mm[0] / s.width_mm * SCREEN_W, y0 + -s.offset_mm[1] / s.height_mm * sh])
    d.rectangle([cam[0] - 5, cam[1] - 4, cam[0] + 5, cam[1] + 4], fill=D.DIM)
    d.text((cam[0] + 8, cam[1] - 9), "camera", fill=D.DIM, font=D.font(11))
    size = np.array([s.width_px, s.height_px], dtype=np.float64)
    gt_px = t["pog"][i].double().numpy() * size
    pred_px = ctx.outputs["pog"][i].double().numpy() * size
    gt_xy = _clip_to(np.array([x0, y0]) + gt_px / size * [SCREEN_W, sh], box)
    pred_xy = _clip_to(np.array([x0, y0]) + pred_px / size * [SCREEN_W, sh], box)
    d.line([tuple(gt_xy), tuple(pred_xy)], fill=D.TEXT, width=1)
    D.dot(d, gt_xy, D.GT, r=6)
    D.cross(d, pred_xy, D.PRED)
    diff = pred_px - gt_px
    mm = diff * [s.width_mm / s.width_px, s.height_mm / s.height_px]
    body = D.stack([Panel(grid), Panel(scr, {"screen": box, "gt": tuple(gt_xy), "pred": tuple(pred_xy)})],
                   horizontal=True, gap=8)
    lines = [[("truth ", D.GT), (f"({gt_px[0]:.0f}, {gt_px[1]:.0f}) px", D.GT)],
             [("prediction ", D.PRED), (f"({pred_px[0]:.0f}, {pred_px[1]:.0f}) px", D.PRED)],
             (f"error {np.linalg.norm(mm):.0f} mm ({np.linalg.norm(diff):.0f} px) on a {s.width_px}x{s.height_px} "
             f"screen of {s.width_mm:.0f}x{s.height_mm:.0f} mm")]
    return _with_caption(body, lines)


# ---- plane_pog --------------------------------------------------------------------------------------


def padded_frame(task: Task, frame: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """The uint8 frame (3, H, W) padded with black exactly as the task pads it; and the (left, top) offset."""
    h, w = frame.shape[-2:]
    pw, ph = task.padded(w, h)
    left, top = (pw - w) // 2, (ph - h) // 2
    return F.pad(frame, (left, pw - w - left, top, ph - h - top), value=0), (left, top)


def _screen_of(ctx: Context, i: int) -> G.Screen | None:
    """The screen of sample ``i`` in camera-plane terms, when the data says (or it is SynthGaze's)."""
    m = ctx.data.meta
    if "screen_mm" in m and "offset_mm" in m:
        w, h = (float(v) for v in np.asarray(m["screen_mm"])[i])
        ox, oy = (float(v) for v in np.asarray(m["offset_mm"])[i])
        return G.Screen(width_mm=w, height_mm=h, offset_mm=(ox, oy))
    if ctx.synthetic:
        from workbench.data.synth import SynthConfig

        return SynthConfig().screen
    return None


def project_synth(xyz: np.ndarray, width: int, height: int) -> np.ndarray:
    """SynthGaze's frame camera: (..., 3) camera points (mm) -> (..., 2) raw frame pixels."""
    from workbench.data.synth import SynthConfig

    f = SynthConfig().focal_ratio * width
    return np.stack([f * xyz[..., 0] / xyz[..., 2] + width / 2, f * xyz[..., 1] / xyz[..., 2] + height / 2], -1)


def heat_colours(p: np.ndarray) -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 3) uint8: the panel colour fading to orange (not GT, not PRED)."""
    lo, hi = np.array(D.PANEL, dtype=np.float64), np.array([255.0, 170.0, 40.0])
    return (lo + p[..., None] * (hi - lo)).round().astype(np.uint8)


def paint_plane_pog(ctx: Context, i: int) -> Panel:
    task, t = ctx.task, ctx.data.tensors
    frame = t["frame"][i]
    h, w = frame.shape[-2:]
    padded, (left, top) = padded_frame(task, frame)
    ph, pw = padded.shape[-2:]
    k = FRAME_W / pw
    img = D.resized(D.to_pil(padded), FRAME_W, round(ph * k))
    d = ImageDraw.Draw(img)
    d.rectangle([left * k, top * k, (left + w) * k - 1, (top + h) * k - 1], outline=D.DIM)  # the raw frame
    gt = t["pog_cam"][i].double()
    hm = ctx.outputs["hm"][i:i + 1].float()
    out_i = {"hm": hm, "offset": ctx.outputs["offset"][i:i + 1].float()}
    pred = task.decode(out_i)[0].double()
    eye = t["eye_center"][i].double().numpy()
    anchors: dict[str, tuple[float, ...]] = {"frame": (0, 0, img.width, img.height)}
    if ctx.synthetic and np.isfinite(eye).all():
        # The gaze rays from the eyes towards the true and predicted points of gaze, halfway to the camera plane.
        o = (project_synth(eye, w, h) + [left, top]) * k
        for name, target, colour in (("gt", gt, D.GT), ("pred", pred, D.PRED)):
            p3 = np.array([float(target[0]), float(target[1]), 0.0])
            tip = (project_synth(eye + 0.5 * (p3 - eye), w, h) + [left, top]) * k
            D.arrow(d, o, tip, colour, width=3)
            anchors[f"{name}_ray_tip"] = tuple(tip)
        anchors["eye"] = tuple(o)
    # The virtual plane: camera-plane millimetres -> panel pixels.
    plane = task.plane
    s = PLANE_W / plane.width_mm
    x0, y0 = 10.0, 10.0
    pw_, ph_ = PLANE_W, plane.height_mm * s
    panel = Image.new("RGB", (PLANE_W + 20, int(ph_) + 20), D.BG)
    pd = ImageDraw.Draw(panel)
    box = (x0, y0, x0 + pw_, y0 + ph_)

    def to_panel(xy) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float64)
        return np.array([x0 + (xy[0] - plane.origin_mm[0]) * s, y0 + (xy[1] - plane.origin_mm[1]) * s])

    pd.rectangle(box, fill=D.PANEL)
    gh, gw = hm.shape[-2:]
    prob = torch.sigmoid(hm[0, 0]).numpy()
    peak = float(prob.max())
    heat = Image.fromarray(heat_colours(np.sqrt(prob)))  # square root: a weak, flat map stays visible
    # Heatmap cell (cx, cy) covers grid coordinates [cx, cx+1) x [cy, cy+1).
    c0 = to_panel(task.grid_to_camera(torch.tensor([[0.0, 0.0]]), (gw, gh))[0].numpy())
    c1 = to_panel(task.grid_to_camera(torch.tensor([[float(gw), float(gh)]]), (gw, gh))[0].numpy())
    heat = heat.resize((max(1, round(c1[0] - c0[0])), max(1, round(c1[1] - c0[1]))), Image.NEAREST)
    clip = Image.new("RGB", panel.size, D.PANEL)
    clip.paste(heat, (round(c0[0]), round(c0[1])))
    region = tuple(round(v) for v in box)
    panel.paste(clip.crop(region), region[:2])
    pd.rectangle(box, outline=D.DIM)
    screen = _screen_of(ctx, i)
    if screen is not None:
        a = to_panel(screen.offset_mm)
        b = to_panel((screen.offset_mm[0] + screen.width_mm, screen.offset_mm[1] + screen.height_mm))
        pd.rectangle([a[0], a[1], b[0], b[1]], outline=D.TEXT)
        pd.text((a[0] + 3, b[1] - 15), "screen", fill=D.TEXT, font=D.font(11))
        anchors["screen"] = (a[0], a[1], b[0], b[1])
    cam = to_panel((0.0, 0.0))
    pd.rectangle([cam[0] - 5, cam[1] - 4, cam[0] + 5, cam[1] + 4], fill=D.TEXT)
    pd.text((cam[0] + 8, cam[1] - 8), "camera", fill=D.TEXT, font=D.font(11))
    gt_xy, pred_xy = _clip_to(to_panel(gt.numpy()), box), _clip_to(to_panel(pred.numpy()), box)
    pd.line([tuple(gt_xy), tuple(pred_xy)], fill=D.TEXT, width=1)
    D.dot(pd, gt_xy, D.GT, r=6)
    D.cross(pd, pred_xy, D.PRED)
    pan = D.Panel(panel, {"plane": box, "gt": tuple(gt_xy), "pred": tuple(pred_xy), "camera": tuple(cam),
                          **({"screen": anchors.pop("screen")} if "screen" in anchors else {})})
    err_mm = float((pred - gt).norm())
    err_px = float(((pred - gt) / t["mm_per_px"][i].double()).norm())
    lines = [[("truth ", D.GT), (f"({gt[0]:+.0f}, {gt[1]:+.0f}) mm", D.GT), ("   prediction ", D.PRED),
              (f"({pred[0]:+.0f}, {pred[1]:+.0f}) mm", D.PRED)],
             f"PoG error {err_mm:.0f} mm ({err_px:.0f} screen px); heatmap peak {peak:.2f} (orange, sqrt scale)",
             ((f"frame {w}x{h} padded to {pw}x{ph} (grey box: the camera frame); plane {plane.width_mm:.0f}x"
              f"{plane.height_mm:.0f} mm, camera at (0, 0)"), D.DIM)]
    body = D.stack([Panel(img, anchors), pan], horizontal=True, gap=8)
    return _with_caption(body, lines)


# ---- look_at_me -------------------------------------------------------------------------------------

BAR_H = 40


def frame_scores(model: torch.nn.Module, task: Task, data: TaskData, batch_size: int = 64) -> torch.Tensor:
    """(N, T) P(looking) per frame: the model on the T-frame window centred on each frame (ends repeated,
    as sliding-window inference over a video does at its edges). Column T // 2 is the track's own score."""
    n, t = data.tensors["frames"].shape[:2]
    c = t // 2
    idx = (torch.arange(t).view(t, 1) + torch.arange(t).view(1, t) - c).clamp(0, t - 1)  # (window, time)
    out = torch.empty(n, t)
    with torch.no_grad():
        for start in range(0, n, max(1, batch_size // t)):
            rows = torch.arange(start, min(n, start + max(1, batch_size // t)))
            batch = {}
            for key in ("frames", "head_pose", "landmarks"):
                v = data.tensors[key][rows]  # (b, T, ...)
                batch[key] = v[:, idx].reshape(len(rows) * t, t, *v.shape[2:])
            logit = model(*task.inputs(batch))["logit"].float().reshape(len(rows), t)
            out[rows] = torch.sigmoid(logit)
    return out


def paint_look_at_me(ctx: Context, i: int) -> Panel:
    frames = ctx.data.tensors["frames"][i]
    t = len(frames)
    c = t // 2
    label = int(ctx.data.tensors["label"][i])
    labels = ctx.data.meta.get("frame_labels")
    per_frame = np.asarray(labels[i]) if labels is not None else None
    scores = ctx.outputs["frame_scores"][i].numpy()
    score = float(torch.sigmoid(ctx.outputs["logit"].reshape(-1)[i]))
    col = TRACK + 6
    img = Image.new("RGB", (col * t, TRACK + 12 + BAR_H + 18), D.BG)
    d = ImageDraw.Draw(img)
    anchors: dict[str, tuple[float, ...]] = {}
    for k in range(t):
        x = k * col + 3
        img.paste(D.resized(D.to_pil(frames[k]), TRACK, TRACK), (x, 0))
        if k == c:
            d.rectangle([x - 2, 0, x + TRACK + 1, TRACK + 1], outline=D.TEXT, width=2)
        look = int(per_frame[k]) if per_frame is not None else (label if k == c else None)
        strip = (x, TRACK + 4, x + TRACK - 1, TRACK + 10)
        if look is not None:
            d.rectangle(strip, fill=D.GT if look else D.PANEL, outline=D.GT)
        anchors[f"gt_{k}"] = strip
        bar = (x, TRACK + 12, x + TRACK - 1, TRACK + 12 + BAR_H)
        d.rectangle(bar, fill=D.PANEL)
        half = bar[3] - BAR_H / 2
        d.line([(x, half), (bar[2], half)], fill=D.DIM, width=1)  # 0.5, under the bar
        filled = round(float(scores[k]) * BAR_H)  # rows of the BAR_H rows below the bar's top edge
        if filled > 0:
            d.rectangle([x, bar[3] - filled + 1, bar[2], bar[3]], fill=D.PRED)
        anchors[f"score_{k}"] = bar
        d.text((x + 2, bar[3] + 2), f"{scores[k]:.2f}", fill=D.PRED, font=D.font(12))
    truth = "looking at the camera" if label else "not looking at the camera"
    lines = [[("truth (centre frame): ", D.GT), (truth, D.GT)],
             [("prediction: ", D.PRED), (f"P(looking) {score:.2f} -> {'looking' if score > 0.5 else 'not looking'}",
                                         D.PRED)],
             ("red bars: P(looking) per frame (7-frame window centred on it; grey line 0.5); green strip: looking",
              D.DIM)]
    if per_frame is None:
        lines.append(("only the centre frame has a label in this data", D.DIM))
    return _with_caption(Panel(img, anchors), lines)


# ---- registry ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Painter:
    paint: Callable[[Context, int], Panel]
    legend: str
    # Extra outputs a painter needs beyond the model's own (name -> fn(model, task, data) -> tensor).
    extras: tuple[tuple[str, Callable[[torch.nn.Module, Task, TaskData], torch.Tensor]], ...] = ()


PAINTERS: dict[str, Painter] = {
    "face_angles": Painter(paint_face_angles, "Gaze arrows start at the eye centres: green = ground truth, "
                           "red = prediction (image projection of the 3D gaze, pitch/yaw in degrees)."),
    "face_eye_lola": Painter(paint_face_eye_lola, "Green = ground truth, red = prediction. Dashed arrows: head "
                             "pose; solid arrows from the eyes: gaze (head + eye composed); right: eye-in-head."),
    "eyes_pog": Painter(paint_eyes_pog, "Screen: green dot = true point of gaze, red cross = predicted; the line "
                        "between them is the error (mm and screen pixels)."),
    "plane_pog": Painter(paint_plane_pog, "Right: the virtual plane in camera millimetres with the predicted "
                         "heatmap (orange), the screen and the camera; green dot = true PoG, red cross = predicted. "
                         "Left: the padded frame the model saw, with the gaze rays (green truth, red prediction)."),
    "look_at_me": Painter(paint_look_at_me, "Red bars: predicted P(looking at the camera wearer) per frame; green "
                          "strip: the ground truth says looking (outlined only: not looking).",
                          extras=(("frame_scores", frame_scores),)),
}


def painter_for(task: Task) -> Painter:
    from workbench.errors import WorkbenchError

    if task.name not in PAINTERS:
        raise WorkbenchError(f"no visualization for task {task.name!r}; expected one of {', '.join(sorted(PAINTERS))}")
    return PAINTERS[task.name]
