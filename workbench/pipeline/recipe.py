"""Pipeline recipes: one TOML file says what `workbench run` does, stage by stage.

Every field has a default, so an empty file (or no file) is a valid recipe: the default demo on gazenet.
A section may hold a sub-table named after a teacher whose keys override that section for that teacher
only, e.g. ``[train.evg]`` with ``n_train = 2000``. Unknown keys are an error (a typo must not be
silently ignored and change nothing).

    teachers = ["gazenet"]      # or "all"
    out = "runs/demo"           # also seed, preset, threads
    model = "mymodel:make"      # instead of teachers: any model spec (a name, or package.module:factory)
    task = "face_angles"        # the task of a package.module:factory model
    data = "data/mpii"          # "synth" (default) or a data set path; format = its layout (default: detected)
    device = "auto"             # auto, cpu or cuda[:N] for training, pruning and distillation
    [train]    any training-recipe field (workbench.train.recipes.Recipe); without a [train] table the
               demo budget DEMO_TRAIN applies; with one, its keys alone override the teacher's preset recipe;
               also init_from (a run folder or .pt file to start from) and init_map (["SRC=DST", ...]),
               as `workbench train --init-from/--init-map` (workbench.train.init_from)
    [analyze]  method, n, checks, check_n, compare_checks, embeddings, embeddings_n, fc_importance, fc_n
    [prune]    target_macs, importance, steps, finetune_epochs, round_to
    [distill]  student, preset, kd, alpha, temperature, epochs, control
    [quantize] model, n_calib
    [bench]    threads, repeats, batch_sizes
    [compress] latency_ms | speedup | macs | params (one budget turns the stage on; off by default), budget_x,
               budget_minutes, eta, rung_epochs, batch, candidates, max_candidates, final
    [report]   out

examples/demo.toml documents every field (and equals the defaults); examples/all_teachers.toml runs all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import tomllib

from workbench.errors import WorkbenchError
from workbench.utils.jsonio import json_native

ALL = "all"


@dataclass(frozen=True)
class AnalyzeOptions:
    """Explaining the teacher (and, after compression, the pruned model and the student)."""

    method: str = "ig"  # attribution method: ig, saliency, gradshap, smoothgrad, gradcam, occlusion
    n: int = 16  # held-out samples to attribute (the same samples for the teacher, pruned model and student)
    checks: bool = True  # the teacher's faithfulness checks: eye-mass ratio, pointing, randomization, deletion
    check_n: int = 8  # samples for the checks (they re-attribute per randomized layer and per deletion step)
    compare_checks: bool = False  # also run the checks on the pruned model and the student (slow)
    embeddings: bool = True  # embedding PCA and effective rank of the penultimate layer
    embeddings_n: int = 512  # held-out samples whose embeddings are collected
    fc_importance: bool = True  # importance curve of the units of the fully connected layers
    fc_n: int = 128  # held-out samples that score the FC units (ablation, activations, conductance)


@dataclass(frozen=True)
class PruneOptions:
    """Structural pruning of the teacher (Torch-Pruning), then fine-tuning."""

    target_macs: float = 0.5  # keep this fraction of the teacher's MACs (at its padded input)
    importance: str = "taylor"  # channel importance (taylor: the best measured, README): taylor | magnitude | lamp | rank | fc (the analyze stage's FC importance)
    scope: str = "local"  # local: same share per layer group; global: one ranking of all channels; erank: by effective rank
    steps: int = 2  # iterative pruning steps to reach the target
    finetune_epochs: int = 1  # fine-tuning epochs after each step (the teacher's data, 0.1x its learning rate)
    final_epochs: int | None = None  # fine-tuning epochs after the last step; None: finetune_epochs
    round_to: int = 8  # kept widths are multiples of this (runtimes pack channels in blocks); 1: any width


@dataclass(frozen=True)
class DistillOptions:
    """Knowledge distillation into a small student, and the same student trained without a teacher."""

    student: str = "auto"  # a registered student name, or "auto": the first student registered for the teacher's task
    # student size preset (e.g. tiny, small), or "auto": the default preset with the hint width set to the
    # teacher's participation ratio at its hint layer (workbench.compress.autosize); None: the student's default
    preset: str | None = None
    kd: tuple[str, ...] = ("response",)  # kinds of distillation: response (outputs) and/or feature (FitNets hints)
    alpha: float = 0.5  # weight of the distillation loss (1 - alpha on the task loss)
    temperature: float = 4.0  # softening temperature of the response (logit) distillation
    epochs: int | None = None  # student training epochs; None: the teacher's
    control: bool = True  # also train the student without distillation, the same budget (the control)


@dataclass(frozen=True)
class QuantizeOptions:
    """Post-training static int8 quantization with onnxruntime."""

    model: str = "student"  # which model becomes the int8 one: teacher | pruned | student
    n_calib: int = 64  # validation samples that calibrate the activation ranges


@dataclass(frozen=True)
class BenchOptions:
    """Latency of every model (eager PyTorch, onnxruntime fp32 and int8) on this machine's CPU."""

    threads: int = 2  # intra-op threads for PyTorch and onnxruntime
    repeats: int = 20  # timed runs per batch size (the median and p90 are reported)
    batch_sizes: tuple[int, ...] = (1, 32)


