"""What the teacher and student registries share: preset checking and resolution, JSON-native configs,
per-preset example shapes and random example inputs.

Models from other packages register through Python entry points: a distribution that declares, e.g.,

    [project.entry-points."workbench.teachers"]
    mynet = "mypkg.models:MyNet"        # a class decorated with @register_teacher("mynet", ...)

is found by :func:`discover` when a name is not registered yet (loading the entry point imports its module,
whose decorator registers the model; an entry point naming a plain function is called once to register).
A model registered outside this repository records where (:func:`registered_in`), so a run folder of it
reopens from any later command without the user importing anything.

``kind`` ("teacher", "student") only words the error messages. Both registries keep their own entries
and public functions (``get_teacher``/``get_student``, ...); these helpers hold the rules, so the two
cannot drift apart.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = ["check_presets", "discover", "import_registering_module", "json_native", "preset_shapes", "random_inputs",
           "registered_in", "resolve_preset"]

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
