"""SynthGaze: documented arrays, determinism, subjects, label geometry, and gaze carried by the eyes."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.data import _head as H
from workbench.data import geometry as G
from workbench.data import synth as S
from workbench.errors import WorkbenchError

N = S.CHUNK  # one chunk: the smallest render there is
SMALL = {"face": 32, "mc4": 32, "itracker": 32, "frame": (96, 64), "track": 32}

# The module docstring's table: key -> (shape after N with S/H/W symbolic, dtype).
IMAGE = np.uint8
LABEL = np.float32
INT = np.int64
SPEC = {
    "face": {"image": ((3, "S", "S"), IMAGE), "gaze_pitchyaw": ((2,), LABEL), "head_pitchyaw": ((2,), LABEL),
             "landmarks": ((5, 2), LABEL), "eye_boxes": ((2, 4), LABEL)},
    "mc4": {"face": ((1, "S", "S"), IMAGE), "l_eye": ((1, "S", "S"), IMAGE), "r_eye": ((1, "S", "S"), IMAGE),
            "head_lola": ((2,), LABEL), "eye_lola": ((2,), LABEL), "gaze_lola": ((2,), LABEL), "eye_boxes": ((2, 4), LABEL),
            "l_eye_boxes": ((2, 4), LABEL), "r_eye_boxes": ((2, 4), LABEL)},
    "itracker": {"eyes": ((4, 3, "S", "S"), IMAGE), "pog_px": ((2,), LABEL), "pog_mm": ((2,), LABEL),
                 "eye_boxes": ((4, 2, 4), LABEL)},
    "frame": {"image": ((3, "H", "W"), IMAGE), "pog_px": ((2,), LABEL), "pog_mm": ((2,), LABEL), "screen_mm": ((2,), LABEL),
              "screen_px": ((2,), LABEL), "offset_mm": ((2,), LABEL), "face_box": ((4,), LABEL), "eye_boxes": ((2, 4), LABEL),
              "landmarks": ((5, 2), LABEL), "gaze": ((3,), LABEL), "eye_center": ((3,), LABEL)},
    "track": {"frames": ((7, 3, "S", "S"), IMAGE), "label": ((), INT), "frame_labels": ((7,), INT),
              "head_pose": ((7, 3), LABEL), "landmarks": ((7, 5, 2), LABEL), "gaze_pitchyaw": ((7, 2), LABEL),
              "eye_boxes": ((7, 2, 4), LABEL)},
}
DEFAULT_DIMS = {"face": {"S": 112}, "mc4": {"S": 224}, "itracker": {"S": 64}, "frame": {"W": 480, "H": 270},
                "track": {"S": 64}}


def _dims(view: str, size) -> dict[str, int]:
    if size is None:
        return DEFAULT_DIMS[view]
    return {"W": size[0], "H": size[1]} if view == "frame" else {"S": size}


def _check_arrays(view: str, data: dict, n: int, size=None) -> None:
    dims = _dims(view, size)
    expected = dict(SPEC[view], subject=((), INT), index=((), INT))
    assert set(data) == set(expected), f"{view}: keys {sorted(data)}"
    for key, (shape, dtype) in expected.items():
        want = (n,) + tuple(dims[d] if isinstance(d, str) else d for d in shape)
        assert data[key].shape == want, f"{view}.{key}: expected {want}, got {data[key].shape}"
        assert data[key].dtype == dtype, f"{view}.{key}: expected {dtype}, got {data[key].dtype}"
        if dtype == LABEL:
            assert np.isfinite(data[key]).all(), f"{view}.{key} has non-finite values"


@pytest.fixture(scope="module")
def default_data() -> dict[str, dict[str, np.ndarray]]:
    """One chunk of every view at its default size, seed 0."""
    return {view: S.render(view, N, seed=0) for view in S.VIEWS}


@pytest.mark.parametrize("view", S.VIEWS)
def test_default_views_have_documented_arrays(view, default_data):
    data = default_data[view]
    _check_arrays(view, data, N)
    np.testing.assert_array_equal(data["index"], np.arange(N))
    assert set(np.unique(data["subject"])) <= set(range(15))
    for key, (_, dtype) in SPEC[view].items():
        if dtype == IMAGE:
            img = data[key]
            assert img.std() > 10, f"{view}.{key} looks blank"  # something was drawn


@pytest.mark.parametrize("view", S.VIEWS)
def test_small_sizes_and_determinism(view):
    size = SMALL[view]
    a = S.render(view, 2 * N, seed=3, size=size)
    _check_arrays(view, a, 2 * N, size)
    b = S.render(view, 2 * N, seed=3, size=size)
    for k in a:
        assert a[k].tobytes() == b[k].tobytes(), f"{view}.{k} differs between two renders of the same seed"
    c = S.render(view, N, seed=4, size=size)
    image_key = next(k for k, (_, d) in SPEC[view].items() if d == IMAGE)
    assert not np.array_equal(a[image_key][:N], a[image_key][N:]), "two chunks of one seed are the same"
    assert not np.array_equal(a[image_key][:N], c[image_key]), "a different seed gave the same images"
    label_keys = [k for k, (_, d) in SPEC[view].items() if d == LABEL and k not in ("screen_mm", "screen_px", "offset_mm")]
    for k in label_keys:
        assert not np.array_equal(a[k][:N], c[k]), f"{view}.{k}: a different seed gave the same labels"

    # Sample i is the same bytes however it is asked for, on both sides of the chunk boundary.
    ds = S.SynthGaze(view, 2 * N, seed=3, size=size, cache_chunks=1)
    assert len(ds) == 2 * N
    for i in (0, N - 1, N, 2 * N - 1):
        one = S.render(view, 1, seed=3, size=size, start=i)
        item = ds[i]
        assert set(item) == set(a)
        for k in a:
            assert one[k].shape == (1,) + a[k].shape[1:]
            assert one[k][0].tobytes() == a[k][i].tobytes(), f"{view}.{k}[{i}] alone differs from the batch"
            assert np.asarray(item[k]).tobytes() == a[k][i].tobytes(), f"{view}.{k}[{i}] via SynthGaze differs"
        assert int(item["index"]) == i
    window = S.render(view, 10, seed=3, size=size, start=N - 5)  # spans the boundary
    for k in a:
        assert window[k].tobytes() == a[k][N - 5:N + 5].tobytes()


def test_progress_and_dataset_bounds():
    seen = []
    S.render("face", 100, size=16, start=30, progress=seen.append)
    assert sum(seen) == 100 and len(seen) == 3
    ds = S.SynthGaze("face", 5, size=16)
    with pytest.raises(IndexError):
        ds[5]
    with pytest.raises(IndexError):
        ds[-1]


# ----------------------------------------------------------------------------------------------------
# subjects
# ----------------------------------------------------------------------------------------------------


def test_subject_selection_and_held_out_splits():
    d = S.render("face", N, size=16, subjects=[3, 7])
    assert set(np.unique(d["subject"])) == {3, 7}
    train = S.render("face", 2 * N, size=16, subjects=range(10))
    val = S.render("face", 2 * N, size=16, subjects=[10, 11, 12, 13, 14], seed=1)
    assert set(np.unique(train["subject"])) == set(range(10))
    assert set(np.unique(val["subject"])) == set(range(10, 15))
    assert not set(train["subject"]) & set(val["subject"])
    default = S.render("face", 2 * N, size=16)
    assert set(np.unique(default["subject"])) == set(range(15))  # subjects=15 means ids 0..14


def test_appearance_is_fixed_by_subject_id():
    app = H.appearance(np.array([5, 5, 6, 5]))
    again = H.appearance(np.array([6, 5]))
    for k, v in app.items():
        np.testing.assert_array_equal(v[0], v[1], err_msg=k)
        np.testing.assert_array_equal(v[0], v[3], err_msg=k)
        np.testing.assert_array_equal(again[k][1], v[0], err_msg=k)  # independent of batch and order
        np.testing.assert_array_equal(again[k][0], v[2], err_msg=k)
    for k in ("skin", "iod", "eye_w", "face_a"):  # continuous traits differ between ids
        assert not np.array_equal(app[k][0], app[k][2]), k
    many = H.appearance(np.arange(40))
    assert len(np.unique(many["iod"])) == 40 and len(np.unique(many["skin"][:, 0])) == 40


# ----------------------------------------------------------------------------------------------------
# label geometry
# ----------------------------------------------------------------------------------------------------


def test_mc4_gaze_is_composed_from_head_and_eye():
    d = S.render("mc4", 10_000, size=32, seed=11)
    head, eye, gaze = (d[k].astype(np.float64) for k in ("head_lola", "eye_lola", "gaze_lola"))
    composed = G.compose_lola(head, eye)
    err = np.abs(composed - gaze).max()
    assert err < 1e-3, f"compose_lola(head, eye) is {err:.2e} deg from gaze_lola"
    np.testing.assert_allclose(G.decompose_lola(head, gaze), eye, atol=1e-3)
    # Plausible ranges: the subjects look at (or near) a screen below the camera.
    assert np.abs(gaze).max() < 70 and np.abs(head).max() < 80 and np.abs(eye).max() < 60
    # Labels do not depend on the image size.
    small = S.render("mc4", N, size=16, seed=11)
    for k in ("head_lola", "eye_lola", "gaze_lola"):
        np.testing.assert_array_equal(small[k], d[k][:N])


def _inside(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    return ((points[..., 0] >= boxes[..., 0]) & (points[..., 0] <= boxes[..., 2])
            & (points[..., 1] >= boxes[..., 1]) & (points[..., 1] <= boxes[..., 3]))


def test_face_view_labels(default_data):
    d = default_data["face"]
    S_ = 112
    for key in ("gaze_pitchyaw", "head_pitchyaw"):
        deg = np.rad2deg(d[key])
        assert np.abs(deg).max() < 70, f"{key} out of range: {np.abs(deg).max(0)}"
        assert deg.std(0).min() > 2, f"{key} barely varies"
    boxes = d["eye_boxes"]
    assert (boxes[..., :2] >= 0).all() and (boxes[..., 2:] <= S_).all(), "eye boxes leave the image"
    assert (boxes[..., 2] > boxes[..., 0]).all() and (boxes[..., 3] > boxes[..., 1]).all()
    assert (boxes[:, 0, 0] < boxes[:, 1, 0]).all(), "the image-left eye box comes first"
    assert _inside(d["landmarks"][:, 0], boxes[:, 0]).all() and _inside(d["landmarks"][:, 1], boxes[:, 1]).all()
    area = ((boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])).sum(-1) / S_**2
    assert area.min() > 0.02 and area.max() < 0.25, (area.min(), area.max())


def test_frame_view_labels(default_data):
    d = default_data["frame"]
    s = G.Screen()
    pog = d["pog_px"]
    assert (pog >= 0).all() and (pog[:, 0] <= 1920).all() and (pog[:, 1] <= 1080).all()
    np.testing.assert_allclose(d["screen_px"], np.tile([1920, 1080], (N, 1)))
    np.testing.assert_allclose(d["screen_mm"], np.tile([344, 194], (N, 1)))
    np.testing.assert_allclose(d["offset_mm"], np.tile([-172, 8], (N, 1)))
    np.testing.assert_allclose(s.mm_to_px(d["pog_mm"].astype(np.float64)), pog, rtol=1e-5, atol=1e-3)
    # The PoG is where the gaze ray from the eye centre meets the screen plane.
    hit = G.gaze_ray_to_plane(d["eye_center"].astype(np.float64), d["gaze"].astype(np.float64))
    px = s.mm_to_px(s.camera_to_mm(hit))
    assert np.abs(px - pog).max() < 0.5, np.abs(px - pog).max()
    np.testing.assert_allclose(np.linalg.norm(d["gaze"], axis=-1), 1.0, atol=1e-5)
    assert (d["eye_center"][:, 2] >= 400).all() and (d["eye_center"][:, 2] <= 700).all()
    fb, eb = d["face_box"], d["eye_boxes"]
    assert (fb[:, None, 0] <= eb[..., 0]).all() and (fb[:, None, 1] <= eb[..., 1]).all()
    assert (fb[:, None, 2] >= eb[..., 2]).all() and (fb[:, None, 3] >= eb[..., 3]).all()
    assert _inside(d["landmarks"][:, 0], eb[:, 0]).all() and _inside(d["landmarks"][:, 1], eb[:, 1]).all()
    # The face is in the frame.
    centre = (fb[:, :2] + fb[:, 2:]) / 2
    assert ((centre >= 0) & (centre <= np.array([480, 270]))).all()


def test_track_view_labels_and_background(default_data):
    d = default_data["track"]
    np.testing.assert_array_equal(d["label"], d["frame_labels"][:, 3])
    assert set(np.unique(d["label"])) == {0, 1}
    assert set(np.unique(d["frame_labels"])) <= {0, 1}
    # The label says whether the centre frame's gaze is within 5 deg of the camera direction: looking
    # straight into the normalized camera means gaze pitch/yaw near 0.
    centre_err = G.angular_error(d["gaze_pitchyaw"][:, 3].astype(np.float64), np.zeros((N, 2)))
    lab = d["label"].astype(bool)
    assert (centre_err[lab] < 12).all() and np.median(centre_err[~lab]) > np.median(centre_err[lab])
    # One backdrop per track: corner patches keep their colour across the 7 frames (up to sensor noise),
    # while different tracks have different backdrops. Rendered with a wide crop so the head stays clear
    # of the corners (the default crop is tight on the face); the head may reach one corner, never three.
    wide = S.render("track", N, seed=0, config=S.SynthConfig(face_span=260.0))
    f = wide["frames"].astype(np.float64)
    patches = [(slice(0, 4), slice(0, 4)), (slice(0, 4), slice(-4, None)), (slice(-4, None), slice(0, 4)),
               (slice(-4, None), slice(-4, None))]
    dev = []
    for ys, xs in patches:
        m = f[..., ys, xs].mean((-1, -2))  # (N, 7, 3)
        dev.append(np.abs(m - m.mean(1, keepdims=True)).max((1, 2)))
    dev = np.stack(dev, 1)  # (N, 4)
    assert ((dev < 6).sum(1) >= 3).all(), dev.max(1)
    assert (dev < 6).mean() > 0.95
    m0 = f[:, 3, :, :4, :4].mean((-1, -2))
    between = np.abs(m0[1:] - m0[:-1]).max(-1)
    assert np.median(between) > 20


def test_itracker_view_labels(default_data):
    d = default_data["itracker"]
    assert d["eyes"].shape[1] == 4
    np.testing.assert_allclose(G.Screen().mm_to_px(d["pog_mm"].astype(np.float64)), d["pog_px"], rtol=1e-6, atol=1e-3)
    assert (d["pog_px"] >= 0).all() and (d["pog_px"] <= np.array([1920, 1080])).all()
    b = d["eye_boxes"]  # (N, 4, 2, 4): each eye crop holds its eye in the middle
    mid = np.array([32.0, 32.0])
    centre_box = b[:, [0, 2], 0]  # image-left eye crops: their eye is box 0
    assert _inside(np.broadcast_to(mid, centre_box.shape[:-1] + (2,)), centre_box).all()
    centre_box = b[:, [1, 3], 1]
    assert _inside(np.broadcast_to(mid, centre_box.shape[:-1] + (2,)), centre_box).all()


# ----------------------------------------------------------------------------------------------------
# the gaze is carried by the eyes
# ----------------------------------------------------------------------------------------------------


def _scene(n: int, size: int, seed: int):
    """Random heads (pose, position, subject), their face-crop cameras, lighting and backdrops."""
    rng = np.random.default_rng(seed)
    cfg = S.SynthConfig()
    t = np.stack([rng.uniform(-100, 100, n), rng.uniform(-40, 80, n), rng.uniform(400, 700, n)], -1)
    R = G.rotation_matrix(np.deg2rad(rng.uniform(-25, 25, n)), np.deg2rad(rng.uniform(-15, 15, n)),
                          np.deg2rad(rng.uniform(-10, 10, n)))
    app = H.appearance(rng.integers(0, 15, n))

    def heads(eye_pitch_deg: np.ndarray, eye_yaw_deg: np.ndarray) -> H.Heads:
        eye_in_head = G.pitchyaw_to_vector(np.deg2rad(np.stack([eye_pitch_deg, eye_yaw_deg], -1)))
        target = t + 600.0 * np.einsum("nij,nj->ni", R, eye_in_head)
        return H.Heads(R, t, target, app)

    probe = heads(np.zeros(n), np.zeros(n))
    cam = S._look_at_camera(probe, probe.face_center(), cfg.face_span, size)
    light = H.Lighting.sample(rng, n)
    canvas = H.background(rng, n, size, size)
    return heads, cam, light, canvas


def _draw(heads: H.Heads, cam: H.Camera, light: H.Lighting, canvas: np.ndarray, size: int) -> H.Rendered:
    return H.render(heads, cam, size, size, light, canvas.copy())


def _box_mask(boxes: np.ndarray, size: int, margin: float) -> np.ndarray:
    """(N, K, 4) boxes -> (N, size, size) mask of pixels that touch any box grown by ``margin``."""
    x = np.arange(size)[None, None, :]
    y = np.arange(size)[None, :, None]
    mask = np.zeros((len(boxes), size, size), dtype=bool)
    for k in range(boxes.shape[1]):
        b = boxes[:, k, :, None, None]
        mask |= ((x + 1 > b[:, 0] - margin) & (x < b[:, 2] + margin) & (y + 1 > b[:, 1] - margin) & (y < b[:, 3] + margin))
    return mask


def test_changing_eye_in_head_angle_changes_only_eye_pixels():
    n, size = 24, 112
    heads, cam, light, canvas = _scene(n, size, seed=0)
    rng = np.random.default_rng(1)
    a = _draw(heads(rng.uniform(-12, 12, n), rng.uniform(-20, 20, n)), cam, light, canvas, size)
    b = _draw(heads(rng.uniform(-12, 12, n), rng.uniform(-20, 20, n)), cam, light, canvas, size)
    np.testing.assert_array_equal(a.landmarks, b.landmarks)  # head geometry untouched
    np.testing.assert_array_equal(a.face_box, b.face_box)
    changed = np.abs(a.image - b.image).max(axis=1) > 1e-3  # (N, H, W)
    eyes = _box_mask(np.concatenate([a.eye_boxes, b.eye_boxes], 1), size, margin=1.5)
    outside = changed & ~eyes
    assert not outside.any(), f"{outside.sum()} pixels outside the eye boxes changed (samples {np.unique(np.nonzero(outside)[0])})"
    assert (changed & eyes).sum((1, 2)).min() >= 4, "changing the gaze did not change the eyes"


def _dark_centroid_x(image: np.ndarray, box: np.ndarray) -> float:
    """x centroid of the pupil: the darkest 4% of the pixels inside one eye box, weighted by how much darker.

    (The median is no threshold: on dark skin with a light iris, the skin is darker than the iris.)
    """
    x0, y0, x1, y1 = int(np.floor(box[0])), int(np.floor(box[1])), int(np.ceil(box[2])), int(np.ceil(box[3]))
    lum = image[:, y0:y1, x0:x1].mean(0)
    w = np.clip(np.percentile(lum, 4) - lum, 0, None)
    xs = np.arange(x0, x1) + 0.5
    return float((w.sum(0) * xs).sum() / w.sum())


@pytest.mark.parametrize("seed", [2, 3])
def test_iris_moves_towards_image_right_for_negative_yaw(seed):
    n, size = 24, 112
    heads, cam, light, canvas = _scene(n, size, seed=seed)
    zero = np.zeros(n)
    right = _draw(heads(zero, zero - 20.0), cam, light, canvas, size)  # negative yaw: towards the image's right
    left = _draw(heads(zero, zero + 20.0), cam, light, canvas, size)
    boxes = np.maximum(right.eye_boxes, 0)
    shift = np.array([
        _dark_centroid_x(right.image[i], boxes[i, 0]) - _dark_centroid_x(left.image[i], boxes[i, 0]) for i in range(n)
    ])
    assert (shift > 0).all(), shift
    assert shift.mean() > 0.5, shift.mean()


# ----------------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("call", [
    lambda: S.render("selfie", 4),
    lambda: S.render_chunk("selfie", 0),
    lambda: S.SynthGaze("selfie", 4),
    lambda: S.render("face", 0),
    lambda: S.render("face", -3),
    lambda: S.SynthGaze("face", 0),
    lambda: S.render("face", 4, start=-1),
    lambda: S.render("face", 4, size=8),
    lambda: S.render("mc4", 4, size=15),
    lambda: S.render("face", 4, size=(64, 64)),
    lambda: S.SynthGaze("track", 4, size=4),
    lambda: S.render("frame", 4, size=128),
    lambda: S.render("frame", 4, size=(128, 96, 3)),
    lambda: S.render("frame", 4, size=(32, 96)),
    lambda: S.render("frame", 4, size=(128, 20)),
    lambda: S.render("face", 4, subjects=[]),
    lambda: S.render("face", 4, subjects=[-1, 2]),
])
def test_bad_input_raises_workbench_error(call):
    with pytest.raises(WorkbenchError):
        call()
