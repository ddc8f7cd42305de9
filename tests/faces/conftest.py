"""Fixtures for the real-face tests: skimage's astronaut photograph, a short video made from it by OpenCV
directly (not by the workbench's writer), a tiny trained gazenet run and untrained runs of other teachers."""

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
skdata = pytest.importorskip("skimage.data")

CLIP_FRAMES = 6  # the last one is blank (no face)
CLIP_SIZE = (384, 320)  # (W, H), even as video encoders want
CLIP_SHIFT = 8  # px the photo moves right per frame
TINY = {"n_train": 32, "n_val": 16, "batch_size": 16, "train_subjects": 2, "val_subjects": 3, "epochs": 1}
NARROW = {"width_mult": 0.25, "feature_channels": 16, "fc_hidden": 32}


@pytest.fixture(scope="session")
def astronaut(tmp_path_factory):
    """(path of astronaut.png, its (512, 512, 3) RGB pixels)."""
    rgb = skdata.astronaut()
    path = tmp_path_factory.mktemp("photos") / "astronaut.png"
    cv2.imwrite(str(path), rgb[:, :, ::-1])
    return path, rgb


def clip_frames() -> list[np.ndarray]:
    """The clip's RGB frames before encoding: the astronaut at 320x320, moved right CLIP_SHIFT px per frame, then a grey frame."""
    w, h = CLIP_SIZE
    photo = cv2.resize(skdata.astronaut(), (h, h), interpolation=cv2.INTER_AREA)
    out = []
    for k in range(CLIP_FRAMES - 1):
        canvas = np.full((h, w, 3), 90, np.uint8)
        canvas[:, k * CLIP_SHIFT:k * CLIP_SHIFT + h] = photo
        out.append(canvas)
    out.append(np.full((h, w, 3), 90, np.uint8))
    return out


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    """clip.mp4 written with cv2.VideoWriter (mp4v), 5 fps."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, CLIP_SIZE)
    assert writer.isOpened()
    for rgb in clip_frames():
        writer.write(np.ascontiguousarray(rgb[:, :, ::-1]))
    writer.release()
    return path


@pytest.fixture(scope="session")
def trained_gazenet(tmp_path_factory):
    """A gazenet run trained for one epoch on 32 SynthGaze faces (narrow, seconds)."""
    from workbench.train.engine import TrainRequest, fit

    out = tmp_path_factory.mktemp("runs") / "gazenet"
    fit(TrainRequest(teacher="gazenet", model_overrides=NARROW, recipe_overrides=TINY, out=out, progress=False))
    return out


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """teacher -> an untrained, seeded run folder (the visualize tests' builder)."""
    from visualize.conftest import make_run

    root = tmp_path_factory.mktemp("untrained")
    cache = {}

    def get(teacher: str, **recipe):
        key = (teacher, *sorted(recipe.items()))
        if key not in cache:
            cache[key] = make_run(root / f"{teacher}-{len(cache)}", teacher, **recipe)
        return cache[key]

    return get
