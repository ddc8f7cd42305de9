"""Face/eye detection and normalization on a real photograph (skimage's astronaut) and on SynthGaze frames."""

import textwrap

import numpy as np
import pytest

from workbench.data.synth import render
from workbench.errors import WorkbenchError
from workbench.faces import CascadeDetector, load_detector, normalize
from workbench.faces.detect import Face
from workbench.faces.normalize import (
    apply,
    eye_angle_deg,
    geometry_from_eye_boxes,
    invert,
    similarity,
    synth_geometry,
    warp_back,
)

cv2 = pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def detector():
    return CascadeDetector()


def inside(point, box) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def test_the_astronaut_has_one_face_and_two_eyes_inside_it(detector, astronaut):
    _, rgb = astronaut
    faces = detector.detect(rgb)
    assert len(faces) == 1
    f = faces[0]
    assert f.eyes_detected
    # The face sits in the upper middle of the 512x512 photo, and is not tiny.
    assert 60 <= f.box[2] - f.box[0] <= 200 and f.box[1] < 256
    for eye, box in zip(f.eyes, f.eye_boxes):
        assert inside(eye, f.box) and inside(box[:2], f.box) and inside(box[2:], f.box)
    assert f.eyes[0, 0] < f.eyes[1, 0]  # image-left eye first
    # Both eyes in the upper half of the face box.
    assert (f.eyes[:, 1] < (f.box[1] + f.box[3]) / 2).all()


@pytest.mark.parametrize("degrees", [0.0, 10.0, -12.0])
def test_normalization_levels_the_eyes_of_a_tilted_photo(detector, astronaut, degrees):
    """Tilt the photo about the face; the true eye positions are the upright detection moved by the same
    rotation. After detecting on the tilted photo and normalizing, those true eyes are level (< 2 deg)
    and their distance is the training crops' inter-ocular distance."""
    _, rgb = astronaut
    upright = detector.detect(rgb)[0]
    # The astronaut's eyes are themselves about 3 degrees off level in the photo.
    assert 1.5 < eye_angle_deg(upright.eyes) < 4.5
    centre = tuple(float(v) for v in upright.box.reshape(2, 2).mean(0))
    R = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    tilted = cv2.warpAffine(rgb, R, (rgb.shape[1], rgb.shape[0]), borderMode=cv2.BORDER_REFLECT)
    true_eyes = apply(R, upright.eyes)
    assert abs(eye_angle_deg(true_eyes) + degrees) < 3  # the tilt really moved the eyes (cv2: counter-clockwise)
    faces = detector.detect(tilted)
    assert faces and faces[0].eyes_detected
    geometry = synth_geometry("face", "image")
    norm = normalize(tilted, faces[0], geometry, 112)
    level = eye_angle_deg(apply(norm.M, true_eyes))
    print(f"tilt {degrees:+.0f} deg: true eyes at {level:+.2f} deg after normalization")
    assert abs(level) < 2.0
    iod = np.linalg.norm(np.diff(apply(norm.M, true_eyes), axis=0))
    assert iod == pytest.approx(geometry.iod * 112, rel=0.15)
    assert norm.crop.shape == (112, 112, 3)


def test_synthgaze_geometry_is_level_and_centred():
    g = synth_geometry("face", "image")
    assert g.eyes[0, 1] == g.eyes[1, 1]
    assert 0.2 < g.eyes[0, 0] < 0.5 < g.eyes[1, 0] < 0.8 and 0.15 < g.eyes[0, 1] < 0.5
    assert abs(g.eyes[:, 0].mean() - 0.5) < 0.03  # normalized crops are centred on the face


def test_geometry_from_eye_boxes_is_the_mean_centre_as_a_fraction():
    boxes = np.array([[[10, 20, 30, 40], [60, 20, 80, 44]], [[12, 22, 32, 42], [62, 18, 82, 38]]], dtype=np.float32)
    g = geometry_from_eye_boxes(boxes, 100, "hand")
    # centres: (20, 30), (70, 32) and (22, 32), (72, 28): means (21, 31) and (71, 30); levelled to y 30.5.
    np.testing.assert_allclose(g.eyes, [[0.21, 0.305], [0.71, 0.305]])
    with pytest.raises(WorkbenchError, match="no finite eye boxes"):
        geometry_from_eye_boxes(np.full((2, 2, 4), np.nan), 100, "nan")


def test_similarity_maps_the_eyes_and_warp_back_inverts_the_crop():
    src = np.array([[40.0, 80.0], [90.0, 60.0]])
    dst = np.array([[30.0, 35.0], [75.0, 35.0]])
    M = similarity(src, dst)
    np.testing.assert_allclose(apply(M, src), dst, atol=1e-9)
    np.testing.assert_allclose(apply(invert(M), dst), src, atol=1e-9)
    # A map of ones over the 112x112 crop lands on the crop's footprint in a 200x200 image: its area is
    # 112^2 / scale^2.
    scale = np.linalg.norm(dst[1] - dst[0]) / np.linalg.norm(src[1] - src[0])
    back = warp_back(np.ones((112, 112), np.float32), M, (200, 200))
    assert (back > 0.5).sum() == pytest.approx(112 ** 2 / scale ** 2, rel=0.05)