@dataclass(frozen=True)
class CompressOptions:
    """Compression to a budget (`workbench compress`), the last stage; off unless one budget is set."""

    latency_ms: float | None = None  # ms per batch on onnxruntime, one thread, as measured on this machine
    speedup: float | None = None  # or: the teacher's ms (timed in the same loop) / this factor
    macs: float | None = None  # MACs of one sample
    params: float | None = None  # parameters
    budget_x: float | None = None  # compute budget: times the teacher's training time; None: 3 (or budget_minutes)
    budget_minutes: float | None = None  # compute budget in minutes instead
    eta: int = 2  # successive halving: the best 1/eta of each rung go on
    rung_epochs: float = 1.0  # epochs every candidate trains in rung 0 (below 1: a pass over that share of samples)
    batch: int = 1  # batch size the latency is measured at
    candidates: tuple[str, ...] = ("prune", "student", "int8")  # kinds of candidates (the teacher is always one)
    max_candidates: int | None = None  # build at most this many fp32 candidates
    final: bool = True  # the last candidate left trains on with the compute budget's time left

    def enabled(self) -> bool:
        return any(v is not None for v in (self.latency_ms, self.speedup, self.macs, self.params))


@dataclass(frozen=True)
class ReportOptions:
    """Where the HTML/Markdown/JSON report goes."""

    out: str | None = None  # report folder; None: <out>/report


# The demo's training budget (the default): about 2 minutes for gazenet on two CPU cores. The benchmark
# figures of the README come from benchmarks/train_teachers.py at the full cpu recipes instead.
DEMO_TRAIN: dict[str, Any] = {"n_train": 6000, "n_val": 1000, "epochs": 6, "milestones": [4]}

# Keys of [train] that are not training-recipe fields: initialization from another run.
TRAIN_INIT_KEYS = ("init_from", "init_map")

# Section name -> its options class. The `train` section is special: its keys are the fields of the
# training recipe (workbench.train.recipes.Recipe) and they override the teacher's cpu recipe.
SECTIONS: dict[str, type] = {
    "analyze": AnalyzeOptions, "prune": PruneOptions, "distill": DistillOptions, "quantize": QuantizeOptions,
    "bench": BenchOptions, "report": ReportOptions, "compress": CompressOptions,
}
TOP_LEVEL = ("teachers", "model", "task", "data", "format", "device", "out", "seed", "preset", "threads", "train",
             *SECTIONS)


