"""Gaze geometry: conventions, round trips and the EVG screen <-> virtual plane <-> heatmap chain.

Every check is against an independent computation written here (explicit rotation matrices, an
explicit Gaussian drawer, a high-precision reference), in float64, with numpy and torch inputs where
the function takes both.
"""

from __future__ import annotations

import math
import warnings

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from workbench.data import geometry as G

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)
BACKENDS = ["numpy", "torch"]
D2R = np.pi / 180.0


def as_backend(x, backend: str):
    x = np.asarray(x, dtype=np.float64)
    return torch.from_numpy(x.copy()) if backend == "torch" else x


def to_np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def check_kind(out, backend: str) -> None:
    """A function given torch returns torch (float64 kept), given numpy returns numpy."""
    if backend == "torch":
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    else:
        assert isinstance(out, np.ndarray) and out.dtype == np.float64


def angles(lo: float, hi: float, n: int):
    """(n,) float64 arrays of angles in (lo, hi)."""
    return hnp.arrays(np.float64, (n,), elements=st.floats(lo, hi, allow_nan=False, exclude_min=True, exclude_max=True))


backend_st = st.sampled_from(BACKENDS)


# ----------------------------------------------------------------------------------------------------
# pitch/yaw <-> vectors, rotations
# ----------------------------------------------------------------------------------------------------


def test_pitchyaw_convention_on_known_directions():
    py = np.array([[0.0, 0.0], [np.pi / 2, 0.0], [0.0, np.pi / 2], [0.0, -np.pi / 2]])
    expected = np.array([[0, 0, -1], [0, -1, 0], [-1, 0, 0], [1, 0, 0]], dtype=np.float64)
    # (0, 0) looks into the camera, positive pitch looks up (y down), positive yaw looks to the image's left.
    np.testing.assert_allclose(G.pitchyaw_to_vector(py), expected, atol=1e-15)


@SETTINGS
@given(p=angles(-89, 89, 8), y=angles(-179, 179, 8), backend=backend_st)
def test_pitchyaw_vector_round_trip(p, y, backend):
    py = as_backend(np.stack([p * D2R, y * D2R], -1), backend)
    v = G.pitchyaw_to_vector(py)
    check_kind(v, backend)
    assert v.shape == (8, 3)
    np.testing.assert_allclose(np.linalg.norm(to_np(v), axis=-1), 1.0, atol=1e-12)
    back = G.vector_to_pitchyaw(v * 3.7)  # any length
    check_kind(back, backend)
    np.testing.assert_allclose(to_np(back), to_np(py), atol=1e-9)