def test_synthgaze_frames_detection_rate_and_iou(detector):
    """SynthGaze frames know their face box. Measured with this test's data (64 frames, held-out subjects
    12-14, seed 1): detection rate 0.44, mean IoU of the detections 0.65. Asserted with a margin."""
    data = render("frame", 64, seed=1, subjects=range(12, 15))
    ious = []
    for img, gt in zip(data["image"], data["face_box"]):
        faces = detector.detect(np.ascontiguousarray(img.transpose(1, 2, 0)))
        if not faces:
            ious.append(0.0)
            continue
        b = faces[0].box
        ix = max(0.0, min(b[2], gt[2]) - max(b[0], gt[0]))
        iy = max(0.0, min(b[3], gt[3]) - max(b[1], gt[1]))
        inter = ix * iy
        ious.append(inter / ((b[2] - b[0]) * (b[3] - b[1]) + (gt[2] - gt[0]) * (gt[3] - gt[1]) - inter))
    ious = np.array(ious)
    hit = ious > 0.3
    rate, mean_iou = hit.mean(), ious[hit].mean()
    print(f"SynthGaze frames: detection rate {rate:.3f} ({hit.sum()}/64), mean IoU {mean_iou:.3f}")
    assert rate >= 0.35
    assert mean_iou >= 0.58


def test_a_detector_plugs_in_by_import_path(tmp_path, monkeypatch, astronaut):
    (tmp_path / "my_faces.py").write_text(textwrap.dedent('''
        import numpy as np
        from workbench.faces.detect import Face

        class Fixed:
            def detect(self, rgb):
                eb = np.array([[10.0, 10, 20, 20], [40, 10, 50, 20]])
                return [Face(np.array([0.0, 0, 60, 60]), eb, np.array([[15.0, 15], [45, 15]]), True)]

        class NoVerb:
            pass
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    det = load_detector("my_faces:Fixed")
    faces = det.detect(astronaut[1])
    assert isinstance(faces[0], Face) and faces[0].box[2] == 60
    with pytest.raises(WorkbenchError, match="no detect"):
        load_detector("my_faces:NoVerb")
    with pytest.raises(WorkbenchError, match="cannot load detector"):
        load_detector("my_faces:Missing")
    with pytest.raises(WorkbenchError, match="package.module:Class"):
        load_detector("my_faces")


def test_no_face_in_a_blank_image(detector):
    assert detector.detect(np.full((240, 320, 3), 90, np.uint8)) == []


def test_evg_frames_without_face_boxes_get_the_detectors():
    """plane_pog with ``detect_face_boxes``: frames whose face box is missing (NaN) get the detector's box as
    the face_hm target; annotated boxes are kept as they are."""
    from workbench.tasks import get_task

    data = render("frame", 12, seed=1, subjects=range(12, 15))
    truth = data["face_box"].copy()
    data["face_box"][::2] = np.nan  # half the frames "ship" no face box
    with pytest.raises(WorkbenchError, match="face_box"):
        get_task("plane_pog").prepare(dict(data))  # without the option, NaN boxes are refused
    prepared = get_task("plane_pog", detect_face_boxes=True).prepare(dict(data))
    face_xy = prepared.tensors["face_xy"].double().numpy()
    pad = np.array(prepared.meta["pad_offset"], dtype=np.float64)
    want = (truth.reshape(-1, 2, 2).mean(1) + pad) / 4
    np.testing.assert_allclose(face_xy[1::2], want[1::2], atol=1e-4)  # annotated: unchanged
    det = CascadeDetector()
    assert np.isfinite(face_xy[::2]).all(1).sum() >= 2  # these frames hold faces the cascade finds
    for i in range(0, 12, 2):
        faces = det.detect(np.ascontiguousarray(data["image"][i].transpose(1, 2, 0)))
        if faces:  # the detector's box centre, on the output grid; close to the true face centre
            np.testing.assert_allclose(face_xy[i], (faces[0].box.reshape(2, 2).mean(0) + pad) / 4, atol=1e-4)
            assert np.linalg.norm(face_xy[i] - want[i]) < 6  # output cells (4 px each)
        else:
            assert np.isnan(face_xy[i]).all()


def test_a_run_trained_on_a_data_set_takes_the_crop_geometry_from_its_eye_boxes(tmp_path):
    """A data set whose crops have the eyes 6 px lower (of 112) than SynthGaze's gives crops 6 px lower."""
    from workbench.data.formats.npz import write_npz
    from workbench.faces.normalize import crop_geometry
    from workbench.tasks import get_task

    data = render("face", 16, seed=3, subjects=range(3))
    data["eye_boxes"] = data["eye_boxes"] + np.array([0, 6, 0, 6], dtype=np.float32)
    path = write_npz(data, tmp_path / "faces.npz", view="face")
    task = get_task("face_angles")
    mine = crop_geometry(task, {"data": {"source": str(path), "format": "npz"}})
    want = geometry_from_eye_boxes(data["eye_boxes"], 112, "want")
    np.testing.assert_allclose(mine.eyes, want.eyes)
    assert str(path) in mine.source
    synth = crop_geometry(task, {"data": {"source": "synth"}})
    assert 0.03 < mine.eyes[0, 1] - synth.eyes[0, 1] < 0.08  # ~6/112 lower, up to the sample's own spread
    # A data set without eye boxes falls back to SynthGaze's geometry and says so.
    data["eye_boxes"] = np.full_like(data["eye_boxes"], np.nan)  # the layout's way of saying "none"
    bare = write_npz(data, tmp_path / "bare.npz", view="face")
    fallback = crop_geometry(task, {"data": {"source": str(bare), "format": "npz"}})
    np.testing.assert_allclose(fallback.eyes, synth.eyes)
    assert "no eye boxes" in fallback.source
