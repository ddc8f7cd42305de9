"""Reproduce the analysis figures of issue 5 for the trained teachers (cpu presets).

For every run: the faithfulness check with IntegratedGradients (eye-mass, pointing game, cascading
randomization, deletion vs random order), embeddings of the default layer, and FC-layer importance.
For gazenet, the diagnosis of its eye-mass figure: the check with a blurred IG baseline, and the
eye-mass of every attribution method.

    .venv/bin/python benchmarks/analyze_teachers.py                 # all runs, ~1 h on one core
    .venv/bin/python benchmarks/analyze_teachers.py --runs runs/bench-teachers/gazenet --skip-extra

Outputs go to runs/analysis/<run>/... and a summary to runs/analysis/benchmark.json; a Markdown
table is printed at the end. One thread, so the machine keeps a core for others.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

RUNS = ["runs/bench-teachers/gazenet", "runs/bench-teachers/mc4", "runs/bench-teachers/itracker",
        "runs/bench-teachers/gazelstm", "runs/bench-teachers/gazepose", "runs/bench-teachers/evg"]
ROOT = Path("runs/analysis")


def _slug(run: str) -> str:
    p = Path(run)
    return f"{p.parent.name}-{p.name}"


def _fmt(v, spec=".2f") -> str:
    return "-" if v is None else format(v, spec)


def main() -> None:
    from workbench.analyze import check, embeddings, fc_importance, saliency
    from workbench.errors import WorkbenchError

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="*", default=RUNS)
    ap.add_argument("--n", type=int, default=32, help="samples for the check")
    ap.add_argument("--skip-extra", action="store_true", help="no embeddings, FC importance, gazenet diagnosis")
    args = ap.parse_args()
    torch.set_num_threads(1)
    results: dict = {}
    for run in args.runs:
        slug = _slug(run)
        out = ROOT / slug
        t0 = time.time()
        r = {"check_ig": check(run, method="ig", n=args.n, out=out / "check-ig", force=True)}
        if not args.skip_extra:
            r["embeddings"] = embeddings(run, out=out / "embeddings", force=True)
            try:
                r["fc_importance"] = fc_importance(run, out=out / "fc-importance", force=True)
            except WorkbenchError as exc:  # evg: no Linear layers
                r["fc_importance"] = {"error": str(exc)}
            if "gazenet" in slug:
                r["check_ig_blur"] = check(run, method="ig", baseline="blur", n=args.n, out=out / "check-ig-blur",
                                           force=True)
                for m in ("saliency", "smoothgrad"):
                    r[f"check_{m}"] = check(run, method=m, n=args.n, out=out / f"check-{m}", force=True)
                r["methods"] = {m: saliency(run, method=m, n=args.n, out=out / f"saliency-{m}", force=True)["results"]
                                for m in ("saliency", "smoothgrad", "gradshap", "gradcam", "occlusion")}
        r["seconds"] = round(time.time() - t0, 1)
        results[slug] = r
        print(f"{slug}: {r['seconds']} s", flush=True)
        ROOT.mkdir(parents=True, exist_ok=True)
        (ROOT / "benchmark.json").write_text(json.dumps(results, indent=1) + "\n")
    print("\n| run (method) | eye-mass share / area | ratio | pointing | randomization Spearman |maps| head only -> "
          "all [floor: two random models] | signed all [floor] | deletion area vs random (metric) | worse by |")
    print("|---|---|---|---|---|---|---|---|")
    labels = {"check_ig": "IG", "check_ig_blur": "IG, blur baseline", "check_saliency": "gradient",
              "check_smoothgrad": "SmoothGrad"}
    for slug, r in results.items():
        for key, label in labels.items():
            if key not in r:
                continue
            c = r[key]
            h = c["headline"]
            first = sum(rows[0]["spearman_abs"] for rows in c["randomization"].values()) / len(c["randomization"])
            print(f"| {slug} ({label}) | {_fmt(h['eye_mass_share'], '.3f')} / {_fmt(h['eye_area_share'], '.3f')} "
                  f"| {_fmt(h['eye_mass_ratio'])} | {_fmt(h['pointing'])} | {first:.2f} -> "
                  f"{_fmt(h['randomization_spearman'])} [{_fmt(h['randomization_floor'])}] "
                  f"| {_fmt(h['randomization_spearman_signed'])} [{_fmt(h['randomization_floor_signed'])}] "
                  f"| {_fmt(h['deletion_area'], '.4g')} vs {_fmt(h['deletion_area_random'], '.4g')} "
                  f"({h['deletion_metric']}) | {_fmt(h['deletion_worse_by'])} |")
    for slug, r in results.items():
        if "embeddings" in r:
            e = r["embeddings"]
            print(f"{slug}: embeddings {e['layer']} {e['dim']}-d PR {e['participation_ratio']:.1f} "
                  f"eff.rank {e['effective_rank']:.1f} probe R2 {e['probe']['r2']}")
        f = r.get("fc_importance", {})
        if "layers" in f:
            share = {k: v["share_for_90"]["taylor"] for k, v in f["layers"].items()}
            print(f"{slug}: FC share of units for 90% (taylor) {share}")
        for m, res in r.get("methods", {}).items():
            print(f"{slug}: {m}: " + ", ".join(f"{t} ratio {_fmt(d['face'].get('ratio'))} pointing "
                                              f"{_fmt(d['face'].get('pointing'))}" for t, d in res.items()))


if __name__ == "__main__":
    main()
