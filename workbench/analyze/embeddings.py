"""`workbench analyze embeddings`: what a layer's representation carries about the gaze.

A forward hook collects one layer's output (``NAME``) or input (``NAME:input``) over a data set, one
row per sample (flattened; a layer that runs once per frame of a track gives the frames side by side).
The default layer is the input of the last Linear layer run in the forward pass (the head's input);
a model without Linear layers uses its deepest feature map (the smallest spatial size, last of them).

Reports: participation ratio ``(sum l)^2 / sum l^2`` and effective rank ``exp(entropy(s / sum s))``
(Roy and Vetterli, 2007) of the centred embeddings (l: PCA variances, s: singular values), the PCA
variance explained, and the R^2 of a closed-form ridge probe from the embedding to the gaze labels,
subject-held-out (folds over subjects; the ridge strength is picked by an inner subject split).

Output folder: ``embeddings.npz`` (embeddings (N, D), labels (N, L), label_names, subject, layer),
``pca.png`` (PC1 vs PC2 coloured by each label: pitch and yaw where the view has them) and
``summary.json``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from workbench.analyze.samples import Samples, load_samples
from workbench.analyze.subject import Subject, load_subject
from workbench.errors import WorkbenchError
from workbench.progress import ProgressArg, as_progress
from workbench.utils.hooks import find_module, forward_hooks
from workbench.utils.io import check_out, write_folder
from workbench.utils.jsonio import json_ready


def _first_tensor(x: Any) -> torch.Tensor | None:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (tuple, list)) and x:
        return _first_tensor(x[0])
    return None


def trace_layers(subject: Subject, samples: Samples) -> list[dict[str, Any]]:
    """Every module that runs in a forward pass on two samples, in the order they finish:
    name, type, input and output shapes (batch dimension included)."""
    rows: list[dict[str, Any]] = []

    def hook(name, mod, args, out):
        i, o = _first_tensor(args), _first_tensor(out)
        rows.append({"name": name, "type": type(mod).__name__,
                     "input_shape": None if i is None else list(i.shape),
                     "output_shape": None if o is None else list(o.shape)})

    with forward_hooks([(n, m) for n, m in subject.model.named_modules() if n], hook):
        with torch.no_grad():
            subject.model(*samples.inputs(slice(0, min(2, len(samples)))))
    return rows


def default_layer(rows: list[dict[str, Any]]) -> str:
    """The head's input (last Linear run), else the deepest feature map (see the module docstring)."""
    linear = [r for r in rows if r["type"] == "Linear"]
    if linear:
        return f"{linear[-1]['name']}:input"
    maps = [r for r in rows if r["output_shape"] and len(r["output_shape"]) == 4]
    if not maps:
        if not rows:
            raise WorkbenchError("the model runs no submodules: give --layer")
        return rows[-1]["name"]
    smallest = min(r["output_shape"][2] * r["output_shape"][3] for r in maps)
    return [r for r in maps if r["output_shape"][2] * r["output_shape"][3] == smallest][-1]["name"]


def _parse_layer(model: nn.Module, spec: str, rows: list[dict[str, Any]]) -> tuple[str, bool]:
    name, _, side = spec.partition(":")
    if side not in ("", "input", "output"):
        raise WorkbenchError(f"layer {spec!r}: expected NAME, NAME:input or NAME:output")
    ran = {r["name"] for r in rows}
    if name not in ran:
        valid = [r["name"] for r in rows]
        shown = ", ".join(valid[:40]) + (f", ... ({len(valid) - 40} more; see --list-layers)" if len(valid) > 40 else "")
        known = dict(model.named_modules())
        why = "does not run in the forward pass" if name in known else "does not exist"
        raise WorkbenchError(f"unknown layer {name!r} ({why}); valid layers: {shown}")
    return name, side == "input"


