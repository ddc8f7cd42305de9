"""Compression to a budget: search the candidates the workbench can make, train them by successive halving
within a stated compute budget, and return the most accurate one under the budget plus the Pareto front.

    run folder -> candidates: the teacher itself; pruned teachers at a ladder of MACs ratios (round_to 8,
                 plus the ratio that meets a MACs/params budget exactly); every registered student of the
                 task at each preset; the int8 version of each
    -> build each architecture and MEASURE its latency (onnxruntime, one thread, batch B; the int8 version
       quantized from the untrained weights: its kernels, not its weights, set its time) before training;
       an architecture whose fp32 and int8 versions are both over the budget is not trained
    -> successive halving: rung k trains every surviving candidate r0 * eta^k more epochs (pruned: fine-tuned
       from the pruned weights; students: distilled from the teacher), continuing from its previous rung's
       weights; the best 1/eta by validation error go on, until one is left or the compute budget would be
       exceeded (each training is scheduled only if its estimated time still fits)
    -> int8 of the last rung's candidates (post-training quantization of their trained weights)
    -> the Pareto front of error vs measured latency, and the lowest-error candidate under the budget.

Error is the task's primary metric where lower is better, and 1 - metric where higher is better (AP).
"""

from __future__ import annotations

import copy
import csv
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from workbench.errors import WorkbenchError
from workbench.utils.jsonio import read_json, write_json
from workbench.utils.stats import pareto_front

__all__ = ["KINDS", "RATIOS", "Candidate", "SearchResult", "compress", "pareto_front", "epochs_in_rung", "promote", "rung_amount",
           "successive_halving"]

KINDS = ("prune", "student", "int8")
RATIOS = (0.7, 0.5, 0.35, 0.25)  # pruned teachers at these MACs ratios
BUDGET_X = 3.0  # default compute budget: this many times the teacher's recorded training time
FINAL_MARGIN = 0.9  # the survivor's last rung plans to fill this share of the time left (epochs vary)
FINAL_DECAY = (0.6, 0.85)  # the last rung's learning rate falls by the recipe's gamma at these shares of it
_MEASURES = {"latency_ms": "ms", "macs": "MACs", "params": "parameters"}


# ---- the pieces that decide (pure functions, unit-tested on hand-made numbers) ----------------------------

def promote(errors: dict[str, float], eta: int) -> list[str]:
    """The best ceil(n / eta) names by error (ties broken by name), best first: who goes on to the next rung."""
    keep = max(1, math.ceil(len(errors) / eta))
    return sorted(errors, key=lambda k: (errors[k], k))[:keep]


def epochs_in_rung(rung: int, eta: int, base: float = 1) -> float:
    """Epochs a candidate trains in rung ``rung`` (on top of the earlier rungs'): base * eta^rung. Below 1 it is
    one pass over that fraction of the training samples (see :func:`rung_amount`)."""
    return base * eta ** rung


def rung_amount(epochs: float, n_train: int, batch_size: int) -> tuple[int, int]:
    """(epochs, training samples) of a rung of ``epochs`` epochs: whole epochs over all ``n_train`` samples
    (rounded, at least 1), or, below one epoch, one epoch over that share of them (at least a batch)."""
    if epochs >= 1:
        return max(1, round(epochs)), n_train
    return 1, min(n_train, max(batch_size, round(epochs * n_train)))


@dataclass
class HalvingResult:
    rungs: list[dict[str, Any]]  # per rung: epochs, trained {name: error}, promoted
    reached: dict[str, int]  # name -> the last rung it trained in
    errors: dict[str, float]  # name -> its error after its last rung
    seconds: dict[str, float]  # name -> its training seconds, all rungs
    stopped: str  # "one left" | "budget" | "no candidate" | "budget spent on the survivor"
    used_s: float


