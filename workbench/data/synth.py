"""SynthGaze: the procedural gaze data set with exact ground truth, the default data everywhere.

One scene model serves every teacher: a camera at the origin, a screen below it (``Screen``, with its
camera-screen offset), a head at 40-70 cm with yaw/pitch/roll, two eyeballs that both look at a target,
and the PoG where the gaze meets the screen. :func:`render` draws one of five views of such scenes:

=========  ==========================================================================================
view       arrays (sample-first; images uint8, labels float32)
=========  ==========================================================================================
face       ``image`` (N,3,S,S) normalized face crop (MPIIFaceGaze normalization, S=112);
           ``gaze_pitchyaw``, ``head_pitchyaw`` (N,2) rad in the normalized camera; ``landmarks`` (N,5,2);
           ``eye_boxes`` (N,2,4)
mc4        ``face`` (N,1,S,S) grey normalized face, ``l_eye``/``r_eye`` (N,1,S,S) grey eye crops (the
           subject's left eye is the image-right one), S=224; ``head_lola``, ``eye_lola``, ``gaze_lola``
           (N,2) degrees, composed exactly by the write-up's closed form; ``eye_boxes`` (N,2,4) of the face
           image, ``l_eye_boxes``/``r_eye_boxes`` (N,2,4) of each eye crop (the crop's own eye, and the
           other eye where the crop reaches it)
itracker   ``eyes`` (N,4,3,S,S): [camera 0 image-left eye, camera 0 image-right eye, camera 1 (below the
           screen) image-left eye, camera 1 image-right eye], S=64; ``pog_px``, ``pog_mm`` (N,2);
           ``eye_boxes`` (N,4,2,4) per eye image
frame      ``image`` (N,3,H,W) the full camera frame (W,H)=(480,270); ``pog_px``, ``pog_mm``, ``screen_mm``,
           ``screen_px``, ``offset_mm`` (N,2); ``face_box`` (N,4); ``eye_boxes``; ``landmarks``;
           ``gaze`` (N,3) and ``eye_center`` (N,3) in camera coordinates (mm)
track      ``frames`` (N,7,3,S,S) normalized face crops of a 7-frame track, S=64; ``label`` (N,) looking at
           the camera at the centre frame; ``frame_labels`` (N,7); ``head_pose`` (N,7,3) degrees (yaw,
           pitch, roll, normalized camera); ``landmarks`` (N,7,5,2) in [0,1]; ``gaze_pitchyaw`` (N,7,2);
           ``eye_boxes`` (N,7,2,4)
=========  ==========================================================================================

Every view also has ``subject`` (N,) int64 and ``index`` (N,) int64. Eye boxes are (x0, y0, x1, y1) in
pixels with the image-left eye first. Samples are generated in chunks of :data:`CHUNK` from
``SeedSequence([seed, view, chunk])``, so sample ``i`` of a seed is the same bytes however it is asked
for (alone, in a batch, or from :class:`SynthGaze`). Subjects' looks (skin, iris, eye shape, interocular
distance, face proportions) are fixed by the subject id alone, so subjects can be held out.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from workbench.data import geometry as G
from workbench.data._head import Camera, Heads, Lighting, appearance, background, finish, render as _draw
from workbench.errors import WorkbenchError

CHUNK = 64
VIEWS = ("face", "mc4", "itracker", "frame", "track")
_VIEW_ID = {v: i for i, v in enumerate(VIEWS)}
DEFAULT_SIZE = {"face": 112, "mc4": 224, "itracker": 64, "frame": (480, 270), "track": 64}
TRACK_LEN = 7


@dataclass(frozen=True)
class SynthConfig:
    """The scene model's ranges. Distances in mm, angles in degrees."""

    screen: G.Screen = field(default_factory=G.Screen)
    distance: tuple[float, float] = (400.0, 700.0)
    head_x: tuple[float, float] = (-110.0, 110.0)
    head_y: tuple[float, float] = (-40.0, 80.0)
    eye_yaw: float = 22.0  # eye-in-head range, +-
    eye_pitch: float = 14.0
    head_roll: float = 12.0
    target_margin: float = 0.5  # face views look beyond the screen by this fraction of its size
    face_span: float = 170.0  # scene width covered by a normalized face crop, mm
    eye_span: float = 44.0  # scene width covered by an eye crop, mm
    focal_ratio: float = 0.75  # full-frame camera focal length / frame width
    look_threshold: float = 5.0  # looking at the camera: gaze within this angle of the camera
    look_margin: tuple[float, float] = (4.5, 7.0)  # positives sampled below, negatives above (clear cases)
    track_distance: tuple[float, float] = (600.0, 1500.0)


