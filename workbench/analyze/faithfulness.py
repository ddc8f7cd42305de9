"""`workbench analyze check`: are the attribution maps faithful to the model, or artefacts?

Four checks on the run's own data (by default its validation split), with the eye boxes the data gives
(SynthGaze knows them in every view; a data set without them gets "n/a" for the box-based checks):

* **eye-mass**: the share of |attribution| inside the eye boxes, beside the boxes' share of the pixels
  (``ratio`` = share / area share; 1 means no preference for the eyes). Pooled over the image inputs
  that have eye boxes (a track's frames are pooled too).
* **pointing game**: how often an image's attribution maximum falls in an eye box.
* **model randomization** (Adebayo et al., 2018): layers are re-initialized as a newly built model of
  the same config has them (the architecture's own initialization; a model without a buildable config:
  each layer's default initializer), cascading from the head down in ``cascade_steps`` steps (the head
  alone first). At each step the maps of the randomized model are compared with the trained model's by
  the Spearman rank correlation per sample, of |attribution| summed over channels (the headline, as in
  the overlays) and of the signed sum. A faithful method's maps must decorrelate. The floor is the
  same Spearman between two independently randomized models: what any model of the architecture shares
  on these inputs, which the trained-vs-random figure cannot go below. ``input_spearman``
  says how much of a map is the input itself (Spearman of |attribution| with |input - baseline|), the
  part no randomization removes from IG-type maps.
* **region ablation**: no attribution involved: the metric with the eye boxes removed, with everything
  but the eye boxes removed, and with both, beside the intact metric. It says how much the model itself
  needs what lies outside the eyes (head pose, for a gaze model), which bounds the eye-mass a faithful
  map can have.
* **deletion curve**: pixels are removed most-attributed first (all channels of a pixel; replaced by
  a blurred copy of the input, or the per-image channel mean), and the task's primary metric is
  measured at each fraction, against random orders. Deleting what the map says matters should hurt
  clearly more than deleting at random: ``worse_by`` is the relative difference of the areas under
  the curves (positive = attribution order hurts more).

The issue's targets for a trained gazenet with IntegratedGradients are reported in ``criteria``.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from workbench.analyze._regions import box_masks
from workbench.analyze.attribution import (
    Settings,
    baseline_of,
    canonical_method,
    gaussian_blur,
)
from workbench.analyze.saliency import (
    Attributions,
    compute_attributions,
    region_scores,
    write_overlays,
)
from workbench.analyze.samples import Samples, load_samples
from workbench.analyze.subject import Subject, load_subject, parse_target
from workbench.errors import WorkbenchError
from workbench.progress import ProgressArg, as_progress
from workbench.utils.io import check_out, write_folder
from workbench.utils.jsonio import json_ready
from workbench.utils.stats import FAITHFULNESS_TARGETS, spearman_rows

TARGETS = FAITHFULNESS_TARGETS


# ---- eye-mass and pointing, pooled over inputs ---------------------------------------------------------
def pooled_regions(attrs: Attributions, samples: Samples) -> dict[str, dict[str, float]]:
    """Per target: eye-mass share / area share / ratio pooled over every boxed input, and the pointing
    game over every boxed image (each frame of a track is an image)."""
    out = {}
    for target in attrs.targets:
        inside = total = area_in = area = 0.0
        per_sample_in, per_sample_tot, hits = [], [], []
        for name in attrs.maps[target]:
            if name not in samples.boxes:
                continue
            m = attrs.heat(target, name).astype(np.float64)
            k = box_masks(samples.boxes[name], *m.shape[-2:])
            n = len(m)
            per_sample_in.append((m * k).reshape(n, -1).sum(1))
            per_sample_tot.append(m.reshape(n, -1).sum(1))
            area_in += k.sum()
            area += k.size
            flat_m, flat_k = m.reshape(-1, m.shape[-2] * m.shape[-1]), k.reshape(-1, m.shape[-2] * m.shape[-1])
            top = flat_m.argmax(1)
            hits.append(flat_k[np.arange(len(flat_m)), top] & (flat_m.max(1) > 0))
        if not per_sample_in:
            continue
        inside, total = np.sum(per_sample_in, 0), np.sum(per_sample_tot, 0)
        ok = total > 0
        share = float((inside[ok] / total[ok]).mean()) if ok.any() else float("nan")
        area_share = area_in / area
        out[target] = {"share": share, "area_share": float(area_share), "ratio": share / area_share,
                       "pointing": float(np.concatenate(hits).mean())}
    return out


# ---- model randomization -------------------------------------------------------------------------------
def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules that own parameters directly, in registration order (inputs to outputs for these models)."""
    return [(name, m) for name, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]