def successive_halving(names: Sequence[str], train: Callable[[str, int, float], float], *, eta: int = 2,
                       base_epochs: float = 1, budget_s: float = math.inf,
                       clock: Callable[[], float] = time.monotonic, used_s: float = 0.0,
                       estimate: Callable[[str, int], float | None] | None = None,
                       finish: Callable[[str, int, int], float] | None = None,
                       margin: float = FINAL_MARGIN) -> HalvingResult:
    """Train ``names`` by successive halving: ``train(name, rung, epochs) -> error`` (epochs on top of its
    earlier rungs). After each rung the best 1/eta go on; it ends when one candidate has trained in a rung
    alone, or with the first rung in which a training's estimated seconds would take the time used past
    ``budget_s`` (that training is skipped; the cheaper ones of the rung that still fit are trained).

    The estimate of a training is its own seconds per epoch so far (``estimate(name, epochs)`` when it has
    none; by default the mean seconds per epoch of the trainings so far, 0 before the first). ``used_s``: time
    already spent before the search (counted against the budget).

    ``finish(name, rung, epochs) -> error``: when one candidate is left with budget to spare, it trains
    ``epochs`` more in one last rung (its own seconds per epoch into ``margin`` of the time left, whole
    epochs, at least one), so the compute budget buys accuracy instead of ending unused (meant for a
    learning-rate schedule that decays over those epochs; the rung's entry has ``"final": True``).
    """
    t0 = clock() - used_s
    alive, rungs = list(names), []
    reached: dict[str, int] = {}
    errors: dict[str, float] = {}
    seconds: dict[str, float] = {}
    epochs_done: dict[str, int] = {}
    stopped = "no candidate" if not alive else "one left"
    rung = 0
    while alive:
        epochs = epochs_in_rung(rung, eta, base_epochs)
        trained: dict[str, float] = {}
        for name in alive:
            if name in epochs_done:
                guess = seconds[name] / epochs_done[name] * epochs
            else:
                guess = estimate(name, epochs) if estimate else None
                if guess is None:
                    done = sum(epochs_done.values())
                    guess = sum(seconds.values()) / done * epochs if done else 0.0
            if clock() - t0 + guess > budget_s:  # a cheaper candidate may still fit; this rung is the last
                stopped = "budget"
                continue
            start = clock()
            trained[name] = float(train(name, rung, epochs))
            seconds[name] = seconds.get(name, 0.0) + clock() - start
            epochs_done[name] = epochs_done.get(name, 0) + epochs
            reached[name], errors[name] = rung, trained[name]
        last = stopped == "budget" or len(alive) == 1
        promoted = [] if last else promote(trained, eta)
        if trained:
            rungs.append({"rung": rung, "epochs": epochs, "trained": trained, "promoted": promoted})
        if last:
            break
        alive, rung = promoted, rung + 1
    if finish is not None and stopped == "one left" and len(alive) == 1 and alive[0] in epochs_done:
        name = alive[0]
        per_epoch = seconds[name] / epochs_done[name]
        left = budget_s - (clock() - t0)
        more = math.floor(margin * left / per_epoch) if per_epoch > 0 and math.isfinite(left) else 0
        if more >= 1:
            start = clock()
            err = float(finish(name, rung + 1, more))
            seconds[name] += clock() - start
            epochs_done[name] += more
            reached[name], errors[name] = rung + 1, err
            rungs.append({"rung": rung + 1, "epochs": more, "trained": {name: err}, "promoted": [], "final": True})
            stopped = "budget spent on the survivor"
    return HalvingResult(rungs, reached, errors, seconds, stopped, clock() - t0)


# ---- candidates ---------------------------------------------------------------------------------------------

