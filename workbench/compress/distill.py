"""Knowledge distillation of a trained run into a student, with the no-KD control that makes it mean something.

The student trains through the one training engine (``workbench.train.engine.fit``) on the teacher run's
data, recipe and seed, with ``(1 - alpha) * task_loss + alpha * (response + hint_weight * feature +
saliency_weight * saliency)``: the terms are explained in :mod:`workbench.compress.kd_losses`. The frozen
teacher's outputs (hint features, saliency maps) are cached per sample
(:mod:`workbench.compress.teacher_cache`), so later epochs cost no teacher forward. ``control=True`` trains
the same student (same data, epochs, seed, hence the same initial weights) on the task loss alone into
``out/control``.

Saliency KD costs the student one double backward per explain_target column per step: its image inputs
require grad from the training forward on (one forward serves the task loss and the maps; a BatchNorm or
dropout student's maps are then those of train mode), the maps are differentiated with
``create_graph=True`` and the final backward runs through that graph. On a small CPU student that makes a
step several times a response-KD step (README, "Compressing a model").
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.compress.kd_losses import (RESPONSE_LOSSES, FeatureHints, HintCapture, image_inputs,
                                          native_rnn_kernels, parse_hint, response_kd, saliency_kd, saliency_maps)
from workbench.compress.teacher_cache import TeacherCache
from workbench.errors import WorkbenchError
from workbench.tasks import Task, TaskData
from workbench.train.recipes import Recipe
from workbench.utils.jsonio import write_json

__all__ = ["KD_KINDS", "distill"]

KD_KINDS = ("response", "feature", "saliency")
# Student input sizes follow the teacher's where both configs name them.
_SHAPE_KEYS = ("input_size", "frame_hw", "num_frames")


def sample_inputs(task: Task, config: dict[str, Any], n: int = 2) -> tuple[torch.Tensor, ...]:
    """A few real inputs of the run's own validation split (drawn across subjects), for shape checks
    and MACs: (B, ...) tensors in the task's input order."""
    from workbench.train.data import draw, load_split, resolve_data

    data, _ = load_split(task, config, resolve_data("val", config), limit=max(64, 8 * n))
    return task.inputs(data.batch(torch.as_tensor(draw(data, n, "example", int(config.get("seed", 0))))))


def validation_data(task: Task, config: dict[str, Any]) -> TaskData:
    """The run's validation split (held-out subjects), without rendering its training split."""
    from workbench.train.data import load_split, resolve_data

    return load_split(task, config, resolve_data("val", config))[0]


def _check_student(student: nn.Module, teacher: nn.Module, task: Task, inputs: tuple[torch.Tensor, ...],
                   name: str, run: Path) -> dict[str, torch.Tensor]:
    cfg_task = student.config.get("task")
    if cfg_task != task.name:
        from students import list_students

        fits = list_students(task.name)
        raise WorkbenchError(f"student {name!r} serves task {cfg_task!r}, but {run} is a {task.name!r} run; "
                             f"students for {task.name!r}: {', '.join(fits) or 'none'}")
    with torch.no_grad():
        try:
            s_out = student.eval()(*inputs)
        except (ValueError, RuntimeError) as exc:
            raise WorkbenchError(f"student {name!r} does not run on {run}'s inputs "
                                 f"({str(exc).splitlines()[0][:200]})") from None
        t_out = teacher(*inputs)
    if not isinstance(s_out, dict):
        raise WorkbenchError(f"student {name!r} returns {type(s_out).__name__}, not a dict of {list(task.output_names)}")
    for k in task.output_names:
        if k not in s_out:
            raise WorkbenchError(f"student {name!r} outputs {sorted(s_out)} lack {k!r} of task {task.name!r}")
        if tuple(s_out[k].shape) != tuple(t_out[k].shape):
            raise WorkbenchError(f"student {name!r} output {k!r} has shape {tuple(s_out[k].shape)}, the teacher's "
                                 f"{tuple(t_out[k].shape)}: its outputs do not match task {task.name!r}")
    return s_out


