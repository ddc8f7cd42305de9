"""The stages of `workbench run`, each a thin call of one library function per model.

    train -> analyze -> prune -> distill -> quantize -> compare -> profile -> export [-> compress]   (per teacher)
    then one report over every teacher

Folders, under ``<out>/<teacher>/``: ``train/`` (the teacher's run folder), ``analyze/`` (saliency,
checks, embeddings, FC importance of the teacher), ``prune/`` (the pruned model's run folder),
``distill/`` (``student/`` and ``control/`` run folders), ``quantize/`` (ONNX fp32 and int8),
``compare/`` (saliency of the pruned model and the student on the teacher's samples), ``profile/``
(params, MACs, latency of every model), ``export/`` (ONNX of every model), and, when [compress] sets a
budget, ``compress/`` (the search of :mod:`workbench.compress.search`: candidates, front, best).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.pipeline.stage_runner import Stage, StageContext
from workbench.utils.jsonio import read_json, write_json

# Bump when a stage's outputs change meaning, so old markers stop matching.
PIPELINE_VERSION = 1


def _call(ctx: StageContext, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` and record the call; ``progress`` is passed only to functions that take it."""
    params = inspect.signature(fn).parameters
    # Library functions take ``progress: bool | Progress`` (workbench.progress); a function whose
    # ``progress`` is something else (an ``advance`` callback, default None) is left alone.
    if "progress" in params and "progress" not in kwargs and isinstance(params["progress"].default, bool):
        kwargs["progress"] = ctx.progress
    shown = [_show(a) for a in args] + [f"{k}={_show(v)}" for k, v in kwargs.items() if k != "progress"]
    ctx.record(f"{fn.__module__}.{fn.__name__}({', '.join(shown)})")
    return fn(*args, **kwargs)


def _show(v: Any) -> str:
    """An argument as the report prints it: paths as strings, tensors by their shape."""
    if isinstance(v, Path):
        return repr(str(v))
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k!r}: {_show(x)}" for k, x in v.items()) + "}"
    if hasattr(v, "shape") and hasattr(v, "dtype"):
        return f"<{str(v.dtype).replace('torch.', '')} tensor {'x'.join(str(d) for d in v.shape)}>"
    return repr(v)


# ---- train ----------------------------------------------------------------------------------------
def train(ctx: StageContext) -> dict[str, Any]:
    """Train the teacher at its preset with the recipe's overrides; the stage folder is the run folder."""
    from workbench.train.engine import TrainRequest, fit

    c = ctx.config
    resume = ctx.resume and (ctx.dir / "checkpoints" / "last.pt").is_file()
    model = c.get("model") or ctx.teacher  # a recipe's `model` (any model spec) or a teacher name
    source = {k: c[k] for k in ("task", "data", "format", "device") if c.get(k) is not None}
    preset = None if c.get("model") else c["preset"]
    overrides = dict(c["recipe"])
    # [train] init_from / init_map start a new run from another run's weights (a resumed run has its own).
    init = {k: overrides.pop(k) for k in ("init_from", "init_map") if k in overrides}
    if resume:
        init = {}
    req = TrainRequest(teacher=model, preset=preset, recipe_overrides=overrides, seed=c["seed"],
                       out=ctx.dir, resume=resume, force=not resume, progress=ctx.progress,
                       **{("fmt" if k == "format" else k): v for k, v in {**source, **init}.items()})
    shown = "".join(f", {'fmt' if k == 'format' else k}={v!r}" for k, v in {**source, **init}.items())
    ctx.record(f"workbench.train.engine.fit(TrainRequest(teacher={model!r}, preset={preset!r}, "
               f"recipe_overrides={overrides!r}, seed={c['seed']!r}{shown}, out={str(ctx.dir)!r}))")
    summary = fit(req)
    return {k: summary[k] for k in ("params", "primary_metric", "best", "best_epoch", "epochs_run", "final",
                                    "constant", "train_seconds", "init_from") if k in summary}