@dataclass
class Candidate:
    """One model of the search: an fp32 architecture (teacher, pruned, student) or the int8 version of one."""

    name: str
    kind: str  # teacher | prune | student | int8
    macs: int | None = None
    params: int | None = None
    latency_ms: float | None = None
    error: float | None = None  # lower is better (see the module docstring)
    metric: float | None = None  # the task's primary metric as the task reports it
    rung: int | None = None  # the last rung it trained in (None: not trained by the search)
    trained_s: float = 0.0
    on_front: bool = False
    under_budget: bool = False
    run: str | None = None  # its run folder (int8: the quantize folder), relative to --out
    parent: str | None = None  # int8: the fp32 candidate it was quantized from
    spec: dict[str, Any] = field(default_factory=dict)  # how it is made: ratio / student + preset
    note: str | None = None

    def row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SearchResult:
    summary: dict[str, Any]
    candidates: list[Candidate]


def _error(value: float, higher_is_better: bool) -> float:
    return 1.0 - value if higher_is_better else value


def _budget_seconds(run: Path, budget_x: float | None, budget_minutes: float | None) -> tuple[float, str]:
    if budget_x is not None and budget_minutes is not None:
        raise WorkbenchError("give at most one of --budget-x and --budget-minutes")
    if budget_minutes is not None:
        if not budget_minutes > 0 or not math.isfinite(budget_minutes):
            raise WorkbenchError(f"--budget-minutes must be a number > 0, got {budget_minutes}")
        return budget_minutes * 60.0, f"--budget-minutes {budget_minutes:g}"
    x = BUDGET_X if budget_x is None else budget_x
    if not x > 0 or not math.isfinite(x):
        raise WorkbenchError(f"--budget-x must be a number > 0, got {x}")
    seconds = (read_json(run / "metrics.json", default={}) or {}).get("train_seconds")
    if not isinstance(seconds, (int, float)) or seconds <= 0:
        raise WorkbenchError(f"{run}: records no training time (metrics.json train_seconds), so --budget-x has "
                             "nothing to multiply; give --budget-minutes")
    return x * seconds, f"{x:g} x the teacher's training time ({seconds:.1f} s)"


def _check(target: dict[str, float], kinds: Sequence[str], eta: int, rung_epochs: float, batch: int,
           max_candidates: int | None, ratios: Sequence[float]) -> tuple[str, float]:
    given = [(k, v) for k, v in target.items() if v is not None]
    if len(given) != 1:
        raise WorkbenchError(f"give exactly one of --latency-ms, --speedup, --macs or --params, got "
                             f"{[k for k, _ in given] or 'none'}")
    what, value = given[0]
    if not value > 0 or not math.isfinite(value):
        raise WorkbenchError(f"--{what.replace('_', '-')} must be a number > 0, got {value}")
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise WorkbenchError(f"--candidates expects a non-empty subset of {','.join(KINDS)}, got {list(kinds)}")
    if list(kinds) == ["int8"]:
        raise WorkbenchError("--candidates int8 needs prune or student too (int8 versions are made of them)")
    if isinstance(eta, bool) or not isinstance(eta, int) or eta < 2:
        raise WorkbenchError(f"--eta must be an integer >= 2, got {eta}")
    if not 0 < rung_epochs < math.inf:
        raise WorkbenchError(f"--rung-epochs must be a number > 0, got {rung_epochs}")
    if max_candidates is not None and max_candidates < 1:
        raise WorkbenchError(f"--max-candidates must be at least 1, got {max_candidates}")
    if not 1 <= batch <= 4096:
        raise WorkbenchError(f"--batch must be an integer in [1, 4096], got {batch}")
    if any(not 0 < r < 1 for r in ratios):
        raise WorkbenchError(f"--ratios are MACs ratios in (0, 1), got {list(ratios)}")
    return what, float(value)


def _round_robin(groups: list[list[Candidate]], n: int | None) -> list[Candidate]:
    out: list[Candidate] = []
    for i in range(max((len(g) for g in groups), default=0)):
        out += [g[i] for g in groups if i < len(g)]
    return out if n is None else out[:n]