def _subject_ids(subjects: int | Sequence[int]) -> np.ndarray:
    ids = np.arange(subjects) if isinstance(subjects, (int, np.integer)) else np.asarray(list(subjects), dtype=np.int64)
    if ids.size == 0:
        raise WorkbenchError("expected at least one subject, got none")
    if (ids < 0).any():
        raise WorkbenchError(f"subject ids must be >= 0, got {ids.min()}")
    return ids


def _screen_heads(rng: np.random.Generator, n: int, ids: np.ndarray, cfg: SynthConfig, margin: float):
    """Heads in front of the screen looking at a point on it (or, with margin > 0, around it)."""
    subj = ids[rng.integers(len(ids), size=n)]
    t = np.stack([rng.uniform(*cfg.head_x, n), rng.uniform(*cfg.head_y, n), rng.uniform(*cfg.distance, n)], -1)
    s = cfg.screen
    pog_mm = np.stack([
        rng.uniform(-margin * s.width_mm, (1 + margin) * s.width_mm, n),
        rng.uniform(-margin * s.height_mm, (1 + margin) * s.height_mm, n),
    ], -1)
    target = np.concatenate([s.mm_to_camera(pog_mm), np.zeros((n, 1))], -1)
    return _heads_looking_at(rng, t, target, subj, cfg), subj, pog_mm


def _heads_looking_at(rng: np.random.Generator, t: np.ndarray, target: np.ndarray, subj: np.ndarray, cfg: SynthConfig) -> Heads:
    n = len(t)
    gp, gy = G.vector_to_pitchyaw(target - t).T
    ey = np.deg2rad(rng.uniform(-cfg.eye_yaw, cfg.eye_yaw, n))
    ep = np.deg2rad(rng.uniform(-cfg.eye_pitch, cfg.eye_pitch, n))
    roll = np.deg2rad(rng.uniform(-cfg.head_roll, cfg.head_roll, n))
    Rh = G.rotation_matrix(gy - ey, gp - ep, roll)
    return Heads(Rh, t, target, appearance(subj))


def _look_at_camera(heads: Heads, center: np.ndarray, span: float, size: int, cam_pos: np.ndarray | None = None) -> Camera:
    """Virtual crop cameras (MPIIFaceGaze normalization): optical axis through ``center`` (N,3), roll removed
    with the head's y axis, focal length set so the crop covers ``span`` mm at the centre's distance."""
    n = len(center)
    pos = np.zeros((n, 3)) if cam_pos is None else np.broadcast_to(cam_pos, (n, 3))
    rel = center - pos
    Rv = G.look_at_rotation(rel, heads.R[:, :, 1])
    f = size * np.linalg.norm(rel, axis=-1) / span
    c = np.full(n, size / 2.0)
    return Camera(Rv, np.array(pos, dtype=np.float64), f, c, c.copy())


def _crop(heads: Heads, cam: Camera, size: int, rng: np.random.Generator, light: Lighting, grey: bool = False,
          canvas: np.ndarray | None = None):
    if canvas is None:
        canvas = background(rng, len(heads), size, size)
    out = _draw(heads, cam, size, size, light, canvas)
    iod = np.linalg.norm(out.landmarks[:, 0] - out.landmarks[:, 1], axis=-1)
    return finish(out.image, light, iod, rng, grey), out


