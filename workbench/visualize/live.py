"""`workbench live`: a camera or a video file through a run's model, the prediction drawn on every frame.

Frames go through the task's own preprocessing: a full-frame model (``plane_pog``, EVG) gets the frame
letterboxed to its training size and padded to a multiple of 32 by the task, exactly as in training; a
face-crop model gets the largest face found by the face detector (:mod:`workbench.faces`: OpenCV's
cascades), normalized to its training crops (eyes level, the training inter-ocular distance). When no
face is found the centre square of the frame is used instead, and the frame says so. The detected face
box is drawn (cyan) for every model, the full-frame one included. For point-of-gaze
models the keys 1-9 put a reference point on a 3x3 grid of the screen (1 = top left, 9 = bottom right)
and show the prediction's pixel error against it (x, y and Euclidean), as in the EVG write-up. Without a
window (``out``) the reference point is ``ref`` or cycles through the grid.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from workbench.data import geometry as G
from workbench.errors import WorkbenchError
from workbench.faces.detect import FACE_BOX
from workbench.faces.images import FacePipeline, Frame, Seen
from workbench.faces.normalize import invert, letterbox_affine
from workbench.tasks import Task
from workbench.train.engine import load_run_model
from workbench.train.recipes import Recipe
from workbench.visualize import draw as D
from workbench.visualize.painters import gaze_dir, lola_dir, padded_frame
from workbench.visualize.video import FrameWriter, cv2_module, open_capture, video_info

VIEW_W = 640  # display width of the model's view
SCREEN_W = 480  # display width of the screen panel
EYES = np.array([[0.33, 0.30], [0.67, 0.30]])  # eye centres in a normalized face crop (SynthGaze's mean)
EYE_SPAN = 44.0 / 170.0  # an mc4 eye crop's width as a fraction of the face crop's (SynthConfig spans)
WINDOW = "workbench live"


def grid_point(key: int, width_px: float, height_px: float) -> np.ndarray:
    """Reference point ``key`` (1-9, row by row from the top left) of a 3x3 grid on the screen, in pixels."""
    if not 1 <= key <= 9:
        raise WorkbenchError(f"expected a reference point 1-9, got {key}")
    col, row = (key - 1) % 3, (key - 1) // 3
    return np.array([(2 * col + 1) / 6 * width_px, (2 * row + 1) / 6 * height_px])


@dataclass
class Reading:
    """One frame's prediction: what the model saw (with marks) and numbers to print."""

    view: Image.Image
    lines: list[Any] = field(default_factory=list)
    pog_px: np.ndarray | None = None  # point-of-gaze tasks: the prediction on the screen, pixels
    value: list[float] = field(default_factory=list)  # the raw prediction, for the summary