def collect(subject: Subject, samples: Samples, layer: str, *, batch_size: int = 64,
            progress: ProgressArg = False) -> np.ndarray:
    """(N, D) float32 embeddings of ``layer`` (``NAME`` or ``NAME:input``) over ``samples``."""
    rows = trace_layers(subject, samples)
    name, use_input = _parse_layer(subject.model, layer, rows)
    module = dict(subject.model.named_modules())[name]
    grabbed: list[torch.Tensor] = []

    def hook(_name, mod, args, out):
        t = _first_tensor(args if use_input else out)
        if t is not None and not grabbed:  # a module run twice in one pass: its first call
            grabbed.append(t.detach())

    parts = []
    with forward_hooks([(name, module)], hook):
        slices = list(samples.slices(batch_size))
        with as_progress(progress)(f"embeddings of {layer}", len(slices)) as advance, torch.no_grad():
            for sl in slices:
                grabbed.clear()
                inputs = samples.inputs(sl)
                subject.model(*inputs)
                b = sl.stop - sl.start
                t = grabbed[0]
                if t.shape[0] != b and t.numel() % b:
                    raise WorkbenchError(f"layer {layer!r} output {tuple(t.shape)} cannot be split into {b} samples")
                parts.append(t.reshape(b, -1).float().numpy())
                advance(1)
    return np.concatenate(parts)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Small dense algebra on one thread: a multi-threaded BLAS on a busy machine is 40x slower here."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _singular_values(x: np.ndarray) -> np.ndarray:
    with _one_thread():
        return torch.linalg.svdvals(torch.from_numpy(np.asarray(x, dtype=np.float64))).numpy()


def spectrum(x: np.ndarray) -> dict[str, Any]:
    """Participation ratio, effective rank and PCA variance of the centred rows of ``x`` (N, D)."""
    s = _singular_values(x - x.mean(0, keepdims=True))
    lam = s ** 2 / max(1, len(x) - 1)
    total = lam.sum()
    if total <= 0:
        return {"participation_ratio": 0.0, "effective_rank": 0.0, "explained_variance": [], "pcs_for_90": 0}
    p = s / s.sum()
    p = p[p > 0]
    ratio = lam / total
    return {
        "participation_ratio": float(total ** 2 / (lam ** 2).sum()),
        "effective_rank": float(np.exp(-(p * np.log(p)).sum())),
        "explained_variance": ratio[:10],
        "pcs_for_90": int(np.searchsorted(np.cumsum(ratio), 0.9) + 1),
    }


def pca(x: np.ndarray, k: int = 2) -> np.ndarray:
    """(N, k) scores of the centred rows of ``x`` on its first ``k`` principal axes."""
    with _one_thread():
        xc = torch.from_numpy(np.asarray(x, dtype=np.float64))
        xc = xc - xc.mean(0, keepdim=True)
        u, s, _ = torch.linalg.svd(xc, full_matrices=False)
        return (u[:, :k] * s[:k]).numpy()


def _ridge_fit(x: torch.Tensor, y: torch.Tensor, lam: float) -> torch.Tensor:
    """Closed-form ridge on standardized x and centred y; primal or dual form, whichever is smaller."""
    n, d = x.shape
    if d <= n:
        return torch.linalg.solve(x.T @ x + lam * n * torch.eye(d, dtype=x.dtype), x.T @ y)
    return x.T @ torch.linalg.solve(x @ x.T + lam * n * torch.eye(n, dtype=x.dtype), y)


def _fit_predict(xtr: torch.Tensor, ytr: torch.Tensor, xte: torch.Tensor, lam: float) -> torch.Tensor:
    mu, sd = xtr.mean(0), xtr.std(0, correction=0) + 1e-6
    ym = ytr.mean(0)
    w = _ridge_fit((xtr - mu) / sd, ytr - ym, lam)
    return (xte - mu) / sd @ w + ym


def _folds(groups: np.ndarray, k: int) -> list[np.ndarray]:
    ids = np.unique(groups)
    return [np.isin(groups, ids[j::k]) for j in range(min(k, len(ids)))]