@dataclass(frozen=True)
class PipelineRecipe:
    """A parsed, validated recipe. ``train`` holds training-recipe overrides; ``per_teacher`` holds the
    ``[section.<teacher>]`` overrides, applied by :meth:`for_teacher`."""

    teachers: tuple[str, ...] = ("gazenet",)  # the teachers to run, in order; "all" in TOML: every registered one
    out: str = "runs/demo"  # the run folder: <out>/<teacher>/<stage>/
    seed: int = 0  # seeds data, training and sampling in every stage
    preset: str = "cpu"  # teacher preset: cpu (trains in minutes on two cores) or paper
    threads: int | None = None  # PyTorch threads for every stage (None: one per core); bench.threads times latency
    model: str | None = None  # any model spec (workbench.modelspec) instead of `teachers`; its folder is model_slug
    task: str | None = None  # the task of a package.module:factory model
    data: str = "synth"  # the training data: "synth" (SynthGaze) or a data set path
    format: str | None = None  # the layout of a data set path (None: detected)
    device: str = "auto"  # auto, cpu or cuda[:N] for training, pruning and distillation
    train: dict[str, Any] = field(default_factory=lambda: dict(DEMO_TRAIN))
    analyze: AnalyzeOptions = AnalyzeOptions()
    prune: PruneOptions = PruneOptions()
    distill: DistillOptions = DistillOptions()
    quantize: QuantizeOptions = QuantizeOptions()
    bench: BenchOptions = BenchOptions()
    report: ReportOptions = ReportOptions()
    compress: CompressOptions = CompressOptions()
    per_teacher: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    source: str | None = None  # the TOML file it came from (None: defaults)

    def for_teacher(self, teacher: str) -> dict[str, Any]:
        """The resolved per-stage options of one teacher, as plain JSON-native dicts."""
        overrides = self.per_teacher.get(teacher, {})
        out: dict[str, Any] = {"train": {**self.train, **overrides.get("train", {})}}
        for name in SECTIONS:
            base = asdict(getattr(self, name))
            out[name] = json_native({**base, **overrides.get(name, {})})
        return out

    def to_dict(self) -> dict[str, Any]:
        return json_native(asdict(self))

    def train_source(self) -> dict[str, Any]:
        """What the train stage trains on beyond the demo defaults (empty for a teacher on SynthGaze, so the
        stage keys of existing demo runs do not change)."""
        out: dict[str, Any] = {}
        if self.model is not None:
            out.update({"model": self.model, "task": self.task})
        if self.data != "synth" or self.format is not None:
            out.update({"data": self.data, "format": self.format})
        return out


def model_slug(spec: str) -> str:
    """A model spec as a folder name: ``mymodel:make`` -> ``mymodel.make`` (see workbench.modelspec.slug)."""
    from workbench.modelspec import slug

    return slug(spec)


def _where(path: str | None, section: str | None = None) -> str:
    prefix = f"{path}: " if path else "recipe: "
    return prefix + (f"[{section}] " if section else "")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# annotation (without "| None") -> (does a TOML value fit, what it expects, how it is stored)
_KINDS: dict[str, tuple[Callable[[Any], bool], str, Callable[[Any], Any]]] = {
    "tuple[str": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of strings", tuple),
    "tuple[int": (lambda v: isinstance(v, list) and all(_is_int(x) for x in v), "a list of integers", tuple),
    "bool": (lambda v: isinstance(v, bool), "true or false", lambda v: v),
    "int": (_is_int, "an integer", lambda v: v),
    "float": (lambda v: _is_int(v) or isinstance(v, float), "a number", float),
    "str": (lambda v: isinstance(v, str), "a string", lambda v: v),
}


def _check_type(value: Any, expected: Any, key: str, where: str) -> Any:
    """Check a TOML value against a dataclass field's annotation (a small subset: int, float, bool,
    str, optional, tuples of str/int); ints are accepted where floats are expected, and one string where
    a list of strings is."""
    text = str(expected)
    if value is None:
        if "None" in text:
            return None
        raise WorkbenchError(f"{where}{key} must not be empty")
    base = text.replace(" | None", "").replace("typing.", "")
    kind = next((k for k in _KINDS if base == k or (k.startswith("tuple") and base.startswith(k))), None)
    if kind is None:
        return value
    if kind == "tuple[str" and isinstance(value, str):
        value = [value]
    fits, expects, store = _KINDS[kind]
    if not fits(value):
        raise WorkbenchError(f"{where}{key} expects {expects}, got {value!r}")
    return store(value)


def _parse_options(cls: type, table: dict[str, Any], where: str) -> dict[str, Any]:
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise WorkbenchError(f"{where}unknown key(s) {unknown}; expected some of {sorted(known)}")
    return {k: _check_type(v, known[k].type, k, where) for k, v in table.items()}


