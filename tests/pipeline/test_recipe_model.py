"""Recipe keys model, task, data, format, device (and their command-line overrides) of `workbench run`."""

import pytest
import torch

from workbench.errors import WorkbenchError
from workbench.pipeline.recipe import load_recipe, model_slug, parse_recipe
from workbench.pipeline.stages import stage_configs


def test_model_and_data_keys_reach_the_train_stage():
    rec = parse_recipe({"model": "mymodel:make", "task": "face_angles", "data": "data/mpii", "format": "mpiifacegaze",
                        "device": "cpu"})
    assert rec.teachers == ("mymodel.make",) and rec.model == "mymodel:make"
    train = stage_configs(rec, "mymodel.make")["train"]
    assert (train["model"], train["task"], train["data"], train["format"], train["device"]) == \
        ("mymodel:make", "face_angles", "data/mpii", "mpiifacegaze", "cpu")
    assert stage_configs(rec, "mymodel.make")["prune"]["device"] == "cpu"


def test_the_demo_keys_do_not_change():
    """No new key enters the demo's stage configs, so existing demo stage folders stay up to date."""
    configs = stage_configs(load_recipe(), "gazenet")
    assert not {"model", "task", "data", "format", "device"} & set(configs["train"])
    assert "device" not in configs["prune"] and "device" not in configs["distill"]
    teacher_on_path = parse_recipe({"data": "data/mpii"})
    assert teacher_on_path.teachers == ("gazenet",)
    assert stage_configs(teacher_on_path, "gazenet")["train"]["data"] == "data/mpii"


def test_command_line_overrides_the_file(tmp_path):
    f = tmp_path / "r.toml"
    f.write_text('teachers = ["mc4"]\ndata = "a"\n')
    rec = load_recipe(f, model="tinyface", data_source="b", device="cpu")
    assert rec.teachers == ("tinyface",) and rec.model == "tinyface" and rec.data == "b" and rec.device == "cpu"
    assert load_recipe(f).teachers == ("mc4",)


@pytest.mark.parametrize("data, needle", [
    ({"model": "mymodel:make"}, "needs --task"),
    ({"model": "mymodel:make", "task": "nope"}, "unknown task 'nope'"),
    ({"model": "gazenet", "teachers": ["mc4"]}, "either model"),
    ({"task": "face_angles"}, "task applies to a package.module:factory model"),
    ({"model": 3}, "model expects a string"),
    ({"device": "tpu"}, "unknown device 'tpu'"),
])
def test_bad_model_keys_are_one_line(data, needle):
    with pytest.raises(WorkbenchError, match=needle.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        parse_recipe(data, path="r.toml")


def test_missing_cuda_is_refused_when_the_recipe_is_read():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(WorkbenchError, match="no CUDA device"):
        parse_recipe({"device": "cuda"})


def test_model_slug():
    assert model_slug("mymodel:make") == "mymodel.make"
    assert model_slug("pkg.models:build") == "pkg.models.build"
    assert model_slug("gazenet") == "gazenet"