def _hint_shapes(teacher: nn.Module, student: nn.Module, pairs: list[tuple[str, str]],
                 inputs: tuple[torch.Tensor, ...]) -> list[tuple[torch.Size, torch.Size]]:
    t_caps = [HintCapture(teacher, t, "teacher", detach=True) for t, _ in pairs]
    s_caps = [HintCapture(student, s, "student", detach=True) for _, s in pairs]
    try:
        with torch.no_grad():
            teacher(*inputs)
            student.eval()(*inputs)
        return [(s.take().shape[1:], t.take().shape[1:]) for t, s in zip(t_caps, s_caps)]
    finally:
        for c in t_caps + s_caps:
            c.handle.remove()


def _saliency_inputs(task: Task, student: nn.Module, name: str, inputs: tuple[torch.Tensor, ...]) -> list[int]:
    """The image inputs saliency KD matches; checks that the student's maps can be trained (double backward)."""
    which = image_inputs(inputs)
    if not which:
        shapes = ", ".join(f"{n} {tuple(x.shape[1:])}" for n, x in zip(task.input_names, inputs))
        raise WorkbenchError(f"saliency KD needs an image input; task {task.name!r} takes none ({shapes})")
    xs = [x.detach().clone().requires_grad_(i in which) for i, x in enumerate(inputs)]
    try:
        maps = saliency_maps(task.explain_target(student.eval()(*xs)), xs, which, create_graph=True)
        loss = sum(m.sum() for m in maps)
        if not loss.requires_grad:
            raise WorkbenchError(f"student {name!r} cannot train on saliency KD: its saliency maps do not depend "
                                 "on its weights")
        loss.backward()
    except (RuntimeError, NotImplementedError) as exc:
        raise WorkbenchError(f"student {name!r} cannot train on saliency KD: its saliency maps do not "
                             f"differentiate twice ({str(exc).splitlines()[0][:160]})") from None
    finally:
        student.zero_grad(set_to_none=True)
    return which