def letterbox(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) -> (h, w, 3) = ``size`` (w, h): scaled to fit, centred on black (no distortion)."""
    w, h = size
    img = Image.fromarray(rgb)
    s = min(w / img.width, h / img.height)
    small = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.BILINEAR)
    canvas = Image.new("RGB", (w, h))
    canvas.paste(small, ((w - small.width) // 2, (h - small.height) // 2))
    return np.asarray(canvas)


def centre_crop(rgb: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The centre square of a frame and its (x0, y0, side)."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    x0, y0 = (w - side) // 2, (h - side) // 2
    return rgb[y0:y0 + side, x0:x0 + side], (x0, y0, side)


def _chw(img: Image.Image) -> torch.Tensor:
    arr = np.array(img)  # a writable copy (PIL gives read-only arrays)
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).unsqueeze(0)


class _Live:
    """A run's model with the task-specific preprocessing and drawing of live frames."""

    def __init__(self, model: torch.nn.Module, task: Task, recipe: Recipe, config: dict[str, Any] | None = None,
                 detector: str | None = None) -> None:
        self.model, self.task = model, task
        self.notes: list[str] = []
        self.seen: Seen | None = None
        self.count = 0
        if task.name == "eyes_pog":
            raise WorkbenchError("live needs a frame or a face crop; eyes_pog models take four eye images from "
                                 "two cameras, which one video cannot give (use `workbench visualize`)")
        self.pipe = FacePipeline(task, config if config is not None else {"recipe": {"size": recipe.size}},
                                 detector=detector)
        if task.name == "plane_pog":
            size = recipe.size or (480, 270)
            self.size = (int(size[0]), int(size[1]))
            from workbench.data.synth import SynthConfig

            self.screen = SynthConfig().screen
            pw, ph = task.padded(*self.size)
            self.notes.append(f"frames are letterboxed to {self.size[0]}x{self.size[1]} and padded to {pw}x{ph}; "
                              f"PoG shown on SynthGaze's {self.screen.width_px}x{self.screen.height_px} screen "
                              f"({self.screen.width_mm:.0f}x{self.screen.height_mm:.0f} mm, camera above its centre)")
        else:
            self.size = int(recipe.size or 112)
            self.screen = None
            self.notes.extend(self.pipe.notes)
            self.notes.append("where no face is found, the centre square of the frame stands in for the face crop")
        self.track: deque[torch.Tensor] = deque(maxlen=7)

    @torch.no_grad()
    def __call__(self, rgb: np.ndarray) -> Reading:
        self.seen = Seen(Frame("live", self.count, rgb), self.pipe.detector.detect(rgb))
        self.count += 1
        return getattr(self, f"_{self.task.name}")(rgb)

    def _face_box(self, view: Image.Image, M: np.ndarray) -> None:
        """The detected face box (original pixels through ``M`` into the view) in cyan."""
        face = self.seen.face if self.seen is not None else None
        if face is not None:
            c = face.box.reshape(2, 2) @ M[:, :2].T + M[:, 2]
            ImageDraw.Draw(view).rectangle([*c[0], *c[1]], outline=FACE_BOX, width=2)

    # ---- full frame ---------------------------------------------------------------------------------
    def _plane_pog(self, rgb: np.ndarray) -> Reading:
        task = self.task
        frame = torch.from_numpy(letterbox(rgb, self.size).transpose(2, 0, 1).copy()).unsqueeze(0)
        outputs = self.model(*task.inputs({"frame": frame}))
        xy = task.decode({k: v.float() for k, v in outputs.items()})[0].double()
        pog_px = np.asarray(self.screen.mm_to_px(self.screen.camera_to_mm(xy.numpy())), dtype=np.float64)
        padded, (left, top) = padded_frame(task, frame[0])
        k = VIEW_W / padded.shape[-1]
        view = D.resized(D.to_pil(padded), VIEW_W)
        ImageDraw.Draw(view).rectangle([left * k, top * k, (left + self.size[0]) * k - 1,
                                        (top + self.size[1]) * k - 1], outline=D.DIM)
        h, w = rgb.shape[:2]
        self._face_box(view, np.diag([k, k, 1.0])[:2] @ np.vstack([letterbox_affine(w, h, self.size), [0, 0, 1]])
                       + np.array([[0, 0, left * k], [0, 0, top * k]]))
        peak = float(torch.sigmoid(outputs["hm"].float()).max())
        lines = [((f"prediction: ({xy[0]:+.0f}, {xy[1]:+.0f}) mm from the camera = ({pog_px[0]:.0f}, {pog_px[1]:.0f}) "
                  f"screen px; heatmap peak {peak:.2f}"), D.PRED)]
        return Reading(view, lines, pog_px, [float(pog_px[0]), float(pog_px[1])])

    # ---- face crops ---------------------------------------------------------------------------------
    def _crop_view(self, rgb: np.ndarray) -> tuple[Image.Image, Image.Image, Callable, Callable, np.ndarray, list[Any]]:
        """(the frame for display, the square crop the model sees, crop fractions -> display points, crop
        directions (fractions) -> display vectors, eye centres as crop fractions, a line saying which crop)."""
        view = D.resized(Image.fromarray(rgb), VIEW_W)
        k = VIEW_W / rgb.shape[1]
        face = self.seen.face if self.seen is not None else None
        if face is not None:
            norm = self.pipe.normalize(rgb, face)
            A = k * invert(norm.M)
            s = norm.crop.shape[1]
            q = norm.quad() * k
            d = ImageDraw.Draw(view)
            d.line([*map(tuple, q), tuple(q[0])], fill=D.DIM, width=1)
            self._face_box(view, np.array([[k, 0, 0], [0, k, 0]]))
            eyes = "eyes detected" if face.eyes_detected else "eyes estimated from the face box"
            return (view, Image.fromarray(norm.crop), lambda p: A[:, :2] @ (np.asarray(p) * s) + A[:, 2],
                    lambda v: A[:, :2] @ (np.asarray(v) * s), self.pipe.geometry.eyes,
                    [(f"face found ({eyes}); normalized crop outlined", D.DIM)])
        crop, (x0, y0, side) = centre_crop(rgb)
        ImageDraw.Draw(view).rectangle([x0 * k, y0 * k, (x0 + side) * k - 1, (y0 + side) * k - 1], outline=D.DIM)
        origin, sk = np.array([x0 * k, y0 * k]), side * k
        return (view, Image.fromarray(crop), lambda p: origin + np.asarray(p) * sk, lambda v: np.asarray(v) * sk, EYES,
                [("no face found: the centre square of the frame is used as the face crop", D.REF)])

    def _face_angles(self, rgb: np.ndarray) -> Reading:
        view, crop, place, vec, eyes, which = self._crop_view(rgb)
        face = _chw(crop.resize((self.size, self.size), Image.BILINEAR))
        gaze = self.model(*self.task.inputs({"face": face}))["gaze"][0].double().numpy()
        d = ImageDraw.Draw(view)
        for e in eyes:
            o = place(e)
            D.arrow(d, o, o + 0.45 * vec(gaze_dir(gaze)), D.PRED, width=3)
        p, y = np.rad2deg(gaze)
        return Reading(view, [(f"prediction: gaze pitch {p:+.1f}\u00b0 yaw {y:+.1f}\u00b0", D.PRED), *which],
                       value=[float(p), float(y)])

    def _face_eye_lola(self, rgb: np.ndarray) -> Reading:
        view, crop, place, vec, eyes, which = self._crop_view(rgb)
        s = self.size
        face = _chw(crop.convert("L").resize((s, s), Image.BILINEAR))
        # The subject's left eye is the image-right one.
        cx, cy = eyes[1] * crop.width
        half = EYE_SPAN * crop.width / 2
        eye = _chw(crop.convert("L").crop((round(cx - half), round(cy - half), round(cx + half), round(cy + half)))
                   .resize((s, s), Image.BILINEAR))
        out = self.model(*self.task.inputs({"face": face, "l_eye": eye, "r_eye": eye}))
        lola = {k: G.denormalize_angle01(out[k][0].double()).numpy() for k in ("head", "eye", "gaze")}
        d = ImageDraw.Draw(view)
        centre = place([0.5, 0.5])
        D.arrow(d, centre, centre + 0.42 * vec(lola_dir(lola["head"])), D.PRED, width=4, head=12, dashed=True)
        for e in eyes:
            o = place(e)
            D.arrow(d, o, o + 0.4 * vec(lola_dir(lola["gaze"])), D.PRED, width=3)
        w = crop.width
        corners = [place(np.array(c) / w) for c in ((cx - half, cy - half), (cx + half, cy - half),
                                                    (cx + half, cy + half), (cx - half, cy + half))]
        d.line([*map(tuple, corners), tuple(corners[0])], fill=D.DIM)
        txt = "  ".join(f"{k} ({v[0]:+.1f}, {v[1]:+.1f})" for k, v in lola.items())
        return Reading(view, [(f"prediction lo/la: {txt} (head dashed)", D.PRED), *which],
                       value=[float(x) for x in lola["gaze"]])

    def _look_at_me(self, rgb: np.ndarray) -> Reading:
        view, crop, place, _, _, which = self._crop_view(rgb)
        self.track.append(_chw(crop.resize((self.size, self.size), Image.BILINEAR))[0])
        t = self.track.maxlen
        if len(self.track) < t:
            return Reading(view, [(f"collecting a {t}-frame track ({len(self.track)}/{t})", D.DIM), *which])
        frames = torch.stack(list(self.track)).unsqueeze(0)
        # No head-pose or landmark priors live: zeros, as the task feeds data sets that lack them.
        batch = {"frames": frames, "head_pose": torch.zeros(1, t, 3), "landmarks": torch.zeros(1, t, 5, 2)}
        score = float(torch.sigmoid(self.model(*self.task.inputs(batch))["logit"].reshape(-1)[0].float()))
        d = ImageDraw.Draw(view)
        (x0, y0), (x1, _) = place([0.0, 1.0]), place([1.0, 1.0])
        x0, x1 = min(x0, x1), max(x0, x1)
        y0 = min(y0 + 4, view.height - 12)
        d.rectangle([x0, y0, x1, y0 + 8], fill=D.PANEL)
        d.rectangle([x0, y0, x0 + (x1 - x0) * score, y0 + 8], fill=D.PRED)
        return Reading(view, [((f"P(looking at the camera) {score:.2f} for the frame {t // 2} frames ago (the centre of "
                               f"the {t}-frame window)"), D.PRED), *which], value=[score])