def _plan(task_name: str, kinds: Sequence[str], ratios: Sequence[float], exact: float | None,
          max_candidates: int | None) -> list[Candidate]:
    """The fp32 candidates to build: pruned teachers (the exact-budget ratio first) and students x presets."""
    import students

    pruned, studs = [], []
    if "prune" in kinds:
        ladder = ([exact] if exact is not None and 0 < exact < 1 else []) + [r for r in ratios if r != exact]
        pruned = [Candidate(f"prune-{r:.3g}", "prune", spec={"ratio": r}) for r in ladder]
    if "student" in kinds:
        for name in students.list_students(task_name):
            for preset in students.student_spec(name).presets:
                studs.append(Candidate(f"{name}-{preset}", "student", spec={"student": name, "preset": preset}))
    return _round_robin([pruned, studs], max_candidates)


def _build_student(cand: Candidate, teacher_cfg: dict[str, Any]) -> torch.nn.Module:
    """The student at its preset, at the teacher's input sizes (as distill builds it), fresh weights."""
    import students
    from workbench.compress.distill import _SHAPE_KEYS

    base = students.get_student(cand.spec["student"], preset=cand.spec["preset"]).config
    overrides = {k: teacher_cfg[k] for k in _SHAPE_KEYS if k in base and k in teacher_cfg}
    return students.get_student(cand.spec["student"], preset=cand.spec["preset"], **overrides).eval()


def _quantize_untrained(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], names: Sequence[str],
                        folder: Path, label: str) -> Path | None:
    """An int8 ONNX of ``model`` as it is (calibrated on ``inputs``), to time the int8 kernels before training;
    None when onnxruntime cannot quantize it."""
    from workbench.compress.latency_cost import _export
    from workbench.compress.quantize import quantize_onnx

    fp32 = _export(copy.deepcopy(model), tuple(t[:1] for t in inputs), folder / f"{label}.onnx")
    int8 = folder / f"{label}.int8.onnx"
    try:
        quantize_onnx(fp32, int8, [{k: v.numpy() for k, v in zip(names, inputs)}], fmt="qdq", stem_fp32=True)
    except WorkbenchError:
        return None
    return int8


def _value(c: Candidate, what: str) -> float | None:
    return {"latency_ms": c.latency_ms, "macs": c.macs, "params": c.params}[what]


