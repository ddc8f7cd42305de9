"""What the teacher and student registries share: preset checking and resolution, JSON-native configs,
per-preset example shapes and random example inputs.

Models from other packages register through Python entry points: a distribution that declares, e.g.,

    [project.entry-points."workbench.teachers"]
    mynet = "mypkg.models:MyNet"        # a class decorated with @register_teacher("mynet", ...)

is found by :func:`discover` when a name is not registered yet (loading the entry point imports its module,
whose decorator registers the model; an entry point naming a plain function is called once to register).
A model registered outside this repository records where (:func:`registered_in`), so a run folder of it
reopens from any later command without the user importing anything.

Teachers and students are two instances of one :class:`ModelRegistry`, which differ only where the kinds
do (what ``kind`` words, the default preset, whether a model follows its task's inputs and outputs);
``teachers.registry`` and ``students.registry`` create them and keep their public names (``get_teacher``,
``get_student``, ...), so the two cannot drift apart. :class:`RegisteredSpec` is what either describes.
"""

from __future__ import annotations

import copy
import inspect
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

__all__ = ["ModelRegistry", "RegisteredSpec", "check_presets", "discover", "import_registering_module", "json_native", "width_value",
           "preset_shapes", "random_inputs", "registered_in", "resolve_preset", "width_override"]

ENTRY_POINT_GROUPS = {"teacher": "workbench.teachers", "student": "workbench.students"}
BUILTIN_PACKAGES = ("teachers", "students")
# Groups whose entry points were all loaded once (a missing name triggers another look: cheap, and it sees
# distributions installed since).
_DISCOVERED: set[str] = set()
BROKEN: dict[str, str] = {}  # "group:name" -> why that entry point was skipped while listing


def discover(kind: str, is_registered: Callable[[str], bool], name: str | None = None) -> None:
    """Load the ``workbench.<kind>s`` entry points not registered yet (only ``name``'s when given).

    Asked for ``name``, an entry point that fails to load, or loads without registering that name, is a
    WorkbenchError naming it; while listing every name, such an entry point is skipped and kept in ``BROKEN``
    (one broken package must not break every command; asking for its name shows why).
    """
    from importlib.metadata import entry_points

    from workbench.errors import WorkbenchError

    group = ENTRY_POINT_GROUPS[kind]
    if name is None and group in _DISCOVERED:
        return
    for ep in entry_points(group=group):
        if (name is not None and ep.name != name) or is_registered(ep.name):
            continue
        problem = None
        try:
            obj = ep.load()
            if not is_registered(ep.name) and callable(obj) and not isinstance(obj, type):
                obj()  # an entry point naming a register() function
            if not is_registered(ep.name):
                problem = f"registered no {kind} named {ep.name!r}"
        except Exception as exc:  # noqa: BLE001 - a third-party module may raise anything on import
            text = str(exc).strip().splitlines()
            problem = f"does not load: {type(exc).__name__}" + (f": {text[0][:200]}" if text else "")
        if problem is not None:
            message = f"entry point {ep.name!r} = {ep.value!r} (group {group}) {problem}"
            if name is not None:
                raise WorkbenchError(message)
            BROKEN[f"{group}:{ep.name}"] = message
    if name is None:
        _DISCOVERED.add(group)


def registered_in(builder: Callable[..., Any]) -> dict[str, str] | None:
    """Where a model registered outside this repository lives: {"module", "search_path"} (None if built in).

    A script run as ``__main__`` is recorded by its file (module = file stem, search path = its folder).
    """
    module = getattr(builder, "__module__", "") or ""
    if module.split(".")[0] in BUILTIN_PACKAGES:
        return None
    mod = sys.modules.get(module)
    file = getattr(mod, "__file__", None)
    if module == "__main__":
        if not file:
            return None
        return {"module": Path(file).stem, "search_path": str(Path(file).resolve().parent)}
    out = {"module": module}
    if file:
        folder = Path(file).resolve().parent
        for _ in range(module.count(".")):
            folder = folder.parent
        out["search_path"] = str(folder)
    return out