def _fresh_model(subject: Subject) -> nn.Module | None:
    """A newly built model of the same architecture (the model's own initialization), when its config
    rebuilds it; None otherwise."""
    from workbench.train.models import build_model

    try:
        fresh = build_model(subject.config)
    except (WorkbenchError, ValueError, TypeError, KeyError, ImportError):  # a user's model: no buildable config
        return None
    same = [(a, tuple(p.shape)) for a, p in fresh.state_dict().items()] == \
        [(a, tuple(p.shape)) for a, p in subject.model.state_dict().items()]
    return fresh.eval() if same else None


def reinitialize(module: nn.Module, seed: int, fresh: nn.Module | None = None) -> None:
    """Re-initialize one layer: copy its parameters and buffers from ``fresh`` (the same layer of a newly
    built model, so the architecture's own initialization applies), else its default initializer."""
    with torch.no_grad():
        if fresh is not None:
            for (_, p), (_, q) in zip(module.named_parameters(recurse=False), fresh.named_parameters(recurse=False)):
                p.copy_(q)
            for (_, b), (_, c) in zip(module.named_buffers(recurse=False), fresh.named_buffers(recurse=False)):
                b.copy_(c)
            return
        torch.manual_seed(seed)
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
            return
        for p in module.parameters(recurse=False):
            nn.init.normal_(p, 0.0, 0.02) if p.dim() > 1 else nn.init.zeros_(p)


def cascade_cuts(n_layers: int, steps: int) -> list[int]:
    """How many layers (from the head) are re-initialized at each step: the head alone first, then
    evenly spaced down to every layer."""
    if steps < 1:
        raise WorkbenchError(f"expected at least one cascade step, got {steps}")
    cuts = [1] + [round(n_layers * i / max(1, steps - 1)) for i in range(1, steps)]
    return sorted({min(max(1, c), n_layers) for c in cuts})


def _compare(trained: Attributions, other: Attributions) -> dict[str, dict[str, float]]:
    out = {}
    for t in trained.targets:
        abs_r, signed_r = [], []
        for name, a in trained.maps[t].items():
            b = other.maps[t][name]
            abs_r.append(spearman_rows(trained.heat(t, name), other.heat(t, name)))
            signed_r.append(spearman_rows(a.sum(-3), b.sum(-3)))
        abs_r, signed_r = np.concatenate(abs_r), np.concatenate(signed_r)
        out[t] = {"spearman_abs": float(np.nanmean(abs_r)) if np.isfinite(abs_r).any() else float("nan"),
                  "spearman": float(np.nanmean(signed_r)) if np.isfinite(signed_r).any() else float("nan"),
                  "undefined": int((~np.isfinite(abs_r)).sum())}
    return out


@dataclass
class Randomization:
    """Cascade rows per target, the kept maps per step, the fully randomized model's attributions, and
    the floor: per target, Spearman between two independently randomized models' maps."""

    rows: dict[str, list[dict]]
    kept: list
    final: Attributions
    floor: dict[str, dict[str, float]]


def _randomized_copy(subject: Subject, seed: int) -> Subject:
    """The subject with every layer re-initialized (a fresh build, or each layer's default initializer)."""
    torch.manual_seed(seed)
    model = _fresh_model(subject)
    if model is None:
        model = copy.deepcopy(subject.model).eval()
        for k, (_, m) in enumerate(_leaves(model)):
            reinitialize(m, seed + k)
    other = copy.copy(subject)
    other.model = model
    return other


