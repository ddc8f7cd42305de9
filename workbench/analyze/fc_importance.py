"""`workbench analyze fc-importance`: which neurons (output units) of each Linear layer matter.

Criteria, one score per output unit (higher = more important), over ``n`` samples in eval mode:

``mean_abs``      mean |a| of the unit's pre-activation output a (all rows: samples, and frames where a
                  layer runs per frame)
``variance``      variance of a
``weight_norm``   L2 norm of the unit's weight row
``taylor``        first-order Taylor estimate of the loss change when the unit is removed, mean |a dL/da|
                  per sample (Molchanov et al., 2017), L the task's loss
``conductance``   Captum LayerConductance of the unit towards the task's explain target, mean over
                  samples of the sum over target columns of |conductance| (zero baseline, image inputs)
``ablation``      the change of the task's primary metric when the unit's output is set to 0 (positive:
                  worse). Layers wider than ``max_ablate`` get a seeded random sample of ``max_ablate``
                  units ablated; the others' ablation scores are null (and its cumulative curve and
                  agreement use the ablated units only)

fc_importance.json, the form the pruner consumes::

    {
      "format": "gaze-workbench/fc-importance/1",
      "model": <the model config that rebuilds it, as in config.json>,
      "task": <the task name>, "n": 256, "data": {"source": ..., "format": ..., "split": ...},
      "criteria": ["mean_abs", "variance", "weight_norm", "taylor", "conductance", "ablation"],
      "layers": {
        "fc.0": {
          "out_features": 256, "in_features": 2048, "is_head": false,
          "scores": {"taylor": [256 floats], ..., "ablation": [floats or null]},
          "default": "taylor",
          "ablated": [unit indices ablated], "notes": [...]
        }, ...
      }
    }

``is_head`` marks layers whose outputs are model outputs (no parametrized layer reads them): they get
scores but must never be pruned. ``default`` is the criterion to prune by (taylor: it needs no sampling
cap, and estimates the loss change of removing a unit directly).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from workbench.analyze.attribution import make_forward, split_inputs
from workbench.analyze.samples import Samples, load_samples
from workbench.analyze.subject import Subject, load_subject
from workbench.errors import WorkbenchError
from workbench.progress import ProgressArg, as_progress
from workbench.utils.hooks import find_module, forward_hooks, no_inplace
from workbench.utils.io import check_out, write_folder
from workbench.utils.jsonio import json_ready, read_json

CRITERIA = ("mean_abs", "variance", "weight_norm", "taylor", "conductance", "ablation")
DEFAULT_CRITERION = "taylor"
FORMAT = "gaze-workbench/fc-importance/1"


def linear_layers(model: nn.Module) -> dict[str, nn.Linear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, nn.Linear)}


def head_layers(subject: Subject, samples: Samples, names: list[str]) -> set[str]:
    """Linear layers no parametrized layer reads from (their outputs are model outputs)."""
    model = subject.model
    outs: dict[str, torch.Tensor] = {}
    consumers: list[tuple[int, torch.Tensor]] = []
    order: dict[str, int] = {}
    handles = []

    def produced(name: str, out: Any) -> None:
        if isinstance(out, torch.Tensor) and name not in outs:
            outs[name], order[name] = out, len(consumers)

    def consumed(args: tuple) -> None:
        consumers.extend((len(consumers), x) for x in args if isinstance(x, torch.Tensor))

    for name, mod in model.named_modules():
        if not any(True for _ in mod.parameters(recurse=False)):
            continue
        if name in names:
            handles.append(mod.register_forward_hook(lambda m, a, o, name=name: produced(name, o)))
        handles.append(mod.register_forward_pre_hook(lambda m, a: consumed(a)))
    try:
        with no_inplace(model), torch.enable_grad():
            model(*samples.inputs(slice(0, 1)))
    finally:
        for h in handles:
            h.remove()
    heads = set()
    for name in names:
        if name not in outs:
            continue
        later = [x for k, x in consumers[order[name]:] if x.requires_grad]
        if not later:
            heads.add(name)
            continue
        grads = torch.autograd.grad([x.float().sum() for x in later], outs[name], retain_graph=True, allow_unused=True)
        if grads[0] is None:
            heads.add(name)
    return heads


def _activation_stats(subject: Subject, samples: Samples, layers: dict[str, nn.Linear], batch_size: int,
                      progress: ProgressArg) -> dict[str, dict[str, np.ndarray]]:
    """mean |a|, variance and Taylor |a dL/da| per unit, in one pass with the task's loss."""
    task = subject.task
    grabbed: dict[str, torch.Tensor] = {}
    sums = {k: {"abs": 0.0, "s1": 0.0, "s2": 0.0, "taylor": 0.0, "rows": 0, "samples": 0} for k in layers}

    def hook(name, _mod, _args, out):
        grabbed[name] = out
        return out.clone()  # later in-place ops act on the clone; `out` keeps the unit's value

    with forward_hooks(layers.items(), hook):
        slices = list(samples.slices(batch_size))
        with as_progress(progress)("activations and Taylor scores", len(slices)) as advance, torch.enable_grad():
            for sl in slices:
                grabbed.clear()
                batch = samples.batch(sl)
                outputs = task.check_outputs(subject.model(*task.inputs(batch)))
                loss, _ = task.loss(outputs, batch)
                names = [k for k in layers if k in grabbed]
                grads = torch.autograd.grad(loss, [grabbed[k] for k in names], allow_unused=True)
                b = sl.stop - sl.start
                for k, g in zip(names, grads):
                    a = grabbed[k].detach()
                    a2 = a.reshape(-1, a.shape[-1]).double()
                    s = sums[k]
                    s["abs"] += a2.abs().sum(0)
                    s["s1"] += a2.sum(0)
                    s["s2"] += (a2 ** 2).sum(0)
                    s["rows"] += a2.shape[0]
                    if g is not None:
                        # The loss is a batch mean: b * dL/da is each sample's own gradient.
                        per = (a * g * b).reshape(b, -1, a.shape[-1]).sum(1).abs()
                        s["taylor"] += per.double().sum(0)
                    s["samples"] += b
                advance(1)
    out = {}
    for k, s in sums.items():
        if s["rows"] == 0:
            continue
        mean = s["s1"] / s["rows"]
        out[k] = {"rows_per_sample": s["rows"] / max(s["samples"], 1), "mean_abs": (s["abs"] / s["rows"]).numpy(),
                  "variance": (s["s2"] / s["rows"] - mean ** 2).clamp(min=0).numpy(),
                  "taylor": (s["taylor"] / s["samples"]).numpy() if torch.is_tensor(s["taylor"])
                  else np.zeros(layers[k].out_features)}
    return out