def import_registering_module(where: Mapping[str, Any]) -> None:
    """Import the module a config's ``registered_in`` names (its search path importable): that registers it."""
    from workbench.modelspec import import_module

    import_module(str(where["module"]), origin=f"registered_in {dict(where)}", search=where.get("search_path"))

ShapeFn = Callable[[Mapping[str, Any]], Mapping[str, tuple[int, ...]]]


def json_native(cfg: Mapping[str, Any], what: str) -> dict[str, Any]:
    """A deep copy of ``cfg`` as JSON gives it back (tuples become lists), so a config read from a
    checkpoint compares equal to the one the model was built with."""
    try:
        return json.loads(json.dumps(dict(cfg)))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serializable: {exc}") from None


def check_presets(kind: str, name: str, presets: Mapping[str, Mapping[str, Any]],
                  reserved: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``presets`` as JSON-native dicts, after checking there is one, all set the same keys and none is
    ``reserved`` (keys the registry writes into ``model.config`` itself); ValueError otherwise."""
    if not presets:
        raise ValueError(f"{kind} {name!r}: at least one preset is required")
    keys = {p: set(cfg) for p, cfg in presets.items()}
    first = next(iter(keys.values()))
    if any(k != first for k in keys.values()):
        detail = {p: sorted(k) for p, k in keys.items()}
        raise ValueError(f"{kind} {name!r}: presets must set the same keys, got {detail}")
    clash = sorted(first.intersection(reserved))
    if clash:
        raise ValueError(f"{kind} {name!r}: preset keys {clash} are reserved")
    return {p: json_native(cfg, f"preset {p!r} of {name!r}") for p, cfg in presets.items()}


def resolve_preset(kind: str, name: str, presets: Mapping[str, Mapping[str, Any]], preset: str,
                   overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Preset ``preset`` with ``overrides`` applied (JSON-native); an unknown preset or key -> ValueError
    naming the valid ones."""
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r} for {kind} {name!r}; "
                         f"valid presets: {', '.join(sorted(presets))}")
    base = presets[preset]
    unknown = sorted(set(overrides) - set(base))
    if unknown:
        raise ValueError(f"unknown override(s) {unknown} for {kind} {name!r}; "
                         f"valid keys: {', '.join(sorted(base))}")
    for key, value in overrides.items():
        expected = _kind_of(base[key])
        if expected is not None and _kind_of(value) != expected and not (expected == "number" and _kind_of(value) == "integer"):
            raise ValueError(f"override {key}={json.dumps(value)} for {kind} {name!r}: expected "
                             f"{'an' if expected[0] in 'aeiou' else 'a'} {expected} like the preset's {json.dumps(base[key])}")
    return json_native({**copy.deepcopy(base), **overrides}, f"overrides of {name!r}")


def _parse_width_param(width_param: str) -> tuple[str, bool]:
    """``"KEY"`` -> (KEY, False); ``"KEY[-1]"`` (the last entry of a list-valued key) -> (KEY, True)."""
    if width_param.endswith("[-1]"):
        return width_param[: -len("[-1]")], True
    return width_param, False


def width_value(cfg: Mapping[str, Any], width_param: str | None) -> int | None:
    """The current value of ``width_param`` in config ``cfg`` (None when there is none)."""
    if width_param is None:
        return None
    key, last = _parse_width_param(width_param)
    value = cfg.get(key)
    if last:
        return value[-1] if isinstance(value, list) and value else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def width_override(kind: str, name: str, cfg: Mapping[str, Any], width_param: str, value: int) -> dict[str, Any]:
    """The override that sets ``width_param`` of config ``cfg`` to ``value``: ``{KEY: value}``, or for
    ``KEY[-1]`` the key's list with its last entry replaced. ValueError when ``cfg`` has no such key (or,
    for ``KEY[-1]``, no non-empty list of integers under it)."""
    key, last = _parse_width_param(width_param)
    current = cfg.get(key)
    if last:
        if not (isinstance(current, list) and current and all(isinstance(v, int) for v in current)):
            raise ValueError(f"{kind} {name!r}: width_param {width_param!r} expects a non-empty list of integers "
                             f"under {key!r}, got {json.dumps(current)}")
        return {key: [*current[:-1], int(value)]}
    if not isinstance(current, int) or isinstance(current, bool):
        raise ValueError(f"{kind} {name!r}: width_param {width_param!r} expects an integer preset key, "
                         f"got {json.dumps(current)}")
    return {key: int(value)}