def _parse_train(table: dict[str, Any], where: str) -> dict[str, Any]:
    from workbench.train.recipes import Recipe

    known = {f.name for f in fields(Recipe)} | set(TRAIN_INIT_KEYS)
    unknown = sorted(set(table) - known)
    if unknown:
        raise WorkbenchError(f"{where}unknown key(s) {unknown}; expected training-recipe fields, some of {sorted(known)}")
    types = {f.name: f.type for f in fields(Recipe)}
    out = {}
    for k, v in table.items():
        if k == "init_from":
            out[k] = _check_type(v, "str", k, where)
            continue
        if k == "init_map":  # a list of "SRC=DST" (a TOML table here would read as a [train.<teacher>] table)
            from workbench.train.init_from import parse_init_map

            if isinstance(v, str):
                v = [v]
            if not isinstance(v, list):
                raise WorkbenchError(f"{where}init_map expects a list of \"SRC=DST\" strings, got {v!r}")
            out[k] = parse_init_map(v, option=f"{where}init_map")
            continue
        t = str(types[k])
        if t in ("int", "float", "bool", "str"):
            v = _check_type(v, t, k, where)
        elif t.startswith("tuple[int"):
            v = list(_check_type(v, t, k, where))
        out[k] = v
    return out


def _split_teacher_tables(section: str, table: Any, teachers: list[str], path: str | None) -> tuple[dict, dict]:
    """Separate ``[section.<teacher>]`` sub-tables from the section's own keys."""
    if not isinstance(table, dict):
        raise WorkbenchError(f"{_where(path)}{section} must be a table ([{section}]), got {table!r}")
    own, per = {}, {}
    for key, value in table.items():
        if isinstance(value, dict):
            if key not in teachers:
                raise WorkbenchError(f"{_where(path, section)}unknown sub-table [{section}.{key}]; "
                                     f"sub-tables must be named after a teacher ({', '.join(teachers)})")
            per[key] = value
        else:
            own[key] = value
    return own, per


def parse_recipe(data: dict[str, Any], *, path: str | None = None) -> PipelineRecipe:
    """Validate a recipe given as the dict TOML parses into."""
    from teachers import list_teachers

    names = list(list_teachers())
    unknown = sorted(set(data) - set(TOP_LEVEL))
    if unknown:
        raise WorkbenchError(f"{_where(path)}unknown key(s) {unknown}; expected some of {list(TOP_LEVEL)}")
    kwargs: dict[str, Any] = {"source": path}
    for key, typ in (("model", "str | None"), ("task", "str | None"), ("data", "str"), ("format", "str | None"),
                     ("device", "str")):
        if key in data:
            kwargs[key] = _check_type(data[key], typ, key, _where(path))
    if kwargs.get("model") is not None:
        if "teachers" in data:
            raise WorkbenchError(f"{_where(path)}give either model (any model spec) or teachers, not both")
        from workbench.modelspec import parse_model_spec

        spec = parse_model_spec(kwargs["model"], task=kwargs.get("task"))
        if spec.kind == "run":
            raise WorkbenchError(f"{_where(path)}model {kwargs['model']!r} is a run folder; the pipeline trains its "
                                 "model: give a model name or package.module:factory")
        names.append(model_slug(kwargs["model"]))
        data = {**data, "teachers": [model_slug(kwargs["model"])]}
    elif kwargs.get("task") is not None:
        raise WorkbenchError(f"{_where(path)}task applies to a package.module:factory model (the model key)")
    if "device" in kwargs:
        from workbench.modelspec import resolve_device

        resolve_device(kwargs["device"])
    teachers = data.get("teachers", list(PipelineRecipe.teachers))
    if teachers == ALL or teachers == [ALL]:
        teachers = names
    if isinstance(teachers, str):
        teachers = [teachers]
    if not isinstance(teachers, list) or not teachers or not all(isinstance(t, str) for t in teachers):
        raise WorkbenchError(f"{_where(path)}teachers expects a non-empty list of names or \"all\", got {teachers!r}")
    bad = [t for t in teachers if t not in names]
    if bad:
        raise WorkbenchError(f"{_where(path)}unknown teacher(s) {bad}; expected some of {names} or \"all\"")
    if len(set(teachers)) != len(teachers):
        raise WorkbenchError(f"{_where(path)}teachers lists a name twice: {teachers}")
    kwargs["teachers"] = tuple(teachers)
    for key, typ in (("out", "str"), ("seed", "int"), ("preset", "str"), ("threads", "int | None")):
        if key in data:
            kwargs[key] = _check_type(data[key], typ, key, _where(path))
    if kwargs.get("threads") is not None and kwargs["threads"] < 1:
        raise WorkbenchError(f"{_where(path)}threads must be >= 1, got {kwargs['threads']}")
    if kwargs.get("preset", "cpu") not in ("cpu", "paper"):
        raise WorkbenchError(f"{_where(path)}preset expects \"cpu\" or \"paper\", got {kwargs['preset']!r}")
    per_teacher: dict[str, dict[str, dict[str, Any]]] = {}
    # Without a [train] table the demo budget applies; with one, its keys alone override the preset recipe.
    own, per = _split_teacher_tables("train", data.get("train", {}), names, path)
    if "train" in data:
        kwargs["train"] = _parse_train(own, _where(path, "train"))
    for t, table in per.items():
        per_teacher.setdefault(t, {})["train"] = _parse_train(table, _where(path, f"train.{t}"))
    for section, cls in SECTIONS.items():
        own, per = _split_teacher_tables(section, data.get(section, {}), names, path)
        kwargs[section] = cls(**_parse_options(cls, own, _where(path, section)))
        for t, table in per.items():
            per_teacher.setdefault(t, {})[section] = _parse_options(cls, table, _where(path, f"{section}.{t}"))
    kwargs["per_teacher"] = per_teacher
    recipe = PipelineRecipe(**kwargs)
    _check_values(recipe, path)
    return recipe