def _cyclopean(heads: Heads) -> np.ndarray:
    d = heads.target - heads.t
    return d / np.linalg.norm(d, axis=-1, keepdims=True)


def _face_labels(heads: Heads, cam: Camera) -> dict[str, np.ndarray]:
    g = np.einsum("nij,nj->ni", cam.R, _cyclopean(heads))
    Rhead = cam.R @ heads.R
    return {
        "gaze_pitchyaw": G.vector_to_pitchyaw(g),
        "head_pitchyaw": G.vector_to_pitchyaw(Rhead @ np.array([0.0, 0.0, -1.0])),
        "_gaze_vec": g,
        "_head_R": Rhead,
    }


def _view_face(rng, n, ids, cfg, size):
    heads, subj, _ = _screen_heads(rng, n, ids, cfg, cfg.target_margin)
    light = Lighting.sample(rng, n)
    cam = _look_at_camera(heads, heads.face_center(), cfg.face_span, size)
    img, out = _crop(heads, cam, size, rng, light)
    lab = _face_labels(heads, cam)
    return {"image": img, "gaze_pitchyaw": lab["gaze_pitchyaw"], "head_pitchyaw": lab["head_pitchyaw"],
            "landmarks": out.landmarks, "eye_boxes": out.eye_boxes, "subject": subj}


def _view_mc4(rng, n, ids, cfg, size):
    heads, subj, _ = _screen_heads(rng, n, ids, cfg, cfg.target_margin)
    light = Lighting.sample(rng, n)
    cam = _look_at_camera(heads, heads.face_center(), cfg.face_span, size)
    face, out = _crop(heads, cam, size, rng, light, grey=True)
    eyes = heads.eye_centers()
    # The subject's left eye is the image-right one (index 1).
    l_eye, l_out = _crop(heads, _look_at_camera(heads, eyes[:, 1], cfg.eye_span, size), size, rng, light, grey=True)
    r_eye, r_out = _crop(heads, _look_at_camera(heads, eyes[:, 0], cfg.eye_span, size), size, rng, light, grey=True)
    lab = _face_labels(heads, cam)
    yaw, pitch, _roll = G.rotation_to_euler(lab["_head_R"]).T
    head_noroll = G.rotation_matrix(yaw, pitch, 0.0)
    eye_vec = np.einsum("nji,nj->ni", head_noroll, lab["_gaze_vec"])  # gaze in the roll-free head frame
    return {
        "face": face, "l_eye": l_eye, "r_eye": r_eye,
        "head_lola": np.rad2deg(np.stack([yaw, pitch], -1)),
        "eye_lola": G.pitchyaw_to_lola(G.vector_to_pitchyaw(eye_vec)),
        "gaze_lola": G.pitchyaw_to_lola(lab["gaze_pitchyaw"]),
        "eye_boxes": out.eye_boxes, "l_eye_boxes": l_out.eye_boxes, "r_eye_boxes": r_out.eye_boxes,
        "subject": subj,
    }


def _itracker_camera1(cfg: SynthConfig) -> np.ndarray:
    """The second view's camera: centred below the screen's bottom edge."""
    s = cfg.screen
    return np.array([s.offset_mm[0] + s.width_mm / 2, s.offset_mm[1] + s.height_mm + 12.0, 0.0])


def _view_itracker(rng, n, ids, cfg, size):
    heads, subj, pog_mm = _screen_heads(rng, n, ids, cfg, 0.0)
    light = Lighting.sample(rng, n)
    eyes = heads.eye_centers()
    images, boxes = [], []
    for cam_pos in (np.zeros(3), _itracker_camera1(cfg)):
        for k in (0, 1):
            img, out = _crop(heads, _look_at_camera(heads, eyes[:, k], cfg.eye_span, size, cam_pos), size, rng, light)
            images.append(img)
            boxes.append(out.eye_boxes)
    return {"eyes": np.stack(images, 1), "pog_px": cfg.screen.mm_to_px(pog_mm), "pog_mm": pog_mm,
            "eye_boxes": np.stack(boxes, 1), "subject": subj}