def screen_panel(screen: G.Screen, pog_px: np.ndarray | None, ref: int | None) -> tuple[D.Panel, dict[str, float] | None]:
    """The screen with the 3x3 grid, the reference point (yellow ring) and the prediction (red cross), and
    the prediction's error against the reference point in screen pixels."""
    sw, sh = SCREEN_W, SCREEN_W * screen.height_px / screen.width_px
    img = Image.new("RGB", (SCREEN_W + 24, int(sh) + 24), D.BG)
    d = ImageDraw.Draw(img)
    x0, y0 = 12.0, 12.0
    d.rectangle([x0, y0, x0 + sw, y0 + sh], fill=D.PANEL, outline=D.TEXT)
    scale = np.array([sw / screen.width_px, sh / screen.height_px])
    anchors: dict[str, tuple[float, ...]] = {"screen": (x0, y0, x0 + sw, y0 + sh)}
    for key in range(1, 10):
        p = np.array([x0, y0]) + grid_point(key, screen.width_px, screen.height_px) * scale
        D.dot(d, p, D.DIM, r=2)
        d.text((p[0] + 5, p[1] + 3), str(key), fill=D.DIM, font=D.font(11))
    err = None
    if ref is not None:
        r = grid_point(ref, screen.width_px, screen.height_px)
        rp = np.array([x0, y0]) + r * scale
        D.ring(d, rp, D.REF, r=10, width=3)
        anchors["ref"] = tuple(rp)
        if pog_px is not None:
            diff = pog_px - r
            err = {"ref": ref, "dx_px": float(diff[0]), "dy_px": float(diff[1]), "error_px": float(np.hypot(*diff))}
    if pog_px is not None:
        p = np.array([x0, y0]) + pog_px * scale
        p = np.array([np.clip(p[0], x0 - 8, x0 + sw + 8), np.clip(p[1], y0 - 8, y0 + sh + 8)])
        if ref is not None:
            d.line([anchors["ref"], tuple(p)], fill=D.TEXT, width=1)
        D.cross(d, p, D.PRED)
        anchors["pred"] = tuple(p)
    return D.Panel(img, anchors), err