def _check_values(recipe: PipelineRecipe, path: str | None) -> None:
    for t in recipe.teachers:
        opts = recipe.for_teacher(t)
        if opts["train"].get("init_map") and not opts["train"].get("init_from"):
            raise WorkbenchError(f"{_where(path, 'train')}init_map applies to init_from (a run to start from); "
                                 f"{t} has no init_from")
        p, q, d, b, a = opts["prune"], opts["quantize"], opts["distill"], opts["bench"], opts["analyze"]
        if not 0.0 < p["target_macs"] < 1.0:
            raise WorkbenchError(f"{_where(path, 'prune')}target_macs is a fraction in (0, 1), got {p['target_macs']}")
        if p["steps"] < 1 or p["finetune_epochs"] < 0 or (p["final_epochs"] is not None and p["final_epochs"] < 0):
            raise WorkbenchError(f"{_where(path, 'prune')}steps must be >= 1, finetune_epochs and final_epochs >= 0")
        if not 1 <= p["round_to"] <= 256:
            raise WorkbenchError(f"{_where(path, 'prune')}round_to is an integer in [1, 256], got {p['round_to']}")
        if p["scope"] not in ("local", "global", "erank"):
            raise WorkbenchError(f"{_where(path, 'prune')}scope expects \"local\", \"global\" or \"erank\", "
                                 f"got {p['scope']!r}")
        if q["model"] not in ("teacher", "pruned", "student"):
            raise WorkbenchError(f"{_where(path, 'quantize')}model expects teacher, pruned or student, got {q['model']!r}")
        if min(q["n_calib"], a["n"], a["check_n"], a["embeddings_n"], a["fc_n"], b["repeats"], b["threads"]) < 1:
            raise WorkbenchError(f"{_where(path)}quantize.n_calib, analyze.n, analyze.check_n, bench.repeats and "
                                 "bench.threads must be >= 1")
        if not 0.0 <= d["alpha"] <= 1.0 or d["temperature"] <= 0:
            raise WorkbenchError(f"{_where(path, 'distill')}alpha must be in [0, 1] and temperature > 0")
        if d["epochs"] is not None and d["epochs"] < 1:
            raise WorkbenchError(f"{_where(path, 'distill')}epochs must be >= 1")
        _check_compress(opts["compress"], path)
        importances, kd_kinds = _compress_choices()
        if importances and p["importance"] not in (*importances, "fc"):
            raise WorkbenchError(f"{_where(path, 'prune')}importance expects one of {[*importances, 'fc']}, "
                                 f"got {p['importance']!r}")
        bad = [k for k in d["kd"] if kd_kinds and k not in kd_kinds]
        if bad or not d["kd"]:
            raise WorkbenchError(f"{_where(path, 'distill')}kd expects a non-empty list of {list(kd_kinds)}, got {d['kd']}")