def compress(run: str | Path, out: str | Path, *, latency_ms: float | None = None, speedup: float | None = None,
             macs: float | None = None, params: float | None = None, budget_x: float | None = None, budget_minutes: float | None = None,
             eta: int = 2, rung_epochs: float = 1, batch: int = 1, repeats: int = 50,
             kinds: Sequence[str] = KINDS, ratios: Sequence[float] = RATIOS, max_candidates: int | None = None,
             final: bool = True, force: bool = False, device: str = "auto", progress: bool = True,
             log: Callable[[str], None] = lambda line: None) -> SearchResult:
    """Search the candidates of run folder ``run`` for the most accurate model whose latency (ms per batch of
    ``batch`` on onnxruntime, one thread), MACs or parameters are at most ``latency_ms`` / ``macs`` /
    ``params`` (exactly one; ``speedup`` F instead sets the latency budget to the teacher's time / F, both
    timed here in the same loop, so it means the same on any machine), training them by successive halving (``eta``, ``rung_epochs`` epochs in rung 0;
    0.25: one pass over a quarter of the training samples, SynthGaze only)
    within ``budget_minutes`` or ``budget_x`` times the teacher's recorded training time (default 3x).

    Writes ``out`` in one piece: ``candidates/<name>/`` (run folders per rung; int8: quantize folders),
    ``front.json``, ``front.csv``, ``front.png``, ``summary.json`` and ``best/`` (a copy of the winner's
    folder). ``kinds``: which of prune, student, int8 to make (the teacher is always a candidate);
    ``max_candidates``: at most this many fp32 candidates are built (pruned and students alternating).
    ``final``: when one candidate is left with compute budget to spare, it trains on with the time left, its
    learning rate decaying (see :func:`successive_halving`'s ``finish``).
    Bad input, or a budget no candidate can meet, raises WorkbenchError and writes nothing.
    """
    from workbench.compress.distill import sample_inputs, validation_data
    from workbench.compress.latency_cost import RUNTIME, _export, time_models
    from workbench.profile.machine import machine
    from workbench.profile.quick import count_macs
    from workbench.train.engine import evaluate, load_run_model
    from workbench.train.models import count_params
    from workbench.utils.io import atomic_path, ensure_new_dir

    run, kinds = Path(run), list(dict.fromkeys(kinds))
    what, limit = _check({"latency_ms": latency_ms, "speedup": speedup, "macs": macs, "params": params}, kinds, eta,
                         rung_epochs, batch, max_candidates, ratios)
    budget_s, budget_text = _budget_seconds(run, budget_x, budget_minutes)
    out = ensure_new_dir(out, force=force)
    t0 = time.monotonic()
    teacher, config, task = load_run_model(run)
    if rung_epochs < 1 and config["data"]["source"] != "synth":
        raise WorkbenchError(f"--rung-epochs {rung_epochs:g} trains on a share of the samples, which SynthGaze "
                             f"renders; the data set {config['data']['source']} is used whole: give 1 or more")
    from workbench.train.recipes import Recipe

    teacher_recipe = Recipe.from_dict(config["recipe"])
    synth = config["data"]["source"] == "synth"
    pm, hib = task.primary_metric, task.higher_is_better
    inputs = tuple(sample_inputs(task, config, n=8))
    x1 = tuple(t[:1] for t in inputs)
    names = list(getattr(teacher, "input_names", None) or task.input_names)
    val = validation_data(task, config)
    t_metric = float(evaluate(teacher, task, val)[pm])
    t_macs, t_params = count_macs(teacher, x1), count_params(teacher)
    exact = limit / t_macs if what == "macs" else limit / t_params if what == "params" else None
    plan = _plan(task.name, kinds, ratios, exact, max_candidates)
    tcand = Candidate("teacher", "teacher", macs=t_macs, params=t_params, error=_error(t_metric, hib), metric=t_metric,
                      run=str(run.resolve()))
    teacher_metrics = read_json(run / "metrics.json", default={}) or {}
    sec_per_epoch = (teacher_metrics.get("train_seconds") or 0) / max(1, teacher_metrics.get("epochs_run") or 1)

    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        cdir = tmp / "candidates"
        cdir.mkdir()
        models: dict[str, torch.nn.Module] = {"teacher": teacher}
        for cand in plan:  # build every architecture (pruned: pruned and BatchNorm-recalibrated, not fine-tuned)
            if cand.kind == "prune":
                from workbench.compress.prune import prune

                folder = cdir / cand.name / "pruned"
                by = {"target_params": cand.spec["ratio"]} if what == "params" else {"target_macs": cand.spec["ratio"]}
                try:
                    prune(run, folder, **by, steps=1, finetune_epochs=0, calib_samples=64, progress=False, device=device)
                except WorkbenchError as exc:
                    cand.note = f"not built: {exc}"
                    shutil.rmtree(cdir / cand.name, ignore_errors=True)
                    log(f"{cand.name}: {cand.note}")
                    continue
                models[cand.name] = load_run_model(folder)[0]
            else:
                models[cand.name] = _build_student(cand, dict(config["model"]))
            cand.macs, cand.params = count_macs(models[cand.name], x1), count_params(models[cand.name])
        built = [c for c in plan if c.name in models]
        fp32 = [tcand, *built]
        int8: dict[str, Candidate] = {}
        with tempfile.TemporaryDirectory(prefix="wb-compress-", ignore_cleanup_errors=True) as scratch_dir:
            scratch = Path(scratch_dir)
            paths: dict[str, Path] = {c.name: _export(copy.deepcopy(models[c.name]), x1, scratch / f"{c.name}.onnx")
                                      for c in fp32}
            if "int8" in kinds:
                for c in fp32:
                    q = _quantize_untrained(models[c.name], inputs, names, scratch, c.name)
                    if q is not None:
                        int8[c.name] = Candidate(f"{c.name}-int8", "int8", macs=c.macs, params=c.params, parent=c.name)
                        paths[f"{c.name}-int8"] = q
            log(f"timing {len(paths)} models (onnxruntime, 1 thread, batch {batch}, {repeats} rounds)")
            ms = time_models(paths, inputs, input_names=names, batch=batch, repeats=repeats)
        for c in [*fp32, *int8.values()]:
            c.latency_ms = ms[c.name]
        if what == "speedup":  # the budget is the teacher's time as just measured, over the factor
            what, limit, factor = "latency_ms", ms["teacher"] / limit, limit
            log(f"budget: {limit:.3f} ms = the teacher's {ms['teacher']:.3f} ms / {factor:g}")
        else:
            factor = None

        def fits(c: Candidate | None) -> bool:
            return c is not None and _value(c, what) is not None and _value(c, what) <= limit

        everything = [*fp32, *int8.values()]
        if not any(fits(c) for c in everything):
            low = min(everything, key=lambda c: _value(c, what))
            raise WorkbenchError(
                f"no candidate fits --{what.replace('_', '-')} {limit:g}: the smallest measured is "
                + (f"{low.latency_ms:.3f} ms" if what == "latency_ms" else f"{_value(low, what):,} {_MEASURES[what]}")
                + f" ({low.name}, onnxruntime, 1 thread, batch {batch}; {len(everything)} candidates)")
        trainable = [c for c in built if fits(c) or fits(int8.get(c.name))]
        for c in built:
            if c not in trainable:
                c.note = "over the budget as measured: not trained"
        by_name = {c.name: c for c in built}

        def train(name: str, rung: int, amount: float, final: bool = False) -> float:
            c = by_name[name]
            dest = cdir / name / f"rung{rung}"
            epochs, n_train = rung_amount(amount, teacher_recipe.n_train, teacher_recipe.batch_size)
            # Rungs train at a constant rate (the next rung goes on from there); the survivor's last one decays.
            decay = sorted({m for m in (round(f * epochs) for f in FINAL_DECAY) if 1 <= m < epochs}) if final else None
            log(f"rung {rung}: training {name} for {epochs} epoch(s)" + (f" of {n_train} samples" if synth else "")
                + (" (the survivor, with the time left)" if final else ""))
            n_train = n_train if synth else None  # a data set on disk is used whole
            prev = (cdir / name / f"rung{rung - 1}") if rung else None
            if c.kind == "prune":
                result = _finetune(prev or cdir / name / "pruned", dest, epochs, n_train, device=device,
                                   progress=progress, milestones=decay)
                c.run = dest.relative_to(tmp).as_posix()
                value = result["best"]
            else:
                from workbench.compress.distill import distill

                state = load_run_model(prev / "student")[0].state_dict() if prev else None
                result = distill(run, dest, student=c.spec["student"], preset=c.spec["preset"], epochs=epochs,
                                 recipe_overrides={"milestones": decay or [], "n_train": n_train}, progress=progress, device=device,
                                 init_state=state)
                c.run = (dest / "student").relative_to(tmp).as_posix()
                value = result["student"]["best"]
            c.metric = float(value)
            c.error = _error(c.metric, hib)
            return c.error

        def estimate(name: str, epochs: int) -> float | None:
            c = by_name[name]
            return sec_per_epoch * (c.macs or t_macs) / t_macs * epochs if sec_per_epoch else None

        halving = successive_halving([c.name for c in trainable], train, eta=eta, base_epochs=rung_epochs,
                                     budget_s=budget_s, used_s=time.monotonic() - t0, estimate=estimate,
                                     finish=(lambda name, rung, epochs: train(name, rung, epochs, final=True))
                                     if final else None)
        for name, rung in halving.reached.items():
            by_name[name].rung, by_name[name].trained_s = rung, round(halving.seconds[name], 2)
        last = max(halving.reached.values(), default=None)
        if int8:  # int8 of the trained weights of the teacher and of the last rung's candidates
            done = [tcand] + [c for c in built if c.rung is not None and c.rung == last]
            _finish_int8(run, tmp, done, int8, teacher, ms["teacher"], inputs, names, batch=batch, repeats=repeats,
                         pm=pm, hib=hib, log=log)
        everything = [*fp32, *int8.values(), *(c for c in plan if c.name not in models)]  # + those not built
        for c in everything:
            c.under_budget = fits(c)
        front = pareto_front({c.name: (c.latency_ms, c.error) for c in everything})
        for c in everything:
            c.on_front = c.name in front
        ranked = sorted((c for c in everything if c.under_budget and c.error is not None),
                        key=lambda c: (c.error, c.latency_ms, c.name))
        if not ranked:
            raise WorkbenchError(f"the compute budget ({budget_s:.0f} s) ran out before any candidate under the "
                                 f"budget was trained; give more --budget-minutes or --budget-x")
        best = ranked[0]
        source = run if best.kind == "teacher" else tmp / best.run
        shutil.copytree(source, tmp / "best", ignore=shutil.ignore_patterns("*.lock", ".lock"))
        rows = [c.row() for c in sorted(everything, key=lambda c: (c.latency_ms is None, c.latency_ms or 0.0, c.name))]
        lat = {"runtime": RUNTIME, "threads": 1, "batch": batch, "repeats": repeats, "machine": machine()}
        summary = {
            "run": str(out), "source": str(run), "task": task.name, "primary_metric": pm, "higher_is_better": hib,
            "error": f"1 - {pm}" if hib else pm,
            "budget": {"kind": what, "value": limit, "unit": _MEASURES[what],
                       **({"speedup": factor, "teacher_ms": ms["teacher"]} if factor is not None else {})},
            "best": {**best.row(), "folder": str(out / "best"),
                     "error_vs_teacher": best.error / tcand.error if tcand.error else None,
                     "value_vs_budget": _value(best, what) / limit},
            "teacher": tcand.row(),
            "latency": lat,
            "compute": {"budget_s": round(budget_s, 1), "stated": budget_text, "used_s": round(halving.used_s, 1),
                        "stopped": halving.stopped, "total_s": None,
                        "note": "used_s: building, timing and training the candidates (what the budget limits); "
                                "total_s adds the int8 quantization of the last rung's candidates and the files"},
            "halving": {"eta": eta, "rung_epochs": rung_epochs, "rungs": halving.rungs},
            "front": [r["name"] for r in rows if r["on_front"]],
            "candidates": len(rows), "kinds": kinds,
        }
        summary["compute"]["total_s"] = round(time.monotonic() - t0, 1)
        write_json(tmp / "front.json", {"budget": summary["budget"], "latency": lat, "error": summary["error"],
                                        "paths": "a candidate's run is relative to this folder (the teacher's: "
                                                 "its own run folder)", "candidates": rows})
        _write_csv(tmp / "front.csv", rows)
        _plot(tmp / "front.png", rows, summary)
        write_json(tmp / "summary.json", summary)
    for c in everything:  # paths as they are after the rename
        if c.run and c.kind != "teacher":
            c.run = str(out / c.run)
    return SearchResult(summary, everything)


