"""SynthGaze's head model: subject appearance, 3D feature points, and rendering through a pinhole camera.

Head coordinates (mm) equal camera coordinates for a head looking straight into the camera: x to the
image's right, y down, z away from the camera. The origin is the midpoint of the two eyeball centres.
The gaze enters the image only through the eyes (iris and pupil placed on the eyeball along each eye's
gaze ray, the upper lid following the eye's pitch) and the head pose only through the face's geometry
(face outline, nose, brows, mouth, eye corners), so a model must read exactly those.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from workbench.data import _raster as R
from workbench.data._raster import F32, Window

EYEBALL_RADIUS = 12.0  # mm
IRIS_DEPTH = 10.6  # the limbus plane sits this far along the gaze from the eyeball centre, mm
IRIS_RADIUS = 5.9  # mm

_SKIN_LIGHT = np.array([250.0, 222.0, 196.0])
_SKIN_DARK = np.array([92.0, 60.0, 42.0])
_IRIS = np.array(
    [[88, 56, 32], [52, 33, 22], [72, 112, 158], [82, 118, 80], [112, 120, 126], [126, 94, 52]], dtype=np.float64
)
_HAIR = np.array([[25, 22, 20], [70, 48, 30], [190, 160, 110], [150, 150, 150], [140, 70, 40]], dtype=np.float64)

# Appearance fields, one value per subject (arrays are gathered per sample).
_APPEARANCE_KEYS = (
    "skin", "iris", "hair", "lip", "iod", "eye_w", "lid_up", "lid_down", "face_a", "face_b", "nose_len",
    "mouth_w", "brow_w", "hairline", "sclera",
)


@functools.lru_cache(maxsize=4096)
def _subject(subject_id: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(np.random.SeedSequence([0x5EED6A2E, int(subject_id)]))
    tone = rng.uniform(0.0, 1.0) ** 1.3
    skin = _SKIN_LIGHT + (_SKIN_DARK - _SKIN_LIGHT) * tone + rng.normal(0, 6, 3)
    hair = _HAIR[rng.integers(len(_HAIR))] * rng.uniform(0.8, 1.15)
    return {
        "skin": np.clip(skin, 30, 255),
        "iris": np.clip(_IRIS[rng.integers(len(_IRIS))] * rng.uniform(0.8, 1.2) + rng.normal(0, 5, 3), 10, 230),
        "hair": np.clip(hair, 5, 240),
        "lip": np.clip(skin * np.array([0.78, 0.5, 0.5]), 10, 255),
        "sclera": np.clip(np.array([238.0, 232.0, 226.0]) + rng.normal(0, 6, 3), 190, 255),
        "iod": np.array(rng.uniform(58.0, 70.0)),
        "eye_w": np.array(rng.uniform(26.0, 31.0)),
        "lid_up": np.array(rng.uniform(4.6, 6.2)),
        "lid_down": np.array(rng.uniform(3.4, 4.6)),
        "face_a": np.array(rng.uniform(68.0, 80.0)),
        "face_b": np.array(rng.uniform(94.0, 108.0)),
        "nose_len": np.array(rng.uniform(30.0, 40.0)),
        "mouth_w": np.array(rng.uniform(42.0, 56.0)),
        "brow_w": np.array(rng.uniform(1.8, 3.4)),
        "hairline": np.array(rng.uniform(-0.78, -0.5)),
    }


def appearance(subjects: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sample appearance (dict of (N,) or (N, 3) float32) for subject ids (N,); fixed by the id alone."""
    rows = [_subject(int(s)) for s in subjects]
    return {k: np.stack([r[k] for r in rows]).astype(F32) for k in _APPEARANCE_KEYS}


