"""The model spec (workbench/modelspec.py) at the CLI: bad input is one line, exit 2, no folder left behind;
entry-point models; a student registered in the user's own file reopens from its run folder; --device."""

import json
import subprocess
import sys
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from workbench.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
TINY = ["--n-train", "32", "--n-val", "16", "--batch-size", "16", "--epochs", "1",
        "--set", "train_subjects=2", "--set", "val_subjects=1"]

GOOD = '''
import torch
from torch import nn

class Face(nn.Module):
    def __init__(self, width=4, outputs=2, as_dict=True):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, 2, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, outputs)
        self.as_dict = as_dict

    def forward(self, face):
        y = self.fc(self.pool(torch.relu(self.conv(face))).flatten(1))
        return {"gaze": y} if self.as_dict else y

def make(width=4, outputs=2, as_dict=True):
    return Face(width, outputs, as_dict)

def not_a_module():
    return "a string"
'''


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    """A working directory holding the user's module ``specmod_<test>`` (unique, so imports never go stale)."""
    name = f"specmod_{abs(hash(str(tmp_path))) % 10**8}"
    (tmp_path / f"{name}.py").write_text(GOOD)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, name, raising=False)
    return tmp_path, name


def _one_line_error(res, needle: str) -> str:
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], res.stderr
    assert "Traceback" not in res.output
    return lines[0]


@pytest.mark.parametrize("spec_suffix, extra, needle", [
    ("nosuchmodule_xyz:make", [], "cannot import 'nosuchmodule_xyz'"),
    (":not_a_module", [], "returned str, expected a torch.nn.Module"),
    (":make", ["--model", "as_dict=false"], "expects a dict of outputs ['gaze'], the model returned Tensor"),
    (":make", ["--model", "outputs=3"], "output 'gaze' has shape (2, 3), task 'face_angles' expects (2, 2)"),
    (":no_such_factory", [], "has no attribute 'no_such_factory'"),
])
def test_bad_factory_is_one_line_and_leaves_no_run_folder(user_dir, spec_suffix, extra, needle):
    tmp, name = user_dir
    spec = spec_suffix if not spec_suffix.startswith(":") else name + spec_suffix
    res = runner.invoke(app, ["train", spec, "--task", "face_angles", "--out", "runs/x", *TINY, *extra])
    _one_line_error(res, needle)
    assert not (tmp / "runs").exists()


def test_factory_needs_a_known_task(user_dir):
    tmp, name = user_dir
    res = runner.invoke(app, ["train", f"{name}:make", "--out", "runs/x", *TINY])
    _one_line_error(res, "needs --task")
    res = runner.invoke(app, ["train", f"{name}:make", "--task", "no_such_task", "--out", "runs/x", *TINY])
    _one_line_error(res, "unknown task 'no_such_task'")
    res = runner.invoke(app, ["eval", f"{name}:make", "--data", "synth"])
    _one_line_error(res, "needs --task")
    assert not (tmp / "runs").exists()