def ridge_probe(x: np.ndarray, y: np.ndarray, groups: np.ndarray, *, folds: int = 5,
                lambdas: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)) -> dict[str, Any]:
    """Subject-held-out R^2 of a ridge probe x -> y (per column), pooled over the outer folds."""
    groups = np.asarray(groups)
    outer = _folds(groups, folds)
    if len(outer) < 2:
        raise WorkbenchError(f"the probe holds subjects out and needs at least 2 subjects, got {len(np.unique(groups))}")
    with _one_thread():
        xt = torch.from_numpy(np.asarray(x, dtype=np.float64))
        yt = torch.from_numpy(np.asarray(y, dtype=np.float64))
        pred = torch.zeros_like(yt)
        chosen = []
        for test in outer:
            tr = torch.from_numpy(~test)
            xtr, ytr = xt[tr], yt[tr]
            inner = [torch.from_numpy(v) for v in _folds(groups[~test], 3)]
            lam = 1e-2
            if len(inner) >= 2:
                errs = [sum(float(((_fit_predict(xtr[~v], ytr[~v], xtr[v], lam_) - ytr[v]) ** 2).sum()) for v in inner)
                        for lam_ in lambdas]
                lam = lambdas[int(np.argmin(errs))]
            chosen.append(lam)
            pred[torch.from_numpy(test)] = _fit_predict(xtr, ytr, xt[torch.from_numpy(test)], lam)
        sse = ((pred - yt) ** 2).sum(0).numpy()
        sst = ((yt - yt.mean(0)) ** 2).sum(0).numpy()
    r2 = 1.0 - sse / np.where(sst > 0, sst, np.nan)
    return {"r2": r2, "folds": len(outer), "subjects": len(np.unique(groups)), "lambdas": chosen}


def embeddings(run: Any, *, layer: str | None = None, out: str | Path | None = None, n: int = 512,
               list_layers: bool = False, batch_size: int = 64, data: str | None = None, fmt: str | None = None,
               task: str | None = None, force: bool = False, progress: ProgressArg = False) -> dict[str, Any]:
    """Collect a layer's embeddings of ``run``'s model over ``n`` samples and report how much of it is
    used and how linearly it carries the gaze (see the module docstring). ``list_layers``: return the
    layers (name, type, shapes) and the default, computing nothing else."""
    t0 = time.time()
    check_out(out, force)
    subject = load_subject(run, task=task)
    if subject.task is None:
        raise WorkbenchError("embeddings need a task (labels and data): give the model's task")
    if layer is not None:
        name = layer.partition(":")[0]
        find_module(subject.model, name)  # an unknown name fails before any data is rendered
    samples = load_samples(subject, n=2 if list_layers else n, data=data, fmt=fmt, purpose="embeddings", progress=progress)
    rows = trace_layers(subject, samples)
    default = default_layer(rows)
    if list_layers:
        return {"model": subject.name, "default": default, "layers": rows}
    layer = layer or default
    x = collect(subject, samples, layer, batch_size=batch_size, progress=progress)
    if samples.labels is None:
        raise WorkbenchError("the data set has no gaze labels to probe")
    spec = spectrum(x)
    probe = ridge_probe(x, samples.labels, samples.subjects)
    summary = json_ready({
        "model": subject.name, "task": subject.task.name, "layer": layer, "default_layer": default, "n": len(x),
        "dim": int(x.shape[1]), "data": samples.source, "labels": list(samples.label_names), **spec,
        "probe": {"r2": dict(zip(samples.label_names, probe["r2"])), "r2_mean": float(np.nanmean(probe["r2"])),
                  "split": f"subject-held-out, {probe['folds']} folds over {probe['subjects']} subjects",
                  "ridge_lambda": probe["lambdas"], "model": "closed-form ridge on standardized features"},
        "seconds": round(time.time() - t0, 2),
    })
    if out is not None:
        def write(folder: Path) -> None:
            from workbench.analyze._plots import pca_plot

            np.savez_compressed(folder / "embeddings.npz", embeddings=x, labels=samples.labels,
                                label_names=np.array(samples.label_names), subject=samples.subjects,
                                layer=np.array(layer))
            pca_plot(folder / "pca.png", pca(x), samples.labels, samples.label_names,
                     f"{subject.name}: PCA of {layer} ({x.shape[1]}-d, PR {summary['participation_ratio']:.1f}, "
                     f"probe R2 {summary['probe']['r2_mean']:.2f})")
            (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

        summary["files"] = write_folder(out, write, force=force)
    return summary
