"""Gaze geometry shared by the renderer, the tasks and the write-ups' data layouts.

Conventions (one place, used everywhere):

* Camera coordinates, millimetres: x to the image's right, y down, z forward (away from the camera).
* Gaze pitch/yaw (radians) follow MPIIFaceGaze: the unit vector is
  ``(-cos(p) sin(y), -sin(p), -cos(p) cos(y))``; (0, 0) looks straight into the camera, positive pitch
  looks up, positive yaw looks towards the image's left.
* MC4 longitude/latitude (degrees) live in the same frame with y flipped (y up), which makes
  ``lo == degrees(yaw)`` and ``la == degrees(pitch)``; the write-up composes head and eye angles as
  ``g = Ry(head_lo) Rx(head_la) e`` in that frame (see :func:`compose_lola`).
* Rotations: ``rotation_matrix(yaw, pitch, roll)`` maps head coordinates to camera coordinates such that
  the head's forward axis ``(0, 0, -1)`` becomes ``pitchyaw_to_vector(pitch, yaw)``.

Every function takes numpy arrays or torch tensors (any leading batch shape) and returns the same kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

Array = Any  # np.ndarray | torch.Tensor


def _is_torch(x: Array) -> bool:
    return isinstance(x, torch.Tensor)


def _stack(xs: Sequence[Array], axis: int) -> Array:
    return torch.stack(list(xs), axis) if _is_torch(xs[0]) else np.stack(xs, axis)


def _as_float(x: Array) -> Array:
    if _is_torch(x):
        return x if x.is_floating_point() else x.float()
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


def _sin(x: Array) -> Array:
    return torch.sin(x) if _is_torch(x) else np.sin(x)


def _cos(x: Array) -> Array:
    return torch.cos(x) if _is_torch(x) else np.cos(x)


def _atan2(y: Array, x: Array) -> Array:
    return torch.atan2(y, x) if _is_torch(y) else np.arctan2(y, x)


def _clip(x: Array, lo: float, hi: float) -> Array:
    return torch.clamp(x, lo, hi) if _is_torch(x) else np.clip(x, lo, hi)


def _norm(v: Array) -> Array:
    return torch.linalg.vector_norm(v, dim=-1) if _is_torch(v) else np.linalg.norm(v, axis=-1)


def _asin_safe(x: Array) -> Array:
    x = _clip(x, -1.0, 1.0)
    return torch.asin(x) if _is_torch(x) else np.arcsin(x)


def normalize(v: Array, eps: float = 1e-12) -> Array:
    """Unit vectors along the last axis: (..., 3) -> (..., 3)."""
    v = _as_float(v)
    n = _norm(v)[..., None]
    return v / (torch.clamp(n, min=eps) if _is_torch(v) else np.maximum(n, eps))


# ----------------------------------------------------------------------------------------------------
# Pitch/yaw <-> vectors, angular error
# ----------------------------------------------------------------------------------------------------


def pitchyaw_to_vector(pitchyaw: Array) -> Array:
    """(..., 2) [pitch, yaw] in radians -> (..., 3) unit gaze vectors in camera coordinates."""
    pitchyaw = _as_float(pitchyaw)
    p, y = pitchyaw[..., 0], pitchyaw[..., 1]
    cp = _cos(p)
    return _stack([-cp * _sin(y), -_sin(p), -cp * _cos(y)], -1)


def vector_to_pitchyaw(v: Array) -> Array:
    """(..., 3) vectors (any length > 0) -> (..., 2) [pitch, yaw] in radians."""
    v = normalize(v)
    return _stack([_asin_safe(-v[..., 1]), _atan2(-v[..., 0], -v[..., 2])], -1)


def angular_error(a: Array, b: Array) -> Array:
    """Angle in degrees between gaze directions; each of a, b is (..., 2) pitch/yaw or (..., 3) vectors.

    Uses atan2(|a x b|, a . b), which stays accurate near 0 and 180 degrees where acos loses precision.
    """
    a = pitchyaw_to_vector(a) if a.shape[-1] == 2 else normalize(a)
    b = pitchyaw_to_vector(b) if b.shape[-1] == 2 else normalize(b)
    if _is_torch(a):
        b = b.to(a.dtype)
        cross = torch.linalg.vector_norm(torch.linalg.cross(a, b, dim=-1), dim=-1)
        return torch.rad2deg(torch.atan2(cross, (a * b).sum(-1)))
    cross = np.linalg.norm(np.cross(a, b), axis=-1)
    return np.degrees(np.arctan2(cross, (a * b).sum(-1)))


# ----------------------------------------------------------------------------------------------------
# Rotations
# ----------------------------------------------------------------------------------------------------


def _rot(axis: str, angle: Array) -> Array:
    c, s = _cos(angle), _sin(angle)
    one, zero = (torch.ones_like(c), torch.zeros_like(c)) if _is_torch(c) else (np.ones_like(c), np.zeros_like(c))
    rows = {
        "x": [[one, zero, zero], [zero, c, -s], [zero, s, c]],
        "y": [[c, zero, s], [zero, one, zero], [-s, zero, c]],
        "z": [[c, -s, zero], [s, c, zero], [zero, zero, one]],
    }[axis]
    return _stack([_stack(r, -1) for r in rows], -2)


def rotation_matrix(yaw: Array, pitch: Array, roll: Array | float = 0.0) -> Array:
    """Head/eye rotation (..., 3, 3) from yaw, pitch, roll in radians: ``Ry(yaw) Rx(-pitch) Rz(-roll)``.

    It maps head coordinates to camera coordinates; ``R @ (0, 0, -1)`` is the gaze vector of
    ``(pitch, yaw)``. Roll turns the head about its forward axis (positive: the top of the head moves
    towards the image's left... as seen by the camera, counter-clockwise).
    """
    yaw, pitch = _as_float(yaw), _as_float(pitch)
    if not _is_torch(roll) and np.isscalar(roll):
        roll = torch.full_like(yaw, float(roll)) if _is_torch(yaw) else np.full_like(yaw, float(roll))
    roll = _as_float(roll)
    return _rot("y", yaw) @ _rot("x", -pitch) @ _rot("z", -roll)


def rotation_to_euler(R: Array) -> Array:
    """Inverse of :func:`rotation_matrix`: (..., 3, 3) -> (..., 3) [yaw, pitch, roll] in radians."""
    yaw = _atan2(R[..., 0, 2], R[..., 2, 2])
    pitch = _asin_safe(R[..., 1, 2])  # R[1,2] = -sin(-pitch)
    roll = -_atan2(R[..., 1, 0], R[..., 1, 1])
    return _stack([yaw, pitch, roll], -1)


def look_at_rotation(center: Array, up_hint: Array | None = None) -> Array:
    """Rotation (..., 3, 3) of a virtual camera at the origin whose optical axis passes through ``center``.

    Rows are the virtual camera's axes in camera coordinates (so ``p_virtual = R @ p``). The x axis is
    taken perpendicular to ``up_hint`` (default: the camera's y axis), which removes in-plane roll the
    way MPIIFaceGaze's normalization does when ``up_hint`` is the head's y axis.
    """
    z = normalize(center)
    if up_hint is None:
        up_hint = torch.zeros_like(z) if _is_torch(z) else np.zeros_like(z)
        up_hint[..., 1] = 1.0
    if _is_torch(z):
        x = normalize(torch.linalg.cross(up_hint.to(z.dtype), z, dim=-1))
        y = torch.linalg.cross(z, x, dim=-1)
    else:
        x = normalize(np.cross(up_hint, z))
        y = np.cross(z, x)
    return _stack([x, y, z], -2)


# ----------------------------------------------------------------------------------------------------
# MC4: longitude/latitude of head and eye, composed into gaze (the write-up's closed form)
# ----------------------------------------------------------------------------------------------------


def lola_to_vector(lola: Array) -> Array:
    """(..., 2) [lo, la] in degrees -> (..., 3) unit vectors in MC4's frame (camera frame with y up)."""
    lola = _as_float(lola)
    lo, la = lola[..., 0] * (np.pi / 180.0), lola[..., 1] * (np.pi / 180.0)
    cla = _cos(la)
    return _stack([-_sin(lo) * cla, _sin(la), -_cos(lo) * cla], -1)


def vector_to_lola(v: Array) -> Array:
    """(..., 3) vectors in MC4's frame -> (..., 2) [lo, la] in degrees (lo = atan2(-x, -z), la = asin(y))."""
    v = normalize(v)
    lo = _atan2(-v[..., 0], -v[..., 2])
    la = _asin_safe(v[..., 1])
    return _stack([lo, la], -1) * (180.0 / np.pi)


def compose_lola(head_lola: Array, eye_lola: Array) -> Array:
    """MC4's ``calc_gaze_lola``: head (..., 2) and eye-in-head (..., 2) lo/la in degrees -> gaze lo/la.

    The closed form of ``g = Ry(A) Rx(B) e`` with A, B the head lo/la and e the eye's lo/la vector.
    """
    head_lola, eye_lola = _as_float(head_lola), _as_float(eye_lola)
    d2r = np.pi / 180.0
    A, B = head_lola[..., 0] * d2r, head_lola[..., 1] * d2r
    C, D = eye_lola[..., 0] * d2r, eye_lola[..., 1] * d2r
    cA, sA, cB, sB = _cos(A), _sin(A), _cos(B), _sin(B)
    cC, sC, cD, sD = _cos(C), _sin(C), _cos(D), _sin(D)
    gx = -cA * sC * cD + sA * sB * sD - sA * cB * cC * cD
    gy = cB * sD + sB * cC * cD
    gz = sA * sC * cD + cA * sB * sD - cA * cB * cC * cD
    return _stack([_atan2(-gx, -gz), _asin_safe(gy)], -1) / d2r


def decompose_lola(head_lola: Array, gaze_lola: Array) -> Array:
    """Inverse of :func:`compose_lola`: the eye-in-head lo/la (degrees) that turns ``head`` into ``gaze``."""
    head_lola = _as_float(head_lola)
    d2r = np.pi / 180.0
    A, B = head_lola[..., 0] * d2r, head_lola[..., 1] * d2r
    g = lola_to_vector(gaze_lola)
    # e = Rx(-B) Ry(-A) g, written out so it broadcasts over any batch shape.
    cA, sA, cB, sB = _cos(A), _sin(A), _cos(B), _sin(B)
    hx = cA * g[..., 0] - sA * g[..., 2]
    hz = sA * g[..., 0] + cA * g[..., 2]
    hy = g[..., 1]
    e = _stack([hx, cB * hy + sB * hz, -sB * hy + cB * hz], -1)
    return vector_to_lola(e)


def normalize_angle01(a: Array) -> Array:
    """MC4's output normalization of angles in degrees: (a + 90) / 180, so [-90, 90] -> [0, 1]."""
    return (a + 90.0) / 180.0


def denormalize_angle01(x: Array) -> Array:
    """Inverse of :func:`normalize_angle01`."""
    return x * 180.0 - 90.0


def pitchyaw_to_lola(pitchyaw: Array) -> Array:
    """MPIIFaceGaze pitch/yaw (radians) -> MC4 lo/la (degrees): the same direction, lo = yaw, la = pitch."""
    pitchyaw = _as_float(pitchyaw)
    return _stack([pitchyaw[..., 1], pitchyaw[..., 0]], -1) * (180.0 / np.pi)


def lola_to_pitchyaw(lola: Array) -> Array:
    """Inverse of :func:`pitchyaw_to_lola`."""
    lola = _as_float(lola)
    return _stack([lola[..., 1], lola[..., 0]], -1) * (np.pi / 180.0)


# ----------------------------------------------------------------------------------------------------
# EVG: screen pixels <-> millimetres <-> camera plane <-> virtual plane
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Screen:
    """A screen in the camera's z = 0 plane.

    ``offset_mm`` is the camera-screen offset: the position of the screen's top-left pixel corner in
    camera coordinates (x right, y down), e.g. (-172, 8) for a laptop camera 8 mm above a 344 mm screen.
    """

    width_mm: float = 344.0
    height_mm: float = 194.0
    width_px: int = 1920
    height_px: int = 1080
    offset_mm: tuple[float, float] = (-172.0, 8.0)

    def px_to_mm(self, px: Array) -> Array:
        """(..., 2) screen pixels -> (..., 2) mm from the screen's top-left corner."""
        px = _as_float(px)
        return _stack([px[..., 0] * (self.width_mm / self.width_px), px[..., 1] * (self.height_mm / self.height_px)], -1)

    def mm_to_px(self, mm: Array) -> Array:
        """Inverse of :meth:`px_to_mm`."""
        mm = _as_float(mm)
        return _stack([mm[..., 0] * (self.width_px / self.width_mm), mm[..., 1] * (self.height_px / self.height_mm)], -1)

    def mm_to_camera(self, mm: Array) -> Array:
        """(..., 2) screen mm -> (..., 2) camera-plane (z = 0) coordinates in mm."""
        mm = _as_float(mm)
        return _stack([mm[..., 0] + self.offset_mm[0], mm[..., 1] + self.offset_mm[1]], -1)

    def camera_to_mm(self, xy: Array) -> Array:
        """Inverse of :meth:`mm_to_camera`."""
        xy = _as_float(xy)
        return _stack([xy[..., 0] - self.offset_mm[0], xy[..., 1] - self.offset_mm[1]], -1)


@dataclass(frozen=True)
class VirtualPlane:
    """EVG's virtual plane: a raster of ``width_mm x height_mm`` at ``pixel_per_mm`` in the camera plane.

    ``origin_mm`` is the plane's top-left corner in camera-plane coordinates; by default the plane is
    centred on the camera horizontally and starts a little above it, so every common screen placed
    below a camera fits.
    """

    width_mm: float = 400.0
    height_mm: float = 300.0
    pixel_per_mm: float = 0.32
    origin_mm: tuple[float, float] = (-200.0, -20.0)

    @property
    def size_px(self) -> tuple[int, int]:
        """(width, height) of the plane raster in plane pixels."""
        return int(round(self.width_mm * self.pixel_per_mm)), int(round(self.height_mm * self.pixel_per_mm))

    def camera_to_plane(self, xy: Array, clamp: bool = True) -> Array:
        """(..., 2) camera-plane mm -> (..., 2) plane pixels, clamped to the plane when ``clamp``."""
        xy = _as_float(xy)
        u = (xy[..., 0] - self.origin_mm[0]) * self.pixel_per_mm
        v = (xy[..., 1] - self.origin_mm[1]) * self.pixel_per_mm
        if clamp:
            w, h = self.size_px
            u, v = _clip(u, 0.0, w - 1.0), _clip(v, 0.0, h - 1.0)
        return _stack([u, v], -1)

    def plane_to_camera(self, uv: Array) -> Array:
        """Inverse of :meth:`camera_to_plane` (without clamping)."""
        uv = _as_float(uv)
        return _stack(
            [uv[..., 0] / self.pixel_per_mm + self.origin_mm[0], uv[..., 1] / self.pixel_per_mm + self.origin_mm[1]], -1
        )


def gaze_ray_to_plane(origin: Array, direction: Array) -> Array:
    """Intersect rays with the camera plane z = 0: (..., 3) origins and directions -> (..., 2) x, y in mm.

    Rays parallel to the plane or pointing away from it have no intersection; they give NaN.
    """
    origin, direction = _as_float(origin), _as_float(direction)
    if _is_torch(origin):
        t = -origin[..., 2] / direction[..., 2]
        t = torch.where(t > 0, t, torch.full_like(t, float("nan")))
    else:
        with np.errstate(divide="ignore", invalid="ignore"):  # parallel rays: no intersection, NaN below
            t = -origin[..., 2] / direction[..., 2]
        t = np.where(t > 0, t, np.nan)
    return _stack([origin[..., 0] + t * direction[..., 0], origin[..., 1] + t * direction[..., 1]], -1)


# ----------------------------------------------------------------------------------------------------
# CenterNet affine transforms and stride padding
# ----------------------------------------------------------------------------------------------------


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = a - b
    return b + np.array([-d[1], d[0]], dtype=np.float64)


def get_affine_transform(
    center: Sequence[float],
    scale: float | Sequence[float],
    rot: float,
    output_size: Sequence[int],
    shift: Sequence[float] = (0.0, 0.0),
    inv: bool = False,
) -> np.ndarray:
    """A 2x3 affine matrix with CenterNet's ``get_affine_transform`` semantics.

    The source region is centred at ``center`` with width ``scale`` (a scalar or (w, h); only the width
    sets the scale, so the map is a similarity), rotated by ``rot`` degrees; it maps onto an output
    raster of ``output_size`` (w, h) so that ``center`` lands at the raster's centre. ``inv=True`` returns
    the map from the output raster back to the source.
    """
    center = np.asarray(center, dtype=np.float64)
    scale_wh = np.array([scale, scale] if np.isscalar(scale) else scale, dtype=np.float64)
    shift = np.asarray(shift, dtype=np.float64)
    dst_w, dst_h = float(output_size[0]), float(output_size[1])
    r = np.deg2rad(rot)
    src_dir = np.array([0.0, -0.5 * scale_wh[0]])
    src_dir = np.array([src_dir[0] * np.cos(r) - src_dir[1] * np.sin(r), src_dir[0] * np.sin(r) + src_dir[1] * np.cos(r)])
    dst_dir = np.array([0.0, -0.5 * dst_w])
    src = np.zeros((3, 2))
    dst = np.zeros((3, 2))
    src[0] = center + scale_wh * shift
    src[1] = src[0] + src_dir
    dst[0] = [0.5 * dst_w, 0.5 * dst_h]
    dst[1] = dst[0] + dst_dir
    src[2] = _third_point(src[0], src[1])
    dst[2] = _third_point(dst[0], dst[1])
    a, b = (dst, src) if inv else (src, dst)
    # Solve [x y 1] @ M.T = [x' y'] for the three point pairs.
    A = np.concatenate([a, np.ones((3, 1))], axis=1)
    return np.linalg.solve(A, b).T


def affine_transform(points: Array, M: np.ndarray) -> Array:
    """Apply a 2x3 affine matrix to (..., 2) points."""
    if _is_torch(points):
        Mt = torch.as_tensor(M, dtype=points.dtype, device=points.device)
        return points @ Mt[:, :2].T + Mt[:, 2]
    points = np.asarray(points, dtype=np.float64)
    return points @ M[:, :2].T + M[:, 2]


def padded_size(size: int, stride: int = 32, mode: str = "centernet") -> int:
    """The input size a stride-``stride`` network really sees.

    ``mode="centernet"`` is the rule of CenterNet and the EVG write-up, ``(size | (stride - 1)) + 1``:
    the smallest multiple of ``stride`` strictly above ``size``, so 480 -> 512, 640 -> 672, 270 -> 288,
    360 -> 384 (a size that is already a multiple still gains a full stride). ``mode="ceil"`` rounds up
    to the nearest multiple (480 -> 480).
    """
    if size <= 0 or stride <= 0:
        raise ValueError(f"expected positive size and stride, got size={size}, stride={stride}")
    if mode == "centernet":
        return (size // stride + 1) * stride
    if mode == "ceil":
        return -(-size // stride) * stride
    raise ValueError(f"unknown padding mode {mode!r}; expected 'centernet' or 'ceil'")


def pad_to_stride(width: int, height: int, stride: int = 32, mode: str = "centernet") -> tuple[int, int]:
    """(width, height) -> padded (width, height); 480x270 -> 512x288 and 640x360 -> 672x384 at stride 32."""
    return padded_size(width, stride, mode), padded_size(height, stride, mode)