# ---- analyze (the teacher) ------------------------------------------------------------------------
def _analyze(ctx: StageContext, run: Path, out: Path, *, checks: bool, extras: bool) -> dict[str, Any]:
    from workbench.analyze.embeddings import embeddings
    from workbench.analyze.faithfulness import check
    from workbench.analyze.fc_importance import fc_importance
    from workbench.analyze.saliency import saliency

    c = ctx.config
    res: dict[str, Any] = {"saliency": _call(ctx, saliency, run, method=c["method"], n=c["n"], out=out / "saliency")}
    if checks:
        res["check"] = _call(ctx, check, run, method=c["method"], n=c["check_n"], out=out / "check")
    if extras and c["embeddings"]:
        res["embeddings"] = _call(ctx, embeddings, run, n=c["embeddings_n"], out=out / "embeddings")
    if extras and c["fc_importance"]:
        if _has_linear(run):
            res["fc_importance"] = _call(ctx, fc_importance, run, n=c["fc_n"], out=out / "fc_importance")
        else:  # e.g. EVG: fully convolutional, so there is nothing to rank
            res["fc_importance"] = {"not_applicable": "the model has no fully connected (Linear) layers"}
    return res


def _has_linear(run: Path) -> bool:
    from torch import nn

    from workbench.train.models import build_model
    model = build_model(read_json(Path(run) / "config.json")["model"])
    return any(isinstance(m, nn.Linear) for m in model.modules())


def analyze(ctx: StageContext) -> dict[str, Any]:
    """Saliency with faithfulness checks, embedding PCA/effective rank and FC importance of the teacher."""
    ctx.dir.mkdir(parents=True, exist_ok=True)
    return _analyze(ctx, ctx.inputs["train"].dir, ctx.dir, checks=ctx.config["checks"], extras=True)


# ---- compress -------------------------------------------------------------------------------------
def prune(ctx: StageContext) -> dict[str, Any]:
    """Structural pruning of the teacher to ``target_macs`` of its MACs, then fine-tuning; the stage
    folder is the pruned model's run folder."""
    from workbench.compress.prune import prune as prune_fn

    c = ctx.config
    importance = c["importance"]
    if importance == "fc":
        fc_file = ctx.inputs["analyze"].dir / "fc_importance" / "fc_importance.json"
        if not fc_file.is_file():
            raise WorkbenchError(f"prune.importance is 'fc', but the analyze stage wrote no {fc_file} "
                                 "(set analyze.fc_importance = true)")
        importance = f"fc:{fc_file}"
    return _call(ctx, prune_fn, ctx.inputs["train"].dir, ctx.dir, target_macs=c["target_macs"],
                 importance=importance, scope=c["scope"], steps=c["steps"], finetune_epochs=c["finetune_epochs"],
                 final_epochs=c["final_epochs"], round_to=c["round_to"],
                 **({"device": c["device"]} if c.get("device") else {}))


def resolve_student(teacher_run: Path, student: str) -> str:
    """``"auto"`` -> the default student of the teacher's task; a name is checked against the registry."""
    import students

    task = read_json(Path(teacher_run) / "config.json")["task"]
    names = students.list_students(task)
    if student != "auto":
        if student not in students.list_students():
            raise WorkbenchError(f"unknown student {student!r}; expected one of {students.list_students()}")
        if student not in names:
            raise WorkbenchError(f"student {student!r} does not serve task {task!r}; students for it: {names}")
        return student
    if not names:
        raise WorkbenchError(f"no student is registered for task {task!r}; set [distill] student")
    return names[0]


def distill(ctx: StageContext) -> dict[str, Any]:
    """Distil the teacher into a student (and train the same student without a teacher: the control)."""
    from workbench.compress.distill import distill as distill_fn

    c = ctx.config
    run = ctx.inputs["train"].dir
    student = resolve_student(run, c["student"])
    kwargs: dict[str, Any] = {"student": student, "kd": tuple(c["kd"]), "alpha": c["alpha"],
                              "temperature": c["temperature"], "control": c["control"], "epochs": c["epochs"]}
    if c.get("preset") is not None:
        kwargs["preset"] = c["preset"]
    if c.get("device"):
        kwargs["device"] = c["device"]
    return _call(ctx, distill_fn, run, ctx.dir, **kwargs)