@SETTINGS
@given(p=angles(-89, 89, 6), y=angles(-179, 179, 6), r=angles(-179, 179, 6), backend=backend_st)
def test_rotation_matrix_properties_and_euler_round_trip(p, y, r, backend):
    yaw, pitch, roll = (as_backend(a * D2R, backend) for a in (y, p, r))
    R = G.rotation_matrix(yaw, pitch, roll)
    check_kind(R, backend)
    Rn = to_np(R)
    assert Rn.shape == (6, 3, 3)
    np.testing.assert_allclose(Rn @ np.swapaxes(Rn, -1, -2), np.broadcast_to(np.eye(3), Rn.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(Rn), 1.0, atol=1e-12)
    # The head's forward axis becomes the gaze vector of (pitch, yaw), whatever the roll.
    fwd = Rn @ np.array([0.0, 0.0, -1.0])
    np.testing.assert_allclose(fwd, to_np(G.pitchyaw_to_vector(np.stack([p * D2R, y * D2R], -1))), atol=1e-12)
    euler = G.rotation_to_euler(R)
    check_kind(euler, backend)
    np.testing.assert_allclose(to_np(euler), np.stack([y, p, r], -1) * D2R, atol=1e-9)


def test_rotation_matrix_scalar_roll_and_roll_direction():
    yaw, pitch = np.array([0.0]), np.array([0.0])
    R = G.rotation_matrix(yaw, pitch, 0.3)
    np.testing.assert_allclose(R, G.rotation_matrix(yaw, pitch, np.array([0.3])))
    # Positive roll moves the top of the head (head -y) towards the image's left (-x).
    top = R[0] @ np.array([0.0, -1.0, 0.0])
    assert top[0] < -0.25 and top[1] < 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_look_at_rotation_points_optical_axis_at_center(backend):
    rng = np.random.default_rng(0)
    c = rng.normal(size=(16, 3)) * 100 + np.array([0.0, 0.0, 600.0])
    R = G.look_at_rotation(as_backend(c, backend))
    check_kind(R, backend)
    Rn = to_np(R)
    np.testing.assert_allclose(Rn @ np.swapaxes(Rn, -1, -2), np.broadcast_to(np.eye(3), Rn.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(Rn), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.einsum("nij,nj->ni", Rn, c), np.stack([0 * c[:, 0], 0 * c[:, 0], np.linalg.norm(c, axis=-1)], -1), atol=1e-9)
    # No in-plane roll: the virtual x axis is perpendicular to the camera's y axis.
    np.testing.assert_allclose(Rn[:, 0, 1], 0.0, atol=1e-12)


# ----------------------------------------------------------------------------------------------------
# angular error
# ----------------------------------------------------------------------------------------------------


def _mp_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """High-precision angle (degrees) between the exact float64 vectors a and b."""
    with mpmath.workdps(60):
        A = [mpmath.mpf(float(x)) for x in a]
        B = [mpmath.mpf(float(x)) for x in b]
        cross = [A[1] * B[2] - A[2] * B[1], A[2] * B[0] - A[0] * B[2], A[0] * B[1] - A[1] * B[0]]
        cn = mpmath.sqrt(sum(c * c for c in cross))
        dot = sum(x * y for x, y in zip(A, B))
        return float(mpmath.degrees(mpmath.atan2(cn, dot)))


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


@pytest.mark.parametrize("backend", BACKENDS)
def test_angular_error_identical_opposite_and_known(backend):
    rng = np.random.default_rng(1)
    v = rng.normal(size=(32, 3))
    a = as_backend(v, backend)
    same = G.angular_error(a, a * 2.5)  # different lengths, same direction
    check_kind(same, backend)
    np.testing.assert_allclose(to_np(same), 0.0, atol=1e-6)
    opposite = to_np(G.angular_error(a, -a))
    assert (opposite == 180.0).all(), opposite
    # Two vectors at exactly 37 degrees, built explicitly and then rotated anywhere.
    t = np.deg2rad(37.0)
    u0, w0 = np.array([0.0, 0.0, 1.0]), np.array([np.sin(t), 0.0, np.cos(t)])
    Rs = np.stack([_random_rotation(rng) for _ in range(32)])
    u, w = Rs @ u0, Rs @ w0
    got = to_np(G.angular_error(as_backend(u, backend), as_backend(w * 4.0, backend)))
    np.testing.assert_allclose(got, 37.0, atol=1e-10)
    got_sym = to_np(G.angular_error(as_backend(w, backend), as_backend(u, backend)))
    np.testing.assert_allclose(got_sym, got, rtol=0, atol=1e-12)  # symmetric (to rounding)


@SETTINGS
@given(
    p1=angles(-85, 85, 5), y1=angles(-175, 175, 5), p2=angles(-85, 85, 5), y2=angles(-175, 175, 5), backend=backend_st,
)
def test_angular_error_pitchyaw_matches_vectors_and_is_symmetric(p1, y1, p2, y2, backend):
    a = np.stack([p1, y1], -1) * D2R
    b = np.stack([p2, y2], -1) * D2R
    va, vb = G.pitchyaw_to_vector(a), G.pitchyaw_to_vector(b)
    e_py = to_np(G.angular_error(as_backend(a, backend), as_backend(b, backend)))
    e_vec = to_np(G.angular_error(as_backend(va, backend), as_backend(vb, backend)))
    e_mixed = to_np(G.angular_error(as_backend(a, backend), as_backend(vb, backend)))  # (..,2) against (..,3)
    e_rev = to_np(G.angular_error(as_backend(b, backend), as_backend(a, backend)))
    reference = np.degrees(np.arccos(np.clip((va * vb).sum(-1), -1, 1)))  # fine away from 0 and 180
    np.testing.assert_allclose(e_py, e_vec, atol=1e-10)
    np.testing.assert_allclose(e_mixed, e_vec, atol=1e-10)
    np.testing.assert_allclose(e_rev, e_py, atol=1e-10)
    ok = (reference > 0.1) & (reference < 179.9)
    np.testing.assert_allclose(e_py[ok], reference[ok], atol=1e-6)
    assert ((e_py >= 0) & (e_py <= 180)).all()


def test_angular_error_batch_shapes_and_torch_numpy_agree():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(4, 5, 3))
    b = rng.uniform(-1, 1, size=(4, 5, 2))
    e_np = G.angular_error(a, b)
    e_t = G.angular_error(torch.from_numpy(a), torch.from_numpy(b))
    assert e_np.shape == (4, 5) and tuple(e_t.shape) == (4, 5)
    assert e_t.dtype == torch.float64
    np.testing.assert_allclose(e_t.numpy(), e_np, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("near_180", [False, True])
def test_angular_error_accurate_near_0_and_180(backend, near_180):
    rng = np.random.default_rng(3)
    ts = np.array([1e-9, 1e-8, 1e-7, 1e-6, 3e-6, 1e-5, 1e-4] * 4)
    a, b, ref = [], [], []
    for t in ts:
        R = _random_rotation(rng)
        u0 = np.array([0.0, 0.0, 1.0])
        w0 = np.array([np.sin(t), 0.0, -np.cos(t) if near_180 else np.cos(t)])
        u, w = R @ u0, R @ w0 * rng.uniform(0.5, 3.0)
        a.append(u)
        b.append(w)
        ref.append(_mp_angle_deg(u, w))
    a, b, ref = np.array(a), np.array(b), np.array(ref)
    got = to_np(G.angular_error(as_backend(a, backend), as_backend(b, backend)))
    if near_180:
        dev, ref_dev = 180.0 - got, 180.0 - ref  # accuracy of the deviation from 180
        # float64 holds 180 - x to ~3e-14 deg absolute; the tiniest deviations are limited by that.
        np.testing.assert_allclose(dev, ref_dev, rtol=1e-6, atol=1e-13)
    else:
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=0)
        # The test is meaningful: an acos implementation fails it badly on these inputs.
        an, bn = a / np.linalg.norm(a, axis=-1, keepdims=True), b / np.linalg.norm(b, axis=-1, keepdims=True)
        acos = np.degrees(np.arccos(np.clip((an * bn).sum(-1), -1, 1)))
        assert np.max(np.abs(acos - ref) / ref) > 1e-2


# ----------------------------------------------------------------------------------------------------
# MC4 longitude/latitude
# ----------------------------------------------------------------------------------------------------


def _Ry(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _Rx(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _reference_compose(head: np.ndarray, eye: np.ndarray) -> np.ndarray:
    """g = Ry(lo) Rx(la) e in MC4's y-up frame, computed with explicit matrices one sample at a time."""
    out = []
    for (A, B), (C, D) in zip(head * D2R, eye * D2R):
        e = np.array([-math.sin(C) * math.cos(D), math.sin(D), -math.cos(C) * math.cos(D)])
        g = _Ry(A) @ _Rx(B) @ e
        out.append([math.atan2(-g[0], -g[2]), math.asin(g[1])])
    return np.degrees(np.array(out))


def test_lola_frame_convention():
    # Head rotations alone: Ry(lo) and Rx(la) applied to the forward axis give back lo and la.
    head = np.array([[30.0, 0.0], [0.0, 20.0], [-40.0, -10.0]])
    np.testing.assert_allclose(G.compose_lola(head, np.zeros_like(head)), head, atol=1e-12)
    np.testing.assert_allclose(G.compose_lola(np.zeros_like(head), head), head, atol=1e-12)
    np.testing.assert_allclose(G.lola_to_vector(np.array([0.0, 90.0])), [0, 1, 0], atol=1e-15)  # la > 0 is up (y up)


@SETTINGS
@given(h=hnp.arrays(np.float64, (6, 2), elements=st.floats(-60, 60)),
       e=hnp.arrays(np.float64, (6, 2), elements=st.floats(-60, 60)), backend=backend_st)
def test_compose_lola_matches_rotation_matrices_and_decompose_inverts(h, e, backend):
    ref = _reference_compose(h, e)
    g = G.compose_lola(as_backend(h, backend), as_backend(e, backend))
    check_kind(g, backend)
    np.testing.assert_allclose(to_np(g), ref, atol=1e-9)
    back = G.decompose_lola(as_backend(h, backend), g)
    check_kind(back, backend)
    np.testing.assert_allclose(to_np(back), e, atol=1e-9)


@SETTINGS
@given(p=angles(-89, 89, 6), y=angles(-179, 179, 6), backend=backend_st)
def test_lola_pitchyaw_conversions(p, y, backend):
    py = as_backend(np.stack([p, y], -1) * D2R, backend)
    lola = G.pitchyaw_to_lola(py)
    check_kind(lola, backend)
    np.testing.assert_allclose(to_np(lola), np.stack([y, p], -1), atol=1e-9)  # lo == yaw, la == pitch (deg)
    np.testing.assert_allclose(to_np(G.lola_to_pitchyaw(lola)), to_np(py), atol=1e-12)
    # Same direction: MC4's frame is the camera frame with y flipped.
    flip = np.array([1.0, -1.0, 1.0])
    np.testing.assert_allclose(to_np(G.lola_to_vector(lola)), to_np(G.pitchyaw_to_vector(py)) * flip, atol=1e-12)
    np.testing.assert_allclose(to_np(G.vector_to_lola(G.lola_to_vector(lola))), to_np(lola), atol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_normalize_angle01(backend):
    a = as_backend([-90.0, 0.0, 90.0, 45.0], backend)
    x = G.normalize_angle01(a)
    np.testing.assert_allclose(to_np(x), [0.0, 0.5, 1.0, 0.75], atol=1e-15)
    np.testing.assert_allclose(to_np(G.denormalize_angle01(x)), to_np(a), atol=1e-12)
    rng = np.random.default_rng(4)
    r = as_backend(rng.uniform(-120, 120, 50), backend)
    np.testing.assert_allclose(to_np(G.denormalize_angle01(G.normalize_angle01(r))), to_np(r), atol=1e-12)


def test_mc4_functions_are_differentiable():
    gen = torch.Generator().manual_seed(0)
    head = ((torch.rand(4, 2, generator=gen, dtype=torch.float64) - 0.5) * 100).requires_grad_()
    eye = ((torch.rand(4, 2, generator=gen, dtype=torch.float64) - 0.5) * 60).requires_grad_()
    assert torch.autograd.gradcheck(G.compose_lola, (head, eye))
    assert torch.autograd.gradcheck(G.decompose_lola, (head, eye))
    assert torch.autograd.gradcheck(lambda x: G.vector_to_lola(G.lola_to_vector(x)), (eye,))
    g = G.compose_lola(head, eye)
    g.sum().backward()
    assert torch.isfinite(head.grad).all() and head.grad.abs().sum() > 0


# ----------------------------------------------------------------------------------------------------
# EVG: screen <-> camera plane <-> virtual plane <-> heatmap
# ----------------------------------------------------------------------------------------------------


@SETTINGS
@given(px=hnp.arrays(np.float64, (10, 2), elements=st.floats(-3000, 5000)), backend=backend_st)
def test_screen_round_trips(px, backend):
    s = G.Screen()
    p = as_backend(px, backend)
    mm = s.px_to_mm(p)
    check_kind(mm, backend)
    np.testing.assert_allclose(to_np(mm), px * np.array([344.0 / 1920, 194.0 / 1080]), atol=1e-9)
    cam = s.mm_to_camera(mm)
    np.testing.assert_allclose(to_np(cam), to_np(mm) + np.array([-172.0, 8.0]), atol=1e-9)
    np.testing.assert_allclose(to_np(s.mm_to_px(s.camera_to_mm(cam))), px, atol=1e-8)


def test_screen_corners_in_camera_plane():
    s = G.Screen()
    corners = s.mm_to_camera(s.px_to_mm(np.array([[0.0, 0.0], [1920.0, 1080.0]])))
    # The camera sits 8 mm above the top edge, centred horizontally.
    np.testing.assert_allclose(corners, [[-172.0, 8.0], [172.0, 202.0]], atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_virtual_plane_clamps_and_inverts(backend):
    vp = G.VirtualPlane()
    w, h = vp.size_px
    assert (w, h) == (128, 96)
    rng = np.random.default_rng(5)
    inside_uv = rng.uniform([0, 0], [w - 1, h - 1], (200, 2))
    xy = to_np(vp.plane_to_camera(as_backend(inside_uv, backend)))
    uv = vp.camera_to_plane(as_backend(xy, backend))
    check_kind(uv, backend)
    np.testing.assert_allclose(to_np(uv), inside_uv, atol=1e-9)
    np.testing.assert_allclose(to_np(vp.plane_to_camera(uv)), xy, atol=1e-9)
    far = np.array([[-1000.0, 100.0], [1000.0, 100.0], [0.0, -500.0], [0.0, 900.0], [-900.0, -900.0], [900.0, 900.0]])
    got = to_np(vp.camera_to_plane(as_backend(far, backend)))
    np.testing.assert_allclose(got, [[0, 100 * 0.32 + 6.4], [w - 1, 38.4], [64, 0], [64, h - 1], [0, 0], [w - 1, h - 1]],
                               atol=1e-9)
    unclamped = to_np(vp.camera_to_plane(as_backend(far, backend), clamp=False))
    np.testing.assert_allclose(to_np(vp.plane_to_camera(unclamped)), far, atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gaze_ray_to_plane(backend):
    origin = np.array([[10.0, 20.0, 500.0], [0.0, 0.0, 600.0], [0.0, 0.0, 600.0], [5.0, 5.0, 400.0]])
    direction = np.array([[0.1, 0.2, -1.0], [0.0, 0.0, 1.0], [0.3, 0.1, 0.0], [-0.5, 1.0, -2.0]])
    hit = to_np(G.gaze_ray_to_plane(as_backend(origin, backend), as_backend(direction, backend)))
    np.testing.assert_allclose(hit[0], [60.0, 120.0], atol=1e-12)
    np.testing.assert_allclose(hit[3], [5.0 - 100.0, 5.0 + 200.0], atol=1e-12)
    assert np.isnan(hit[1]).all()  # pointing away from the plane
    assert np.isnan(hit[2]).all()  # parallel to it


def test_gaze_ray_to_plane_parallel_ray_is_silent_nan():
    # Regression: numpy used to emit 'divide by zero' / 'invalid value' RuntimeWarnings for documented input.
    origin = np.array([[0.0, 0.0, 600.0], [0.0, 0.0, 0.0]])
    direction = np.array([[0.3, 0.1, 0.0], [1.0, 0.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hit = G.gaze_ray_to_plane(origin, direction)
    assert np.isnan(hit).all()


def _gaussian_heatmaps(centres: np.ndarray, w: int, h: int, sigma: float = 1.0) -> np.ndarray:
    """(N, 2) continuous heatmap coordinates -> (N, h, w) Gaussians (CenterNet cell i is coordinate i)."""
    X = np.arange(w, dtype=np.float64)[None, None, :]
    Y = np.arange(h, dtype=np.float64)[None, :, None]
    d2 = (X - centres[:, 0, None, None]) ** 2 + (Y - centres[:, 1, None, None]) ** 2
    return np.exp(-d2 / (2 * sigma * sigma))


def _evg_round_trip(px: np.ndarray, backend: str, stride: int):
    """screen px -> mm -> camera -> plane (clamped) -> heatmap peak -> plane -> camera -> mm -> px."""
    s, vp = G.Screen(), G.VirtualPlane()
    w, h = vp.size_px
    hw, hh = w // stride, h // stride
    M = G.get_affine_transform((w / 2, h / 2), w, 0, (hw, hh))
    Minv = G.get_affine_transform((w / 2, h / 2), w, 0, (hw, hh), inv=True)
    uv = vp.camera_to_plane(s.mm_to_camera(s.px_to_mm(as_backend(px, backend))))
    cell = G.affine_transform(uv, M)
    check_kind(cell, backend)
    hm = _gaussian_heatmaps(to_np(cell), hw, hh)
    flat = hm.reshape(len(hm), -1).argmax(-1)
    peak = np.stack([flat % hw, flat // hw], -1).astype(np.float64)
    uv_back = G.affine_transform(as_backend(peak, backend), Minv)
    px_back = s.mm_to_px(s.camera_to_mm(vp.plane_to_camera(uv_back)))
    check_kind(px_back, backend)
    clamped_px = s.mm_to_px(s.camera_to_mm(vp.plane_to_camera(uv)))
    # One heatmap cell is `stride` plane px = stride / pixel_per_mm mm, in screen px per axis:
    cell_px = stride / vp.pixel_per_mm * np.array([s.width_px / s.width_mm, s.height_px / s.height_mm])
    return to_np(uv), to_np(px_back), to_np(clamped_px), cell_px, (w, h)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("stride", [4, 8])
def test_evg_pog_round_trip_through_heatmap(backend, stride):
    rng = np.random.default_rng(6)
    on_screen = rng.uniform([0, 0], [1920, 1080], (300, 2))
    off_screen = rng.uniform([-1500, -900], [3500, 2200], (300, 2))
    grid = np.stack(np.meshgrid(np.linspace(0, 1920, 9), np.linspace(0, 1080, 7)), -1).reshape(-1, 2)
    px = np.concatenate([on_screen, grid, off_screen])
    uv, px_back, clamped_px, cell_px, (w, h) = _evg_round_trip(px, backend, stride)
    # The screen lies inside the plane: on-screen points are never clamped.
    n_in = len(on_screen) + len(grid)
    np.testing.assert_allclose(clamped_px[:n_in], px[:n_in], atol=1e-8)
    # Points off the plane are clamped onto its border, and the round trip returns the clamped point.
    was_clamped = (np.abs(clamped_px - px) > 1e-6).any(-1)
    assert was_clamped[n_in:].sum() > 50
    on_border = (np.isclose(uv[:, 0], 0) | np.isclose(uv[:, 0], w - 1) | np.isclose(uv[:, 1], 0) | np.isclose(uv[:, 1], h - 1))
    assert on_border[was_clamped].all()
    assert ((uv >= 0) & (uv <= np.array([w - 1, h - 1]))).all()
    # Decoding the argmax recovers the (clamped) start within one heatmap cell per axis...
    err = np.abs(px_back - clamped_px)
    assert (err <= cell_px).all(), err.max(0)
    assert (np.abs(px_back[:n_in] - px[:n_in]) <= cell_px).all()
    # ...and within half a cell wherever the point falls between the heatmap's first and last cell centres.
    # (The plane clamps to [0, w-1] plane px, but the last cell centre is (w/stride-1)*stride, so a band of
    # stride-1 plane px at the right/bottom border decodes to the last cell: up to 0.75 cell off.)
    covered = (uv <= np.array([(w // stride - 1) * stride, (h // stride - 1) * stride])).all(-1)
    assert covered.sum() > len(px) // 2
    assert (err[covered] <= 0.5 * cell_px + 1e-6).all(), err[covered].max(0)


@SETTINGS
@given(x=st.floats(-2000, 4000), y=st.floats(-1500, 2500), backend=backend_st)
def test_evg_pog_round_trip_single_points(x, y, backend):
    px = np.array([[x, y]])
    uv, px_back, clamped_px, cell_px, (w, h) = _evg_round_trip(px, backend, 4)
    err = np.abs(px_back - clamped_px)
    assert (err <= cell_px).all()
    if (uv <= np.array([w - 4, h - 4])).all():
        assert (err <= 0.5 * cell_px + 1e-6).all()
    if 0 <= x <= 1920 and 0 <= y <= 1080:
        np.testing.assert_allclose(clamped_px, px, atol=1e-8)


# ----------------------------------------------------------------------------------------------------
# CenterNet affine transforms and stride padding
# ----------------------------------------------------------------------------------------------------


@SETTINGS
@given(
    cx=st.floats(-500, 500), cy=st.floats(-500, 500), scale=st.floats(10, 2000), rot=st.floats(-180, 180),
    ow=st.integers(4, 256), oh=st.integers(4, 256), backend=backend_st,
)
def test_affine_forward_inverse_identity_and_centre(cx, cy, scale, rot, ow, oh, backend):
    M = G.get_affine_transform((cx, cy), scale, rot, (ow, oh))
    Minv = G.get_affine_transform((cx, cy), scale, rot, (ow, oh), inv=True)
    assert M.shape == (2, 3) and Minv.shape == (2, 3)
    rng = np.random.default_rng(7)
    pts = rng.uniform(-1000, 1000, (20, 2))
    fwd = G.affine_transform(as_backend(pts, backend), M)
    check_kind(fwd, backend)
    back = G.affine_transform(fwd, Minv)
    np.testing.assert_allclose(to_np(back), pts, atol=1e-6)
    np.testing.assert_allclose(G.affine_transform(np.array([cx, cy]), M), [ow / 2, oh / 2], atol=1e-8)
    # A similarity: scale out_w / scale, rotated by rot degrees.
    k, r = ow / scale, np.deg2rad(rot)
    np.testing.assert_allclose(M[:, :2], k * np.array([[np.cos(r), np.sin(r)], [-np.sin(r), np.cos(r)]]), atol=1e-9 * max(1, k))


@pytest.mark.parametrize("backend", BACKENDS)
def test_affine_rot90_and_scale_pair(backend):
    M = G.get_affine_transform((100.0, 50.0), 200.0, 90, (64, 32))
    # A source point right of the centre lands above the raster centre, one below lands right of it.
    pts = as_backend([[100.0, 50.0], [200.0, 50.0], [100.0, 150.0]], backend)
    got = to_np(G.affine_transform(pts, M))
    np.testing.assert_allclose(got, [[32, 16], [32, 16 - 32], [32 + 32, 16]], atol=1e-9)
    # Only the width of a (w, h) scale sets the scale; shift moves the source centre by scale * shift.
    np.testing.assert_allclose(G.get_affine_transform((100, 50), (200, 999), 0, (64, 32)),
                               G.get_affine_transform((100, 50), 200, 0, (64, 32)), atol=1e-12)
    Ms = G.get_affine_transform((100, 50), 200, 0, (64, 32), shift=(0.1, 0.0))
    np.testing.assert_allclose(G.affine_transform(np.array([120.0, 50.0]), Ms), [32, 16], atol=1e-9)


def test_padded_size_figures():
    assert G.pad_to_stride(480, 270) == (512, 288)
    assert G.pad_to_stride(640, 360) == (672, 384)
    assert G.padded_size(480, 32, mode="ceil") == 480
    assert G.padded_size(481, 32, mode="ceil") == 512
    assert G.padded_size(270, 32, mode="ceil") == 288
    assert G.pad_to_stride(480, 270, mode="ceil") == (480, 288)
    assert G.padded_size(1) == 32 and G.padded_size(31) == 32 and G.padded_size(32) == 64


@SETTINGS
@given(size=st.integers(1, 5000), log_stride=st.integers(0, 7))
def test_padded_size_matches_centernet_bit_rule(size, log_stride):
    stride = 2 ** log_stride
    got = G.padded_size(size, stride)
    assert got == (size | (stride - 1)) + 1
    assert got % stride == 0 and size < got <= size + stride
    ceil = G.padded_size(size, stride, mode="ceil")
    assert ceil % stride == 0 and size <= ceil < size + stride


@pytest.mark.parametrize("args", [(0, 32), (-5, 32), (480, 0), (480, -32)])
def test_padded_size_rejects_non_positive(args):
    with pytest.raises(ValueError, match="positive"):
        G.padded_size(*args)


def test_padded_size_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        G.padded_size(480, 32, mode="floor")
    with pytest.raises(ValueError):
        G.pad_to_stride(480, 270, mode="round")