def _finetune(source: Path, out: Path, epochs: int, n_train: int | None, *, device: str, progress: bool,
              milestones: list[int] | None = None) -> dict[str, Any]:
    """Train the pruned model of run folder ``source`` ``epochs`` more epochs into run folder ``out``, as prune
    fine-tunes: the run's recipe at 0.1x its learning rate, the last epoch at gamma x that (or decaying by
    gamma at each of ``milestones``)."""
    from workbench.compress.prune_data import finetune as prune_finetune
    from workbench.train.engine import load_run_model
    from workbench.train.recipes import Recipe

    model, config, _ = load_run_model(source)
    recipe = Recipe.from_dict(config["recipe"])
    first = read_json(source / "config.json").get("compress_lr") or recipe.lr * 0.1
    decay = milestones if milestones is not None else [epochs - 1] if epochs >= 2 else []
    recipe = recipe.update(epochs=epochs, lr=first, milestones=decay, n_train=n_train)
    run_cfg = {**config, "recipe": recipe.to_dict(), "compress_lr": first}
    return prune_finetune(run_cfg, model, out, device=device, progress=progress)


def _finish_int8(run: Path, tmp: Path, done: list[Candidate], int8: dict[str, Candidate], teacher: torch.nn.Module,
                 teacher_ms: float, inputs: tuple[torch.Tensor, ...], names: Sequence[str], *, batch: int,
                 repeats: int, pm: str, hib: bool, log: Callable[[str], None]) -> None:
    """Quantize the trained weights of ``done`` (post-training, calibrated on their own data), evaluate the int8
    models, and time them again beside the teacher (scaled to the teacher's time in the first loop, so the two
    loops compare). The int8 versions of the others keep their untrained timing and no error."""
    from workbench.compress.latency_cost import time_models
    from workbench.compress.quantize import quantize

    files: dict[str, Path] = {}
    for c in done:
        q = int8.get(c.name)
        if q is None:
            continue
        folder = tmp / "candidates" / q.name
        source = run if c.kind == "teacher" else tmp / c.run
        log(f"int8: quantizing {c.name}")
        try:
            summary = quantize(source, folder, fmt="qdq", n_calib=64, repeats=20, progress=False)
        except WorkbenchError as exc:
            q.note = f"quantization failed: {exc}"
            continue
        q.metric = float(summary["int8"][pm])
        q.error, q.run = _error(q.metric, hib), folder.relative_to(tmp).as_posix()
        q.rung, q.trained_s = c.rung, c.trained_s
        files[q.name] = folder / "model.int8.onnx"
    if files:
        ms = time_models({"teacher": teacher, **files}, inputs, input_names=names, batch=batch, repeats=repeats)
        for name in files:
            int8[name.removesuffix("-int8")].latency_ms = teacher_ms * ms[name] / ms["teacher"]
    for q in int8.values():
        if q.error is None and q.note is None:
            q.note = "int8 of the untrained architecture: timed only"