def model_runs(inputs: dict[str, Any]) -> dict[str, Path]:
    """The run folders of the models the pipeline made so far: teacher, pruned, student, control."""
    runs: dict[str, Path] = {}
    if "train" in inputs:
        runs["teacher"] = inputs["train"].dir
    if "prune" in inputs:
        runs["pruned"] = inputs["prune"].dir
    if "distill" in inputs:
        for name in ("student", "control"):
            if (inputs["distill"].dir / name / "config.json").is_file():
                runs[name] = inputs["distill"].dir / name
    return runs


def quantize(ctx: StageContext) -> dict[str, Any]:
    """Static int8 quantization (onnxruntime) of the chosen model (the student by default)."""
    from workbench.compress.quantize import quantize as quantize_fn

    c = ctx.config
    source = model_runs(ctx.inputs).get(c["model"])
    if source is None:
        raise WorkbenchError(f"quantize.model is {c['model']!r}, but the pipeline made no such model")
    summary = _call(ctx, quantize_fn, source, ctx.dir, n_calib=c["n_calib"])
    return {**summary, "source_model": c["model"], "source_run": str(source)}


# ---- compare (saliency of the compressed models on the teacher's samples) --------------------------
def compare(ctx: StageContext) -> dict[str, Any]:
    """Saliency (and faithfulness checks) of the pruned model and the student, same method and samples
    as the teacher's, so the report can put the maps side by side and rank-correlate them."""
    ctx.dir.mkdir(parents=True, exist_ok=True)
    runs = model_runs(ctx.inputs)
    return {name: _analyze(ctx, runs[name], ctx.dir / name, checks=ctx.config["compare_checks"], extras=False)
            for name in ("pruned", "student") if name in runs}


# ---- profile, benchmark, export -------------------------------------------------------------------
def _metrics(run: Path) -> dict[str, Any]:
    m = read_json(Path(run) / "metrics.json", default={})
    return {"primary_metric": m.get("primary_metric"), "best": m.get("best"), "final": m.get("final", {}),
            "constant": m.get("constant", {})}


def profile(ctx: StageContext) -> dict[str, Any]:
    """Params, MACs at the padded input and latency (eager, onnxruntime fp32; int8 for the int8 model)
    of every model; one JSON per model in the stage folder."""
    from workbench.profile import bench as B
    from workbench.profile.target import profile_run

    c = ctx.config
    ctx.dir.mkdir(parents=True, exist_ok=True)
    runs = model_runs(ctx.inputs)
    bench_kw = {"batch_sizes": tuple(c["batch_sizes"]), "threads": c["threads"], "repeats": c["repeats"]}
    models: dict[str, Any] = {}
    for name, run in runs.items():
        prof = _call(ctx, profile_run, run)
        lat = _call(ctx, B.benchmark_run, run, **bench_kw)
        models[name] = {"run": str(run), "profile": prof, "latency": lat, "metrics": _metrics(run)}
        write_json(ctx.dir / f"{name}.json", models[name])
    q = ctx.inputs.get("quantize")
    if q is not None and (q.dir / "model.int8.onnx").is_file():
        src = q.summary.get("source_model", "student")
        inputs = _bench_inputs(runs[src])
        lat_fp32 = _call(ctx, B.benchmark, str(q.dir / "model.onnx"), inputs, **bench_kw)
        lat_int8 = _call(ctx, B.benchmark, str(q.dir / "model.int8.onnx"), inputs, **bench_kw)
        models["int8"] = {"run": str(q.dir), "source_model": src, "profile": models[src]["profile"],
                          "latency": {"onnxruntime_fp32": lat_fp32.get("onnxruntime", lat_fp32),
                                      "onnxruntime_int8": lat_int8.get("onnxruntime", lat_int8),
                                      **{k: lat_int8.get(k) for k in ("threads", "batch_sizes", "device", "machine")}},
                          "metrics": q.summary, "size_bytes": {"fp32": (q.dir / "model.onnx").stat().st_size,
                                                               "int8": (q.dir / "model.int8.onnx").stat().st_size}}
        write_json(ctx.dir / "int8.json", models["int8"])
    return {"models": sorted(models)}