def _macs(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> int | None:
    from workbench.profile.quick import count_macs

    try:
        return count_macs(model.eval(), tuple(x[:1] for x in inputs))
    except (RuntimeError, NotImplementedError, TypeError, ValueError):  # an untraceable model: MACs n/a
        return None


def _run_summary(fit_summary: dict[str, Any], params: int, macs: int | None) -> dict[str, Any]:
    return {"run": fit_summary["run"], "best": fit_summary["best"], "best_epoch": fit_summary["best_epoch"],
            "final": fit_summary["final"], "epochs_run": fit_summary["epochs_run"], "params": params, "macs": macs,
            "train_seconds": fit_summary["train_seconds"]}


def distill(
    run: str | Path,
    out: str | Path,
    *,
    student: str,
    preset: str | None = None,
    student_overrides: dict[str, Any] | None = None,
    kd: Sequence[str] = ("response",),
    alpha: float = 0.5,
    temperature: float = 4.0,
    hints: Sequence[str | tuple[str, str]] = (),
    hint_weight: float = 1.0,
    saliency_weight: float = 1.0,
    saliency_grid: int = 16,
    saliency_target: int | str | None = None,
    response_loss: str = "auto",
    control: bool = False,
    epochs: int | None = None,
    recipe_overrides: dict[str, Any] | None = None,
    seed: int | None = None,
    cache_mb: float = 2048.0,
    force: bool = False,
    progress: bool = True,
    on_event: Callable[[str, dict], None] | None = None,
    device: str = "auto",
    init_state: dict[str, torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Distill the model of run folder ``run`` into student ``student`` (a registered name, or a
    ``package.module:factory`` of the run's task, built by ``workbench.modelspec``) on ``device``; returns (and writes) the summary.

    Writes ``out/student`` (a run folder), ``out/control`` (a run folder, when ``control``) and
    ``out/summary.json``. The student trains on the teacher run's data, recipe (plus ``epochs`` and
    ``recipe_overrides``) and seed; ``hints`` are ``"TEACHER_LAYER:STUDENT_LAYER"`` (default with
    ``"feature"`` in ``kd``: the teacher's last feature layer and the student's registered hint layer).
    ``preset="auto"``: the student's default preset with its registered ``width_param`` set so that its hint
    layer covers the teacher's participation ratio (:mod:`workbench.compress.autosize`); the summary's
    ``auto_size`` says what was measured and chosen, and ``on_event("auto_size", record)`` is called first.
    ``"saliency"`` in ``kd`` matches the student's input-gradient saliency maps of the task's explain_target
    to the teacher's on every image input (pooled to at most ``saliency_grid`` cells per side; 0: full
    resolution), weighted by ``saliency_weight``; ``saliency_target`` picks one explain_target column (name
    or index, as ``analyze saliency --target``; None: every column, one double backward each).
    Bad input (unknown student or layer, a student of another task, alpha outside [0, 1], ``auto`` for a
    student that registers no ``width_param``) raises WorkbenchError before anything is written. ``init_state``: the
    student's starting weights (e.g. an earlier, shorter distillation's, to train it further), instead of a fresh
    initialization.
    """
    import students
    from workbench.train.engine import TrainRequest, evaluate, fit, load_run_model

    run, out = Path(run), Path(out)
    kd = tuple(dict.fromkeys(kd))
    bad = [k for k in kd if k not in KD_KINDS]
    if bad or not kd:
        raise WorkbenchError(f"unknown KD kind(s) {bad or list(kd)}; expected a non-empty subset of {', '.join(KD_KINDS)}")
    if not 0.0 <= alpha <= 1.0:
        raise WorkbenchError(f"alpha must be in [0, 1], got {alpha}")
    if temperature <= 0:
        raise WorkbenchError(f"temperature must be > 0, got {temperature}")
    if not saliency_weight >= 0.0 or saliency_weight == float("inf"):
        raise WorkbenchError(f"saliency weight must be a finite number >= 0, got {saliency_weight}")
    if saliency_target is not None and "saliency" not in kd:
        raise WorkbenchError("a saliency target is for saliency distillation: add 'saliency' to the KD kinds "
                             "(--kd response,saliency)")
    if saliency_grid < 0:
        raise WorkbenchError(f"saliency grid must be >= 0 (0: full resolution), got {saliency_grid}")
    if response_loss not in RESPONSE_LOSSES:
        raise WorkbenchError(f"unknown response loss {response_loss!r}; expected one of {', '.join(RESPONSE_LOSSES)}")
    from workbench.facts import base_config, default_hint_layer, registered_hint_layer

    pairs = [parse_hint(h) if isinstance(h, str) else tuple(h) for h in hints]
    if pairs and "feature" not in kd:
        raise WorkbenchError("hints are feature distillation: add 'feature' to the KD kinds (--kd response,feature)")
    if out.exists() and any(out.iterdir()) and not force:
        raise WorkbenchError(f"{out}: folder exists and is not empty (use --force to replace it)")

    teacher, config, task = load_run_model(run)
    teacher_cfg = dict(base_config(config["model"]))  # a pruned teacher's base config names its layers
    overrides = dict(student_overrides or {})
    auto_record = None
    if preset == "auto":
        # The student's hint width from the teacher's effective rank (workbench.compress.autosize).
        from workbench.compress.autosize import auto_size, student_override

        param, _ = student_override(student, 8)  # an unregistered student, or one without width_param: one line
        key = param.partition("[")[0]
        if key in overrides:
            raise WorkbenchError(f"--preset auto sets {param} of {student!r}; drop the override {key}="
                                 f"{overrides[key]!r} (or give a preset)")
        preset, width, auto_record = auto_size(teacher, task, config, student, layer=pairs[0][0] if pairs else None)
        overrides.update(width)
        if on_event is not None:
            on_event("auto_size", dict(auto_record))
    if ":" in student and student not in students.list_students():  # the user's own factory as the student
        from workbench.modelspec import parse_model_spec, resolve_model

        probe = resolve_model(parse_model_spec(student, task=task.name, overrides=overrides)).model
        if "feature" in kd and not pairs:
            raise WorkbenchError(f"student {student!r} has no registered hint layer: give --hint TEACHER_LAYER:STUDENT_LAYER")
    else:
        try:
            spec = students.student_spec(student)
            base = students.get_student(student, preset=preset).config
            for key in _SHAPE_KEYS:
                if key in base and key in teacher_cfg and key not in overrides:
                    overrides[key] = teacher_cfg[key]
            probe = students.get_student(student, preset=preset, **overrides)
        except ValueError as exc:
            raise WorkbenchError(str(exc)) from None
    inputs = sample_inputs(task, config)
    _check_student(probe, teacher, task, inputs, student, run)
    if "feature" in kd and not pairs:
        # Each side's registered hint layer; a model whose registration names none (a user's model)
        # gives its penultimate layer, found from the module graph.
        t_hint = registered_hint_layer(teacher_cfg) or default_hint_layer(teacher, inputs)
        s_hint = spec.hint_layer or default_hint_layer(probe, inputs)
        pairs = [(t_hint, s_hint)]
    shapes = _hint_shapes(teacher, probe, pairs, inputs) if pairs else []
    sal_inputs = _saliency_inputs(task, probe, student, inputs) if "saliency" in kd else []
    from workbench.analyze.subject import parse_target

    sal_cols = parse_target(saliency_target, task.explain_names)

    def explain(outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The explain_target columns saliency KD matches: (B, K')."""
        target = task.explain_target(outputs)
        return target.reshape(len(target), -1)[:, sal_cols]

    from workbench.train.data import check_sample_counts

    check_sample_counts(config["data"]["source"], recipe_overrides or {})
    recipe = Recipe.from_dict(config["recipe"]).update(**{**(recipe_overrides or {}),
                                                         **({} if epochs is None else {"epochs": epochs})})
    run_seed = int(config["seed"] if seed is None else seed)
    base_config = {**config, "teacher": student, "preset": probe.config.get("preset"), "model": probe.config,
                   "recipe": recipe.to_dict(), "seed": run_seed}
    kd_record = {"teacher_run": str(run), "teacher": config.get("teacher"), "kd": list(kd), "alpha": alpha,
                 "temperature": temperature, "hints": [f"{t}:{s}" for t, s in pairs], "hint_weight": hint_weight,
                 "saliency_weight": saliency_weight, "saliency_grid": saliency_grid,
                 "saliency_target": [task.explain_names[k] for k in sal_cols] if sal_inputs else None,
                 "response_loss": response_loss}
    if force and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)

    cache = TeacherCache(teacher, [t for t, _ in pairs], cache_mb=cache_mb,
                         explain=explain if sal_inputs else None, saliency_inputs=sal_inputs,
                         saliency_grid=saliency_grid)
    hint_module = FeatureHints(pairs, shapes) if pairs else None
    rnn_hooks = ExitStack()

    def prepare(model: nn.Module) -> nn.Module | None:
        dev = next(model.parameters()).device
        cache.model.to(dev)
        if dev.type == "cpu":
            cache.model.to(memory_format=torch.channels_last)
        if sal_inputs:
            rnn_hooks.enter_context(native_rnn_kernels(model, cache.model))
        if hint_module is None:
            return None
        hint_module.to(dev)
        hint_module.attach(model)
        return hint_module

    def prepare_inputs(inputs_: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        # Fresh leaves (same values) that require grad, so the training forward builds the graph the
        # student's maps differentiate; the task loss sees the same values.
        return tuple(x.detach().requires_grad_(True) if i in sal_inputs else x for i, x in enumerate(inputs_))

    def loss_fn(task_loss, parts, outputs, batch, inputs_):
        t_out, t_feats, t_maps = cache.with_saliency(inputs_)
        kd_loss = task_loss.new_zeros(())
        extra: dict[str, float] = {"gt": float(task_loss.detach())}
        if "response" in kd:
            r, r_parts = response_kd(task, outputs, t_out, temperature=temperature, loss=response_loss)
            kd_loss = kd_loss + r
            extra.update(r_parts)
        if hint_module is not None:
            f = hint_module.loss(t_feats)
            kd_loss = kd_loss + hint_weight * f
            extra["kd_feature"] = float(f.detach())
        if sal_inputs:
            s_maps = saliency_maps(explain(outputs), inputs_, sal_inputs, create_graph=True,
                                   grid=saliency_grid)
            sal = saliency_kd(s_maps, t_maps)
            kd_loss = kd_loss + saliency_weight * sal
            extra["kd_saliency"] = float(sal.detach())
        return (1.0 - alpha) * task_loss + alpha * kd_loss, {**parts, **extra}

    t0 = time.time()
    with rnn_hooks:
        s_fit = fit(TrainRequest(teacher=student, config={**base_config, "distill": kd_record}, out=out / "student",
                                 progress=progress, device=device, prepare_model=prepare, loss_fn=loss_fn,
                                 prepare_inputs=prepare_inputs if sal_inputs else None, init_state=init_state),
                     on_event=on_event)
    if hint_module is not None:
        hint_module.detach_hooks()
    c_fit = None
    if control:
        c_fit = fit(TrainRequest(teacher=student, config={**base_config, "distill": {**kd_record, "kd": [], "alpha": 0.0,
                                                                                     "control": True}},
                                 out=out / "control", progress=progress, device=device), on_event=on_event)

    val = validation_data(task, base_config)  # the split the student was selected on
    teacher_metrics = evaluate(teacher.to("cpu"), task, val)
    n_params = sum(p.numel() for p in probe.parameters())
    t_params = sum(p.numel() for p in teacher.parameters())
    t_macs, s_macs = _macs(teacher, inputs), _macs(probe, inputs)
    pm = task.primary_metric
    from workbench.train.data import resolve_data

    summary: dict[str, Any] = {
        "task": task.name, "primary_metric": pm,
        # Trained on the teacher run's training split; every metric here is on its validation split.
        "data": {**resolve_data("val", base_config).describe(), "n": len(val)}, "higher_is_better": task.higher_is_better,
        "teacher": {"run": str(run), "name": config.get("teacher"), "params": t_params, "macs": t_macs,
                    "metrics": teacher_metrics, pm: teacher_metrics[pm]},
        "student": {"name": student, "preset": probe.config.get("preset"), "config": probe.config,
                    **_run_summary(s_fit, n_params, s_macs),
                    "macs_ratio": (s_macs / t_macs) if (s_macs and t_macs) else None},
        "kd": kd_record,
        **({"auto_size": auto_record} if auto_record is not None else {}),
        # What the student was trained on (a data set on disk: all of its training split, not recipe.n_train).
        "budget": {"epochs": recipe.epochs, "n_train": s_fit["data"]["n_train"], "n_val": s_fit["data"]["n_val"],
                   "seed": run_seed,
                   "optimizer": recipe.optimizer, "lr": recipe.lr, "batch_size": recipe.batch_size},
        "teacher_cache": {"hits": cache.hits, "misses": cache.misses, "megabytes": round(cache.bytes / 2 ** 20, 1)},
        "seconds": round(time.time() - t0, 1),
    }
    s_best = s_fit["best"]
    summary["student_vs_teacher"] = s_best / teacher_metrics[pm] if teacher_metrics[pm] else None
    if c_fit is not None:
        summary["control"] = _run_summary(c_fit, n_params, s_macs)
        c_best = c_fit["best"]
        better = s_best > c_best if task.higher_is_better else s_best < c_best
        summary["kd_vs_control"] = {"student": s_best, "control": c_best, "difference": s_best - c_best,
                                    "kd_better": bool(better)}
    write_json(out / "summary.json", summary)
    summary["out"] = str(out)
    return summary