def _frame_background(rng: np.random.Generator, n: int, height: int, width: int) -> np.ndarray:
    """A room-like backdrop: a smooth colour field with a few flat rectangles (furniture, doors, posters)."""
    bg = background(rng, n, height, width)
    X = np.arange(width, dtype=np.float32)[None, None, :]
    Y = np.arange(height, dtype=np.float32)[None, :, None]
    for _ in range(3):
        x0, y0 = rng.uniform(0, width, (n, 1, 1)), rng.uniform(0, height, (n, 1, 1))
        w, h = rng.uniform(0.1, 0.5, (n, 1, 1)) * width, rng.uniform(0.1, 0.6, (n, 1, 1)) * height
        box = ((X >= x0) & (X < x0 + w) & (Y >= y0) & (Y < y0 + h)).astype(np.float32)
        col = rng.uniform(20, 235, (n, 3, 1, 1)).astype(np.float32)
        bg += box[:, None] * (col - bg)
    return bg


def _view_frame(rng, n, ids, cfg, size):
    W, H = size
    heads, subj, pog_mm = _screen_heads(rng, n, ids, cfg, 0.0)
    light = Lighting.sample(rng, n)
    f = np.full(n, cfg.focal_ratio * W)
    cx, cy = np.full(n, W / 2.0), np.full(n, H / 2.0)
    frame = _frame_background(rng, n, H, W)
    # Draw each head inside a full-height vertical strip around it: the same camera with its principal
    # point shifted is exactly the crop of the full frame, and it costs a fraction of the frame's pixels.
    full_cam = Camera(np.broadcast_to(np.eye(3), (n, 3, 3)).copy(), np.zeros((n, 3)), f, cx, cy)
    centre, depth = full_cam.project(heads.t[:, None, :])
    half = 1.3 * heads.app["face_a"] * f / depth[:, 0] + 4
    strip = int(min(W, np.ceil(2 * half.max())))
    x0 = np.clip(np.round(centre[:, 0, 0] - strip / 2), 0, W - strip).astype(int)
    canvas = np.stack([frame[i, :, :, x0[i]:x0[i] + strip] for i in range(n)])
    cam = Camera(full_cam.R, full_cam.center, f, cx - x0, cy)
    out = _draw(heads, cam, H, strip, light, canvas)
    for i in range(n):
        frame[i, :, :, x0[i]:x0[i] + strip] = out.image[i]
    shift = np.stack([x0, np.zeros(n)], -1).astype(np.float32)
    lm = out.landmarks + shift[:, None]
    iod = np.linalg.norm(lm[:, 0] - lm[:, 1], axis=-1)
    s = cfg.screen
    return {
        "image": finish(frame, light, iod, rng), "pog_px": s.mm_to_px(pog_mm), "pog_mm": pog_mm,
        "screen_mm": np.tile([s.width_mm, s.height_mm], (n, 1)), "screen_px": np.tile(np.array([s.width_px, s.height_px], dtype=np.float32), (n, 1)),
        "offset_mm": np.tile(s.offset_mm, (n, 1)), "face_box": out.face_box + np.tile(shift, 2),
        "eye_boxes": out.eye_boxes + np.tile(shift, 2)[:, None], "landmarks": lm,
        "gaze": _cyclopean(heads), "eye_center": heads.t, "subject": subj,
    }


def _rotate_towards(base: np.ndarray, angle: np.ndarray, azimuth: np.ndarray) -> np.ndarray:
    """Unit vectors at ``angle`` (rad) from ``base`` (N,3), in the direction given by ``azimuth`` (rad)."""
    helper = np.where(np.abs(base[:, 1:2]) < 0.9, np.array([[0.0, 1.0, 0.0]]), np.array([[1.0, 0.0, 0.0]]))
    e1 = G.normalize(np.cross(base, helper))
    e2 = np.cross(base, e1)
    perp = np.cos(azimuth)[:, None] * e1 + np.sin(azimuth)[:, None] * e2
    return np.cos(angle)[:, None] * base + np.sin(angle)[:, None] * perp


