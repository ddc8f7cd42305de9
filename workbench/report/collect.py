"""Read run folders into the report's data: one plain dict per teacher, nothing drawn yet.

Accepted inputs: a pipeline run folder (``<out>`` with ``<teacher>/<stage>/`` folders), one teacher's
folder (``<out>/<teacher>``), or a plain training run folder (``config.json``). Whatever is missing is
recorded as missing, with the reason, so the report can say so instead of breaking.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError
from workbench.utils.jsonio import read_json, read_jsonl
from workbench.utils.stats import spearman_rows

STAGE_ORDER = ("train", "analyze", "prune", "distill", "quantize", "compare", "profile", "export", "compress")
MODEL_ORDER = ("teacher", "pruned", "student", "control", "int8")


def _table(obj: Any) -> dict[str, Any]:
    """A JSON file's content where a table is expected ({} for anything else: the report says what is missing)."""
    return obj if isinstance(obj, dict) else {}


def _is_teacher_dir(path: Path) -> bool:
    return any((path / s).is_dir() for s in STAGE_ORDER) and not (path / "config.json").is_file()


def discover(path: str | Path) -> list[dict[str, Any]]:
    """The teacher folders under ``path``: ``[{"kind": "pipeline"|"run", "path": Path, "teacher": str}]``."""
    path = Path(path)
    if not path.is_dir():
        raise WorkbenchError(f"{path}: no such folder")
    if (path / "config.json").is_file():
        cfg = _table(read_json(path / "config.json", default=None))
        return [{"kind": "run", "path": path, "teacher": str(cfg.get("teacher") or path.name)}]
    if _is_teacher_dir(path):
        return [{"kind": "pipeline", "path": path, "teacher": path.name}]
    found = [{"kind": "pipeline", "path": p, "teacher": p.name}
             for p in sorted(path.iterdir()) if p.is_dir() and _is_teacher_dir(p)]
    pipeline = read_json(path / "pipeline.json", default=None) or {}
    order = list(pipeline.get("teachers", []))
    found.sort(key=lambda e: (order.index(e["teacher"]) if e["teacher"] in order else len(order), e["teacher"]))
    if not found:
        raise WorkbenchError(f"{path}: not a pipeline run folder, a teacher's folder or a training run folder "
                             "(no <teacher>/<stage>/ folders and no config.json)")
    return found


# ---- stages -----------------------------------------------------------------------------------------
def stage_status(tdir: Path, name: str) -> dict[str, Any]:
    """``{"status": done|failed|unfinished|not run, ...}`` of one stage folder."""
    sdir = tdir / name
    marker = read_json(sdir / "stage.json", default=None)
    if isinstance(marker, dict) and "key" in marker:
        return {"status": "done", "dir": str(sdir), "seconds": marker.get("seconds"),
                "cpu_seconds": marker.get("cpu_seconds"), "key": marker.get("key"),
                "calls": marker.get("calls", []), "config": marker.get("config", {}), "finished": marker.get("finished"),
                "summary": marker.get("summary", {})}
    if (sdir / "error.log").is_file():
        first = (sdir / "error.log").read_text(errors="replace").strip().splitlines()
        return {"status": "failed", "dir": str(sdir), "error": first[-1][:300] if first else "",
                "log": str(sdir / "error.log")}
    if sdir.is_dir():
        return {"status": "unfinished", "dir": str(sdir)}
    return {"status": "not run", "dir": str(sdir)}


# ---- models -----------------------------------------------------------------------------------------
def model_folders(tdir: Path) -> dict[str, Path]:
    """Where each model of a teacher's pipeline lives (only those that exist)."""
    cands = {"teacher": tdir / "train", "pruned": tdir / "prune", "student": tdir / "distill" / "student",
             "control": tdir / "distill" / "control"}
    out = {k: v for k, v in cands.items() if (v / "config.json").is_file()}
    if (tdir / "quantize" / "model.int8.onnx").is_file():
        out["int8"] = tdir / "quantize"
    return out


def _unreadable_checkpoint(run: Path) -> str | None:
    """Why the model of ``run`` cannot be used again (its best checkpoint is missing, truncated or foreign),
    or None. The report's figures come from JSON summaries, so without this check a run whose weights are
    lost would look whole."""
    from workbench.train.run_folder import load_checkpoint

    try:
        load_checkpoint(run / "checkpoints" / "best.pt")
    except WorkbenchError as exc:
        return f"model not reusable: {exc}"
    return None


