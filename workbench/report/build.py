"""`workbench report RUN... --out reports/NAME`: index.html, report.md and report.json.

The page opens from disk (no server, no network): figures are files under ``figures/`` next to it,
linked by relative paths. Sections whose data is missing say so ("not run", "failed: ...").
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.profile.machine import threads_text
from workbench.progress import progress_bar
from workbench.report import figures as F
from workbench.report.collect import collect_teacher, discover
from workbench.report.render import Part, html_page, markdown_page
from workbench.utils.jsonio import read_json
from workbench.utils.stats import FAITHFULNESS_TARGETS

PARTS = ("stages", "models", "pareto", "saliency", "faithfulness", "embeddings", "fc-importance", "links", "compress",
         "training", "export")
TITLE = "Gaze Workbench report"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "run"


def _macs(v: Any) -> str:
    if v is None:
        return "not measured"
    return f"{v / 1e9:.3f} G" if v >= 1e9 else f"{v / 1e6:.2f} M"


def _ms(v: Any) -> Any:
    return "–" if v is None else f"{v:.2f} ms"


def _not_run(data: dict[str, Any], stage: str, what: str) -> str:
    st = data["stages"].get(stage, {"status": "not run"})
    if st["status"] == "failed":
        return f"{what}: stage {stage} failed ({st.get('error', '')}); see {st.get('log')}"
    if st["status"] == "done":
        return f"{what}: stage {stage} is done but wrote no such data"
    return f"{what}: not run (stage {stage} {st['status']})"


# ---- parts of one teacher -----------------------------------------------------------------------------------
def _stages_part(data: dict[str, Any]) -> Part:
    p = Part("stages", "Stages")
    rows = []
    for name, st in data["stages"].items():
        note = st.get("error", "") if st["status"] == "failed" else ""
        rows.append([name, st["status"], *[st.get(k) if st.get(k) is not None else "–" for k in ("seconds", "cpu_seconds")],
                     st["dir"], note])
    p.blocks.append(("table", ["stage", "status", "seconds", "CPU seconds", "folder", "note"], rows))
    if data["kind"] == "run":
        p.blocks.append(("note", "a training run folder, not a pipeline run: only the teacher's card and curves apply"))
    return p


# What the cut-ratio row compares (collect.latency_cut_ratio): the int8 model's int8 time with the teacher's fp32.
CUT_LABEL = {"int8": "onnxruntime int8 vs the teacher's fp32, batch 1"}


def _card(c: dict[str, Any]) -> dict[str, Any]:
    rows: list[tuple[str, Any]] = [("params", c.get("params") if c.get("params") is not None else "not measured"),
                                   ("MACs (padded input)", _macs(c.get("macs")))]
    if c.get("input_shapes"):
        rows.append(("input", ", ".join(f"{k} {'x'.join(str(d) for d in v)}" for k, v in c["input_shapes"].items())))
    lat = c.get("latency") or {}
    threads = (c.get("latency_setup") or {}).get("threads")
    per = "threads not recorded" if threads is None else threads_text(threads)
    for key, label in (("eager", "PyTorch eager"), ("ort_fp32", "onnxruntime fp32"), ("ort_int8", "onnxruntime int8")):
        sizes = sorted(int(k[len(key) + 2:-3]) for k in lat if k.startswith(f"{key}_b"))
        rows += [(f"{label}, batch {b}, {per}", _ms(lat[f"{key}_b{b}_ms"])) for b in sizes]
    if not lat:
        rows.append(("latency", "not measured"))
    if "latency_cut_ratio" in c:  # every model beside the teacher's
        ratio = c["latency_cut_ratio"]
        rows.append((f"latency cut / MAC cut vs teacher ({CUT_LABEL.get(c['name'], 'onnxruntime fp32, batch 1')})",
                     "n/a" if ratio is None else f"{ratio:.2f}"))
    metric = c.get("primary_metric") or "metric"
    rows.append((f"{metric} ({'higher' if c.get('higher_is_better') else 'lower'} is better)",
                 c["value"] if c.get("value") is not None else "not measured"))
    if c.get("fp32_value") is not None:
        rows.append((f"{metric}, fp32 before quantization", c["fp32_value"]))
    m = c.get("metrics") or {}
    for k, v in (m.get("final") or {}).items() if c["name"] != "int8" else ():
        if k != metric and isinstance(v, (int, float)):
            rows.append((k, v))
    const = (m.get("constant") or {}).get(metric) if c["name"] != "int8" else None
    if const is not None:
        rows.append((f"{metric}, constant predictor", const))
    if c.get("size_bytes"):
        rows.append(("ONNX size fp32 / int8", " / ".join(f"{v / 1e6:.2f} MB" for v in c["size_bytes"].values())))
    return {"name": c["name"], "title": c["name"], "rows": rows, "notes": list(c.get("notes", []))}


def _models_part(data: dict[str, Any]) -> Part:
    p = Part("models", "Models")
    if not data["models"]:
        return p.missing(_not_run(data, "train", "no model"))
    p.blocks.append(("cards", [_card(c) for c in data["models"]]))
    names = [c["name"] for c in data["models"]]
    absent = [m for m in ("teacher", "pruned", "student", "int8") if m not in names]
    if absent and data["kind"] == "pipeline":
        p.blocks.append(("note", f"no {', '.join(absent)} model: " + "; ".join(
            _not_run(data, {"teacher": "train", "pruned": "prune", "student": "distill", "int8": "quantize"}[m], m)
            for m in absent)))
    return p


def _pareto_part(data: dict[str, Any], figs: Path, slug: str) -> Part:
    p = Part("pareto", "Error vs MACs (Pareto)")
    path = F.pareto(data["models"], data["teacher"], figs / f"{slug}-pareto.png")
    if path is None:
        return p.missing(_not_run(data, "profile", "no model has both MACs and a metric"))
    p.blocks.append(("imgs", [(f"figures/{path.name}", f"{data['teacher']}: metric vs MACs, Pareto front dashed")]))
    return p


def _copy_fig(src: str | Path, figs: Path, name: str) -> str:
    dst = figs / name
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)
    return f"figures/{name}"


def _saliency_part(data: dict[str, Any], figs: Path, slug: str) -> Part:
    p = Part("saliency", "Saliency: teacher, pruned and student side by side")
    sal = data["saliency"]
    folders = {k: Path(v) for k, v in sal["folders"].items()}
    if not folders:
        return p.missing(_not_run(data, "analyze", "saliency"))
    summ = sal["summaries"].get("teacher") or next(iter(sal["summaries"].values())) or {}
    p.blocks.append(("p", f"method {summ.get('method', '?')}, {summ.get('n', '?')} samples: {summ.get('data', '')}"))
    agr = sal["agreement"]
    rows = []
    for name, pair in (agr.get("pairs") or {}).items():
        if pair["status"] != "ok":
            rows.append([name, "–", "not computed", "–", pair.get("reason", "")])
            continue
        for key, m in pair["maps"].items():
            rows.append([name, key.replace("__", " → "), m["mean"] if m["mean"] is not None else "nan",
                         m.get("pooled_mean") if m.get("pooled_mean") is not None else "nan",
                         f"{len(m['per_sample'])} samples"])
    if rows:
        p.blocks.append(("h", ("Agreement with the teacher (Spearman rank correlation of |attribution| maps, "
                               "per sample, then the mean)")))
        p.blocks.append(("table", ["model", "input → target", "ρ, pixels", "ρ, 14 x 14 blocks", "note"], rows))
    elif agr.get("status") != "ok":
        p.blocks.append(("missing", f"agreement: {agr.get('reason', 'not computed')}"))
    if not {"pruned", "student"} & set(folders):
        p.blocks.append(("missing", _not_run(data, "compare", "saliency of the pruned model and the student")))
    path = F.saliency_side_by_side(folders, agr, data["teacher"], figs / f"{slug}-saliency.png")
    if path is not None:
        p.blocks.append(("imgs", [(f"figures/{path.name}", "the same samples' maps, per model (ρ: agreement with the teacher)")]))
    overlays = []
    for name, folder in folders.items():
        for png in sorted(folder.glob("*.png")):
            overlays.append((_copy_fig(png, figs, f"{slug}-saliency-{name}-{png.name}"), f"{name}: {png.stem} overlays"))
    if overlays:
        p.blocks.append(("h", "Overlays on the images (eye boxes drawn)"))
        p.blocks.append(("imgs", overlays))
    return p


def _mean(values: list[Any]) -> float | None:
    vals = [v for v in values if isinstance(v, (int, float)) and not math.isnan(v)]
    return sum(vals) / len(vals) if vals else None


def _saliency_regions(summary: dict[str, Any] | None) -> dict[str, Any]:
    """Eye-mass ratio and pointing game of a saliency summary, averaged over its targets and inputs."""
    rows = [r for per in ((summary or {}).get("results") or {}).values() for r in per.values() if isinstance(r, dict)]
    return {"ratio": _mean([r.get("ratio") for r in rows]), "pointing": _mean([r.get("pointing") for r in rows]),
            "share": _mean([r.get("share") for r in rows]), "area_share": _mean([r.get("area_share") for r in rows])}


_T = FAITHFULNESS_TARGETS
_HEADLINE = (("eye_mass_ratio", f"eye-mass ratio (target >= {_T['eye_mass_ratio']:g})"),
             ("pointing", f"pointing game (target >= {_T['pointing']:g})"),
             ("randomization_spearman", "randomization: Spearman with the trained map after re-initialization "
                                        f"(target < {_T['randomization_spearman']:g})"),
             ("randomization_floor", "randomization: the same Spearman between two random models (its floor)"),
             ("randomization_spearman_signed", "randomization: Spearman of the signed maps"),
             ("deletion_area", "deletion area, most attributed pixels first"),
             ("deletion_area_random", "deletion area, random order"),
             ("deletion_worse_by", "deletion: worse than random by (relative)"))


def _faithfulness_part(data: dict[str, Any], figs: Path, slug: str) -> Part:
    p = Part("faithfulness", "Faithfulness")
    sal = data["saliency"]["summaries"]
    checks = {k: v for k, v in data["faithfulness"].items() if v}
    models = [m for m in ("teacher", "pruned", "student") if m in sal or m in checks]
    if not models:
        return p.missing(_not_run(data, "analyze", "faithfulness figures"))
    rows: list[list[Any]] = []
    regions = {m: _saliency_regions(sal.get(m)) for m in models}
    n = {m: (sal.get(m) or {}).get("n", "?") for m in models}
    rows.append(["saliency: eye-mass ratio (attribution share in the eye boxes / their area share)",
                 *[regions[m]["ratio"] if regions[m]["ratio"] is not None else "–" for m in models]])
    rows.append(["saliency: pointing game (maximum inside an eye box)",
                 *[regions[m]["pointing"] if regions[m]["pointing"] is not None else "–" for m in models]])
    rows.append(["saliency: samples", *[n[m] for m in models]])
    for key, label in _HEADLINE:
        vals = [(checks.get(m) or {}).get("headline", {}).get(key) for m in models]
        rows.append([f"checks: {label}", *[v if v is not None else ("not run" if m not in checks else "–")
                                         for v, m in zip(vals, models)]])
    ablation = {m: (checks.get(m) or {}).get("region_ablation") for m in models}
    for key, label in (("nothing_removed", "intact"), ("eyes_removed", "eye boxes removed"),
                       ("rest_removed", "all but the eye boxes removed")):
        if any(ablation.values()):
            metric = next(a for a in ablation.values() if a)["metric"]
            rows.append([f"region ablation: {metric}, {label}", *[(a or {}).get(key, "–") for a in ablation.values()]])
    crit = {m: (checks.get(m) or {}).get("criteria") or {} for m in models}
    for name in dict.fromkeys(k for c in crit.values() for k in c):
        rows.append([f"criterion: {name}", *[("pass" if crit[m].get(name) else "fail") if crit[m].get(name) is not None
                                              else "–" for m in models]])
    p.blocks.append(("table", ["figure", *models], rows))
    if checks:
        t = next(iter(checks.values()))
        deletion = t.get("headline", {}).get("deletion_metric", "?")
        p.blocks.append(("note", f"checks on {t.get('n', '?')} samples, method {t.get('method', '?')}; "
                                 + f"deletion metric {deletion}"))
    missing = [m for m in models if m not in checks]
    if missing:
        p.blocks.append(("note", f"no faithfulness checks for {', '.join(missing)}"
                                 + (" (analyze.compare_checks is off)" if "teacher" not in missing else "")))
    for name in checks:
        folder = Path(data["folder"]) / ("analyze" if name == "teacher" else f"compare/{name}") / "check"
        imgs = [(_copy_fig(folder / f, figs, f"{slug}-check-{name}-{f}"), f"{name}: {Path(f).stem.replace('_', ' ')}")
                for f in ("deletion.png", "randomization.png", "randomization_maps.png") if (folder / f).is_file()]
        if imgs:
            p.blocks.append(("imgs", imgs))
    return p


def _embeddings_part(data: dict[str, Any], figs: Path, slug: str) -> Part:
    p = Part("embeddings", "Embeddings: PCA and effective rank")
    got = data.get("embeddings") or {}
    summ = got.get("summary")
    if not summ:
        return p.missing(_not_run(data, "analyze", "embeddings"))
    p.blocks.append(("p", f"layer {summ.get('layer', '?')} ({summ.get('dim', '?')}-d), {summ.get('n', '?')} samples: "
                          + str(summ.get("data", ""))))
    rows = [["effective rank (exp of the entropy of the PCA spectrum)", summ.get("effective_rank")],
            ["participation ratio", summ.get("participation_ratio")],
            ["principal components for 90% of the variance", summ.get("pcs_for_90")],
            ["variance of PC1, PC2, PC3", ", ".join(f"{v:.3f}" for v in (summ.get("explained_variance") or [])[:3])]]
    probe = summ.get("probe") or {}
    rows += [[f"linear probe R² of {k} ({probe.get('split', '')})", v] for k, v in (probe.get("r2") or {}).items()]
    p.blocks.append(("table", ["figure", "teacher"], [[k, "–" if v is None else v] for k, v in rows]))
    imgs = [(_copy_fig(f, figs, f"{slug}-embeddings-{Path(f).name}"), f"PCA of the embeddings ({Path(f).stem})")
            for f in got.get("figures", [])]
    if imgs:
        p.blocks.append(("imgs", imgs))
    return p


def _fc_part(data: dict[str, Any], figs: Path, slug: str) -> Part:
    p = Part("fc-importance", "FC-layer importance")
    got = data.get("fc_importance") or {}
    summ = got.get("summary")
    na = ((data["stages"].get("analyze") or {}).get("summary") or {}).get("fc_importance") or {}
    if not summ and na.get("not_applicable"):
        p.status = "n/a"
        p.blocks.append(("note", f"not applicable: {na['not_applicable']}"))
        return p
    if not summ:
        return p.missing(_not_run(data, "analyze", "FC-layer importance"))
    crit = list(summ.get("criteria") or [])
    p.blocks.append(("p", f"{summ.get('n', '?')} samples; metric {summ.get('metric', '?')} "
                          + f"{summ.get('metric_base', '')}; pruning criterion {summ.get('default', '?')}. "
                          + "Share of units that hold 90% of the importance, per criterion (lower: more concentrated):"))
    rows = []
    for name, lay in (summ.get("layers") or {}).items():
        share = lay.get("share_for_90") or {}
        rows.append([name, f"{lay.get('in_features', '?')} → {lay.get('out_features', '?')}"
                     + (" (head)" if lay.get("is_head") else ""), *[share.get(c, "–") for c in crit]])
    p.blocks.append(("table", ["layer", "units", *crit], rows))
    imgs = [(_copy_fig(f, figs, f"{slug}-fc-{Path(f).name}"),
             "cumulative importance curves per criterion, and their rank agreement") for f in got.get("figures", [])]
    if imgs:
        p.blocks.append(("imgs", imgs))
    else:
        p.blocks.append(("missing", "FC importance curves: no figure in " + str(got.get("folder"))))
    return p


def _num(v: Any, spec: str = ".4g") -> str:
    """A figure from a summary, or "–" where it is missing or not a number."""
    return format(v, spec) if isinstance(v, (int, float)) and not isinstance(v, bool) else "–"


def _fc_share(data: dict[str, Any], layer: str) -> Any:
    """The analyze stage's share of ``layer``'s units that hold 90% of its FC importance (its default criterion)."""
    summ = (data.get("fc_importance") or {}).get("summary") or {}
    share = ((summ.get("layers") or {}).get(layer) or {}).get("share_for_90") or {}
    return share.get(summ.get("default"), "–")


def _prune_link(data: dict[str, Any], pr: dict[str, Any], p: Part) -> None:
    imp, scope = str(pr.get("importance")), pr.get("scope")
    said = {"magnitude": "none (weight magnitude)", "taylor": "none (first-order Taylor of the task loss)",
            "lamp": "none (LAMP-normalized magnitude)",
            "rank": "feature-map rank of each channel on the calibration samples (HRank)"}.get(imp, imp)
    if imp.startswith("fc:"):
        said = f"FC-layer importance of the analyze stage ranks the Linear units ({imp[3:]})"
    if scope == "erank":
        said += "; each layer's kept share from its effective rank on the calibration samples"
    macs, pm = pr.get("macs") or {}, pr.get("primary_metric") or "metric"
    bought = f"MACs x{_num(macs.get('ratio'), '.3f')}; {pm} {_num(pr.get('teacher_metric'))} -> {_num(pr.get('best'))}"
    p.blocks.append(("table", ["link", "what analysis said", "what compression did", "what it bought"],
                     [["pruning", said, f"{imp} importance, {scope} scope, widths multiples of {pr.get('round_to')}",
                       bought]]))
    widths = pr.get("widths") or {}
    if imp.startswith("fc:"):
        rows = [[name, _fc_share(data, name), w.get("out_features")] for name, w in widths.items() if "out_features" in w]
        if rows:
            p.blocks.append(("table", ["Linear layer", "analysis: share of units holding 90% of the importance",
                                       "units kept"], rows))
    erank = pr.get("erank") or {}
    if erank:
        rows = sorted(([g, e.get("width"), e.get("effective_rank"), e.get("keep"),
                        (e.get("keep") or 0) / e["width"] if e.get("width") else "–"] for g, e in erank.items()),
                      key=lambda r: r[4] if isinstance(r[4], float) else 1.0)
        p.blocks.append(("h", "Effective rank per layer group (analysis) beside the units pruning kept"))
        p.blocks.append(("table", ["group", "units", "effective rank", "kept", "kept share"], rows))


def _latency_link(table: dict[str, Any], p: Part) -> None:
    groups = table.get("groups") or {}
    rows = sorted(([g, e.get("units"), e.get("removed"), e.get("saved_ms"), e.get("saved_ms_per_unit")]
                   for g, e in groups.items() if e.get("removed")), key=lambda r: -(r[4] or 0.0))
    if rows:
        p.blocks.append(("h", f"Latency table: time saved by halving each layer group ({table.get('runtime')}, "
                              f"{table.get('threads')} thread, batch {table.get('batch')}; teacher "
                              f"{_num(table.get('teacher_ms'), '.3f')} ms)"))
        p.blocks.append(("table", ["group", "units", "units removed", "ms saved", "ms saved per unit"], rows))


def _distill_link(data: dict[str, Any], dl: dict[str, Any], p: Part) -> None:
    kd = (dl.get("kd") or {}).get("kd") or []
    rows = []
    auto = dl.get("auto_size")
    emb = (data.get("embeddings") or {}).get("summary") or {}
    if auto:
        said = (f"{auto.get('layer')}: participation ratio {auto.get('participation_ratio')}, effective rank "
                f"{auto.get('effective_rank')} of {auto.get('teacher_width')} units (training samples)")
        did = f"student hint width {auto.get('chosen')} ({', '.join(f'{k}={v}' for k, v in (auto.get('override') or {}).items())})"
    else:
        said = (f"{emb.get('layer')}: effective rank {emb.get('effective_rank')}, participation ratio "
                f"{emb.get('participation_ratio')} (analyze stage; not used: preset not auto)") if emb else "not used"
        did = f"student preset {(dl.get('student') or {}).get('preset')}"
    pm = dl.get("primary_metric") or "metric"
    st = dl.get("student") or {}
    vs = dl.get("kd_vs_control") or {}
    bought = f"{pm} {_num(st.get('best'))}" + (f" (control {_num(vs.get('control'))})" if vs else "")
    rows.append(["student size", said, did, bought])
    if "saliency" in kd:
        pair = ((data.get("saliency") or {}).get("agreement") or {}).get("pairs", {}).get("student") or {}
        rhos = [m.get("mean") for m in (pair.get("maps") or {}).values() if m.get("mean") is not None]
        rho = f"student-teacher saliency agreement ρ {sum(rhos) / len(rhos):.3f}" if rhos else "agreement not computed"
        rows.append(["distillation", "where the teacher looks: input-gradient saliency maps",
                     f"KD {'+'.join(kd)} (saliency weight {(dl.get('kd') or {}).get('saliency_weight')})",
                     f"{rho}; {bought}"])
    p.blocks.append(("table", ["link", "what analysis said", "what compression did", "what it bought"], rows))


def _links_part(data: dict[str, Any]) -> Part:
    p = Part("links", "Analysis -> compression: what analysis said, what compression did with it")
    links = data.get("links") or {}
    if not links.get("prune") and not links.get("distill"):
        return p.missing(_not_run(data, "prune", "pruning or distillation"))
    if links.get("prune"):
        _prune_link(data, links["prune"], p)
    if links.get("latency_table"):
        _latency_link(links["latency_table"], p)
    if links.get("distill"):
        _distill_link(data, links["distill"], p)
    return p


def _compress_part(data: dict[str, Any], figs: Path, slug: str) -> Part:
    p = Part("compress", "Compression to a budget: the searched front")
    got = data.get("compress")
    if not got:
        st = data["stages"].get("compress", {"status": "not run"})
        if st["status"] in ("failed", "unfinished"):
            return p.missing(_not_run(data, "compress", "the budget search"))
        p.status = "n/a"
        p.blocks.append(("note", "off: the compress stage runs when the recipe's [compress] sets latency_ms, speedup, macs or params"))
        return p
    s = got["summary"]
    budget, best, comp, lat = s.get("budget") or {}, s.get("best") or {}, s.get("compute") or {}, s.get("latency") or {}
    p.blocks.append(("p", f"budget {budget.get('kind')} <= {budget.get('value')} {budget.get('unit', '')}; latency on "
                          f"{lat.get('runtime', 'onnxruntime')}, {lat.get('threads', 1)} thread, batch {lat.get('batch')}; "
                          f"compute {_num(comp.get('used_s'), '.0f')} s of {_num(comp.get('budget_s'), '.0f')} s "
                          f"({comp.get('stated', '')}; stopped: {comp.get('stopped', '?')})"))
    if best:
        p.blocks.append(("p", f"best under the budget: {best.get('name')} ({s.get('error')} {_num(best.get('error'))}, "
                              f"{_num(best.get('error_vs_teacher'), '.3f')}x the teacher's; {_num(best.get('latency_ms'), '.3f')} ms)"))
    rows = [[c.get("name"), c.get("kind"), _macs(c.get("macs")), _num(c.get("latency_ms"), ".3f"), _num(c.get("error")),
             c.get("rung") if c.get("rung") is not None else "–", "yes" if c.get("under_budget") else "no",
             "yes" if c.get("on_front") else "", c.get("note") or ""] for c in got["candidates"]]
    p.blocks.append(("table", ["candidate", "kind", "MACs", "ms", s.get("error") or "error", "rung", "under budget",
                               "on the front", "note"], rows))
    if got.get("figure"):
        p.blocks.append(("imgs", [(_copy_fig(got["figure"], figs, f"{slug}-compress-front.png"),
                                   "error vs measured latency: the front, the budget line, the winner")]))
    return p


def _training_part(data: dict[str, Any], figs: Path, slug: str) -> Part:
    p = Part("training", "Training curves")
    if not data["curves"]:
        return p.missing(_not_run(data, "train", "training curves (no log.jsonl with epochs)"))
    path = F.training_curves(data["curves"], data["teacher"], figs / f"{slug}-training.png")
    p.blocks.append(("imgs", [(f"figures/{path.name}", "training loss and validation metric per epoch")]))
    rows = []
    for name, c in data["curves"].items():
        vals = c["val"].get(c.get("primary_metric") or "", [])
        rows.append([name, len(c["epoch"]), c["train_loss"][-1], vals[-1] if vals else "–", c.get("primary_metric") or ""])
    p.blocks.append(("table", ["model", "epochs", "last training loss", "last validation value", "metric"], rows))
    return p


def _export_part(data: dict[str, Any]) -> Part:
    p = Part("export", "ONNX export")
    exp = data.get("export")
    if not exp:
        return p.missing(_not_run(data, "export", "ONNX export"))
    rows = [[name, r.get("path", ""), r.get("max_abs_diff")] for name, r in exp.items() if isinstance(r, dict)]
    p.blocks.append(("table", ["model", "file", "max |onnxruntime - PyTorch|"], rows))
    return p


def teacher_parts(data: dict[str, Any], figs: Path, slug: str) -> list[Part]:
    return [
        _stages_part(data), _models_part(data), _pareto_part(data, figs, slug), _saliency_part(data, figs, slug),
        _faithfulness_part(data, figs, slug),
        _embeddings_part(data, figs, slug), _fc_part(data, figs, slug), _links_part(data),
        _compress_part(data, figs, slug),
        _training_part(data, figs, slug), _export_part(data),
    ]


# ---- report-wide: commands and versions ----------------------------------------------------------------------
def _provenance_part(runs: list[Path], teachers: list[dict[str, Any]], command: str | None) -> Part:
    from workbench.pipeline.provenance import git_commit, versions

    p = Part("provenance", "Commands and versions")
    inv_rows, seen_versions = [], []
    seen: set[Path] = set()
    for run in runs:
        # A teacher's folder (<out>/<teacher>) finds its pipeline.json one level up.
        pfile = next((f for f in (run / "pipeline.json", run.parent / "pipeline.json") if f.is_file()), None)
        if pfile is None or pfile.resolve() in seen:
            continue
        seen.add(pfile.resolve())
        run = pfile.parent
        pipe = read_json(pfile, default=None) or {}
        invocations = pipe.get("invocations", [])
        for inv in invocations:
            inv_rows.append([str(run), inv.get("command", ""), inv.get("started", ""), inv.get("status", ""),
                             inv.get("seconds", "–"), (inv.get("git") or {}).get("commit") or "unknown"])
        if invocations and invocations[-1].get("versions"):
            seen_versions.append((f"{run}, {invocations[-1].get('started', '')}", invocations[-1]["versions"]))
        last = next((inv for inv in reversed(invocations) if inv.get("recipe_text")), None)
        if last is not None:
            p.blocks.append(("h", f"Recipe {last.get('recipe_file')} (the last command on {run})"))
            p.blocks.append(("pre", last["recipe_text"]))
    if inv_rows:
        p.blocks.insert(0, ("table", ["run folder", "command", "started", "status", "seconds", "git commit"], inv_rows))
        p.blocks.insert(0, ("h", "Pipeline commands"))
    calls = [f"# {t['teacher']} · {name}\n" + "\n".join(st["calls"])
             for t in teachers for name, st in t["stages"].items() if st.get("calls")]
    if calls:
        p.blocks.append(("h", "Library calls of each stage (exact arguments)"))
        p.blocks.append(("pre", "\n\n".join(calls)))
    now = versions()
    git = git_commit()
    p.blocks.append(("h", "This report"))
    dirty = " (uncommitted changes)" if git.get("dirty") else ""
    this = command or "workbench.report.build_report(...)"
    p.blocks.append(("pre", f"{this}\n# git commit {git.get('commit') or git.get('note')}{dirty}"))
    cols = ["package", "report", *[label for label, _ in seen_versions[-3:]]]
    rows = [[k, now.get(k, "–"), *[v.get(k, "–") for _, v in seen_versions[-3:]]] for k in now]
    p.blocks.append(("h", "Versions (when the report was written, and at the last pipeline command on each run)"))
    p.blocks.append(("table", cols, rows))
    if not inv_rows:
        p.blocks.append(("note", "no pipeline.json in the run folders: the runs were not made by `workbench run`"))
    return p


# ---- entry point --------------------------------------------------------------------------------------------
def build_report(runs: Iterable[str | Path], out: str | Path, *, force: bool = False, command: str | None = None,
                 progress: bool = True) -> dict[str, Any]:
    """Write ``out/index.html``, ``out/report.md``, ``out/report.json`` (+ ``out/figures/``) from run folders.

    ``runs``: pipeline run folders, teacher folders (``<out>/<teacher>``) or training run folders. A
    non-empty ``out`` needs ``force``; the folder is written to a temporary place and renamed, so a
    failure leaves no half-written report. Returns the paths and each section's status.
    """
    from workbench.utils.io import atomic_path, ensure_new_dir

    runs = [Path(r) for r in runs]
    if not runs:
        raise WorkbenchError("give at least one run folder")
    entries = [e for r in runs for e in discover(r)]
    counts: dict[str, int] = {}
    for e in entries:
        counts[e["teacher"]] = counts.get(e["teacher"], 0) + 1
    out = ensure_new_dir(out, force=force)
    sections: dict[str, dict[str, str]] = {}
    with atomic_path(out) as tmp:
        figs = tmp / "figures"
        figs.mkdir(parents=True)
        collected, pages = [], []
        with progress_bar("report", len(entries), enabled=progress) as advance:
            for e in entries:
                label = e["teacher"] if counts[e["teacher"]] == 1 else f"{e['teacher']} ({e['path'].parent.name})"
                slug = _slug(label)
                data = collect_teacher(e)
                data["label"] = label
                parts = teacher_parts(data, figs, slug)
                sections[label] = {p.key: p.status for p in parts}
                data["sections"] = sections[label]
                collected.append(data)
                pages.append((label, slug, parts))
                advance(1, label)
        tail = [_provenance_part(runs, collected, command)]
        sources = ", ".join(str(r) for r in runs)
        intro = [("p", f"{len(entries)} teacher{'' if len(entries) == 1 else 's'} from {sources}; "
                       + f"written {time.strftime('%Y-%m-%d %H:%M:%S')}."),
                 ("note", "All figures are files in figures/ next to this page; it needs no server and no network. "
                          + f"Measured on: {_measured_text(collected)}; latency on {_machine_text(collected)}.")]
        (tmp / "index.html").write_text(html_page(TITLE, intro, pages, tail), encoding="utf-8")
        (tmp / "report.md").write_text(markdown_page(TITLE, intro, pages, tail), encoding="utf-8")
        doc = {"title": TITLE, "runs": [str(r) for r in runs], "command": command, "teachers": collected,
               "provenance": [b[2] if b[0] == "table" else b[1] for b in tail[0].blocks if b[0] in ("table", "pre")],
               "figures": sorted(p.name for p in figs.glob("*.png"))}
        (tmp / "report.json").write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    warnings = [f"{d['label']} {c['name']}: {c['warning']}" for d in collected for c in d["models"] if c.get("warning")]
    return {"index": str(out / "index.html"), "markdown": str(out / "report.md"), "json": str(out / "report.json"),
            "teachers": [d["label"] for d in collected], "sections": sections, "warnings": warnings}


def _measured_text(collected: list[dict[str, Any]]) -> str:
    """Which data and split each teacher's figures were measured on, from the summaries themselves."""
    parts = []
    for d in collected:
        on = d.get("measured_on") or {}
        labels = list(dict.fromkeys(on.values()))
        if not labels:
            parts.append(f"{d.get('label') or d.get('teacher')}: unknown (no summary records its data)")
        elif len(labels) == 1:
            parts.append(f"{d.get('label') or d.get('teacher')}: {labels[0]}")
        else:
            parts.append(f"{d.get('label') or d.get('teacher')}: " + "; ".join(f"{k} on {v}" for k, v in on.items()))
    return " | ".join(parts) or "no data recorded"


def _machine_text(collected: list[dict[str, Any]]) -> str:
    """The machine every teacher's latencies were measured on (per teacher where they differ)."""
    texts = {d.get("label") or d.get("teacher"): d.get("latency_machine") or "machine not recorded" for d in collected}
    distinct = list(dict.fromkeys(texts.values()))
    if len(distinct) == 1:
        return distinct[0]
    return " | ".join(f"{k}: {v}" for k, v in texts.items()) or "machine not recorded"
