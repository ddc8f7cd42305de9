"""The one training loop for every task, top to bottom.

Seeding -> data -> model -> optimizer/schedule -> for each epoch: train (clip, step), validate every
``val_interval`` epochs, keep the best checkpoint, stop early on a plateau -> metrics.json. The same
function runs alone or under ``torchrun`` (DistributedDataParallel, sharded sampling, rank-0 files).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from workbench.errors import WorkbenchError
from workbench.progress import progress_bar
from workbench.tasks import Task, TaskData, get_task
from workbench.train import distributed as D
from workbench.train.data import load_data
from workbench.train.models import build_model, count_params
from workbench.train.recipes import Recipe
from workbench.train.run_folder import RunFolder, load_checkpoint, save_checkpoint
from workbench.utils.jsonio import write_json


@dataclass
class TrainRequest:
    """What `workbench train` asks for; resolved into config.json.

    ``teacher`` is any model spec (``workbench.modelspec``): a teacher or student name (with ``preset``,
    default a teacher's cpu / a student's tiny), or ``package.module:factory`` with ``task`` (and optional
    ``weights``, a state dict file the training starts from).
    """

    teacher: str
    preset: str | None = None
    model_overrides: dict[str, Any] = field(default_factory=dict)
    recipe_overrides: dict[str, Any] = field(default_factory=dict)
    data: str | None = None  # "synth" (the default of a new run), or a data set's path (stored resolved)
    fmt: str | None = None
    seed: int | None = None  # 0 for a new run; a resumed run keeps its own (a different one is refused)
    out: Path | None = None
    resume: bool = False
    force: bool = False
    device: str = "auto"
    task: str | None = None  # the task of a factory model
    weights: Path | None = None  # starting weights (a state dict file, loaded with weights_only=True)
    # Initialization from another run (a run folder or a .pt file): every tensor whose name (after the
    # SRC -> DST prefix map) and shape match is loaded (workbench.train.init_from); config.json records it.
    init_from: str | Path | None = None
    init_map: dict[str, str] | None = None
    tensorboard: bool = False
    progress: bool = True
    # For models that are not plain teachers (pruned models, students) and for distillation:
    config: dict[str, Any] | None = None  # a full resolved config (as config.json holds); `teacher` is then a label
    init_state: dict[str, torch.Tensor] | None = None  # starting weights (e.g. a pruned model's)
    # Called once with the built model (on its device) before the optimizer exists; may register hooks and
    # return a module whose parameters are trained alongside (e.g. FitNets adapters), or None.
    prepare_model: Callable[[nn.Module], nn.Module | None] | None = None
    # Called on each training batch's model inputs before the forward (e.g. saliency KD makes the image
    # inputs require grad there, so its loss_fn can differentiate the outputs by them): inputs -> inputs.
    prepare_inputs: Callable[[tuple[torch.Tensor, ...]], tuple[torch.Tensor, ...]] | None = None
    # Replaces the task loss: (task_loss, parts, outputs, batch, inputs) -> (loss, parts).
    loss_fn: Callable[..., tuple[torch.Tensor, dict[str, float]]] | None = None


class TrainingDiverged(WorkbenchError):
    """The loss became NaN or infinite."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(device: str) -> torch.device:
    """``auto | cpu | cuda[:N]`` -> torch.device (see :func:`workbench.modelspec.resolve_device`)."""
    from workbench.modelspec import resolve_device

    return resolve_device(device)


def make_optimizer(model: nn.Module, r: Recipe) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if r.optimizer == "sgd":
        return torch.optim.SGD(params, lr=r.lr, momentum=r.momentum, nesterov=r.nesterov and r.momentum > 0,
                               weight_decay=r.weight_decay)
    if r.optimizer == "adam":
        return torch.optim.Adam(params, lr=r.lr, weight_decay=r.weight_decay)
    if r.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=r.lr, weight_decay=r.weight_decay)
    raise WorkbenchError(f"unknown optimizer {r.optimizer!r}; expected sgd, adam or adamw")