def _view_track(rng, n, ids, cfg, size):
    T = TRACK_LEN
    subj = ids[rng.integers(len(ids), size=n)]
    label = rng.random(n) < 0.5
    t0 = np.stack([rng.uniform(-250, 250, n), rng.uniform(-150, 150, n), rng.uniform(*cfg.track_distance, n)], -1)
    lo, hi = cfg.look_margin
    angle = np.deg2rad(np.where(label, rng.uniform(0, lo, n), rng.uniform(hi, 40.0, n)))
    to_cam = G.normalize(-t0)
    g_c = _rotate_towards(to_cam, angle, rng.uniform(0, 2 * np.pi, n))
    dist = np.linalg.norm(t0, axis=-1, keepdims=True)
    target_c = t0 + g_c * dist
    k = (np.arange(T) - T // 2)[None, :, None]
    t = t0[:, None] + k * rng.normal(0, 4.0, (n, 1, 3))
    target = target_c[:, None] + k * rng.normal(0, 1, (n, 1, 3)) * (0.006 * dist[:, None])
    t[:, T // 2], target[:, T // 2] = t0, target_c  # the centre frame is exactly the labelled one
    flat_t, flat_target = t.reshape(-1, 3), target.reshape(-1, 3)
    flat_subj = np.repeat(subj, T)
    gp, gy = G.vector_to_pitchyaw(flat_target - flat_t).T
    # Eye-in-head offsets drift smoothly over the track.
    ey = np.deg2rad(rng.uniform(-cfg.eye_yaw, cfg.eye_yaw, (n, 1)) + k[..., 0] * rng.normal(0, 0.8, (n, 1))).ravel()
    ep = np.deg2rad(rng.uniform(-cfg.eye_pitch, cfg.eye_pitch, (n, 1)) + k[..., 0] * rng.normal(0, 0.5, (n, 1))).ravel()
    roll = np.deg2rad(np.repeat(rng.uniform(-cfg.head_roll, cfg.head_roll, n), T))
    heads = Heads(G.rotation_matrix(gy - ey, gp - ep, roll), flat_t, flat_target, appearance(flat_subj))
    light = Lighting.sample(rng, n).take(np.repeat(np.arange(n), T))
    cam = _look_at_camera(heads, heads.face_center(), cfg.face_span, size)
    canvas = np.repeat(background(rng, n, size, size), T, axis=0)  # one backdrop per track
    img, out = _crop(heads, cam, size, rng, light, canvas=canvas)
    lab = _face_labels(heads, cam)
    look = G.angular_error(_cyclopean(heads), -flat_t) < cfg.look_threshold
    return {
        "frames": img.reshape(n, T, *img.shape[1:]),
        "label": label.astype(np.int64),
        "frame_labels": look.reshape(n, T).astype(np.int64),
        "head_pose": np.rad2deg(G.rotation_to_euler(lab["_head_R"])).reshape(n, T, 3),
        "landmarks": (out.landmarks / size).reshape(n, T, 5, 2),
        "gaze_pitchyaw": lab["gaze_pitchyaw"].reshape(n, T, 2),
        "eye_boxes": out.eye_boxes.reshape(n, T, 2, 4),
        "subject": subj,
    }


_VIEW_FN = {"face": _view_face, "mc4": _view_mc4, "itracker": _view_itracker, "frame": _view_frame, "track": _view_track}


def _check_size(view: str, size) -> int | tuple[int, int]:
    if size is None:
        return DEFAULT_SIZE[view]
    if view == "frame":
        if isinstance(size, (int, np.integer)) or len(size) != 2:
            raise WorkbenchError(f"view 'frame' expects size as (width, height), got {size!r}")
        w, h = int(size[0]), int(size[1])
        if w < 64 or h < 48:
            raise WorkbenchError(f"frame size must be at least 64x48, got {w}x{h}")
        return w, h
    if not isinstance(size, (int, np.integer)):
        raise WorkbenchError(f"view {view!r} expects an integer size, got {size!r}")
    if size < 16:
        raise WorkbenchError(f"image size must be at least 16 px, got {size}")
    return int(size)


def render_chunk(view: str, chunk: int, *, seed: int = 0, subjects: int | Sequence[int] = 15, size=None,
                 config: SynthConfig | None = None) -> dict[str, np.ndarray]:
    """Render samples ``[chunk * CHUNK, (chunk + 1) * CHUNK)`` of a data set (see module docstring)."""
    if view not in _VIEW_FN:
        raise WorkbenchError(f"unknown view {view!r}; expected one of {', '.join(VIEWS)}")
    cfg = config or SynthConfig()
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _VIEW_ID[view], int(chunk)]))
    out = _VIEW_FN[view](rng, CHUNK, _subject_ids(subjects), cfg, _check_size(view, size))
    out["index"] = np.arange(chunk * CHUNK, (chunk + 1) * CHUNK, dtype=np.int64)
    return {k: _tidy(v) for k, v in out.items()}