def _kind_of(value: Any) -> str | None:
    """A JSON value's kind for override checks: integer, number (float), boolean, string, list, object; None
    for null (a preset's null admits anything)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    return "object"


def preset_shapes(shapes: ShapeFn, presets: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, tuple[int, ...]]]:
    """{preset: {input: per-sample shape}} from a registry entry's shape function."""
    return {p: {k: tuple(int(d) for d in s) for k, s in shapes(cfg).items()} for p, cfg in presets.items()}


def random_inputs(names: Iterable[str], shapes: Mapping[str, tuple[int, ...]],
                  ranges: Mapping[str, tuple[float, float]], batch: int,
                  generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Random float32 inputs {name: (batch, *shape)}: uniform in ``ranges[name]`` where given (head pose
    in degrees, landmarks in [0, 1]), N(0, 1) otherwise (roughly ImageNet-normalized images)."""
    if batch < 1:
        raise ValueError(f"expected batch >= 1, got {batch}")
    out: dict[str, torch.Tensor] = {}
    for key in names:
        shape = (batch, *shapes[key])
        if key in ranges:
            lo, hi = ranges[key]
            out[key] = lo + (hi - lo) * torch.rand(shape, generator=generator)
        else:
            out[key] = torch.randn(shape, generator=generator)
    return out


T = TypeVar("T", bound=type)


@dataclass(frozen=True)
class RegisteredSpec:
    """What a registered teacher or student is, without building it (``teacher_spec``, ``student_spec``).

    ``description`` is the registration's one line: a teacher's source write-up (also read as ``source``), a
    student's family and what makes it small. ``inputs`` are forward's positional input names, in order (a
    student's are its task's); ``outputs`` the outputs the registration promises (a student: its task's; a
    teacher promises none beyond its model's own ``output_names``). ``example_shapes[preset][input]`` is the
    shape of one sample (no batch dimension) at that preset. The model's own facts: ``gradcam_layers`` ({image
    input: conv layer GradCam reads}), ``hint_layer`` (the layer whose output is the default FitNets hint) and
    ``recipes`` ({preset: training Recipe}); empty where the registration gives none (then analysis and
    distillation find defaults from the module graph, and training uses the generic recipe, saying so).
    ``width_param`` is the hyper-parameter that sets the hint layer's output width (a preset key, or
    ``KEY[-1]``: the last entry of a list-valued key), ``width_factor`` times its value being that width (a
    bidirectional LSTM's output is twice its hidden size); None where the registration names none (then the
    model cannot be sized automatically, :mod:`workbench.compress.autosize`).
    """

    name: str
    description: str
    task: str
    inputs: tuple[str, ...]
    presets: tuple[str, ...]
    example_shapes: dict[str, dict[str, tuple[int, ...]]]
    outputs: tuple[str, ...] = ()
    gradcam_layers: dict[str, str] = field(default_factory=dict)
    hint_layer: str | None = None
    recipes: dict[str, Any] = field(default_factory=dict)
    width_param: str | None = None
    width_factor: int = 1

    @property
    def source(self) -> str:
        """A teacher's word for its ``description``: the write-up the architecture comes from."""
        return self.description