def make_scheduler(opt: torch.optim.Optimizer, r: Recipe, steps_per_epoch: int = 1,
                   ) -> torch.optim.lr_scheduler.LRScheduler:
    """The recipe's schedule. A "step" schedule steps once per epoch, "onecycle" once per batch
    (:func:`steps_per_batch` says which), planned for ``r.epochs`` epochs of ``steps_per_epoch`` batches."""
    if r.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups],
                                                   # one more than the batches: the lr after the last
                                                   # batch (what the log records) is the cycle's end
                                                   total_steps=r.epochs * steps_per_epoch + 1,
                                                   pct_start=r.warmup, anneal_strategy="cos",
                                                   cycle_momentum=r.optimizer == "sgd")
    return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(r.milestones), gamma=r.gamma)


def steps_per_batch(r: Recipe) -> bool:
    """Whether the recipe's schedule steps after every batch (else after every epoch)."""
    return r.schedule == "onecycle"


def _batches(n: int, batch_size: int, order: torch.Tensor, *, train: bool = True) -> list[torch.Tensor]:
    """Index batches over ``order``. In training a trailing batch of one is dropped (BatchNorm cannot train
    on it); evaluation and prediction (``train=False``) keep every sample."""
    out = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    if train and out and len(out[-1]) < 2 and len(out) > 1:
        out.pop()
    return out


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _fast_layout(inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Channels-last images: oneDNN's convolutions run about 1.6x faster on CPU in that layout."""
    return tuple(x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x for x in inputs)


@torch.no_grad()
def evaluate(model: nn.Module, task: Task, data: TaskData, *, batch_size: int = 128,
             device: torch.device | str = "cpu") -> dict[str, float]:
    """The task's metrics of ``model`` over ``data`` (eval mode, no gradients)."""
    if len(data) == 0:
        raise WorkbenchError("cannot evaluate on an empty data set")
    was_training = model.training
    model.eval()
    acc = task.accumulator()
    for idx in _batches(len(data), batch_size, torch.arange(len(data)), train=False):
        batch = _to(data.batch(idx), torch.device(device))
        outputs = task.check_outputs(model(*task.inputs(batch)))
        acc.update(outputs, batch)
    model.train(was_training)
    return acc.compute()


def _better(task: Task, value: float, best: float | None, delta: float = 0.0) -> bool:
    if best is None:
        return True
    return value > best + delta if task.higher_is_better else value < best - delta


def resolve_config(req: TrainRequest) -> dict[str, Any]:
    """The full, JSON-serializable config of a training run (what config.json holds).

    The model spec is resolved by :mod:`workbench.modelspec` (a factory model is built and checked against
    its task on a SynthGaze batch when the data is SynthGaze; on a data set, :func:`fit` checks it on the
    data's own samples before any folder is written).
    """
    from workbench.modelspec import default_recipe, parse_model_spec, resolve_model

    if req.config is not None:
        missing = {"model", "recipe", "task", "data", "seed"} - set(req.config)
        if missing:
            raise WorkbenchError(f"training config lacks {sorted(missing)}")
        config = json.loads(json.dumps(req.config))  # a JSON-native copy
        # A config carried over from another run (pruning's fine-tune, a student's) must not claim that run's
        # initialization: "init_from" describes how this run's own weights started.
        config.pop("init_from", None)
        return config

    spec = parse_model_spec(req.teacher, task=req.task, weights=req.weights, preset=req.preset,
                            overrides=req.model_overrides)
    if spec.kind == "run":
        raise WorkbenchError(f"{req.teacher}: is a run folder; continue it with --resume --out {req.teacher}, or "
                             "give a model name or package.module:factory")
    if spec.kind == "teacher" and spec.preset is None:
        spec.preset = "cpu"
    recipe = default_recipe(spec).update(**req.recipe_overrides)
    data = data_source(req.data)
    resolved = resolve_model(spec, size=recipe.size, check=data == "synth")
    config = {
        "teacher": req.teacher, "preset": resolved.config.get("preset"), "task": resolved.task,
        "model": resolved.config, "recipe": recipe.to_dict(),
        "data": {"source": data, "format": req.fmt}, "seed": 0 if req.seed is None else req.seed,
    }
    return config


def data_source(data: str | None) -> str:
    """What config.json stores for ``--data``: "synth", or the data set's absolute path, so that ``eval RUN``
    and the other commands find the data from any working directory."""
    if data is None or data == "synth":
        return "synth"
    return str(Path(data).expanduser().resolve())


def _resume_changes(req: TrainRequest, config: dict[str, Any], out: Path) -> bool:
    """What ``--resume`` may change: only ``epochs`` (train longer, or stop sooner). Anything else that
    differs from the run's config.json is refused in one line (silently ignoring it would report a success
    that did not use the options asked for). Options equal to the stored ones are accepted, so a caller may
    pass the whole recipe again. Returns whether config.json must be rewritten."""
    stored = config["recipe"]
    given = {k: v for k, v in req.recipe_overrides.items() if v is not None}
    merged = Recipe.from_dict({**stored, **given, "task_options": {**stored.get("task_options", {}),
                                                                   **given.get("task_options", {})}}).to_dict()
    refused = [k for k in given if k != "epochs" and merged[k] != stored.get(k)]
    refused += [f"--model {k}" for k, v in req.model_overrides.items() if config["model"].get(k) != v]
    if req.weights is not None:
        refused.append("--weights")
    if req.init_from is not None:
        refused.append("--init-from")
    if req.data is not None and data_source(req.data) != config["data"]["source"]:
        refused.append("--data")
    if req.fmt is not None and req.fmt != config["data"].get("format"):
        refused.append("--format")
    if req.seed is not None and req.seed != config["seed"]:
        refused.append("--seed")
    if refused:
        raise WorkbenchError(f"{out}: --resume continues the run as its config.json says; it cannot change "
                             f"{', '.join(refused)} (only --epochs; start a new run for the rest)")
    if merged["epochs"] == stored["epochs"]:
        return False
    if merged["schedule"] == "onecycle":
        raise WorkbenchError(f"{out}: a one-cycle schedule is planned for the run's {stored['epochs']} epochs and "
                             "cannot be stretched by --resume --epochs; start a new run from it with --init-from")
    config["recipe"] = {**stored, "epochs": merged["epochs"]}
    return True


def default_run_dir(teacher: str, name: str | None = None) -> Path:
    """``runs/<model>/<name or timestamp>`` (a factory's ``module:factory`` becomes ``module.factory``)."""
    from workbench.modelspec import slug

    return Path("runs") / slug(teacher) / (name or time.strftime("%Y%m%d-%H%M%S"))


def fit(req: TrainRequest, *, on_event: Callable[[str, dict], None] | None = None) -> dict[str, Any]:
    """Train one run; returns the metrics summary (also written to metrics.json)."""
    dist = D.init()
    try:
        summary = _fit(req, dist, on_event)
        # Every rank waits for rank 0's files before tearing the group down: a rank that leaves gloo
        # while its peer is still in it can abort ("terminate called without an active exception").
        D.barrier(dist)
        return summary
    finally:
        D.shutdown(dist)


def _fit(req: TrainRequest, dist: D.DistInfo, on_event) -> dict[str, Any]:
    out = Path(req.out) if req.out else default_run_dir(req.teacher)
    rewrite_config = False
    if req.resume:
        run = RunFolder.open(out)
        config = run.config()
        if req.config is None and config.get("teacher") != req.teacher:
            raise WorkbenchError(f"{out}: run folder is for teacher {config.get('teacher')!r}, not {req.teacher!r}")
        rewrite_config = _resume_changes(req, config, out) if req.config is None else False
    else:
        config = resolve_config(req)
        if out.exists() and any(out.iterdir()) and not req.force:  # refuse before any work, not after
            RunFolder.create(out, force=False)
    init_source = _init_source(req, config, run if req.resume else None)  # a bad RUN fails before the data loads
    recipe = Recipe.from_dict(config["recipe"])
    task = get_task(config["task"], **recipe.task_options)
    seed = int(config["seed"])
    seed_everything(seed)
    device = D.device_for(dist, pick_device(req.device))
    show = req.progress and dist.is_main

    train_data, val_data, data_desc = load_data(task, recipe, data=config["data"]["source"],
                                                fmt=config["data"]["format"], seed=seed,
                                                progress=lambda desc, total: progress_bar(desc, total, enabled=show))
    task_changes, model_changes = task.adapt(train_data, config["model"])
    if task_changes or model_changes:
        # The data fixes part of the task and model (e.g. one camera view): config.json records it, so
        # every later command on this run rebuilds the same task and model.
        config["recipe"] = {**config["recipe"], "task_options": {**config["recipe"].get("task_options", {}), **task_changes}}
        config["model"] = {**config["model"], **model_changes}
        recipe = Recipe.from_dict(config["recipe"])
        task = get_task(config["task"], **recipe.task_options)
    model = build_model(config["model"])
    if req.weights is not None and not req.resume:
        from workbench.modelspec import load_weights

        load_weights(model, req.weights)
    if init_source is not None:
        from workbench.train.init_from import init_model

        source, mapping, state, where = init_source
        record = init_model(model, source, mapping, state=state, where=where)
        if not req.resume:
            config["init_from"] = record
    if not req.resume:
        # The model must fit the data before a run folder exists: one forward pass on two training samples.
        from workbench.modelspec import check_task_model

        try:
            check_task_model(model, task, train_data.batch(torch.arange(min(2, len(train_data)))),
                             label=f"{req.teacher} on {config['data']['source']}")
        except WorkbenchError as exc:
            if config["data"]["source"] == "synth" or recipe.size is not None:
                raise
            raise WorkbenchError(f"{exc} (a model with a fixed input size: resize the data on the way in with "
                                 "--set size=N)") from None
        if dist.is_main:
            run = RunFolder.create(out, force=req.force)
            write_json(run.config_path, config)
        D.barrier(dist)
        run = RunFolder(out)
    constant = task.constant_metrics(train_data, val_data)
    if req.init_state is not None and not (req.resume and run.last.exists()):
        try:
            model.load_state_dict(req.init_state)
        except RuntimeError as exc:
            raise WorkbenchError(f"initial weights do not fit the model ({str(exc).splitlines()[0][:160]})") from None
    model = model.to(device)
    n_params = count_params(model)
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    extra = req.prepare_model(model) if req.prepare_model else None
    opt = make_optimizer(nn.ModuleList([model, extra]) if extra is not None else model, recipe)
    n_local = len(D.shard(torch.arange(len(train_data)), dist))
    sched = make_scheduler(opt, recipe, len(_batches(n_local, recipe.batch_size, torch.arange(n_local))))
    start_epoch, best, best_epoch, bad_epochs = 0, None, -1, 0
    last_metrics: dict[str, float] = {}
    if req.resume and run.last.exists():
        ck = load_checkpoint(run.last)
        if ck["config"] != config["model"]:
            raise WorkbenchError(f"{run.last}: checkpoint is for a different model than {run.config_path}")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        start_epoch, best_epoch, bad_epochs = int(ck["epoch"]), int(ck["best_epoch"]), int(ck["bad_epochs"])
        best = None if ck["best"] is None else float(ck["best"])
        torch.set_rng_state(ck["rng"])
        record = ck.get("record") or {}
        last_metrics = dict(record.get("val", {}))
        if dist.is_main and record and not any(e.get("event") == "epoch" and e.get("epoch") == start_epoch
                                                for e in run.read_log()):
            run.log("epoch", **record)  # killed between saving last.pt and logging its epoch: the curve keeps it
    if req.resume and rewrite_config:
        if recipe.epochs <= start_epoch:
            raise WorkbenchError(f"{out}: the run has already trained {start_epoch} epoch(s); --epochs must be more "
                                 "to continue it")
        if dist.is_main:
            write_json(run.config_path, config)
    ddp_model = D.wrap(model, dist, device)
    if dist.is_main:
        run.log("start" if not req.resume else "resume", epoch=start_epoch, params=n_params, data=data_desc,
                device=str(device), world_size=dist.world_size, constant=constant,
                **({"weights": str(req.weights)} if req.weights is not None and not req.resume else {}),
                **({"init_from": config["init_from"]} if "init_from" in config and not req.resume else {}))
    writer = _tensorboard(run.path) if (req.tensorboard and dist.is_main) else None
    t0 = time.time()
    stopped_early = False
    epoch = start_epoch
    for epoch in range(start_epoch, recipe.epochs):
        gen = torch.Generator().manual_seed(seed * 100003 + epoch)
        order = torch.randperm(len(train_data), generator=gen)
        order = D.shard(order, dist)
        batches = _batches(len(order), recipe.batch_size, order)
        ddp_model.train()
        task.set_epoch(epoch)
        running, seen = 0.0, 0
        last_shown = f", val {task.primary_metric} {last_metrics[task.primary_metric]:.4g}" if last_metrics else ""
        with progress_bar(f"epoch {epoch + 1}/{recipe.epochs}", len(batches), enabled=show) as advance:
            for step, idx in enumerate(batches):
                batch = _to(train_data.batch(idx), device)
                inputs = _fast_layout(task.inputs(batch, train=True))
                if req.prepare_inputs is not None:
                    inputs = req.prepare_inputs(inputs)
                outputs = ddp_model(*inputs)
                if step == 0:
                    task.check_outputs(outputs)
                loss, parts = task.loss(outputs, batch)
                if req.loss_fn is not None:
                    loss, parts = req.loss_fn(loss, parts, outputs, batch, inputs)
                if not torch.isfinite(loss):
                    if dist.is_main:
                        run.log("error", epoch=epoch, step=step, message="loss is not finite", parts=parts)
                    raise TrainingDiverged(f"loss became {float(loss.detach())} at epoch {epoch + 1}, step {step + 1}; "
                                           f"{run.path} keeps the last good checkpoint (try a lower --lr)")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if recipe.clip_grad > 0:
                    nn.utils.clip_grad_norm_(ddp_model.parameters(), recipe.clip_grad)
                opt.step()
                if steps_per_batch(recipe):
                    sched.step()
                running += float(loss.detach()) * len(idx)
                seen += len(idx)
                advance(1, f"loss {running / seen:.4g}{last_shown}")
        if not steps_per_batch(recipe):
            sched.step()
        train_loss = D.mean_across(running / max(seen, 1), dist)
        record: dict[str, Any] = {"epoch": epoch + 1, "train_loss": train_loss, "lr": opt.param_groups[0]["lr"]}
        improved = False
        if (epoch + 1) % recipe.val_interval == 0 or epoch + 1 == recipe.epochs:
            metrics = evaluate(model, task, val_data, batch_size=2 * recipe.batch_size, device=device) if dist.is_main else {}
            metrics = D.broadcast_object(metrics, dist)
            last_metrics = metrics
            value = metrics[task.primary_metric]
            record["val"] = metrics
            if _better(task, value, best):
                # A new best is always kept; only an improvement larger than `delta` resets the patience.
                improved = _better(task, value, best, recipe.delta)
                best, best_epoch = value, epoch + 1
                if dist.is_main:
                    save_checkpoint(run.best, model_state=model.state_dict(), model_config=config["model"],
                                    extra={"epoch": epoch + 1, "metrics": metrics})
            else:
                improved = False
            bad_epochs = 0 if improved else bad_epochs + 1
        if dist.is_main:
            save_checkpoint(run.last, model_state=model.state_dict(), model_config=config["model"], extra={
                "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "epoch": epoch + 1,
                "best": best, "best_epoch": best_epoch, "bad_epochs": bad_epochs, "rng": torch.get_rng_state(),
                "record": record})
            run.log("epoch", **record)
            if writer is not None:
                writer.add_scalar("train/loss", train_loss, epoch + 1)
                for k, v in record.get("val", {}).items():
                    writer.add_scalar(f"val/{k}", v, epoch + 1)
        if on_event:
            on_event("epoch", record)
        if recipe.patience > 0 and bad_epochs >= recipe.patience:
            stopped_early = True
            if dist.is_main:
                run.log("early_stop", epoch=epoch + 1, best_epoch=best_epoch, patience=recipe.patience, delta=recipe.delta)
            break
    if not last_metrics:  # a resumed run that had already finished: its final metrics, measured again
        last_metrics = D.broadcast_object(evaluate(model, task, val_data, batch_size=2 * recipe.batch_size,
                                                   device=device) if dist.is_main else {}, dist)
    summary = {
        "teacher": config.get("teacher"), "preset": config.get("preset"), "task": config["task"], "params": n_params,
        "primary_metric": task.primary_metric, "best": best, "best_epoch": best_epoch,
        "epochs_run": epoch + 1 if recipe.epochs > start_epoch else start_epoch, "stopped_early": stopped_early,
        "final": last_metrics, "constant": constant, "train_seconds": round(time.time() - t0, 2),
        "world_size": dist.world_size, "data": data_desc, "run": str(run.path),
        **({"init_from": config["init_from"]} if "init_from" in config else {}),
    }
    if dist.is_main:
        write_json(run.path / "metrics.json", summary)
        run.log("done", best=best, best_epoch=best_epoch)
    if writer is not None:
        writer.close()
    return summary


def _init_source(req: TrainRequest, config: dict[str, Any], run: RunFolder | None):
    """(source, map, state, where) to initialize the model from, or None: ``req.init_from`` for a new run;
    for a resumed run that never saved ``last.pt``, the source its config.json records (so the restart
    starts where the first start did)."""
    from workbench.train.init_from import read_init_source

    if req.init_from is not None:
        if req.resume:
            raise WorkbenchError("--resume continues a run from its own checkpoint; --init-from starts a new run")
        if req.weights is not None:
            raise WorkbenchError("--weights and --init-from both give the starting weights; give one of them")
        if req.init_state is not None:
            raise WorkbenchError("--init-from cannot be combined with a model's own initial weights")
        return (str(req.init_from), dict(req.init_map or {}), *read_init_source(req.init_from))
    if req.init_map:
        raise WorkbenchError("--init-map applies to --init-from RUN; give --init-from too")
    recorded = config.get("init_from")
    if run is not None and not run.last.exists() and isinstance(recorded, dict) and recorded.get("checkpoint"):
        return (recorded["checkpoint"], dict(recorded.get("map") or {}), *read_init_source(recorded["checkpoint"]))
    return None


def _tensorboard(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard is optional
        return None
    return SummaryWriter(str(path / "tb"))


def load_run_model(run_path: str | Path, which: str = "best") -> tuple[nn.Module, dict[str, Any], Task]:
    """Rebuild a run's model from its checkpoint (``best`` or ``last``) with weights_only loading."""
    run = RunFolder.open(run_path)
    config = run.config()
    path = run.best if which == "best" else run.last
    if which == "best" and not path.exists():
        path = run.last
    ck = load_checkpoint(path)
    if ck["config"] != config.get("model"):
        got = ck["config"].get("teacher", "?") if isinstance(ck["config"], dict) else "?"
        raise WorkbenchError(f"{path}: checkpoint is for model {got!r}, not the run's {config.get('teacher')!r}")
    model = build_model(ck["config"])
    try:
        model.load_state_dict(ck["model"])
    except RuntimeError as exc:
        raise WorkbenchError(f"{path}: weights do not fit the model ({str(exc).splitlines()[0][:160]})") from None
    model.eval()
    recipe = Recipe.from_dict(config["recipe"])
    return model, config, get_task(config["task"], **recipe.task_options)