@dataclass
class Heads:
    """N heads in camera coordinates (mm): rotation R (N,3,3) head->camera, eye midpoint t (N,3), gaze target (N,3)."""

    R: np.ndarray
    t: np.ndarray
    target: np.ndarray
    app: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.t)

    def take(self, idx: np.ndarray) -> "Heads":
        return Heads(self.R[idx], self.t[idx], self.target[idx], {k: v[idx] for k, v in self.app.items()})

    def eye_centers(self) -> np.ndarray:
        """(N, 2, 3) eyeball centres in camera coordinates, [image-left eye, image-right eye]."""
        half = self.app["iod"].astype(np.float64) / 2
        local = np.zeros((len(self), 2, 3))
        local[:, 0, 0], local[:, 1, 0] = -half, half
        return self.to_camera(local)

    def eye_gaze(self) -> np.ndarray:
        """(N, 2, 3) unit gaze vector of each eye, pointing from its eyeball centre at the target."""
        d = self.target[:, None, :] - self.eye_centers()
        return d / np.linalg.norm(d, axis=-1, keepdims=True)

    def to_camera(self, local: np.ndarray) -> np.ndarray:
        """(N, K, 3) head-frame points -> camera coordinates."""
        return np.einsum("nij,nkj->nki", self.R, local) + self.t[:, None, :]

    def face_center(self) -> np.ndarray:
        """(N, 3) MPIIFaceGaze's face centre (mean of eye and mouth corners) in camera coordinates."""
        local = np.zeros((len(self), 1, 3))
        local[:, 0] = (0.0, 35.0, -8.0)
        return self.to_camera(local)[:, 0]


@dataclass
class Camera:
    """Pinhole cameras, one per image: ``p_view = R @ (p - center)``, ``u = f x/z + cx``, ``v = f y/z + cy``."""

    R: np.ndarray  # (N, 3, 3)
    center: np.ndarray  # (N, 3)
    f: np.ndarray  # (N,)
    cx: np.ndarray  # (N,)
    cy: np.ndarray  # (N,)

    def to_view(self, p: np.ndarray) -> np.ndarray:
        """(N, K, 3) camera-frame points -> (N, K, 3) view-frame points."""
        return np.einsum("nij,nkj->nki", self.R, p - self.center[:, None, :])

    def project(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, K, 3) points -> ((N, K, 2) pixel coordinates, (N, K) depth)."""
        q = self.to_view(p)
        z = q[..., 2]
        uv = np.stack([q[..., 0] / z * self.f[:, None] + self.cx[:, None], q[..., 1] / z * self.f[:, None] + self.cy[:, None]], -1)
        return uv, z


# Indices of the feature points built by _feature_points.
_P = {name: i for i, name in enumerate([
    "eyeL", "eyeR",  # eyeball centres (image-left, image-right)
    "cornerL0", "cornerL1", "cornerR0", "cornerR1",  # eye corners (each eye: image-left, image-right)
    "browL0", "browL1", "browR0", "browR1",
    "bridge", "tip", "nostril", "mouth0", "mouth1", "mouthc",
    "face", "faceX", "faceY", "neck0", "neck1",
])}


def _feature_points(heads: Heads) -> np.ndarray:
    """(N, K, 3) head-frame feature points from each subject's proportions."""
    a = heads.app
    n = len(heads)
    p = np.zeros((n, len(_P), 3))
    half, w = a["iod"] / 2, a["eye_w"] / 2
    for sign, e, c0, c1, b0, b1 in ((-1, "eyeL", "cornerL0", "cornerL1", "browL0", "browL1"),
                                    (1, "eyeR", "cornerR0", "cornerR1", "browR0", "browR1")):
        x = sign * half
        p[:, _P[e]] = np.stack([x, 0 * x, 0 * x], -1)
        p[:, _P[c0]] = np.stack([x - w, 0 * x + 0.6, 0 * x - 8.5], -1)
        p[:, _P[c1]] = np.stack([x + w, 0 * x + 0.6, 0 * x - 8.5], -1)
        p[:, _P[b0]] = np.stack([x - 1.1 * w, 0 * x - 13.0, 0 * x - 11.0], -1)
        p[:, _P[b1]] = np.stack([x + 1.1 * w, 0 * x - 15.0, 0 * x - 11.0], -1)
    nl = a["nose_len"]
    p[:, _P["bridge"]] = np.stack([0 * nl, 0 * nl + 6.0, 0 * nl - 16.0], -1)
    p[:, _P["tip"]] = np.stack([0 * nl, nl, 0 * nl - 34.0], -1)
    p[:, _P["nostril"]] = np.stack([0 * nl, nl + 8.0, 0 * nl - 24.0], -1)
    mw = a["mouth_w"] / 2
    p[:, _P["mouth0"]] = np.stack([-mw, 0 * mw + 70.0, 0 * mw - 12.0], -1)
    p[:, _P["mouth1"]] = np.stack([mw, 0 * mw + 70.0, 0 * mw - 12.0], -1)
    p[:, _P["mouthc"]] = np.stack([0 * mw, 0 * mw + 71.0, 0 * mw - 18.0], -1)
    p[:, _P["face"]] = np.stack([0 * mw, 0 * mw + 24.0, 0 * mw + 30.0], -1)
    p[:, _P["faceX"]] = np.stack([a["face_a"], 0 * mw + 24.0, 0 * mw + 30.0], -1)
    p[:, _P["faceY"]] = np.stack([0 * mw, 24.0 + a["face_b"], 0 * mw + 30.0], -1)
    p[:, _P["neck0"]] = np.stack([0 * mw, 0 * mw + 100.0, 0 * mw + 45.0], -1)
    p[:, _P["neck1"]] = np.stack([0 * mw, 0 * mw + 260.0, 0 * mw + 60.0], -1)
    return p