def _bench_inputs(run: Path) -> dict[str, Any]:
    """A real SynthGaze batch for a run's model (at its padded size); the benchmark repeats its rows."""
    from workbench.profile.target import resolve_target

    return resolve_target(str(run), batch=8).inputs


def export(ctx: StageContext) -> dict[str, Any]:
    """ONNX of every model (teacher, pruned, student, control), checked against PyTorch."""
    from workbench.profile.export import export_run

    ctx.dir.mkdir(parents=True, exist_ok=True)
    return {name: _call(ctx, export_run, run, ctx.dir / f"{name}.onnx") for name, run in model_runs(ctx.inputs).items()}


# ---- compress to a budget (optional) -----------------------------------------------------------------
_COMPRESS_ARGS = ("latency_ms", "speedup", "macs", "params", "budget_x", "budget_minutes", "eta", "rung_epochs", "batch",
                  "max_candidates", "final")


def compress(ctx: StageContext) -> dict[str, Any]:
    """Search pruned teachers, students and int8 versions for the most accurate model under the budget
    (successive halving within the compute budget); the stage folder is the search's --out."""
    from workbench.compress.search import compress as compress_fn

    c = ctx.config
    kwargs: dict[str, Any] = {k: c[k] for k in _COMPRESS_ARGS if c.get(k) is not None}
    kwargs["kinds"] = tuple(c["candidates"])
    if c.get("device"):
        kwargs["device"] = c["device"]
    return _call(ctx, compress_fn, ctx.inputs["train"].dir, ctx.dir, **kwargs).summary


def _compress_on(c: dict[str, Any]) -> bool:
    return any(c.get(k) is not None for k in ("latency_ms", "speedup", "macs", "params"))


STAGES: list[Stage] = [
    Stage("train", train, (), resumable=True, doc="train the teacher"),
    Stage("analyze", analyze, ("train",), doc="saliency + checks, embeddings, FC importance of the teacher"),
    Stage("prune", prune, ("train",), doc="structural pruning + fine-tuning",
          needs_if=lambda c: ("analyze",) if c.get("importance") == "fc" else ()),
    Stage("distill", distill, ("train",), doc="distillation into a student, and its control"),
    Stage("quantize", quantize, ("train", "prune", "distill"), doc="int8 (onnxruntime static quantization)"),
    Stage("compare", compare, ("train", "prune", "distill"), doc="saliency of the pruned model and the student"),
    Stage("profile", profile, ("train", "prune", "distill", "quantize"), doc="params, MACs, latency of every model"),
    Stage("export", export, ("train", "prune", "distill"), doc="ONNX of every model"),
    Stage("compress", compress, ("train",), doc="the best model under a budget, and the Pareto front (optional)",
          runs_if=_compress_on),
]
STAGE_NAMES = tuple(s.name for s in STAGES)


def stage_configs(recipe: Any, teacher: str) -> dict[str, dict[str, Any]]:
    """Each stage's config for one teacher (what its key hashes): its recipe section, the seed and the
    pipeline version."""
    opts = recipe.for_teacher(teacher)
    common = {"seed": recipe.seed, "version": PIPELINE_VERSION}
    # Only what differs from the demo enters a key, so the demo's existing stage folders stay up to date.
    device = {"device": recipe.device} if getattr(recipe, "device", "auto") != "auto" else {}
    source = recipe.train_source() if hasattr(recipe, "train_source") else {}
    return {
        "train": {**common, "preset": recipe.preset, "recipe": opts["train"], **source, **device},
        "analyze": {**common, **{k: v for k, v in opts["analyze"].items() if k != "compare_checks"}},
        "prune": {**common, **opts["prune"], **device},
        "distill": {**common, **opts["distill"], **device},
        "quantize": {**common, **opts["quantize"]},
        "compare": {**common, **{k: opts["analyze"][k] for k in ("method", "n", "check_n", "compare_checks")}},
        "profile": {**common, **opts["bench"]},
        "export": dict(common),
        "compress": {**common, **opts["compress"], **device},
    }