def _display_problem(cv2: Any) -> str | None:
    """Why no window can be shown (None when one can)."""
    m = re.search(r"GUI:\s*(\S+)", cv2.getBuildInformation())
    if m and m.group(1).upper() == "NONE":
        return "this OpenCV has no window support (opencv-python-headless); install opencv-python for a window"
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY is not set)"
    return None


def live(run: str | Path, *, source: str | int = 0, out: str | Path | None = None, ref: int | None = None,
         cycle: int = 30, max_frames: int | None = None, fps: float | None = None, force: bool = False,
         which: str = "best", on_note: Callable[[str], None] | None = None,
         progress: Callable[[int], None] | None = None, detector: str | None = None) -> dict[str, Any]:
    """Run ``run``'s model on a camera (index) or video file and draw each prediction.

    With ``out`` (a new folder of PNGs, or a .mp4) the annotated frames are written; without it they are
    shown in a window (keys 1-9: reference point, 0: none, q or Esc: quit). The reference point is ``ref``,
    else it cycles through 1-9 every ``cycle`` frames (windowless) or follows the keys. Returns a summary:
    frames, model milliseconds per frame, notes, and per reference point the mean error in screen pixels.
    """
    if ref is not None and not 1 <= ref <= 9:
        raise WorkbenchError(f"expected --ref between 1 and 9, got {ref}")
    if cycle < 1:
        raise WorkbenchError(f"expected a positive cycle length, got {cycle}")
    model, config, task = load_run_model(run, which)
    runner = _Live(model, task, Recipe.from_dict(config["recipe"]), config, detector=detector)
    cv2 = cv2_module()
    if out is None:
        problem = _display_problem(cv2)
        if problem:
            raise WorkbenchError(f"{problem}; use --out DIR (or FILE.mp4) to write the annotated frames instead")
    notes = list(runner.notes)
    if config["data"]["source"] == "synth":
        notes.insert(0, "this model was trained on SynthGaze only: expect it to be poor on real faces")
    for note in notes:
        if on_note is not None:
            on_note(note)
    info = video_info(source) if not str(source).isdigit() else {"frames": -1, "fps": 0.0}
    writer = FrameWriter(out, fps=fps or info["fps"] or 15.0, force=force) if out is not None else None
    key = ref if ref is not None else (None if out is None else 1)
    refs: dict[int, list[dict[str, float]]] = {}
    predictions: list[list[float]] = []
    times: list[float] = []
    faces: list[list[float] | None] = []  # the detected face box per frame (original pixels), None: not found
    cap = open_capture(source)
    count = 0
    try:
        if writer is not None:
            writer.__enter__()
        while max_frames is None or count < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            rgb = np.ascontiguousarray(bgr[:, :, ::-1])
            if out is not None and ref is None:
                key = 1 + (count // cycle) % 9
            start = time.perf_counter()
            reading = runner(rgb)
            times.append(time.perf_counter() - start)
            predictions.append(reading.value)
            face = runner.seen.face if runner.seen is not None else None
            faces.append(None if face is None else [round(float(v), 1) for v in face.box])
            frame, err = _annotate(runner, reading, key, notes, windowed=out is None)
            if err is not None:
                refs.setdefault(err["ref"], []).append(err)
            count += 1
            if writer is not None:
                writer.write(frame)
            else:
                cv2.imshow(WINDOW, np.asarray(frame)[:, :, ::-1])
                pressed = cv2.waitKey(1) & 0xFF
                if pressed in (ord("q"), 27) or cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:
                    break
                if ord("1") <= pressed <= ord("9"):
                    key = pressed - ord("0")
                elif pressed == ord("0"):
                    key = None
            if progress is not None:
                progress(1)
    except KeyboardInterrupt:
        pass  # stop capturing; the frames so far are kept
    except BaseException:
        if writer is not None:
            writer.__exit__(*sys.exc_info())
            writer = None
        raise
    finally:
        cap.release()
        if out is None:
            cv2.destroyAllWindows()
    if writer is not None:
        if count == 0:
            err = WorkbenchError(f"{source}: no frames could be read")
            writer.__exit__(WorkbenchError, err, None)
            raise err
        writer.__exit__(None, None, None)
    if count == 0:
        raise WorkbenchError(f"{source}: no frames could be read")
    summary = {"run": str(run), "task": task.name, "source": str(source), "frames": count,
               "model_ms_per_frame": round(1000 * float(np.mean(times)), 2) if times else None,
               "out": str(out) if out is not None else None, "notes": notes,
               "reference_errors_px": {str(k): {"frames": len(v), **{m: round(float(np.mean([e[m] for e in v])), 1)
                                                                    for m in ("dx_px", "dy_px", "error_px")}}
                                       for k, v in sorted(refs.items())},
               "faces_found": sum(f is not None for f in faces), "faces_not_found": sum(f is None for f in faces),
               "face_boxes": faces, "predictions": predictions}
    return summary


def _annotate(runner: _Live, reading: Reading, key: int | None, notes: list[str], *, windowed: bool
              ) -> tuple[Image.Image, dict[str, float] | None]:
    """The frame shown or written: the model's view, the screen (PoG tasks), the numbers and the notes."""
    panels = [D.Panel(reading.view)]
    err = None
    lines = list(reading.lines)
    if runner.screen is not None:
        scr, err = screen_panel(runner.screen, reading.pog_px, key)
        panels.append(scr)
        if err is not None:
            lines.append(((f"reference point {key}: error x {err['dx_px']:+.0f} px, y {err['dy_px']:+.0f} px, "
                          f"Euclidean {err['error_px']:.0f} px (screen pixels)"), D.REF))
        elif key is None:
            lines.append(("no reference point (keys 1-9 show one)", D.DIM))
    row = D.stack(panels, horizontal=True, gap=8)
    width = row.size[0]
    text = [*lines, *[(n, D.DIM) for n in notes]]
    if windowed:
        text.append(("keys 1-9: reference point on the 3x3 screen grid, 0: none, q: quit", D.DIM))
    # A fixed height (the longest possible text), so every frame of a video has the same size.
    footer = D.text_panel(text, width, rows=5 + 2 * len(notes) + int(windowed))
    return D.stack([row, footer], horizontal=False, gap=2).image, err