def _metrics_of(run: Path) -> dict[str, Any] | None:
    m = read_json(run / "metrics.json", default=None)
    if not isinstance(m, dict):
        return None
    return {"primary_metric": m.get("primary_metric"), "best": m.get("best"), "final": m.get("final") or {},
            "constant": m.get("constant") or {}, "params": m.get("params"), "epochs_run": m.get("epochs_run"),
            "train_seconds": m.get("train_seconds")}


def _higher_is_better(run: Path) -> bool:
    cfg = _table(read_json(run / "config.json", default=None))
    try:
        from workbench.tasks import get_task

        return bool(get_task(cfg["task"]).higher_is_better)
    except (KeyError, ValueError, TypeError, WorkbenchError):  # an unknown task: lower is better (errors)
        return False


def _latency_row(lat: Any) -> dict[str, Any]:
    """{"eager": {"batch_1": {...}}, "onnxruntime": ...} -> {"eager_b1_ms": .., "ort_fp32_b1_ms": .., ...}."""
    row: dict[str, Any] = {}
    if not isinstance(lat, dict):
        return row
    names = {"eager": "eager", "onnxruntime": "ort_fp32", "onnxruntime_fp32": "ort_fp32", "onnxruntime_int8": "ort_int8"}
    for key, short in names.items():
        sub = lat.get(key)
        if not isinstance(sub, dict):
            continue
        for bkey, vals in sub.items():
            if isinstance(vals, dict) and vals.get("median_ms") is not None and str(bkey).startswith("batch_"):
                row[f"{short}_b{str(bkey)[6:]}_ms"] = vals["median_ms"]
    return row


def _latency_setup(lat: Any) -> dict[str, Any]:
    """How a profile's latency was measured: {"threads", "batch_sizes", "device", "machine"} (None where an
    older run did not record it)."""
    lat = lat if isinstance(lat, dict) else {}
    return {k: lat.get(k) for k in ("threads", "batch_sizes", "device", "machine")}


# The figure each card's cut ratio compares with the teacher's onnxruntime fp32 batch-1 latency: the int8
# model's own int8 time (its MACs are its source model's), every other model's fp32 time.
CUT_LATENCY = {"int8": "ort_int8_b1_ms"}


def latency_cut_ratio(card: dict[str, Any], teacher: dict[str, Any]) -> float | None:
    """(1 - t/t_teacher) / (1 - MACs/MACs_teacher) at batch 1 in onnxruntime: 1.0 when time falls as much as
    MACs do. None where a figure is missing or the MACs are not lower than the teacher's."""
    t = (card.get("latency") or {}).get(CUT_LATENCY.get(card.get("name"), "ort_fp32_b1_ms"))
    t0 = (teacher.get("latency") or {}).get("ort_fp32_b1_ms")
    macs, macs0 = card.get("macs"), teacher.get("macs")
    if not all(isinstance(v, (int, float)) for v in (t, t0, macs, macs0)) or t0 <= 0 or macs0 <= 0 or macs >= macs0:
        return None
    return (1 - t / t0) / (1 - macs / macs0)


def collect_models(tdir: Path, kind: str) -> list[dict[str, Any]]:
    """One card per model: params, MACs at the padded input, latency and metrics (None where missing)."""
    folders = {"teacher": tdir} if kind == "run" else model_folders(tdir)
    profile_dir = tdir / "profile"
    cards = []
    for name in MODEL_ORDER:
        folder = folders.get(name)
        if folder is None:
            continue
        prof = read_json(profile_dir / f"{name}.json", default=None) if kind == "pipeline" else None
        card: dict[str, Any] = {"name": name, "folder": str(folder), "params": None, "macs": None,
                                "input_shapes": None, "latency": {}, "latency_setup": _latency_setup(None),
                                "metrics": None, "primary_metric": None,
                                "value": None, "higher_is_better": False, "notes": []}
        if isinstance(prof, dict):
            p = prof.get("profile") or {}
            card["params"], card["macs"] = p.get("params"), p.get("macs")
            card["input_shapes"] = p.get("input_shapes")
            card["padding"] = {k: p[k] for k in ("raw_size", "padded_size", "padding") if k in p}
            card["latency"] = _latency_row(prof.get("latency"))
            card["latency_setup"] = _latency_setup(prof.get("latency"))
            if prof.get("size_bytes"):
                card["size_bytes"] = prof["size_bytes"]
        else:
            card["notes"].append("not profiled (profile stage not run)")
        if name == "int8":
            q = read_json(folder / "summary.json", default=None) or {}
            card.update(_int8_metrics(q, tdir))
            card["notes"] += _int8_notes(q)
        else:
            m = _metrics_of(folder)
            card["metrics"] = m
            card["higher_is_better"] = _higher_is_better(folder)
            if m:
                card["primary_metric"], card["value"] = m["primary_metric"], m["best"]
                if card["params"] is None:
                    card["params"] = m.get("params")
            else:
                card["notes"].append("no metrics.json (training did not finish)")
            broken = _unreadable_checkpoint(folder)
            if broken:
                card["notes"].append(broken)
                card["warning"] = broken
        cards.append(card)
    teacher = next((c for c in cards if c["name"] == "teacher"), None)
    for card in cards:
        if teacher is not None and card is not teacher:
            card["latency_cut_ratio"] = latency_cut_ratio(card, teacher)
    return cards


