"""One model spec, resolved in one place, and one device option: what every command that takes a model reads.

A model spec is one of

- a registered teacher or student name (``gazenet``, ``tinyface``), with a preset and ``--model key=value``
  hyper-parameter overrides; teachers and students of other packages register through the Python entry
  point groups ``workbench.teachers`` / ``workbench.students`` (see :mod:`workbench.registry`);
- a run folder (``config.json`` + ``checkpoints/``), which rebuilds its own model;
- ``package.module:factory`` with ``task`` (a task contract name): the factory is imported with the working
  directory importable (as ``python -m`` does), called with the ``--model key=value`` overrides as keyword
  arguments and must return an ``nn.Module`` that takes the task's inputs positionally and returns a dict
  of the task's outputs (checked with one forward pass on a SynthGaze batch of the task).

``weights`` (a state dict file, loaded with ``torch.load(weights_only=True)``) fill a built model; a key or
shape that does not fit is named. A factory model's JSON config ``{"factory": ..., "task": ..., "kwargs":
...}`` is what a run folder records, so every later command rebuilds it (``workbench.train.models``).

Devices: :func:`resolve_device` turns ``auto | cpu | cuda[:N]`` into a ``torch.device`` and
:func:`ort_providers` into onnxruntime execution providers; a device that is not there is one
WorkbenchError line.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.errors import WorkbenchError

__all__ = [
    "ModelSpec", "ResolvedModel", "build_factory", "check_task_model", "example_batch", "is_run_folder",
    "load_factory", "load_weights", "materialize_run", "ort_providers", "parse_model_spec", "read_state_dict",
    "resolve_device", "resolve_model", "run_for_spec", "slug",
]

KINDS = ("teacher", "student", "run", "factory")


# ---- devices --------------------------------------------------------------------------------------


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` (CUDA when there is one, else CPU), ``cpu`` or ``cuda[:N]`` -> torch.device.

    A CUDA device that is not there (no CUDA build, no GPU, index out of range) is a WorkbenchError.
    """
    if isinstance(device, torch.device):
        device = str(device)
    text = (device or "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(text)
    except RuntimeError:
        raise WorkbenchError(f"unknown device {device!r}; expected auto, cpu or cuda[:N]") from None
    if dev.type not in ("cpu", "cuda"):
        raise WorkbenchError(f"unknown device {device!r}; expected auto, cpu or cuda[:N]")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise WorkbenchError(f"--device {device} asked for, but no CUDA device is available on this machine "
                                 "(use --device cpu or auto)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise WorkbenchError(f"--device {device} asked for, but this machine has {torch.cuda.device_count()} "
                                 f"CUDA device(s) (0..{torch.cuda.device_count() - 1})")
    return dev


def ort_providers(device: str | torch.device | None = "cpu") -> list[str]:
    """onnxruntime execution providers for ``device``: CUDA first (then CPU) for a CUDA device.

    ``auto`` uses the CUDA provider only where both a GPU and onnxruntime's CUDA provider are there;
    an explicit ``cuda`` without the provider (the CPU-only ``onnxruntime`` wheel) is a WorkbenchError.
    """
    dev = resolve_device(device)
    if dev.type != "cuda":
        return ["CPUExecutionProvider"]
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        if str(device or "auto").strip().lower() == "auto":
            return ["CPUExecutionProvider"]
        raise WorkbenchError(f"--device {device}: onnxruntime has no CUDA provider here (available: "
                             f"{', '.join(ort.get_available_providers())}); install onnxruntime-gpu or use --device cpu")
    return [("CUDAExecutionProvider", {"device_id": dev.index or 0}), "CPUExecutionProvider"]


# ---- factories ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _importable(*folders: str | os.PathLike | None) -> Iterator[None]:
    """Make modules in the working directory (and ``folders``) importable while a factory loads."""
    added = []
    for folder in (os.getcwd(), *folders):
        if folder is None:
            continue
        folder = str(Path(folder).resolve())
        if folder not in sys.path and not (folder == os.getcwd() and "" in sys.path):
            sys.path.insert(0, folder)
            added.append(folder)
    try:
        yield
    finally:
        for folder in added:
            if folder in sys.path:
                sys.path.remove(folder)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


def import_module(module_name: str, *, origin: str, search: str | None = None) -> Any:
    """Import ``module_name`` (the working directory and ``search`` importable); failures are one line."""
    with _importable(search):
        try:
            return importlib.import_module(module_name)
        except ImportError as exc:
            raise WorkbenchError(f"cannot import {module_name!r} (from {origin!r}): {_first_line(exc)}") from None
        except Exception as exc:  # noqa: BLE001 - the user's module raised while importing
            raise WorkbenchError(f"importing {module_name!r} (from {origin!r}) failed: {_first_line(exc)}") from None


def load_factory(spec: str, kwargs: Mapping[str, Any] | None = None, *, search: str | None = None) -> nn.Module:
    """``"package.module:factory"`` -> ``factory(**kwargs)``, which must return an nn.Module.

    ``search`` is a folder also put on ``sys.path`` (where a run folder recorded the module was found).
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise WorkbenchError(f"bad import path {spec!r}: expected package.module:factory")
    module = import_module(module_name, origin=spec, search=search)
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise WorkbenchError(f"module {module_name!r} has no attribute {attr!r} (from {spec!r})")
        obj = getattr(obj, part)
    kwargs = dict(kwargs or {})
    if isinstance(obj, nn.Module):
        if kwargs:
            raise WorkbenchError(f"{spec!r} is a module instance, not a factory: it takes no --model key=value")
        model = obj
    elif callable(obj):
        try:
            model = obj(**kwargs)
        except Exception as exc:  # noqa: BLE001 - the user's factory may raise anything
            raise WorkbenchError(f"factory {spec!r} raised {_first_line(exc)}") from None
    else:
        raise WorkbenchError(f"{spec!r} is a {type(obj).__name__}, expected a factory function or an nn.Module")
    if not isinstance(model, nn.Module):
        raise WorkbenchError(f"factory {spec!r} returned {type(model).__name__}, expected a torch.nn.Module")
    return model


def _module_folder(module_name: str) -> str | None:
    """The folder that makes ``module_name`` importable (recorded so later commands find it from elsewhere)."""
    mod = sys.modules.get(module_name)
    file = getattr(mod, "__file__", None)
    if not file:
        return None
    folder = Path(file).resolve().parent
    for _ in range(module_name.count(".")):
        folder = folder.parent
    return str(folder)


def factory_config(factory: str, task: str, kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON config a run folder records for a factory model (see :func:`build_factory`)."""
    cfg: dict[str, Any] = {"factory": factory, "task": task, "kwargs": dict(kwargs or {})}
    folder = _module_folder(factory.partition(":")[0])
    if folder is not None:
        cfg["search_path"] = folder
    return cfg


def build_factory(config: Mapping[str, Any]) -> nn.Module:
    """Rebuild a factory model (fresh weights) from ``{"factory", "task", "kwargs"[, "search_path"]}``."""
    missing = [k for k in ("factory", "task") if k not in config]
    if missing:
        raise WorkbenchError(f"factory model config lacks {missing} (keys: {sorted(config)})")
    model = load_factory(str(config["factory"]), config.get("kwargs") or {}, search=config.get("search_path"))
    _adopt_task_names(model, config["task"])
    model.config = dict(config)
    return model


def _adopt_task_names(model: nn.Module, task_name: str) -> None:
    """A user's model takes its task's inputs in order; give it the task's names where it has none."""
    from workbench.tasks import get_task

    task = get_task(task_name)
    if not getattr(model, "input_names", None):
        model.input_names = tuple(task.input_names)
    if not getattr(model, "output_names", None):
        model.output_names = tuple(task.output_names)


# ---- checks ---------------------------------------------------------------------------------------


def example_batch(task: Any, size: Any = None, n: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """A real batch of ``n`` SynthGaze samples of ``task``'s view at render ``size`` (task tensors)."""
    from workbench.data.synth import render

    data = task.prepare(render(task.view, n, seed=seed, subjects=2, size=size))
    return data.batch(slice(0, n))


def check_task_model(model: nn.Module, task: Any, batch: Mapping[str, torch.Tensor], *, label: str) -> None:
    """One forward pass of ``model`` on ``batch`` (task tensors): the outputs must fit ``task``.

    Checks that the model accepts the task's inputs, returns a dict holding the task's outputs, each shaped
    like the task's targets (the constant predictor's shape per sample), and that the task loss runs.
    """
    from workbench.tasks.base import TaskData

    inputs = task.inputs(dict(batch))
    shapes = ", ".join("x".join(map(str, t.shape)) for t in inputs)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(*inputs)
    except Exception as exc:  # noqa: BLE001 - whatever the user's forward raises
        raise WorkbenchError(f"{label}: forward pass on task {task.name!r}'s inputs {list(task.input_names)} "
                             f"({shapes}) failed: {_first_line(exc)}") from None
    finally:
        model.train(was_training)
    task.check_outputs(out, label=label)
    n = len(inputs[0])
    try:  # the constant predictor's outputs are shaped like one sample's targets
        expected = task.constant_predictor(TaskData({k: v for k, v in batch.items()}, {}))
    except Exception:  # noqa: BLE001 - a task whose baseline needs more than the batch: shapes unchecked
        expected = {}
    for key in task.output_names:
        got = out[key]
        if not isinstance(got, torch.Tensor):
            raise WorkbenchError(f"{label}: output {key!r} is a {type(got).__name__}, expected a tensor")
        want = (n, *expected[key].shape) if key in expected else None
        if want is not None and tuple(got.shape) != want:
            raise WorkbenchError(f"{label}: output {key!r} has shape {tuple(got.shape)}, task {task.name!r} "
                                 f"expects {want} for a batch of {n}")
    try:
        task.loss(out, dict(batch))
    except Exception as exc:  # noqa: BLE001
        raise WorkbenchError(f"{label}: task {task.name!r}'s loss cannot use the outputs: {_first_line(exc)}") from None


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict file (``torch.load(weights_only=True)``) as ``{name: tensor}``; a workbench checkpoint's
    ``model`` entry is accepted too. A missing, corrupt or foreign file is one WorkbenchError line."""
    path = Path(path)
    if not path.is_file():
        raise WorkbenchError(f"{path}: weights file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for foreign or corrupt files
        from workbench.train.run_folder import load_failure  # one clause; never advises an unsafe load

        raise WorkbenchError(f"{path}: not a readable state dict file: {load_failure(exc)}") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict) and "format" in state:
        state = state["model"]  # a workbench checkpoint
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WorkbenchError(f"{path}: expected a state dict {{name: tensor}}, got {type(state).__name__}")
    return dict(state)


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load a state dict file (see :func:`read_state_dict`) into ``model``, strictly: missing or unexpected
    keys and shape mismatches are named."""
    path = Path(path)
    state = read_state_dict(path)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    bad = [(k, tuple(state[k].shape), tuple(own[k].shape)) for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or bad:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s) ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) ({', '.join(unexpected[:3])}"
                         f"{', ...' if len(unexpected) > 3 else ''})")
        if bad:
            k, got, want = bad[0]
            parts.append(f"shape mismatch in {len(bad)} tensor(s), e.g. {k}: file {got}, model {want}")
        raise WorkbenchError(f"{path}: weights do not fit the model: " + "; ".join(parts))
    model.load_state_dict(state)


# ---- the spec -------------------------------------------------------------------------------------


@dataclass
class ModelSpec:
    """A parsed model spec (see the module docstring); ``kind`` is one of teacher, student, run, factory."""

    text: str
    kind: str
    task: str | None = None
    preset: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    weights: Path | None = None

    @property
    def label(self) -> str:
        """What tables and summaries call the model: the spec as given (a run folder: its name)."""
        return Path(self.text).name if self.kind == "run" else self.text

    @property
    def slug(self) -> str:
        """The label as a folder name (``mymodel:make`` -> ``mymodel.make``)."""
        return slug(self.label)


@dataclass
class ResolvedModel:
    """A built model with its JSON config (what ``build_model`` rebuilds), task name and label."""

    model: nn.Module
    config: dict[str, Any]
    task: str
    spec: ModelSpec


def slug(text: str) -> str:
    """A model spec as a folder name: ``mymodel:make`` -> ``mymodel.make``; a path -> its last part."""
    name = Path(text).name if ("/" in text or os.sep in text) else text
    return "".join(c if c.isalnum() or c in "._-" else "." for c in name) or "model"


def is_run_folder(text: str | os.PathLike) -> bool:
    """True when ``text`` is a folder with a run's config.json."""
    return (Path(text) / "config.json").is_file()


def parse_model_spec(text: str, *, task: str | None = None, weights: str | os.PathLike | None = None,
                     preset: str | None = None, overrides: Mapping[str, Any] | None = None) -> ModelSpec:
    """Classify ``text`` (run folder, teacher, student or ``module:factory``) and check the options fit it.

    Raises WorkbenchError for an unknown name, a factory without ``task``, an unknown task, or options that
    do not apply (``--weights`` or ``--model`` on a run folder, a ``--task`` other than the model's own).
    """
    from students import list_students, student_spec
    from teachers import list_teachers, teacher_spec
    from workbench.tasks import list_tasks

    if task is not None and task not in list_tasks():
        raise WorkbenchError(f"unknown task {task!r}; expected one of {', '.join(list_tasks())}")
    overrides = dict(overrides or {})
    w = Path(weights) if weights is not None else None
    path = Path(text)
    if is_run_folder(path):
        spec = ModelSpec(str(text), "run", weights=w)
        if w is not None or overrides or preset is not None:
            raise WorkbenchError(f"{text}: a run folder rebuilds its own model; --weights, --preset and --model "
                                 "key=value apply to a model name or a factory")
        if task is not None:
            from workbench.train.run_folder import read_run_config

            own = read_run_config(path / "config.json")["task"]
            if own != task:
                raise WorkbenchError(f"{text}: run folder is for task {own!r}, not --task {task!r}")
        return spec
    if text in list_teachers():
        own = teacher_spec(text).task
        kind = "teacher"
    elif text in list_students():
        own = student_spec(text).task
        kind = "student"
    elif ":" in text and not path.exists():
        if task is None:
            raise WorkbenchError(f"{text}: a factory model needs --task (one of {', '.join(list_tasks())})")
        if preset is not None:
            raise WorkbenchError(f"{text}: --preset applies to registered models; pass factory arguments with "
                                 "--model key=value")
        return ModelSpec(str(text), "factory", task=task, overrides=overrides, weights=w)
    elif path.is_dir():
        raise WorkbenchError(f"{text}: not a run folder (no config.json)")
    elif _entry_point_registers(text):
        return parse_model_spec(text, task=task, weights=weights, preset=preset, overrides=overrides)
    elif os.sep in text or "/" in text or path.exists():
        raise WorkbenchError(f"{text}: not a run folder (no such folder)" if not path.exists()
                             else f"{text}: not a run folder (a file, expected a folder with config.json)")
    else:
        raise WorkbenchError(f"unknown teacher, student or model {text!r}: expected a teacher ({', '.join(list_teachers())}), a student "
                             f"({', '.join(list_students())}), a run folder, or package.module:factory with --task")
    if task is not None and task != own:
        raise WorkbenchError(f"{kind} {text!r} serves task {own!r}, not --task {task!r}")
    return ModelSpec(str(text), kind, task=own, preset=preset, overrides=overrides, weights=w)


def _entry_point_registers(name: str) -> bool:
    """Load the entry point named ``name`` (teachers, then students); a broken one is a WorkbenchError naming it."""
    from students import registry as students_registry
    from teachers import registry as teachers_registry
    from workbench.registry import discover

    for kind, reg in (("teacher", teachers_registry._REGISTRY), ("student", students_registry._REGISTRY)):
        discover(kind, reg.__contains__, name)
        if name in reg:
            return True
    return False


@contextlib.contextmanager
def building(text: str, overrides: Mapping[str, Any]) -> Iterator[None]:
    """Build a named or factory model inside: a ValueError (unknown preset or key, a registry's check) becomes
    a WorkbenchError, and so does whatever the constructor raises for a user's ``--model`` values (a negative
    width: torch's RuntimeError), as one line naming them."""
    try:
        yield
    except WorkbenchError:
        raise
    except ValueError as exc:
        raise WorkbenchError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - only well-typed user values reach here: a value the model rejects
        if not overrides:
            raise
        raise WorkbenchError(f"{text} with --model {_sets(overrides)} could not be built: {_first_line(exc)}") from None


def resolve_model(spec: ModelSpec, *, size: Any = None, check: bool = True) -> ResolvedModel:
    """Build the model of a teacher, student or factory spec (weights loaded), checked against its task.

    ``size`` is the SynthGaze render size of the check's example batch (the task view's default when None).
    A run folder spec is opened with ``workbench.train.engine.load_run_model`` instead.
    """
    from workbench.tasks import get_task

    if spec.kind == "run":
        raise WorkbenchError(f"{spec.text}: a run folder is opened with load_run_model, not built from a spec")
    with building(spec.text, spec.overrides):
        if spec.kind == "teacher":
            from teachers import get_teacher

            model = get_teacher(spec.text, preset=spec.preset or "cpu", **spec.overrides)
        elif spec.kind == "student":
            from students import get_student

            model = get_student(spec.text, preset=spec.preset, **spec.overrides)
        else:
            model = build_factory({"factory": spec.text, "task": spec.task, "kwargs": spec.overrides})
            model.config = factory_config(spec.text, str(spec.task), spec.overrides)  # imported: its folder is known
    if spec.weights is not None:
        load_weights(model, spec.weights)
    task = get_task(str(spec.task))
    if check and (spec.kind == "factory" or spec.overrides):
        # A user's model, or a registered one with options changed (feature_channels=0 builds, then fails
        # in its first forward pass): one forward pass on an example batch, before any command uses it.
        label = spec.text + (f" with --model {_sets(spec.overrides)}" if spec.overrides else "")
        check_task_model(model, task, example_batch(task, size), label=label)
    return ResolvedModel(model, dict(model.config), str(spec.task), spec)


def _sets(overrides: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={json.dumps(v)}" for k, v in overrides.items())


def default_recipe(spec: ModelSpec) -> Any:
    """The training recipe a spec starts from: a teacher's cpu/paper recipe, else the generic one."""
    from workbench.train.recipes import Recipe, get_recipe

    if spec.kind == "teacher":
        return get_recipe(spec.text, spec.preset or "cpu")
    return Recipe()


def materialize_run(spec: ModelSpec, folder: str | os.PathLike, *, data: str = "synth", fmt: str | None = None,
                    seed: int = 0) -> Path:
    """Write ``folder`` as a run folder holding the spec's model (its weights, or fresh ones): config.json
    records the model config, the task, a recipe and ``data``, so every run-folder command can open it."""
    from workbench.train.run_folder import RunFolder, save_checkpoint
    from workbench.utils.jsonio import write_json

    resolved = resolve_model(spec)
    recipe = default_recipe(spec)
    run = RunFolder.create(folder)
    config = {"teacher": spec.label, "preset": spec.preset, "task": resolved.task, "model": resolved.config,
              "recipe": recipe.to_dict(), "data": {"source": data, "format": fmt}, "seed": seed}
    save_checkpoint(run.best, model_state=resolved.model.state_dict(), model_config=resolved.config)
    write_json(run.config_path, config)
    return run.path


@contextlib.contextmanager
def run_for_spec(text: str | os.PathLike, *, task: str | None = None, weights: str | os.PathLike | None = None,
                 preset: str | None = None, overrides: Mapping[str, Any] | None = None, data: str | None = None,
                 fmt: str | None = None, seed: int = 0) -> Iterator[Path]:
    """Yield a run folder for any model spec: the folder itself, or (for a name or a factory) a temporary
    run folder holding that model, removed afterwards. ``data`` (default SynthGaze) is the data such a
    temporary run records as its own."""
    spec = parse_model_spec(str(text), task=task, weights=weights, preset=preset, overrides=overrides)
    if spec.kind == "run":
        yield Path(spec.text)
        return
    with tempfile.TemporaryDirectory(prefix="workbench-spec-") as tmp:
        yield materialize_run(spec, Path(tmp) / spec.slug, data=data or "synth", fmt=fmt, seed=seed)