@dataclass(frozen=True)
class _Entry:
    name: str
    description: str
    task: str
    inputs: tuple[str, ...] | None  # None: the task's
    presets: dict[str, dict[str, Any]]
    builder: Callable[..., nn.Module]
    shapes: ShapeFn
    ranges: dict[str, tuple[float, float]]
    gradcam_layers: dict[str, str] = field(default_factory=dict)
    hint_layer: str | None = None
    recipes: dict[str, Any] = field(default_factory=dict)
    width_param: str | None = None
    width_factor: int = 1


class ModelRegistry:
    """One kind of registered model (``"teacher"``, ``"student"``): registration, lookup, building, specs.

    A registered model is a class whose keyword-only constructor takes exactly the hyper-parameters of its
    presets. :meth:`get` resolves a preset plus overrides into one flat, JSON-native config, builds the model
    and stores ``{kind: name, "preset": ..., **config}`` on it (``model.config``; a model of a kind that
    ``follows_task`` also records ``"task"``), so :meth:`build_from_config` rebuilds the same architecture
    from a checkpoint's JSON without unpickling anything.

    Args:
        kind: words the error messages and names the config key ("teacher" -> ``config["teacher"]``).
        entries: returns the dict the entries live in, read at every call (the kind's module keeps it as
            ``_REGISTRY``; a test swaps that for a copy to forget what it registers).
        default_preset: a model's presets -> the preset used when none is given.
        follows_task: models take exactly their task's inputs and return at least its outputs, and their
            config records the task (students); otherwise a registration lists its own inputs and a config
            may build a form that takes a prefix of them (teachers: itracker with one camera view).
    """

    def __init__(self, kind: str, *, entries: Callable[[], dict[str, _Entry]],
                 default_preset: Callable[[Mapping[str, Any]], str], follows_task: bool) -> None:
        self.kind = kind
        self._entries = entries
        self._default_preset = default_preset
        self.follows_task = follows_task
        # Config keys the registry writes itself; a model's hyper-parameters may not use them.
        self.reserved = (kind, "preset", *(("task",) if follows_task else ()), "registered_in")

    def register(self, name: str, *, description: str, task: str, presets: Mapping[str, Mapping[str, Any]],
                 example_shapes: ShapeFn, inputs: Iterable[str] | None = None,
                 input_ranges: Mapping[str, tuple[float, float]] | None = None,
                 gradcam_layers: Mapping[str, str] | None = None, hint_layer: str | None = None,
                 recipes: Mapping[str, Any] | None = None, width_param: str | None = None,
                 width_factor: int = 1) -> Callable[[T], T]:
        """Class decorator registering a model under ``name``.

        Args:
            description: one line: where the architecture comes from, or what the model is.
            task: the task contract name (``workbench.tasks``) the model serves.
            presets: preset name -> every constructor hyper-parameter (keyword-only arguments).
            example_shapes: resolved config -> {input name: per-sample shape}; drives :meth:`example_inputs`.
            inputs: forward's positional input names, in order (required unless the kind ``follows_task``,
                whose inputs are the task's).
            input_ranges: inputs drawn uniformly from (low, high) by :meth:`example_inputs` (others: N(0, 1)).
            gradcam_layers: image input -> the conv layer (module name) GradCam reads for it.
            hint_layer: the module whose output is the default feature-distillation hint.
            recipes: preset -> training :class:`workbench.train.recipes.Recipe`; every preset needs one when given.
            width_param: the hyper-parameter that sets ``hint_layer``'s output width: a preset key holding an
                integer, or ``KEY[-1]`` for the last entry of a list of integers.
            width_factor: the hint layer's output width is ``width_factor`` x the parameter's value.

        Raises ValueError on a duplicate name, inconsistent presets or a width_param no preset can set.
        """
        if (inputs is None) != self.follows_task:
            raise TypeError(f"{self.kind} {name!r}: " + ("inputs are the task's, not the registration's"
                                                         if self.follows_task else "inputs are required"))

        def decorator(cls: T) -> T:
            entries = self._entries()
            if name in entries:
                raise ValueError(f"{self.kind} {name!r} is already registered (by {entries[name].builder.__qualname__})")
            checked = check_presets(self.kind, name, presets, self.reserved)
            if width_param is not None:
                if hint_layer is None:
                    raise ValueError(f"{self.kind} {name!r}: width_param {width_param!r} needs a hint_layer")
                if not isinstance(width_factor, int) or isinstance(width_factor, bool) or width_factor < 1:
                    raise ValueError(f"{self.kind} {name!r}: width_factor must be a positive integer, got {width_factor!r}")
                for cfg in checked.values():
                    width_override(self.kind, name, cfg, width_param, 8)
            if recipes is not None and set(recipes) != set(checked):
                raise ValueError(f"{self.kind} {name!r}: recipes for presets {sorted(recipes)}, "
                                 f"but presets are {sorted(checked)}")
            entries[name] = _Entry(
                name=name, description=description, task=task, inputs=None if inputs is None else tuple(inputs),
                presets=checked, builder=cls, shapes=example_shapes, ranges=dict(input_ranges or {}),
                gradcam_layers=dict(gradcam_layers or {}), hint_layer=hint_layer, recipes=dict(recipes or {}),
                width_param=width_param, width_factor=int(width_factor),
            )
            return cls

        return decorator

    def entry(self, name: str) -> _Entry:
        """The registration of ``name`` (loading another package's entry point for it if need be)."""
        entries = self._entries()
        if name not in entries:
            discover(self.kind, entries.__contains__, name)  # a model of another package, by entry point
        if name not in entries:
            raise ValueError(f"unknown {self.kind} {name!r}; valid {self.kind}s: {', '.join(self.names())}")
        return entries[name]

    def names(self, task: str | None = None) -> list[str]:
        """Registered names (entry points of other packages included), sorted; only those serving ``task``
        when given."""
        entries = self._entries()
        discover(self.kind, entries.__contains__)
        return sorted(n for n, e in entries.items() if task is None or e.task == task)

    def default_preset(self, name: str) -> str:
        """The preset :meth:`get` and :meth:`example_inputs` use for ``name`` when none is given."""
        return self._default_preset(self.entry(name).presets)

    def get(self, name: str, *, preset: str | None = None, **overrides: Any) -> nn.Module:
        """Build ``name`` at ``preset`` (None: :meth:`default_preset`) with hyper-parameter ``overrides``
        (fresh weights).

        The model carries ``config`` (JSON-native: name, preset, every resolved hyper-parameter and, where the
        kind follows its task, the task), ``input_names`` and ``output_names``. Unknown name, preset or
        override key, or a model whose input (or output) names break its registration -> ValueError.
        """
        entry = self.entry(name)
        preset = self.default_preset(name) if preset is None else preset
        cfg = resolve_preset(self.kind, name, entry.presets, preset, overrides)
        model = entry.builder(**copy.deepcopy(cfg))
        self._check_names(entry, model)
        model.config = {self.kind: name, "preset": preset, **({"task": entry.task} if self.follows_task else {}), **cfg}
        where = registered_in(entry.builder)
        if where is not None:  # registered outside this repository: record where, so its run folders reopen
            model.config["registered_in"] = where
        return model

    def _check_names(self, entry: _Entry, model: nn.Module) -> None:
        names = tuple(getattr(model, "input_names", ()))
        given = getattr(model, "input_names", None)
        if not self.follows_task:
            # A config may build a form that takes fewer inputs (itracker with one camera view): a prefix.
            if not names or names != entry.inputs[: len(names)]:
                raise ValueError(f"{self.kind} {entry.name!r}: model input_names {given} "
                                 f"do not match the registered inputs {entry.inputs}")
            return
        task = _task(entry.task)
        if names != tuple(task.input_names):
            raise ValueError(f"{self.kind} {entry.name!r}: model input_names {given} "
                             f"do not match task {entry.task!r}'s inputs {tuple(task.input_names)}")
        missing = [k for k in task.output_names if k not in tuple(getattr(model, "output_names", ()))]
        if missing:
            raise ValueError(f"{self.kind} {entry.name!r}: model output_names {getattr(model, 'output_names', None)} "
                             f"lack task {entry.task!r}'s outputs {missing}")

    def build_from_config(self, config: Mapping[str, Any]) -> nn.Module:
        """Rebuild a model (architecture, fresh weights) from ``model.config`` or its JSON round trip."""
        if not isinstance(config, Mapping) or self.kind not in config:
            raise ValueError(f"a {self.kind} config needs a {self.kind!r} key, got {type(config).__name__} "
                             f"with keys {sorted(config) if isinstance(config, Mapping) else None}")
        rest = dict(config)
        name = rest.pop(self.kind)
        preset = rest.pop("preset", None)
        task = rest.pop("task", None) if self.follows_task else None
        where = rest.pop("registered_in", None)
        if name not in self._entries() and where:
            import_registering_module(where)
        entry = self.entry(name)
        if task is not None and task != entry.task:
            raise ValueError(f"config says {self.kind} {name!r} serves task {task!r}, "
                             f"but it is registered for {entry.task!r}")
        return self.get(name, preset=preset, **{**self._defaults_for_missing(entry, preset, rest), **rest})

    def _defaults_for_missing(self, entry: _Entry, preset: str | None, config: Mapping[str, Any]) -> dict[str, Any]:
        """Hyper-parameters a stored config lacks were not parameters when it was written: the builder's own
        default (its behaviour before the parameter existed) applies to them, not the preset's current value
        (e.g. an EVG run from before ``coord_scale`` rebuilds with coordinates at +-1)."""
        presets = entry.presets or {}
        keys = presets.get(preset if preset is not None else self._default_preset(presets), {})
        try:
            params = inspect.signature(entry.builder).parameters
        except (TypeError, ValueError):
            return {}
        return {k: params[k].default for k in keys if k not in config and k in params
                and params[k].default is not inspect.Parameter.empty}

    def spec(self, name: str) -> RegisteredSpec:
        """The registered description of ``name``, with per-preset example input shapes (no batch dim)."""
        entry = self.entry(name)
        if self.follows_task:
            task = _task(entry.task)
            inputs, outputs = tuple(task.input_names), tuple(task.output_names)
        else:
            inputs, outputs = entry.inputs, ()
        return RegisteredSpec(entry.name, entry.description, entry.task, inputs, tuple(entry.presets),
                              preset_shapes(entry.shapes, entry.presets), outputs, dict(entry.gradcam_layers),
                              entry.hint_layer, dict(entry.recipes), entry.width_param, entry.width_factor)

    def example_inputs(self, name: str, preset: str | None = None, batch: int = 2, *,
                       generator: torch.Generator | None = None, **overrides: Any) -> dict[str, torch.Tensor]:
        """Random inputs {name: (batch, *shape)} for ``name`` at ``preset`` (None: :meth:`default_preset`),
        float32.

        Images are N(0, 1) (roughly ImageNet-normalized); inputs with a registered range (head pose in
        degrees, landmarks in [0, 1]) are uniform in it. ``overrides`` change the shapes where the config
        sets them (e.g. ``input_size``).
        """
        entry = self.entry(name)
        cfg = resolve_preset(self.kind, name, entry.presets,
                             self.default_preset(name) if preset is None else preset, overrides)
        shapes = entry.shapes(cfg)
        if self.follows_task:
            names = list(_task(entry.task).input_names)
        else:  # a config may take a prefix of the registered inputs: those it gives shapes for
            names = [k for k in entry.inputs if k in shapes]
        return random_inputs(names, shapes, entry.ranges, batch, generator)


def _task(name: str) -> Any:
    from workbench.tasks import get_task

    return get_task(name)