def _conductance(subject: Subject, samples: Samples, name: str, layer: nn.Linear, *, n: int, steps: int,
                 batch_size: int) -> tuple[np.ndarray | None, str | None]:
    """Mean over samples of sum over targets of |LayerConductance| per unit, or (None, why not)."""
    from captum.attr import LayerConductance

    total = np.zeros(layer.out_features)
    count = 0
    k_targets = len(subject.explain_names)
    try:
        with no_inplace(subject.model), torch.enable_grad():
            for start in range(0, min(n, len(samples)), batch_size):
                sl = slice(start, min(start + batch_size, n, len(samples)))
                inputs = [x.detach() for x in samples.inputs(sl)]
                attributed, others = split_inputs(inputs)
                forward = make_forward(subject, len(inputs), attributed)
                xs = tuple(inputs[i] for i in attributed)
                extra = tuple(inputs[i] for i in others) or None
                lc = LayerConductance(forward, layer)
                for t in range(k_targets):
                    c = lc.attribute(xs, baselines=tuple(torch.zeros_like(x) for x in xs), target=t,
                                     additional_forward_args=extra, n_steps=steps,
                                     internal_batch_size=max(steps, batch_size * 4))
                    c = c.detach().reshape(len(xs[0]), -1, layer.out_features).sum(1)
                    total += c.abs().sum(0).double().numpy()
                count += len(xs[0])
    except (RuntimeError, AssertionError, ValueError) as exc:
        return None, f"LayerConductance failed on {name}: {str(exc).splitlines()[0][:200]}"
    return total / max(count, 1), None


def layer_out_2d(subject: Subject, samples: Samples, layer: nn.Module) -> bool:
    """Whether ``layer``'s output is 2-D (rows, units): with more rows than samples, it runs per frame."""
    shapes = []

    def first_dim(_name: str, _m: nn.Module, _args: tuple, o: torch.Tensor) -> None:
        if not shapes:
            shapes.append(o.dim())

    with forward_hooks([("", layer)], first_dim), torch.no_grad():
        subject.model(*samples.inputs(slice(0, 1)))
    return bool(shapes) and shapes[0] == 2