def randomization(subject: Subject, samples: Samples, trained: Attributions, targets: Sequence[int], *,
                  steps: int, settings: Settings, batch_size: int, layer: str | None, seed: int = 0,
                  progress: ProgressArg = False, keep_maps: int = 0) -> Randomization:
    """Cascading randomization: per target, one row per step (layers re-initialized, the deepest one,
    Spearman of |maps| and of signed maps), the first ``keep_maps`` samples' maps per step, and the
    floor: the same Spearman between the fully randomized model and a second, independently randomized
    one. Maps of any two random models share what the architecture and the input impose; a trained
    model whose maps correlate with a random one's no more than that has no trained structure left."""
    rand_model = copy.deepcopy(subject.model).eval()
    torch.manual_seed(seed)
    fresh = _fresh_model(subject)
    fresh_layers = dict(fresh.named_modules()) if fresh is not None else {}
    leaves = _leaves(rand_model)
    if not leaves:
        raise WorkbenchError("model randomization needs a model with parameters")
    order = leaves[::-1]
    rand = copy.copy(subject)
    rand.model = rand_model
    trained = Attributions(trained.method, trained.targets,
                           {t: {k: a[: len(samples)] for k, a in d.items()} for t, d in trained.maps.items()})
    rows: dict[str, list[dict]] = {t: [] for t in trained.targets}
    kept = []
    done = 0
    cuts = cascade_cuts(len(order), steps)
    with as_progress(progress)("model randomization", len(cuts) + 1) as advance:
        for cut in cuts:
            for k in range(done, cut):
                reinitialize(order[k][1], seed + k, fresh_layers.get(order[k][0]))
            done = cut
            attrs = compute_attributions(rand, samples, targets, trained.method, settings=settings,
                                         batch_size=batch_size, layer=layer)
            for t, r in _compare(trained, attrs).items():
                rows[t].append({"layers_reinitialized": cut, "of": len(order), "down_to": order[cut - 1][0], **r})
            if keep_maps:
                t0 = trained.targets[0]
                name = next(iter(attrs.maps[t0]))
                kept.append((f"{cut} layers", attrs.heat(t0, name)[:keep_maps]))
            advance(1)
        other = compute_attributions(_randomized_copy(subject, seed + 7919), samples, targets, trained.method,
                                     settings=settings, batch_size=batch_size, layer=layer)
        advance(1)
    return Randomization(rows, kept, attrs, _compare(attrs, other))


def input_similarity(attrs: Attributions, samples: Samples, subject: Subject, baseline: str) -> dict[str, float]:
    """Per target: mean Spearman between |attribution| and |input - baseline| (channels summed), the part
    of a map that is the input itself: IG and GradientShap multiply the gradient by (x - baseline)."""
    names = list(subject.input_names)
    inputs = samples.inputs(slice(0, len(samples)))
    out = {}
    for t in attrs.targets:
        vals = []
        for name in attrs.maps[t]:
            x = inputs[names.index(name)]
            base = baseline_of(x, baseline) if attrs.method == "ig" else torch.zeros_like(x)
            ref = (x - base).abs().sum(-3).numpy()
            vals.append(spearman_rows(attrs.heat(t, name)[: len(ref)], ref))
        v = np.concatenate(vals)
        out[t] = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
    return out