def _check_compress(c: dict[str, Any], path: str | None) -> None:
    """The [compress] section: at most one budget (none: the stage is off) and sane search settings."""
    where = _where(path, "compress")
    budgets = [k for k in ("latency_ms", "speedup", "macs", "params") if c[k] is not None]
    if len(budgets) > 1:
        raise WorkbenchError(f"{where}give one of latency_ms, speedup, macs or params, got {budgets}")
    keys = ("latency_ms", "speedup", "macs", "params", "budget_x", "budget_minutes")
    if any(c[k] is not None and not c[k] > 0 for k in keys):
        raise WorkbenchError(f"{where}latency_ms, speedup, macs, params, budget_x and budget_minutes must be > 0")
    if c["budget_x"] is not None and c["budget_minutes"] is not None:
        raise WorkbenchError(f"{where}give at most one of budget_x and budget_minutes")
    if c["eta"] < 2 or not c["rung_epochs"] > 0 or not 1 <= c["batch"] <= 4096 or (c["max_candidates"] is not None
                                                                   and c["max_candidates"] < 1):
        raise WorkbenchError(f"{where}eta must be >= 2, rung_epochs > 0, max_candidates >= 1, batch in [1, 4096]")
    from workbench.compress.search import KINDS

    if not c["candidates"] or any(k not in KINDS for k in c["candidates"]) or list(c["candidates"]) == ["int8"]:
        raise WorkbenchError(f"{where}candidates expects a list of {list(KINDS)} (int8 with prune or student), "
                             f"got {list(c['candidates'])}")


def _compress_choices() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The importance criteria and KD kinds the compression library accepts (empty if it is absent)."""
    try:
        from workbench.compress.distill import KD_KINDS
        from workbench.compress.importance import IMPORTANCES
    except ImportError:  # pragma: no cover - the library ships with the package
        return (), ()
    return tuple(IMPORTANCES), tuple(KD_KINDS)


def load_recipe(path: str | Path | None = None, *, teachers: list[str] | None = None, out: str | None = None,
                model: str | None = None, task: str | None = None, data_source: str | None = None,
                fmt: str | None = None, device: str | None = None) -> PipelineRecipe:
    """Read and validate a recipe file (None: the defaults); ``teachers``/``out``/``model`` (any model spec,
    with ``task``)/``data_source`` (with ``fmt``)/``device`` override the file."""
    data: dict[str, Any] = {}
    where = None
    if path is not None:
        where = str(path)
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise WorkbenchError(f"{path}: recipe file not found") from None
        except IsADirectoryError:
            raise WorkbenchError(f"{path}: is a folder, expected a TOML recipe file") from None
        except tomllib.TOMLDecodeError as exc:
            raise WorkbenchError(f"{path}: not valid TOML ({exc})") from None
        except UnicodeDecodeError:
            raise WorkbenchError(f"{path}: not a text file, expected a TOML recipe file") from None
    if teachers:
        data["teachers"] = teachers if teachers != [ALL] else ALL
        data.pop("model", None)
    if model:
        data["model"] = model
        data.pop("teachers", None)
    for key, value in (("out", out), ("task", task), ("data", data_source), ("format", fmt), ("device", device)):
        if value:
            data[key] = value
    return parse_recipe(data, path=where)


def describe_fields() -> str:
    """A short field reference for `workbench run --help`."""
    lines = ["top level: teachers (list or \"all\"), out, seed, preset (cpu|paper), threads",
             "model (instead of teachers: a name, or package.module:factory with task), data (synth or a path), "
             "format, device (auto, cpu, cuda[:N])",
             ("[train]: training-recipe overrides (n_train, n_val, epochs, batch_size, lr, ...); "
              "without it: n_train 6000, n_val 1000, epochs 6, milestones [4]; init_from (a run or .pt file to "
              "start from) with init_map [\"SRC=DST\", ...]")]
    for name, cls in SECTIONS.items():
        lines.append(f"[{name}]: " + ", ".join(f.name for f in fields(cls)))
    lines.append("[<section>.<teacher>]: overrides of that section for one teacher")
    return "\n".join(lines)