_COLUMNS = ("name", "kind", "macs", "params", "latency_ms", "error", "metric", "rung", "trained_s", "on_front",
            "under_budget", "run", "parent", "note")


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in _COLUMNS})


def _plot(path: Path, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """Error vs measured latency: every candidate by kind, the front joined, the budget line, the winner ringed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    marks = {"teacher": "*", "prune": "o", "student": "s", "int8": "^"}
    for kind, mark in marks.items():
        pts = [(r["latency_ms"], r["error"]) for r in rows if r["kind"] == kind and r["error"] is not None]
        if pts:
            ax.scatter(*zip(*pts), marker=mark, label=kind, alpha=0.7, s=60 if kind == "teacher" else 30)
    front = sorted((r["latency_ms"], r["error"]) for r in rows if r["on_front"])
    if front:
        ax.plot(*zip(*front), color="black", lw=1, ls="--", label="Pareto front", zorder=0)
    if summary["budget"]["kind"] == "latency_ms":
        ax.axvline(summary["budget"]["value"], color="red", lw=1, label=f"budget {summary['budget']['value']:g} ms")
    b = summary["best"]
    ax.scatter([b["latency_ms"]], [b["error"]], s=220, facecolors="none", edgecolors="red", label=f"best: {b['name']}")
    lat = summary["latency"]
    ax.set_xlabel(f"latency, ms ({lat['runtime']}, {lat['threads']} thread, batch {lat['batch']})")
    ax.set_ylabel(f"validation error ({summary['error']})")
    ax.set_title(f"compress {Path(summary['source']).name}: budget {summary['budget']['value']:g} "
                 f"{summary['budget']['unit']}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