@dataclass
class Lighting:
    """Per-image lighting and camera effects (arrays of shape (N,) or (N, 3))."""

    direction: np.ndarray  # (N, 3) unit vector from the face towards the light, view frame
    ambient: np.ndarray
    diffuse: np.ndarray
    tint: np.ndarray  # (N, 3)
    noise: np.ndarray  # sensor noise sigma, grey levels
    blur: np.ndarray  # Gaussian blur sigma as a fraction of the interocular distance in pixels

    @staticmethod
    def sample(rng: np.random.Generator, n: int) -> "Lighting":
        d = np.stack([rng.uniform(-0.9, 0.9, n), rng.uniform(-0.8, 0.5, n), -np.ones(n)], -1)
        return Lighting(
            direction=(d / np.linalg.norm(d, axis=-1, keepdims=True)).astype(F32),
            ambient=rng.uniform(0.35, 0.6, n).astype(F32),
            diffuse=rng.uniform(0.35, 0.75, n).astype(F32),
            tint=rng.uniform(0.88, 1.12, (n, 3)).astype(F32),
            noise=rng.uniform(1.0, 6.0, n).astype(F32),
            blur=rng.uniform(0.0, 0.025, n).astype(F32),
        )

    def take(self, idx: np.ndarray) -> "Lighting":
        return Lighting(*(getattr(self, k)[idx] for k in ("direction", "ambient", "diffuse", "tint", "noise", "blur")))


@dataclass
class Rendered:
    """Images (N, 3, H, W) float32 in grey levels before noise, with the eye boxes (N, 2, 4),
    the 5 landmarks (N, 5, 2) and the face box (N, 4) in pixels."""

    image: np.ndarray
    eye_boxes: np.ndarray
    landmarks: np.ndarray
    face_box: np.ndarray