def _int8_metrics(q: dict[str, Any], tdir: Path) -> dict[str, Any]:
    """The int8 card's metric from quantize/summary.json (its own schema: look for the int8 entries)."""
    out: dict[str, Any] = {"metrics": q or None, "higher_is_better": False}
    metric = q.get("primary_metric") or q.get("metric")
    int8 = q.get("int8") if isinstance(q.get("int8"), dict) else None
    fp32 = q.get("fp32") if isinstance(q.get("fp32"), dict) else None
    value = None
    if int8 is not None:
        value = int8.get(metric) if metric in int8 else int8.get("metric", int8.get("value"))
    elif metric and isinstance(q.get(f"{metric}_int8"), (int, float)):
        value = q[f"{metric}_int8"]
    out["primary_metric"], out["value"] = metric, value
    if fp32 is not None:
        out["fp32_value"] = fp32.get(metric) if metric in fp32 else fp32.get("metric", fp32.get("value"))
    teacher_run = tdir / "train"
    if teacher_run.is_dir():
        out["higher_is_better"] = _higher_is_better(teacher_run)
    return out


def _int8_notes(q: dict[str, Any]) -> list[str]:
    """What the quantize summary says about the speed-up: its warning, and where the MACs sit by layer kind
    (narrow, depthwise and grouped convs gain little or lose in int8)."""
    notes = []
    if q.get("warning"):
        notes.append(str(q["warning"]))
    share = (q.get("layers") or {}).get("share") or {}
    if share:
        notes.append("MACs by layer kind: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in
                                                       sorted(share.items(), key=lambda kv: -kv[1])))
    return notes


# ---- training curves --------------------------------------------------------------------------------
def _log_files(run: Path) -> list[Path]:
    """A run's log.jsonl; a pruned run's fine-tuning logs, one per pruning step, in step order."""
    if (run / "log.jsonl").is_file():
        return [run / "log.jsonl"]
    steps = sorted((run / "steps").glob("step*/log.jsonl"), key=lambda p: int(p.parent.name[4:] or 0))
    return steps


def training_curve(run: Path) -> dict[str, Any] | None:
    """Per-epoch train loss and validation metrics from a run's log.jsonl (a cut last line is skipped);
    a pruned run's fine-tuning steps are joined, epochs counted across them."""
    epochs, loss, val = [], [], {}
    for path in _log_files(run):
        offset = len(epochs)
        for rec in read_jsonl(path):
            if not isinstance(rec, dict):
                continue
            if rec.get("event") != "epoch" or "epoch" not in rec:
                continue
            epoch = offset + int(rec["epoch"])
            epochs.append(epoch)
            loss.append(rec.get("train_loss"))
            for k, v in (rec.get("val") or {}).items():
                val.setdefault(k, {})[epoch] = v
    if not epochs:
        return None
    m = _metrics_of(run) or {}
    return {"epoch": epochs, "train_loss": loss, "val": {k: [d.get(e) for e in epochs] for k, d in val.items()},
            "primary_metric": m.get("primary_metric"), "constant": (m.get("constant") or {}).get(m.get("primary_metric") or "")}


# ---- saliency and its agreement across models -------------------------------------------------------
def saliency_folders(tdir: Path, kind: str) -> dict[str, Path]:
    if kind == "run":
        return {}
    cands = {"teacher": tdir / "analyze" / "saliency", "pruned": tdir / "compare" / "pruned" / "saliency",
             "student": tdir / "compare" / "student" / "saliency"}
    return {k: v for k, v in cands.items() if (v / "attributions.npz").is_file()}


POOL_CELLS = 14  # the coarse grid (cells per side) of the pooled agreement