def _tidy(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v)
    if v.dtype == np.uint8 or np.issubdtype(v.dtype, np.integer):
        return v.astype(np.int64) if v.dtype != np.uint8 else v
    return np.ascontiguousarray(v, dtype=np.float32)


def render(view: str, n: int, *, seed: int = 0, subjects: int | Sequence[int] = 15, start: int = 0, size=None,
           config: SynthConfig | None = None, progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Render samples ``[start, start + n)`` of the SynthGaze data set ``(view, seed, subjects, size)``.

    Returns a dict of numpy arrays (see the module docstring for each view's keys and shapes).
    ``progress``, when given, is called with the number of samples finished after each chunk.
    """
    if n <= 0:
        raise WorkbenchError(f"expected a positive number of samples, got {n}")
    if start < 0:
        raise WorkbenchError(f"expected start >= 0, got {start}")
    parts: list[dict[str, np.ndarray]] = []
    first, last = start // CHUNK, (start + n - 1) // CHUNK
    for c in range(first, last + 1):
        parts.append(render_chunk(view, c, seed=seed, subjects=subjects, size=size, config=config))
        if progress is not None:
            progress(min((c + 1) * CHUNK, start + n) - max(c * CHUNK, start))
    lo = start - first * CHUNK
    return {k: np.concatenate([p[k] for p in parts])[lo:lo + n] for k in parts[0]}


class SynthGaze(torch.utils.data.Dataset):
    """Random access to ``n`` samples of a SynthGaze data set; renders chunks on demand and caches a few.

    Items are dicts of numpy arrays for one sample (images uint8). Safe to use with DataLoader workers:
    each worker renders (and caches) its own chunks, and sample ``i`` is the same bytes everywhere.
    """

    def __init__(self, view: str, n: int, *, seed: int = 0, subjects: int | Sequence[int] = 15, size=None,
                 config: SynthConfig | None = None, cache_chunks: int = 8) -> None:
        if view not in _VIEW_FN:
            raise WorkbenchError(f"unknown view {view!r}; expected one of {', '.join(VIEWS)}")
        if n <= 0:
            raise WorkbenchError(f"expected a positive number of samples, got {n}")
        self.view, self.n, self.seed = view, int(n), int(seed)
        self.subjects = _subject_ids(subjects)
        self.size = _check_size(view, size)
        self.config = config or SynthConfig()
        self._cache: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self._cache_chunks = cache_chunks

    def __len__(self) -> int:
        return self.n

    def _chunk(self, c: int) -> dict[str, np.ndarray]:
        if c in self._cache:
            self._cache.move_to_end(c)
            return self._cache[c]
        data = render_chunk(self.view, c, seed=self.seed, subjects=self.subjects, size=self.size, config=self.config)
        self._cache[c] = data
        if len(self._cache) > self._cache_chunks:
            self._cache.popitem(last=False)
        return data

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        if not 0 <= i < self.n:
            raise IndexError(f"sample {i} out of range for {self.n} samples")
        data = self._chunk(i // CHUNK)
        return {k: v[i % CHUNK] for k, v in data.items()}