# ---- deletion ------------------------------------------------------------------------------------------
def _fill(x: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "blur":
        return gaussian_blur(x, max(1.0, min(x.shape[-2:]) / 16))
    if kind == "mean":
        return x.mean(dim=(-2, -1), keepdim=True).expand_as(x).clone()
    raise WorkbenchError(f"unknown deletion fill {kind!r}; expected blur or mean")


def _metric(subject: Subject, samples: Samples, inputs: list[torch.Tensor], reference: torch.Tensor | None,
            batch_size: int) -> tuple[float, torch.Tensor]:
    """(task primary metric, or mean |explain-target change| without a task; the explain targets)."""
    outs, expl = [], []
    with torch.no_grad():
        for sl in samples.slices(batch_size):
            o = subject.model(*[x[sl] for x in inputs])
            outs.append(o)
            expl.append(subject.explain(o).float())
    expl = torch.cat(expl)
    task = subject.task
    if task is None:
        return (float((expl - reference).abs().mean()) if reference is not None else 0.0), expl
    outputs = {k: torch.cat([o[k] for o in outs]) for k in outs[0]}
    targets = {k: v for k, v in samples.batch(slice(0, len(samples))).items() if k in task.metric_keys}
    return float(task.metrics(outputs, targets)[task.primary_metric]), expl


def deletion(subject: Subject, samples: Samples, attrs: Attributions, *, fractions: int = 21, fill: str = "blur",
             random_orders: int = 3, batch_size: int = 32, seed: int = 0,
             progress: ProgressArg = False) -> dict[str, dict[str, Any]]:
    """Per target: the metric after removing the top fraction of pixels by attribution, and by random
    orders; areas under the curves (trapezoid over [0, 1]) and ``worse_by``."""
    names = list(subject.input_names)
    inputs = [x.detach() for x in samples.inputs(slice(0, len(samples)))]
    attributed = [names.index(k) for k in next(iter(attrs.maps.values()))]
    filled = {i: _fill(inputs[i], fill) for i in attributed}
    shapes = {i: inputs[i].shape[:-3] + inputs[i].shape[-2:] for i in attributed}  # per-pixel (channels merged)
    sizes = [int(np.prod(shapes[i][1:])) for i in attributed]
    fr = np.linspace(0.0, 1.0, fractions)
    task = subject.task
    higher = bool(task.higher_is_better) if task is not None else False
    metric_name = task.primary_metric if task is not None else "mean |target change|"
    base, reference = _metric(subject, samples, inputs, None, batch_size)
    n = len(samples)
    rng = np.random.default_rng(seed)
    result = {}
    with as_progress(progress)("deletion curves", len(attrs.targets) * (1 + random_orders)) as advance:
        for target in attrs.targets:
            score = np.concatenate([attrs.heat(target, names[i]).reshape(n, -1) for i in attributed], 1)
            orders = {"attribution": np.argsort(-score, axis=1, kind="stable")}
            for r in range(random_orders):
                orders[f"random{r}"] = np.argsort(rng.random(score.shape), axis=1)
            curves = {}
            for key, order in orders.items():
                rank = np.empty_like(order)
                np.put_along_axis(rank, order, np.arange(order.shape[1])[None].repeat(n, 0), axis=1)
                values = []
                for f in fr:
                    keep = round(float(f) * score.shape[1])
                    removed = torch.from_numpy(rank < keep)
                    mod = list(inputs)
                    start = 0
                    for i, size in zip(attributed, sizes):
                        mask = removed[:, start:start + size].reshape(shapes[i]).unsqueeze(-3)
                        mod[i] = torch.where(mask, filled[i], inputs[i])
                        start += size
                    values.append(base if keep == 0 else _metric(subject, samples, mod, reference, batch_size)[0])
                curves[key] = np.asarray(values)
                advance(1)
            a_attr = float(np.trapezoid(curves["attribution"], fr))
            rnd = np.stack([curves[k] for k in curves if k != "attribution"])
            a_rand = np.array([float(np.trapezoid(c, fr)) for c in rnd])
            diff = (a_rand.mean() - a_attr) if higher else (a_attr - a_rand.mean())
            worse_by = diff / abs(a_rand.mean()) if a_rand.mean() != 0 else float("nan")
            spread = float(a_rand.std(ddof=1)) if len(a_rand) > 1 else 0.0
            result[target] = {
                "metric": metric_name, "higher_is_better": higher, "fill": fill, "fractions": fr,
                "attribution": curves["attribution"], "random": rnd, "area_attribution": a_attr,
                "area_random": float(a_rand.mean()), "area_random_std": spread, "worse_by": worse_by,
                "clearly_worse": bool(worse_by >= TARGETS["deletion_worse_by"] and diff > 3 * spread),
            }
    return result


# ---- region ablation -----------------------------------------------------------------------------------
def region_ablation(subject: Subject, samples: Samples, *, fill: str = "blur",
                    batch_size: int = 32) -> dict[str, Any] | None:
    """The model's own dependence on the eye boxes, with no attribution method in between: the task's
    primary metric with nothing removed, with the eye boxes removed, with everything but the eye boxes
    removed, and with every boxed image removed (removed = replaced by the deletion fill). A model that
    reads only the eyes loses nothing when the rest goes; one that also reads head pose from the face
    loses accuracy either way, and a faithful map must then put part of its mass outside the boxes.
    None when no attributed input has eye boxes."""
    names = list(subject.input_names)
    boxed = [i for i, k in enumerate(names) if k in samples.boxes]
    if not boxed:
        return None
    inputs = [x.detach() for x in samples.inputs(slice(0, len(samples)))]
    filled = {i: _fill(inputs[i], fill) for i in boxed}
    masks = {i: torch.from_numpy(box_masks(samples.boxes[names[i]], *inputs[i].shape[-2:])).unsqueeze(-3)
             for i in boxed}
    base, reference = _metric(subject, samples, inputs, None, batch_size)

    def removed(where: str) -> float:
        mod = list(inputs)
        for i in boxed:
            keep = {"eyes": ~masks[i], "rest": masks[i], "all": torch.zeros_like(masks[i])}[where]
            mod[i] = torch.where(keep, inputs[i], filled[i])
        return _metric(subject, samples, mod, reference, batch_size)[0]

    task = subject.task
    return {"metric": task.primary_metric if task is not None else "mean |target change|",
            "higher_is_better": bool(task.higher_is_better) if task is not None else False, "fill": fill,
            "inputs": [names[i] for i in boxed], "nothing_removed": base, "eyes_removed": removed("eyes"),
            "rest_removed": removed("rest"), "all_removed": removed("all")}


# ---- the command ---------------------------------------------------------------------------------------
def check(run: Any, *, method: str = "ig", n: int = 32, out: str | Path | None = None, target: int | str | None = None,
          batch_size: int = 8, steps: int = 32, cascade_steps: int = 6, randomization_n: int = 16,
          fill: str = "blur", random_orders: int = 3,
          fractions: int = 21, layer: str | None = None, baseline: str = "zero", data: str | None = None,
          fmt: str | None = None, task: str | None = None, force: bool = False,
          progress: ProgressArg = False) -> dict[str, Any]:
    """Faithfulness of ``method``'s maps for ``run`` (see the module docstring); returns the summary.

    ``headline`` averages the targets (every explain_target column unless ``target`` picks one).
    Model randomization runs on the first ``randomization_n`` samples (each cascade step re-attributes).
    With ``out`` writes summary.json, deletion.png, randomization.png, overlays and attributions.npz.
    """
    t0 = time.time()
    check_out(out, force)
    canonical_method(method)
    if fractions < 2:
        raise WorkbenchError(f"expected at least 2 deletion fractions, got {fractions}")
    for option, value in (("--n", n), ("--batch-size", batch_size), ("--steps", steps),
                          ("--cascade-steps", cascade_steps), ("--randomization-n", randomization_n),
                          ("--random-orders", random_orders)):
        if value < 1:
            raise WorkbenchError(f"{option} must be at least 1, got {value}")
    if fill not in ("blur", "mean"):
        raise WorkbenchError(f"unknown deletion fill {fill!r}; expected blur or mean")
    subject = load_subject(run, task=task)
    targets = parse_target(target, subject.explain_names)
    samples = load_samples(subject, n=n, data=data, fmt=fmt, purpose="check", progress=progress)
    settings = Settings(steps=steps, internal_batch_size=8 * batch_size, baseline=baseline)
    attrs = compute_attributions(subject, samples, targets, method, settings=settings, batch_size=batch_size,
                                 layer=layer, progress=progress)
    regions = pooled_regions(attrs, samples)
    per_input = region_scores(attrs, samples)
    rand_samples = samples.head(randomization_n)
    rnd = randomization(subject, rand_samples, attrs, targets, steps=cascade_steps, settings=settings,
                        batch_size=batch_size, layer=layer, progress=progress, keep_maps=3)
    rand_rows, kept = rnd.rows, rnd.kept
    similarity = {"trained": input_similarity(attrs, rand_samples, subject, baseline),
                  "randomized": input_similarity(rnd.final, rand_samples, subject, baseline)}
    curves = deletion(subject, samples, attrs, fractions=fractions, fill=fill, random_orders=random_orders,
                      batch_size=max(batch_size, 16), progress=progress)
    ablation = region_ablation(subject, samples, fill=fill, batch_size=max(batch_size, 16))

    def mean(values):
        values = [v for v in values if v is not None and np.isfinite(v)]
        return float(np.mean(values)) if values else float("nan")

    head = {
        "eye_mass_share": mean(r["share"] for r in regions.values()),
        "eye_area_share": mean(r["area_share"] for r in regions.values()),
        "eye_mass_ratio": mean(r["ratio"] for r in regions.values()),
        "pointing": mean(r["pointing"] for r in regions.values()),
        "randomization_spearman": mean(rows[-1]["spearman_abs"] for rows in rand_rows.values()),
        "randomization_spearman_signed": mean(rows[-1]["spearman"] for rows in rand_rows.values()),
        "randomization_floor": mean(r["spearman_abs"] for r in rnd.floor.values()),
        "randomization_floor_signed": mean(r["spearman"] for r in rnd.floor.values()),
        "input_spearman_trained": mean(similarity["trained"].values()),
        "input_spearman_randomized": mean(similarity["randomized"].values()),
        "deletion_metric": next(iter(curves.values()))["metric"],
        "deletion_area": mean(c["area_attribution"] for c in curves.values()),
        "deletion_area_random": mean(c["area_random"] for c in curves.values()),
        "deletion_worse_by": mean(c["worse_by"] for c in curves.values()),
    }
    criteria = {
        f"eye_mass_ratio >= {TARGETS['eye_mass_ratio']:g}": head["eye_mass_ratio"] >= TARGETS["eye_mass_ratio"] if regions else None,
        f"pointing >= {TARGETS['pointing']:g}": head["pointing"] >= TARGETS["pointing"] if regions else None,
        f"randomization_spearman < {TARGETS['randomization_spearman']:g}": head["randomization_spearman"] < TARGETS["randomization_spearman"],
        "deletion clearly worse than random": all(c["clearly_worse"] for c in curves.values()),
    }
    summary = json_ready({
        "model": subject.name, "task": subject.task.name if subject.task else None, "method": attrs.method,
        "targets": attrs.targets, "n": len(samples), "data": samples.source,
        "attributed_inputs": list(next(iter(attrs.maps.values()))), "skipped_inputs": attrs.skipped,
        "inputs_with_eye_boxes": sorted(samples.boxes), "eye_boxes_missing": samples.boxes_missing,
        "settings": {"steps": steps, "batch_size": batch_size, "baseline": baseline, "cascade_steps": cascade_steps,
                     "randomization_n": min(randomization_n, len(samples)),
                     "fill": fill, "random_orders": random_orders, "fractions": fractions},
        "headline": head, "criteria": criteria,
        "eye_mass": regions, "eye_mass_per_input": per_input, "randomization": rand_rows,
        "randomization_floor": rnd.floor, "input_spearman": similarity,
        "deletion": {t: {k: v for k, v in c.items()} for t, c in curves.items()},
        "region_ablation": ablation,
        **({"gradcam_layers": attrs.layers} if attrs.layers else {}),
        "seconds": round(time.time() - t0, 1),
    })
    if not regions:
        why = "; ".join(f"{k}: {v}" for k, v in samples.boxes_missing.items()) or "no attributed input has eye boxes"
        summary["eye_mass_note"] = f"n/a: eye-mass, pointing game and region ablation not computed ({why})"
    if out is not None:
        def write(folder: Path) -> None:
            from workbench.analyze._plots import deletion_plot, randomization_plot

            (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
            deletion_plot(folder / "deletion.png", summary["deletion"], head["deletion_metric"],
                          f"{subject.name}: deletion, {attrs.method} order vs random ({fill} fill)")
            randomization_plot(folder / "randomization.png", rand_rows,
                               f"{subject.name}: cascading randomization ({attrs.method})")
            _cascade_grid(folder / "randomization_maps.png", attrs, kept, samples, subject)
            write_overlays(folder, attrs, samples, subject)
            arrays = {f"{k}__{t}": a for t, d in attrs.maps.items() for k, a in d.items()}
            arrays.update({f"boxes__{k}": v for k, v in samples.boxes.items()})
            np.savez_compressed(folder / "attributions.npz", **arrays)

        summary["files"] = write_folder(out, write, force=force)
    return summary


def _cascade_grid(path: Path, attrs: Attributions, kept: list, samples: Samples, subject: Subject) -> None:
    """The first samples' maps (first target, first input) for the trained model and each cascade step."""
    from workbench.analyze._plots import cascade_grid

    t0 = attrs.targets[0]
    name = next(iter(attrs.maps[t0]))
    # The cascade re-attributes only the first randomization_n samples: show no more rows than it has.
    rows = min(3, len(samples), *(len(m) for _, m in kept))
    x = samples.inputs(slice(0, rows))[list(subject.input_names).index(name)].numpy()
    cols = [("trained", attrs.heat(t0, name)[:rows])] + [(label, m[:rows]) for label, m in kept]
    if x.ndim == 5:  # tracks: the centre frame
        x = x[:, x.shape[1] // 2]
        cols = [(label, m[:, m.shape[1] // 2]) for label, m in cols]
    cascade_grid(path, x, cols, f"{subject.name}: {attrs.method} maps ({t0}, {name}) as layers are re-initialized "
                                "from the head")