def _metric(subject: Subject, samples: Samples, batch_size: int) -> float:
    task = subject.task
    outs = []
    with torch.no_grad():
        for sl in samples.slices(batch_size):
            outs.append(task.check_outputs(subject.model(*samples.inputs(sl))))
    outputs = {k: torch.cat([o[k] for o in outs]) for k in outs[0]}
    targets = {k: v for k, v in samples.batch(slice(0, len(samples))).items() if k in task.metric_keys}
    return float(task.metrics(outputs, targets)[task.primary_metric])


def _ablation(subject: Subject, samples: Samples, layer: nn.Linear, units: np.ndarray, base: float,
              batch_size: int, advance) -> np.ndarray:
    sign = -1.0 if subject.task.higher_is_better else 1.0
    scores = np.full(layer.out_features, np.nan)
    current = {"unit": 0}

    def hook(_name, _mod, _args, out):
        out = out.clone()
        out[..., current["unit"]] = 0.0
        return out

    with forward_hooks([("", layer)], hook):
        for u in units:
            current["unit"] = int(u)
            scores[u] = sign * (_metric(subject, samples, batch_size) - base)
            advance(1)
    return scores


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    from scipy.stats import spearmanr

    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return None
    return float(spearmanr(a[ok], b[ok]).statistic)


def cumulative(scores: np.ndarray, points: int = 51) -> tuple[list[float], float]:
    """Share of the total importance held by the top share of units (curve at ``points`` shares), and
    the smallest share of units holding 90% of it. Negative scores count as 0."""
    s = np.clip(np.asarray(scores, dtype=np.float64), 0, None)
    s = s[np.isfinite(s)]
    if len(s) == 0 or s.sum() <= 0:
        return [], float("nan")
    c = np.concatenate([[0.0], np.cumsum(np.sort(s)[::-1]) / s.sum()])
    grid = np.linspace(0, 1, points)
    curve = np.interp(grid * len(s), np.arange(len(s) + 1), c)
    return curve.tolist(), float((np.searchsorted(c, 0.9 - 1e-12)) / len(s))