def test_weights_that_do_not_fit_are_named(user_dir):
    tmp, name = user_dir
    from workbench.modelspec import load_factory

    mod = sys.modules[type(load_factory(f"{name}:make")).__module__]
    good = mod.make(width=4).state_dict()
    torch.save(good, tmp / "good.pt")
    torch.save({k: v for k, v in good.items() if not k.startswith("fc.")}, tmp / "missing.pt")
    torch.save({**good, "extra.weight": torch.zeros(1)}, tmp / "unexpected.pt")
    torch.save(mod.make(width=8).state_dict(), tmp / "shape.pt")
    base = ["train", f"{name}:make", "--task", "face_angles", "--out", "runs/x", *TINY]
    _one_line_error(runner.invoke(app, [*base, "--weights", "missing.pt"]), "2 missing key(s) (fc.weight, fc.bias)")
    _one_line_error(runner.invoke(app, [*base, "--weights", "unexpected.pt"]), "1 unexpected key(s) (extra.weight)")
    _one_line_error(runner.invoke(app, [*base, "--weights", "shape.pt"]),
                    "e.g. conv.weight: file (8, 3, 3, 3), model (4, 3, 3, 3)")
    assert not (tmp / "runs").exists()
    # Weights that fit: eval of the bare factory uses them (the metric equals the same weights' run eval).
    res = runner.invoke(app, ["eval", f"{name}:make", "--task", "face_angles", "--weights", "good.pt", "--data", "synth",
                              "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["samples"] > 0


def test_missing_device_is_one_line(user_dir):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    tmp, name = user_dir
    for argv in (["train", f"{name}:make", "--task", "face_angles", "--out", "runs/x", *TINY, "--device", "cuda"],
                 ["profile", f"{name}:make", "--task", "face_angles", "--device", "cuda"],
                 ["bench", f"{name}:make", "--task", "face_angles", "--device", "cuda:1"],
                 ["eval", "gazenet", "--data", "synth", "--device", "cuda"],
                 ["predict", "gazenet", "--data", "synth", "--out", "p.csv", "--device", "cuda"],
                 ["prune", "gazenet", "--target-macs", "0.5", "--out", "runs/p", "--device", "cuda"],
                 ["distill", "gazenet", "--student", "tinyface", "--out", "runs/d", "--device", "cuda"],
                 ["quantize", "gazenet", "--out", "runs/q", "--device", "cuda"],
                 ["export", "gazenet", "--onnx", "m.onnx", "--device", "cuda"],
                 ["visualize", "gazenet", "--out", "runs/v", "--device", "cuda"],
                 ["run", "--model", f"{name}:make", "--task", "face_angles", "--out", "runs/r", "--device", "cuda"]):
        _one_line_error(runner.invoke(app, argv), "no CUDA device is available")
    assert not (tmp / "p.csv").exists() and not (tmp / "m.onnx").exists()
    _one_line_error(runner.invoke(app, ["profile", f"{name}:make", "--task", "face_angles", "--device", "tpu"]),
                    "unknown device 'tpu'")
    assert not (tmp / "runs").exists()


def test_resolve_device_and_ort_providers():
    from workbench.modelspec import ort_providers, resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert ort_providers("cpu") == ["CPUExecutionProvider"]
    if not torch.cuda.is_available():
        assert ort_providers("auto") == ["CPUExecutionProvider"]


def test_entry_point_student_is_found_and_reopens(tmp_path, monkeypatch):
    """A package registers a student through the `workbench.students` entry-point group: the CLI lists it,
    trains it by name, and a fresh process reopens its run folder (its config records where it lives)."""
    pkg = tmp_path / "site"
    pkg.mkdir()
    (pkg / "ep_students.py").write_text(textwrap.dedent('''
        from torch import nn
        from students import register_student

        @register_student("ep_face", description="entry-point test student", task="face_angles",
                          presets={"tiny": {"width": 4}}, example_shapes=lambda c: {"face": (3, 32, 32)},
                          hint_layer="conv")
        class EpFace(nn.Module):
            input_names = ("face",)
            output_names = ("gaze",)

            def __init__(self, *, width):
                super().__init__()
                self.conv = nn.Conv2d(3, width, 3, 2, 1)
                self.fc = nn.Linear(width, 2)

            def forward(self, face):
                return {"gaze": self.fc(self.conv(face).mean((2, 3)))}
    '''))
    monkeypatch.syspath_prepend(str(pkg))
    monkeypatch.delitem(sys.modules, "ep_students", raising=False)
    _fake_entry_points(monkeypatch, "workbench.students",
                       [EntryPoint(name="ep_face", value="ep_students:EpFace", group="workbench.students")])
    res = runner.invoke(app, ["students", "--task", "face_angles", "--json"])
    assert res.exit_code == 0, res.output
    assert "ep_face" in [r["name"] for r in json.loads(res.stdout)]
    run = tmp_path / "run"
    res = runner.invoke(app, ["train", "ep_face", "--out", str(run), *TINY, "--json"])
    assert res.exit_code == 0, res.output
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["registered_in"] == {"module": "ep_students", "search_path": str(pkg.resolve())}
    # A fresh process that never saw the entry point reopens the run (from another working directory).
    out = subprocess.run([sys.executable, "-m", "workbench", "eval", str(run), "--json"], cwd=str(REPO / "docs"),
                         capture_output=True, text=True, env={**_env(), "PYTHONPATH": str(REPO)}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["teacher"] == "ep_face"


def test_student_registered_in_a_user_script_reopens(tmp_path):
    """A student registered in the user's own file (run as a script) trains through the Python API; the CLI
    reopens its run folder in another process without being told where the class lives."""
    script = tmp_path / "my_student.py"
    script.write_text(textwrap.dedent(f'''
        from pathlib import Path
        from torch import nn
        from students import register_student
        from workbench.train.engine import TrainRequest, fit

        @register_student("script_face", description="a student in a user script", task="face_angles",
                          presets={{"tiny": {{"width": 4}}}}, example_shapes=lambda c: {{"face": (3, 32, 32)}},
                          hint_layer="conv")
        class ScriptFace(nn.Module):
            input_names = ("face",)
            output_names = ("gaze",)

            def __init__(self, *, width):
                super().__init__()
                self.conv = nn.Conv2d(3, width, 3, 2, 1)
                self.fc = nn.Linear(width, 2)

            def forward(self, face):
                return {{"gaze": self.fc(self.conv(face).mean((2, 3)))}}

        if __name__ == "__main__":
            fit(TrainRequest(teacher="script_face", out=Path({str(tmp_path / "run")!r}), progress=False,
                             recipe_overrides=dict(n_train=32, n_val=16, batch_size=16, epochs=1, train_subjects=2,
                                                   val_subjects=1)))
    '''))
    env = {**_env(), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(script)], cwd=str(tmp_path), capture_output=True, text=True, env=env,
                          timeout=180)
    assert done.returncode == 0, done.stderr
    out = subprocess.run([sys.executable, "-m", "workbench", "eval", str(tmp_path / "run"), "--json"],
                         cwd=str(REPO / "docs"), capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["teacher"] == "script_face" and result["samples"] == 16


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}


def _fake_entry_points(monkeypatch, group: str, eps: list):
    import importlib.metadata as md

    import students.registry
    import teachers.registry
    from workbench import registry

    # What the test registers is forgotten afterwards (other tests list the registries).
    for mod in (teachers.registry, students.registry):
        monkeypatch.setattr(mod, "_REGISTRY", dict(mod._REGISTRY))

    real = md.entry_points
    monkeypatch.setattr(md, "entry_points", lambda **kw: eps if kw.get("group") == group else real(**kw))
    monkeypatch.setattr(registry, "_DISCOVERED", set())


def test_entry_point_teacher_register_function_and_broken_entry_points(tmp_path, monkeypatch):
    """A `workbench.teachers` entry point may name a register() function; one that does not load, or registers
    nothing under its name, is one line naming it."""
    (tmp_path / "ep_teachers.py").write_text(textwrap.dedent('''
        from torch import nn
        from teachers import register_teacher

        def register():
            @register_teacher("ep_teacher", source="test", task="face_angles", inputs=("face",),
                              presets={"cpu": {"width": 4}, "paper": {"width": 8}},
                              example_shapes=lambda c: {"face": (3, 32, 32)})
            class EpTeacher(nn.Module):
                input_names = ("face",)
                output_names = ("gaze",)

                def __init__(self, *, width):
                    super().__init__()
                    self.conv = nn.Conv2d(3, width, 3, 2, 1)
                    self.fc = nn.Linear(width, 2)

                def forward(self, face):
                    return {"gaze": self.fc(self.conv(face).mean((2, 3)))}

        def register_nothing():
            pass
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "ep_teachers", raising=False)
    group = "workbench.teachers"
    _fake_entry_points(monkeypatch, group, [EntryPoint("ep_teacher", "ep_teachers:register", group)])
    res = runner.invoke(app, ["profile", "ep_teacher", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["task"] == "face_angles"
    _fake_entry_points(monkeypatch, group, [EntryPoint("ep_missing", "no_such_pkg_ep:thing", group)])
    _one_line_error(runner.invoke(app, ["train", "ep_missing"]), "entry point 'ep_missing' = 'no_such_pkg_ep:thing'")
    _fake_entry_points(monkeypatch, group, [EntryPoint("ep_nothing", "ep_teachers:register_nothing", group)])
    _one_line_error(runner.invoke(app, ["train", "ep_nothing"]), "registered no teacher named 'ep_nothing'")


def test_data_that_does_not_fit_a_fixed_size_model(tmp_path, monkeypatch):
    """A model with a fixed input size on a data folder of another size: one line naming the shapes, exit 2,
    no run folder; resizing on the way in (--set size=N) makes it train."""
    (tmp_path / "fixedmod_spec.py").write_text(textwrap.dedent('''
        from torch import nn

        def make():
            body = nn.Sequential(nn.Conv2d(3, 4, 4, 4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 2))

            class Fixed(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.body = body

                def forward(self, face):
                    return {"gaze": self.body(face)}
            return Fixed()
    '''))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "fixedmod_spec", raising=False)
    res = runner.invoke(app, ["data", "synth", "--view", "face", "--format", "mpiifacegaze", "--n", "48",
                              "--subjects", "3", "--size", "64", "--out", "d"])
    assert res.exit_code == 0, res.output
    base = ["train", "fixedmod_spec:make", "--task", "face_angles", "--data", "d", "--epochs", "1", "--out", "runs/x"]
    line = _one_line_error(runner.invoke(app, base), "(2x3x64x64) failed")
    assert "--set size=N" in line and not (tmp_path / "runs").exists()
    res = runner.invoke(app, [*base, "--set", "size=32", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["data"]["resized"]