def _heat(a: np.ndarray, pool: bool = False) -> np.ndarray:
    """(N, C, H, W) or (N, T, C, H, W) attributions -> (N, pixels) |attribution| summed over channels;
    with ``pool``, summed over blocks of a ~14 x 14 grid first (agreement on where, not on pixel noise)."""
    a = np.abs(np.asarray(a, dtype=np.float64))
    if a.ndim == 4:
        a = a.sum(1)
    elif a.ndim == 5:
        a = a.sum(2)
    if pool and a.ndim >= 3:
        h, w = a.shape[-2:]
        k = max(1, min(h, w) // POOL_CELLS)
        h2, w2 = h // k * k, w // k * k
        a = a[..., :h2, :w2].reshape(*a.shape[:-2], h2 // k, k, w2 // k, k).sum(axis=(-3, -1))
    return a.reshape(len(a), -1)


def load_attributions(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "attributions.npz") as z:
        return {k: z[k] for k in z.files}


def agreement(folders: dict[str, Path]) -> dict[str, Any]:
    """Rank correlation (Spearman, per sample, then mean) of the pruned model's and the student's saliency
    maps with the teacher's, for every attributed input and target they share."""
    if "teacher" not in folders:
        return {"status": "missing", "reason": "the teacher's saliency was not run"}
    ref = load_attributions(folders["teacher"])
    out: dict[str, Any] = {"status": "ok", "pairs": {}}
    for name in ("pruned", "student"):
        if name not in folders:
            out["pairs"][name] = {"status": "missing", "reason": f"no saliency of the {name} model"}
            continue
        other = load_attributions(folders[name])
        if "subject" in ref and "subject" in other and not np.array_equal(ref["subject"], other["subject"]):
            out["pairs"][name] = {"status": "missing", "reason": "the maps are of different samples"}
            continue
        maps = {}
        for key in sorted(ref):
            if key.startswith("boxes__") or key == "subject" or key not in other:
                continue
            if ref[key].shape[0] != other[key].shape[0] or ref[key].shape[-2:] != other[key].shape[-2:]:
                continue
            rho = spearman_rows(_heat(ref[key]), _heat(other[key]))
            pooled = spearman_rows(_heat(ref[key], pool=True), _heat(other[key], pool=True))
            maps[key] = {"mean": _nanmean(rho), "per_sample": [None if np.isnan(r) else float(r) for r in rho],
                         "pooled_mean": _nanmean(pooled)}
        if not maps:
            out["pairs"][name] = {"status": "missing", "reason": "no attribution maps in common with the teacher's"}
        else:
            out["pairs"][name] = {"status": "ok", "maps": maps, "mean": _nanmean([m["mean"] for m in maps.values()])}
    return out


def _nanmean(xs: Any) -> float | None:
    arr = np.asarray([np.nan if x is None else x for x in xs], dtype=float)
    return None if np.all(np.isnan(arr)) else float(np.nanmean(arr))


# ---- one teacher --------------------------------------------------------------------------------------
def collect_teacher(entry: dict[str, Any]) -> dict[str, Any]:
    """Everything the report shows about one teacher folder (JSON-native, paths as strings)."""
    tdir, kind = Path(entry["path"]), entry["kind"]
    data: dict[str, Any] = {"teacher": entry["teacher"], "folder": str(tdir), "kind": kind}
    if kind == "run":
        data["stages"] = {"train": {"status": "done" if (tdir / "metrics.json").is_file() else "unfinished",
                                    "dir": str(tdir), "calls": []}}
    else:
        data["stages"] = {name: stage_status(tdir, name) for name in STAGE_ORDER}
    data["models"] = collect_models(tdir, kind)
    runs = {"teacher": tdir} if kind == "run" else {k: v for k, v in model_folders(tdir).items() if k != "int8"}
    data["curves"] = {k: c for k, c in ((k, training_curve(v)) for k, v in runs.items()) if c is not None}
    sal = saliency_folders(tdir, kind)
    data["saliency"] = {"folders": {k: str(v) for k, v in sal.items()},
                        "summaries": {k: read_json(v / "summary.json", default=None) for k, v in sal.items()},
                        "agreement": agreement(sal) if sal else {"status": "missing", "reason": "saliency not run"}}
    checks = {} if kind == "run" else {k: read_json(p / "summary.json", default=None) for k, p in (
        ("teacher", tdir / "analyze" / "check"), ("pruned", tdir / "compare" / "pruned" / "check"),
        ("student", tdir / "compare" / "student" / "check")) if (p / "summary.json").is_file()}
    data["faithfulness"] = checks
    data["embeddings"] = _analysis_folder(tdir / "analyze" / "embeddings") if kind == "pipeline" else None
    data["fc_importance"] = _analysis_folder(tdir / "analyze" / "fc_importance") if kind == "pipeline" else None
    data["export"] = data["stages"].get("export", {}).get("summary") if kind == "pipeline" else None
    data["links"] = compression_links(tdir) if kind == "pipeline" else None
    data["compress"] = _compress_folder(tdir / "compress") if kind == "pipeline" else None
    data["measured_on"] = measured_on(data, runs.get("teacher"))
    data["latency_machine"] = latency_machine(data["models"])
    return data


def latency_machine(cards: list[dict[str, Any]]) -> str:
    """The machine the cards' latencies were measured on (the teacher's first), as one line; "machine not
    recorded" for runs profiled before the machine was recorded."""
    from workbench.profile.machine import machine_text

    texts = [machine_text((c.get("latency_setup") or {}).get("machine")) for c in cards]
    return next((t for t in texts if t != machine_text(None)), machine_text(None))


def _data_label(d: Any) -> str | None:
    """A summary's "data" entry (a data spec description, or an older free-text string) as one line."""
    if isinstance(d, dict):
        if d.get("label"):
            return str(d["label"])
        src = d.get("source")
        if src is None:
            return None
        where = "SynthGaze" if src == "synth" else f"{src} ({d.get('format') or 'detected'})"
        return f"{where}, {d.get('split') or 'all'} split"
    return str(d) if d else None


def measured_on(data: dict[str, Any], teacher_run: Path | None) -> dict[str, str]:
    """{figure group: the data and split it was measured on}, from the run's config and each summary."""
    out: dict[str, str] = {}
    cfg = _table(read_json(teacher_run / "config.json", default=None) if teacher_run is not None else None)
    if cfg and isinstance(cfg.get("data"), dict):
        src, fmt = cfg["data"].get("source", "synth"), cfg["data"].get("format")
        where = "SynthGaze (held-out subjects)" if src == "synth" else f"{src} ({fmt or 'detected'})"
        out["metrics"] = f"{where}, validation split"
    for k, summ in (data.get("saliency", {}).get("summaries") or {}).items():
        label = _data_label((summ or {}).get("data"))
        if label:
            out[f"saliency ({k})"] = label
    for k, summ in (data.get("faithfulness") or {}).items():
        label = _data_label((summ or {}).get("data"))
        if label:
            out[f"faithfulness ({k})"] = label
    return out


def _analysis_folder(folder: Path) -> dict[str, Any] | None:
    if not folder.is_dir():
        return None
    return {"folder": str(folder), "summary": read_json(folder / "summary.json", default=None),
            "figures": sorted(str(p) for p in folder.glob("*.png"))}


def compression_links(tdir: Path) -> dict[str, Any]:
    """What the prune and distill stages did with analysis: the pruner's criterion, scope, per-group effective
    ranks and latency table, and the student's auto-size record and KD kinds (from their summaries)."""
    prune = _table(read_json(tdir / "prune" / "metrics.json", default=None))
    distill = _table(read_json(tdir / "distill" / "summary.json", default=None))
    table = _table(read_json(tdir / "prune" / "latency_table.json", default=None))
    keep = ("importance", "scope", "round_to", "erank", "widths", "macs", "params", "primary_metric", "teacher_metric",
            "best", "latency")
    return {"prune": {k: prune.get(k) for k in keep} if prune else None,
            "latency_table": table or None,
            "distill": {"kd": _table(distill.get("kd")), "auto_size": distill.get("auto_size"),
                        "student": {k: _table(distill.get("student")).get(k) for k in ("name", "preset", "best",
                                                                                          "macs_ratio")},
                        "kd_vs_control": distill.get("kd_vs_control"),
                        "primary_metric": distill.get("primary_metric")} if distill else None}


def _compress_folder(folder: Path) -> dict[str, Any] | None:
    """The compress stage's search (summary, every candidate, the front figure), or None if it did not run."""
    summary = read_json(folder / "summary.json", default=None)
    if not isinstance(summary, dict):
        return None
    front = _table(read_json(folder / "front.json", default=None))
    return {"folder": str(folder), "summary": summary, "candidates": front.get("candidates") or [],
            "figure": str(folder / "front.png") if (folder / "front.png").is_file() else None}