def _cos_sin(vec: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(vec, axis=-1, keepdims=True)
    out = vec / np.maximum(n, 1e-9)
    out[n[:, 0] < 1e-9] = (1.0, 0.0)
    return out


def background(rng: np.random.Generator, n: int, height: int, width: int) -> np.ndarray:
    """(N, 3, H, W) float32 backgrounds: a random base colour with a smooth colour field over it."""
    base = rng.uniform(30, 220, (n, 3, 1, 1)).astype(F32)
    return base + R.smooth_field(rng, n, 3, height, width) * rng.uniform(10, 60, (n, 1, 1, 1)).astype(F32)


def render(heads: Heads, cam: Camera, height: int, width: int, light: Lighting, canvas: np.ndarray) -> Rendered:
    """Draw the heads into ``canvas`` (N, 3, H, W) float32 (modified in place and returned in ``Rendered``).

    Effects that belong to the whole image (blur, noise, quantization) are applied by :func:`finish`.
    """
    n = len(heads)
    a = heads.app
    pts_world = heads.to_camera(_feature_points(heads))
    uv, z = cam.project(pts_world)
    P = lambda name: uv[:, _P[name]]  # noqa: E731
    scale = cam.f / z[:, _P["face"]]  # px per mm at the face
    full = Window(0, height, 0, width)
    img = canvas

    # Face, hair and neck: an ellipse with pseudo-normal Lambert shading.
    fc = P("face")
    axes = np.stack([a["face_a"] * scale, a["face_b"] * scale], -1)
    cs = _cos_sin(P("faceX") - fc)
    skin = a["skin"][:, :, None, None] * light.tint[:, :, None, None]
    R.draw_capsule(img, P("neck0"), P("neck1"), 0.68 * a["face_a"] * scale,
                   a["skin"] * light.tint * (light.ambient[:, None] + 0.25))
    hair_cov, _, _ = R.ellipse(full, fc - cs[:, ::-1] * np.array([-1, 1]) * (0.06 * axes[:, 1:2]), axes * 1.07, cs)
    R.blend(img, full, hair_cov, a["hair"] * light.tint * (light.ambient[:, None] + 0.3))
    face_cov, u, v = R.ellipse(full, fc, axes, cs)
    face_cov *= np.clip(F32(0.5) + (v - a["hairline"][:, None, None]) * axes[:, 1, None, None].astype(F32), 0, 1)
    nz = np.sqrt(np.clip(F32(1.0) - u * u - v * v, 0.0, 1.0))
    L = light.direction
    lam = np.clip(u * L[:, 0, None, None] + v * L[:, 1, None, None] - nz * L[:, 2, None, None], 0.0, 1.0)
    shade = light.ambient[:, None, None] + light.diffuse[:, None, None] * lam
    # lerp(img, skin * shade, cov) without a full-size colour image: img * (1 - cov) + skin * (cov * shade).
    img *= (F32(1.0) - face_cov)[:, None]
    img += skin.astype(F32) * (face_cov * shade)[:, None]
    mean_shade = (light.ambient + 0.6 * light.diffuse)[:, None]

    # Brows, nose, mouth: the features that carry the head pose.
    for b0, b1 in (("browL0", "browL1"), ("browR0", "browR1")):
        R.draw_capsule(img, P(b0), P(b1), a["brow_w"] * scale, a["hair"] * 0.7, alpha=0.85)
    side = np.sign(L[:, 0:1]) * np.array([[1.0, 0.0]])
    nose_w = 3.5 * scale
    nose_off = side * nose_w[:, None]
    R.draw_capsule(img, P("bridge") - nose_off, P("tip") - nose_off, nose_w,
                   a["skin"] * light.tint * light.ambient[:, None] * 0.8, alpha=0.5)
    R.draw_capsule(img, P("bridge"), P("tip"), 0.35 * nose_w, a["skin"] * light.tint * np.minimum(mean_shade + 0.25, 1.2),
                   alpha=0.5)
    nostril = (P("nostril") + P("tip")) / 2
    for dx in (-4.5, 4.5):
        off = np.stack([dx * scale, 0 * scale], -1)
        R.draw_capsule(img, nostril + off, nostril + off, 1.6 * scale, a["skin"] * 0.3, alpha=0.8)
    R.draw_capsule(img, P("mouth0"), P("mouthc"), 2.4 * scale, a["lip"] * light.tint * mean_shade)
    R.draw_capsule(img, P("mouthc"), P("mouth1"), 2.4 * scale, a["lip"] * light.tint * mean_shade)

    # Eyes, drawn in one window that holds every eye of the batch.
    eye_c = heads.eye_centers()
    gaze = heads.eye_gaze()
    iris_w = eye_c + IRIS_DEPTH * gaze
    iris_uv, iris_z = cam.project(iris_w)
    g_view = np.einsum("nij,nkj->nki", cam.R, gaze)
    ray = -cam.to_view(iris_w)
    ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
    foreshort = np.clip((g_view * ray).sum(-1), 0.05, 1.0)
    down = np.einsum("nji,nkj->nki", heads.R, gaze)[..., 1]  # eye-in-head downward component
    eye_boxes = np.zeros((n, 2, 4))
    opening = []
    for k, (c0, c1) in enumerate((("cornerL0", "cornerL1"), ("cornerR0", "cornerR1"))):
        A, B = P(c0), P(c1)
        s_eye = cam.f / z[:, _P[c0]]
        up = np.clip(a["lid_up"] - 7.0 * down[:, k], 1.2, 8.0) * s_eye
        dn = np.clip(a["lid_down"] + 1.5 * down[:, k], 1.5, 6.0) * s_eye
        opening.append((A, B, up, dn, s_eye))
        eye_wpx = np.linalg.norm(B - A, axis=-1)
        lo, hi = np.minimum(A, B), np.maximum(A, B)
        mx, my = 0.2 * eye_wpx, 0.25 * eye_wpx
        eye_boxes[:, k] = np.stack([lo[:, 0] - mx, lo[:, 1] - up - my, hi[:, 0] + mx, hi[:, 1] + dn + my], -1)
    win = Window.around(eye_boxes, height, width)
    if win is not None:
        for k, (A, B, up, dn, s_eye) in enumerate(opening):
            open_cov, lash = R.almond(win, A, B, up, dn, lash=0.9 * s_eye)
            sclera_shade = (mean_shade * 0.9 + 0.15)
            R.blend(img, win, open_cov, a["sclera"] * light.tint * sclera_shade)
            r_px = IRIS_RADIUS * cam.f / iris_z[:, k]
            d2 = _cos_sin(g_view[:, k, :2])
            ax = np.stack([r_px * foreshort[:, k], r_px], -1)
            iris_cov, iu, iv = R.ellipse(win, iris_uv[:, k], ax, d2)
            R.blend(img, win, iris_cov * open_cov, a["iris"] * light.tint * sclera_shade)
            pupil = np.clip(F32(0.5) + (F32(0.42) - np.sqrt(iu * iu + iv * iv)) * r_px[:, None, None].astype(F32), 0, 1)
            R.blend(img, win, pupil * open_cov, np.full((n, 3), 12.0, dtype=F32))
            glint_c = iris_uv[:, k] + 0.3 * r_px[:, None] * np.stack([L[:, 0], L[:, 1]], -1)
            glint = R.capsule(win, glint_c, glint_c, 0.1 * r_px) * open_cov
            R.blend(img, win, glint, np.full((n, 3), 250.0, dtype=F32))
            R.blend(img, win, lash, a["hair"] * 0.4)

    lm = np.stack([
        (P("cornerL0") + P("cornerL1")) / 2, (P("cornerR0") + P("cornerR1")) / 2, P("tip"), P("mouth0"), P("mouth1"),
    ], 1)
    r = axes.max(axis=1) * 1.1
    face_box = np.stack([fc[:, 0] - axes[:, 0] * 1.1, fc[:, 1] - r, fc[:, 0] + axes[:, 0] * 1.1, fc[:, 1] + r], -1)
    return Rendered(img, eye_boxes.astype(F32), lm.astype(F32), face_box.astype(F32))


def finish(img: np.ndarray, light: Lighting, iod_px: np.ndarray, rng: np.random.Generator, grey: bool = False) -> np.ndarray:
    """Blur, sensor noise and quantization: (N, 3, H, W) float32 -> (N, C, H, W) uint8 (C = 1 when grey)."""
    sigma = np.clip(light.blur * iod_px, 0.0, 1.5)
    img = R.gaussian_blur(img, sigma)
    if grey:
        img = (F32(0.299) * img[:, 0] + F32(0.587) * img[:, 1] + F32(0.114) * img[:, 2])[:, None]
    noise = rng.standard_normal((img.shape[0], 1, *img.shape[2:]), dtype=F32)
    noise *= light.noise[:, None, None, None]
    img += noise
    img += F32(0.5)  # round to nearest on the cast below
    np.clip(img, 0, 255, out=img)
    return img.astype(np.uint8)