def fc_importance(run: Any, *, layer: str | None = None, out: str | Path | None = None, n: int = 256,
                  max_ablate: int = 32, conductance_samples: int = 64, conductance_steps: int = 16,
                  batch_size: int = 32, seed: int = 0, data: str | None = None, fmt: str | None = None,
                  task: str | None = None, force: bool = False, progress: ProgressArg = False) -> dict[str, Any]:
    """Per-unit importance of every Linear layer of ``run``'s model (or only ``layer``), six criteria,
    their Spearman agreement and cumulative curves (see the module docstring). With ``out`` writes
    fc_importance.json, fc_importance.png and summary.json. Returns the summary."""
    t0 = time.time()
    check_out(out, force)
    subject = load_subject(run, task=task)
    if subject.task is None:
        raise WorkbenchError("fc-importance needs a task (its loss and metric): give the model's task")
    if max_ablate < 0:
        raise WorkbenchError(f"expected max_ablate >= 0, got {max_ablate}")
    model = subject.model
    all_linear = linear_layers(model)
    if not all_linear:
        raise WorkbenchError(f"model {subject.name!r} has no Linear (FC) layers")
    if layer is not None:
        find_module(model, layer, kinds=(nn.Linear,), what="Linear layer")
        layers = {layer: all_linear[layer]}
    else:
        layers = all_linear
    samples = load_samples(subject, n=n, data=data, fmt=fmt, purpose="fc-importance", progress=progress)
    heads = head_layers(subject, samples, list(layers))
    stats = _activation_stats(subject, samples, layers, batch_size, progress)
    missing = [k for k in layers if k not in stats]
    if missing:
        raise WorkbenchError(f"Linear layer(s) {missing} do not run in the forward pass")
    rng = np.random.default_rng(seed)
    base = _metric(subject, samples, batch_size)
    plan = {k: (np.arange(m.out_features) if m.out_features <= max_ablate
                else np.sort(rng.choice(m.out_features, size=max_ablate, replace=False))) for k, m in layers.items()}
    result: dict[str, Any] = {}
    with as_progress(progress)("conductance and ablation", sum(len(u) for u in plan.values()) + len(layers)) as advance:
        for name, mod in layers.items():
            notes = []
            scores = {**stats[name], "weight_norm": mod.weight.detach().norm(dim=1).double().numpy()}
            per_frame = scores.pop("rows_per_sample") != 1 and layer_out_2d(subject, samples, mod)
            if per_frame:
                cond, why = None, (f"conductance: {name} runs once per frame (output rows = samples x frames); "
                                   "Captum's LayerConductance needs one output row per sample, so it is null here")
            else:
                cond, why = _conductance(subject, samples, name, mod, n=conductance_samples, steps=conductance_steps,
                                         batch_size=min(batch_size, 16))
            advance(1)
            scores["conductance"] = cond if cond is not None else np.full(mod.out_features, np.nan)
            if why:
                notes.append(why)
            scores["ablation"] = _ablation(subject, samples, mod, plan[name], base, batch_size, advance)
            if len(plan[name]) < mod.out_features:
                notes.append(f"ablation: a seeded random sample of {len(plan[name])} of {mod.out_features} units "
                             f"(max_ablate={max_ablate}); the others are null")
            agreement = [[1.0 if a == b else _spearman(scores[a], scores[b]) for b in CRITERIA] for a in CRITERIA]
            curves = {c: cumulative(scores[c]) for c in CRITERIA}
            result[name] = {
                "out_features": mod.out_features, "in_features": mod.in_features, "is_head": name in heads,
                "scores": {c: scores[c] for c in CRITERIA}, "default": DEFAULT_CRITERION,
                "ablated": plan[name].tolist(), "notes": notes, "agreement": agreement,
                "cumulative": {c: v[0] for c, v in curves.items()}, "share_for_90": {c: v[1] for c, v in curves.items()},
            }
    mats = [np.array([[np.nan if v is None else v for v in row] for row in r["agreement"]], dtype=float)
            for r in result.values()]
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean_agreement = np.nanmean(np.stack(mats), 0)
    cfg = subject.config
    doc = json_ready({
        "format": FORMAT, "model": cfg, "task": subject.task.name, "n": len(samples), "data": samples.source,
        "criteria": list(CRITERIA), "metric": subject.task.primary_metric, "metric_base": base,
        "layers": {k: {f: v[f] for f in ("out_features", "in_features", "is_head", "scores", "default", "ablated", "notes")}
                   for k, v in result.items()},
    })
    summary = json_ready({
        "model": subject.name, "task": subject.task.name, "n": len(samples), "data": samples.source,
        "metric": subject.task.primary_metric, "metric_base": base, "criteria": list(CRITERIA), "default": DEFAULT_CRITERION,
        "layers": {k: {f: v[f] for f in ("out_features", "in_features", "is_head", "share_for_90", "agreement", "notes")}
                   for k, v in result.items()},
        "mean_agreement": mean_agreement, "seconds": round(time.time() - t0, 2),
    })
    if out is not None:
        def write(folder: Path) -> None:
            from workbench.analyze._plots import fc_plot

            (folder / "fc_importance.json").write_text(json.dumps(doc, indent=1) + "\n")
            (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
            plot_layers = {k: {**v, "agreement": summary["layers"][k]["agreement"]} for k, v in result.items()}
            fc_plot(folder / "fc_importance.png", plot_layers, CRITERIA, f"{subject.name}: FC-layer importance")

        summary["files"] = write_folder(out, write, force=force)
    return summary


def load_fc_importance(path: str | Path) -> dict[str, Any]:
    """Read an fc_importance.json back (the one reader; the pruner's ``fc:`` importance uses it): a
    missing, broken or foreign file is one line; checks the format tag (a hand-written file may leave it
    out) and that every criterion has one score per unit."""
    path = Path(path)
    doc = read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("layers"), dict):
        raise WorkbenchError(f"{path}: not an fc_importance.json (expected keys 'model' and 'layers')")
    if doc.get("format", FORMAT) != FORMAT:
        raise WorkbenchError(f"{path}: not an fc_importance.json (format {doc['format']!r}, expected {FORMAT!r})")
    for name, lay in doc["layers"].items():
        if not isinstance(lay, dict) or not isinstance(lay.get("scores"), dict):
            raise WorkbenchError(f"{path}: layer {name!r} has no 'scores'")
        for crit, vals in lay["scores"].items():
            if "out_features" in lay and len(vals) != lay["out_features"]:
                raise WorkbenchError(f"{path}: layer {name!r} criterion {crit!r} has {len(vals)} scores for "
                                     f"{lay['out_features']} units")
    return doc
