"""Fuzzing the `workbench` command line with Hypothesis (issue 19, "No tracebacks, no debris").

Shared by tests/cli/test_fuzz_cli.py (a bounded, derandomized run in the normal suite) and
benchmarks/fuzz_cli.py (N examples per command, a table of outcomes, the failing argv's).

The property, for every command: generated option values (wrong types, zero and negative sizes, empty
strings, unknown keys, missing paths, files of the wrong kind, truncated JSON/TOML/checkpoints) run through
the real Typer app end with exit code 0 or 2, never a traceback; nothing new appears outside ``--out``
(each case runs with a fresh working directory and a fresh temp dir, and the shared fixtures are watched
too); nothing is left at ``--out`` when the exit code is 2; a file or non-empty folder already at ``--out``
is not replaced without ``--force`` (DESIGN.md: nothing is overwritten silently); and ``--json`` with exit
code 0 prints JSON.

Cases are kept cheap: every case carries at least one value drawn from the invalid pool (so most end at
argument checking), budgets are tiny where a value is valid (1 epoch, a few samples), and a per-case
alarm stops anything that still runs long (reported as a timeout, not as a failure).

argv's are written with placeholders (``@run`` = the tiny trained gazenet run, ``@png`` = a PNG, ...;
see tests/cli/fuzz_fixtures.py; ``@long`` and ``@nul`` are a too-long name and one with a NUL byte), so a
reported case reads, and reproduces, the same on every machine:
``python benchmarks/fuzz_cli.py --case "eval @run_cfglist"`` prints its outcome with the traceback.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
import shutil
import signal
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]

# Failures found and not yet fixed, keyed by (command, reason) as Session.run names them (the reason names
# the exception and the innermost function of this project, not a line number, so it survives edits), each
# with one argv that shows it (placeholders: see build_fixtures; rerun one with
# `python benchmarks/fuzz_cli.py --case "ARGV"`). The bounded test passes while every failure it sees is
# listed here; the benchmark counts them apart. Fixing one means moving its entry to
# tests/cli/fuzz_found.py (FIXED), whose every argv test_fuzz_cli.py reruns.
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


from cli.fuzz_fixtures import build_fixtures  # noqa: E402  (the files the cases run on)


# ---------------------------------------------------------------------------------------------------------
# Value pools. Tokens starting with '@' are fixtures (or TOKENS: values a shell line cannot show plainly);
# names in CWD_ITEMS are made in the case's own folder.

TOKENS = {"@long": "n" * 300, "@nul": "bad\x00name"}  # a name too long for the file system; an embedded NUL

CWD_ITEMS = {"exists.png": "file", "full": "dir", "emptyd": "emptydir", "file.txt": "file"}

RUNS_BAD = ("@missing", "@png", "@emptydir", "@txt", "@npz", "@run_cfgtrunc", "@run_cfglist", "@run_cfgempty",
            "@run_nocfg", "@run_cfgnope", "@run_cfgbadmodel", "@run_ckpttrunc", "@run_ckptempty", "@run_nockpt",
            "@run_ckptdict", "@run_ckptshape")
MODEL_BAD = RUNS_BAD + ("nope", "", ":", "nosuchmod_xyz:make", "os:getcwd", "json:loads", "gazenet:x",
                        "@nul", "-")
MODEL_OK = ("@run",)
NAME_OK = ("gazenet", "tinyface")
INT_BAD = ("0", "-1", "abc", "1.5", "", "99999999999999999999", "-99999999999999999999")
FLOAT_BAD = ("nan", "inf", "-inf", "-1", "abc", "", "1e309", "0")
DEVICE_OK = ("cpu",)
DEVICE_BAD = ("cuda", "cuda:7", "tpu", "", "cuda:x", "mps", "-1", "auto:1")
DATA_OK = ("val", "synth", "@npz")
DATA_BAD = ("@missing", "@png", "@emptydir", "@txt", "@npz_trunc", "", "@run", "@video_trunc", "nope")
FMT_BAD = ("foo", "", "mc4", "evg", "lam", "npz")
CKPT_BAD = ("foo", "", "BEST", "../x", "@missing")
KV_BAD = ("foo=1", "noequals", "=1", "", "a=b=c", "width_mult=abc", "dropout=[1,2]", "dropout=-1",
          "preset=paper", "teacher=nope", "width_mult=0", "width_mult=-1", "input_size=0", "input_size=abc",
          "feature_channels=0", "fc_hidden=-3", "dropout=2")
SET_BAD = ("foo=1", "noequals", "", "epochs=0", "lr=abc", "optimizer=foo", "batch_size=-1", "n_train=0",
           "milestones=abc", "milestones=[99]", "train_subjects=0", "val_subjects=0", "size=abc", "size=-5",
           "size=[1]", "momentum=abc", "patience=-1", "val_interval=0", "clip_grad=-1", "task_options=1",
           "task_options={\"x\":1}", "gamma=abc", "weight_decay=-1", "nesterov=maybe", "delta=nan")
TASK_BAD = ("foo", "", "face_angles", "lam", "pog_heatmap")
WEIGHTS_BAD = ("@missing", "@png", "@emptydir", "@pt_trunc", "@pt_tensor", "@pt_pickle", "@pt_wrongkeys", "@txt",
               "@empty", "@onnx")
PRESET_BAD = ("foo", "", "tiny", "small", "PAPER")
INPUT_BAD = ("face=abc", "face=", "=3,112,112", "face=0,0,0", "face=-1,2,3", "face", "", "face=3x112",
             "nope=3,8,8", "face=3,1,1", "face=99999999999999999999,1,1")
OUT_BAD = ("", "exists.png", "full", "file.txt/sub", "emptyd", "@long", "@nul")
FLAG = ()  # an option that takes no value


@dataclass(frozen=True)
class Opt:
    flag: str | None  # None: a positional argument
    ok: tuple[str, ...] = ()
    bad: tuple[str, ...] = ()
    required: bool = False

    @property
    def is_flag(self) -> bool:
        return self.ok == FLAG and not self.bad


def _o(flag, ok=(), bad=(), required=False) -> Opt:
    return Opt(flag, tuple(ok), tuple(bad), required)


def _flags(*names: str) -> list[Opt]:
    return [Opt(n) for n in names]


@dataclass(frozen=True)
class CommandSpec:
    name: str
    words: tuple[str, ...]
    opts: tuple[Opt, ...]
    base: tuple[str, ...] = ()  # cheap budgets put before the fuzzed options (later values win)
    out_flag: str | None = "--out"
    fail_fast: tuple[Opt, ...] = ()  # when set, the forced bad value comes from here (commands that are long when valid)
    default_out: tuple[str, ...] = ()  # where the command writes without --out (fnmatch patterns, relative to cwd)


def _spec(name, opts, base=(), out_flag="--out", fail_fast=(), default_out=()) -> CommandSpec:
    if name.startswith("analyze "):
        default_out = ("runs", "runs/analysis", "runs/analysis/*")
    return CommandSpec(name, tuple(name.split()), tuple(opts), tuple(base), out_flag, tuple(fail_fast),
                       tuple(default_out))


MODEL = _o(None, MODEL_OK, MODEL_BAD, required=True)
MODEL_OR_NAME = _o(None, MODEL_OK + NAME_OK, MODEL_BAD, required=True)
COMMON_SPEC = [_o("--task", (), TASK_BAD), _o("--weights", ("@weights",), WEIGHTS_BAD),
               _o("--preset", (), PRESET_BAD), _o("--model", ("dropout=0.1",), KV_BAD)]
TINY_TRAIN = ("--epochs", "1", "--n-train", "32", "--n-val", "16", "--batch-size", "16",
              "--set", "train_subjects=2", "--set", "val_subjects=2")


def _out(*ok: str, required: bool = False, flag: str = "--out") -> Opt:
    return _o(flag, ok, OUT_BAD, required=required)


COMMANDS: dict[str, CommandSpec] = {s.name: s for s in [
    _spec("teachers", [_o("--bogus", FLAG, ()), *_flags("--json"), _o("--json", (), ("x",))], out_flag=None),
    _spec("students", [_o("--task", ("face_angles",), TASK_BAD), *_flags("--json")], out_flag=None),
    _spec("train", [_o(None, ("gazenet", "tinyface"), MODEL_BAD, required=True), *COMMON_SPEC,
                    _o("--data", ("synth", "@npz"), DATA_BAD), _o("--format", (), FMT_BAD),
                    _o("--epochs", ("1",), INT_BAD), _o("--batch-size", ("8",), INT_BAD), _o("--lr", ("0.01",), FLOAT_BAD),
                    _o("--n-train", ("16",), INT_BAD), _o("--n-val", ("8",), INT_BAD), _o("--set", ("patience=1",), SET_BAD),
                    _o("--seed", ("1",), ("abc", "", "-1", "99999999999999999999")), _out("out", required=True),
                    _o("--device", DEVICE_OK, DEVICE_BAD), *_flags("--resume", "--force", "--json", "--prior-head",
                                                                   "--no-gaussian-drop", "--tensorboard")],
          base=TINY_TRAIN + ("--device", "cpu", "--json"), default_out=("runs", "runs/*")),
    _spec("eval", [MODEL_OR_NAME, *COMMON_SPEC, _o("--data", DATA_OK, DATA_BAD), _o("--format", (), FMT_BAD),
                   _o("--checkpoint", ("best", "last"), CKPT_BAD), _o("--device", DEVICE_OK, DEVICE_BAD),
                   *_flags("--json")], base=("--device", "cpu"), out_flag=None),
    _spec("predict", [MODEL_OR_NAME, *COMMON_SPEC, _o("--data", DATA_OK, DATA_BAD), _o("--format", (), FMT_BAD),
                      _out("out.csv", "out.txt", required=True), _o("--checkpoint", ("best", "last"), CKPT_BAD),
                      _o("--n", ("4",), INT_BAD), _o("--device", DEVICE_OK, DEVICE_BAD),
                      _o("--images", ("@png",), ("@missing", "@emptydir", "@txt", "@video_trunc", "@pt_trunc")),
                      _o("--detector", (), ("nope", "os:getcwd", "nosuchmod_xyz:X", "")), *_flags("--json")],
          base=("--n", "4", "--device", "cpu", "--data", "synth")),
    _spec("profile", [_o(None, MODEL_OK + NAME_OK, MODEL_BAD, required=True), _o("--preset", ("cpu",), PRESET_BAD),
                      _o("--input", ("face=3,32,32",), INPUT_BAD), _o("--model", ("dropout=0.1",), KV_BAD),
                      _o("--image", ("480x270",), ("abc", "0x0", "-1x5", "", "480", "480x", "x270", "1e9x1e9")),
                      _o("--resize", ("240",), INT_BAD), _o("--stride", ("32",), INT_BAD), _o("--depth", ("1",), INT_BAD),
                      _o("--top", ("3",), INT_BAD), _o("--batch", ("1",), INT_BAD), _o("--task", (), TASK_BAD),
                      _o("--weights", ("@weights",), WEIGHTS_BAD), _o("--device", DEVICE_OK, DEVICE_BAD),
                      *_flags("--json")], base=("--json",), out_flag=None),
    _spec("export", [MODEL, *COMMON_SPEC, _out("out.onnx", required=True, flag="--onnx"),
                     _o("--opset", ("17",), INT_BAD + ("5", "99")), _o("--samples", ("2",), INT_BAD),
                     _o("--device", DEVICE_OK, DEVICE_BAD), *_flags("--force", "--json")],
          base=("--samples", "2"), out_flag="--onnx"),
    _spec("bench", [_o(None, MODEL_OK + ("@onnx",), MODEL_BAD + ("@onnx_trunc", "x.onnx"), required=True),
                    _o("--preset", ("cpu",), PRESET_BAD), _o("--input", ("face=3,32,32",), INPUT_BAD),
                    _o("--model", (), KV_BAD), _o("--batch", ("2",), INT_BAD), _o("--threads", ("1",), INT_BAD),
                    _o("--warmup", ("0",), INT_BAD), _o("--repeats", ("1",), INT_BAD),
                    _o("--backend", ("eager", "onnxruntime"), ("foo", "", "EAGER")), _o("--task", (), TASK_BAD),
                    _o("--weights", ("@weights",), WEIGHTS_BAD), _o("--device", DEVICE_OK, DEVICE_BAD),
                    *_flags("--json")], base=("--repeats", "1", "--warmup", "0", "--batch", "2", "--threads", "1", "--json"),
          out_flag=None),
    _spec("prune", [MODEL, *COMMON_SPEC, _out("out", required=True),
                    _o("--target-macs", ("0.9",), FLOAT_BAD + ("1.5", "2")), _o("--target-params", ("0.9",), FLOAT_BAD),
                    _o("--layers", (), ("foo=0.5", "lstm=0.5", "=0.5", "x", "", "features=abc", "features=2")),
                    _o("--importance", ("taylor", "lamp"), ("foo", "", "fc:@missing", "fc:@txt", "fc:@json_trunc", "fc:")),
                    _o("--target-latency", ("0.95",), FLOAT_BAD + ("1.5", "0.001")),
                    _o("--latency-batch", ("2",), INT_BAD), _o("--round-to", ("1", "16"), INT_BAD + ("257",)),
                    _o("--scope", ("global",), ("foo", "")), _o("--steps", ("1",), INT_BAD),
                    _o("--finetune-epochs", ("1",), INT_BAD), _o("--final-epochs", ("1",), INT_BAD),
                    _o("--finetune-samples", ("16",), INT_BAD), _o("--lr", ("0.001",), FLOAT_BAD),
                    _o("--calib-samples", ("16",), INT_BAD), _o("--device", DEVICE_OK, DEVICE_BAD),
                    *_flags("--force", "--json")],
          base=("--steps", "1", "--finetune-epochs", "1", "--finetune-samples", "16", "--calib-samples", "16",
                "--device", "cpu", "--json")),
    _spec("distill", [MODEL, _o("--student", ("tinyface",), ("nope", "", "auto", "tinylstm", "os:getcwd"), required=True),
                      _o("--preset", ("tiny",), PRESET_BAD[:3] + ("paper",)), _o("--kd", ("response", "feature"),
                                                                                 ("foo", "", ",", "response,foo")),
                      _o("--alpha", ("0.5",), FLOAT_BAD + ("1.5",)), _o("--temperature", ("2",), FLOAT_BAD),
                      _o("--hint", (), ("x:y", "nope", "", ":", "features:nope")), _o("--hint-weight", ("1",), FLOAT_BAD),
                      _o("--response-loss", ("mse",), ("foo", "")), _o("--epochs", ("1",), INT_BAD),
                      _o("--lr", ("0.01",), FLOAT_BAD), _o("--n-train", ("16",), INT_BAD), _o("--set", (), SET_BAD),
                      _o("--model", (), KV_BAD), _o("--seed", ("1",), ("abc", "")), _out("out", required=True),
                      _o("--task", (), TASK_BAD), _o("--weights", ("@weights",), WEIGHTS_BAD),
                      _o("--device", DEVICE_OK, DEVICE_BAD), *_flags("--force", "--json", "--control")],
          base=("--epochs", "1", "--n-train", "32", "--set", "n_val=16", "--device", "cpu", "--json")),
    _spec("quantize", [MODEL, *COMMON_SPEC, _out("out", required=True), _o("--n-calib", ("8",), INT_BAD),
                       _o("--n-eval", ("8",), INT_BAD), _o("--format", ("qdq", "qoperator"), ("foo", "")),
                       _o("--threads", ("1",), INT_BAD), _o("--repeats", ("2",), INT_BAD),
                       _o("--device", DEVICE_OK, DEVICE_BAD), *_flags("--force", "--json")],
          base=("--n-calib", "8", "--n-eval", "8", "--repeats", "2", "--json")),
    _spec("visualize", [MODEL, _o(None, (), MODEL_BAD), _out("out", "out.mp4", required=True),
                        _o("--data", DATA_OK, DATA_BAD), _o("--format", (), FMT_BAD), _o("--n", ("1",), INT_BAD),
                        _o("--checkpoint", ("last",), CKPT_BAD), _o("--fps", ("2",), FLOAT_BAD),
                        _o("--task", (), TASK_BAD), _o("--weights", ("@weights",), WEIGHTS_BAD),
                        _o("--device", DEVICE_OK, DEVICE_BAD),
                        _o("--images", ("@png",), ("@missing", "@emptydir", "@txt", "@video_trunc")),
                        _o("--detector", (), ("nope", "os:getcwd", "")), *_flags("--force", "--json")],
          base=("--n", "2", "--json")),
    _spec("live", [MODEL, _o("--source", ("@video",), ("@missing", "@png", "@txt", "@video_trunc", "", "-1", "7", "abc")),
                   _out("out", "out.mp4"), _o("--ref", ("5",), INT_BAD + ("10",)), _o("--cycle", ("2",), INT_BAD),
                   _o("--frames", ("2",), INT_BAD), _o("--fps", ("5",), FLOAT_BAD), _o("--checkpoint", (), CKPT_BAD),
                   _o("--task", (), TASK_BAD), _o("--weights", ("@weights",), WEIGHTS_BAD),
                   _o("--detector", (), ("nope", "os:getcwd", "")), *_flags("--force", "--json")],
          base=("--frames", "2", "--json", "--source", "@video", "--out", "out")),
    # `run` with valid options is the whole pipeline (minutes): its forced bad value is one that must stop it early.
    _spec("run", [_o(None, (), ("@missing", "@png", "@emptydir", "@toml_trunc", "@toml_badkeys", "@toml_badtypes",
                                "@toml_badteacher", "@json_trunc", "@txt")),
                  _o("--teachers", ("gazenet",), ("nope", "", ",", "gazenet,nope")), _out("out"),
                  _o("--model", (), MODEL_BAD), _o("--task", (), TASK_BAD), _o("--data", ("synth",), DATA_BAD),
                  _o("--format", (), FMT_BAD), _o("--device", ("cpu",), DEVICE_BAD), *_flags("--json")],
          # Not @toml_badteacher: a drawn --teachers gazenet overrides its teachers, and the run is then valid
          # (the 2000-example pass timed out on three such whole pipelines).
          fail_fast=(_o(None, (), ("@missing", "@png", "@emptydir", "@toml_trunc", "@toml_badkeys", "@toml_badtypes",
                                   "@json_trunc")),
                     _o("--teachers", (), ("nope", "gazenet,nope")), _o("--model", (), ("nope", "@missing", "@png")),
                     _o("--device", (), ("tpu", "cuda:x")), _o("--data", (), ("@missing", "@png"))),
          default_out=("runs", "runs/*")),
    _spec("report", [_o(None, ("@run",), RUNS_BAD + ("@run_metricstrunc", "@run_logtrunc", ""), required=True),
                     _o(None, ("@run",), RUNS_BAD + ("@run_metricstrunc",)), _out("out", required=True),
                     *_flags("--force", "--json")]),
    _spec("data synth", [_out("out", required=True),
                         _o("--view", ("face", "track"), ("foo", "", "FACE")),
                         _o("--format", ("npz", "mc4", "lam", "evg", "mpiifacegaze"), ("foo", "", "NPZ")),
                         _o("--n", ("3",), INT_BAD), _o("--subjects", ("2",), INT_BAD), _o("--seed", ("3",), ("abc", "-1")),
                         _o("--size", ("32", "64x48"), ("abc", "0", "-1", "0x0", "x", "", "1.5", "99999999999x2")),
                         *_flags("--force", "--json")], base=("--n", "3", "--subjects", "2")),
    _spec("data inspect", [_o(None, ("@npz",), ("@missing", "@png", "@emptydir", "@txt", "@npz_trunc", "@run", "@json_trunc",
                                                "", "@nul"), required=True),
                           _o("--format", ("npz",), FMT_BAD), _o("--split", ("train",), ("foo", "")),
                           _out("grid.png"), _o("--n", ("2",), INT_BAD), *_flags("--json")], base=("--n", "2"),
          default_out=("*_grid.png",)),
    _spec("analyze saliency", [MODEL, _o("--method", ("saliency", "gradcam", "occlusion"), ("foo", "", "IG")),
                               _o("--n", ("2",), INT_BAD), _o("--target", ("0", "yaw"), ("foo", "", "-1", "7", "1.5")),
                               _o("--batch-size", ("2",), INT_BAD), _o("--steps", ("2",), INT_BAD),
                               _o("--layer", (), ("nope", "", "fc")), _o("--baseline", ("blur",), ("foo", "")),
                               _o("--task", (), TASK_BAD), _o("--input", (), INPUT_BAD), _o("--data", DATA_OK, DATA_BAD),
                               _o("--format", (), FMT_BAD), _out("out"), _o("--images", ("@png",), ("@missing", "@txt", "@emptydir")),
                               _o("--detector", (), ("nope", "")), *_flags("--force", "--json")],
          base=("--n", "2", "--steps", "2", "--batch-size", "2", "--json")),
    _spec("analyze check", [MODEL, _o("--method", ("saliency",), ("foo", "")), _o("--n", ("2",), INT_BAD),
                            _o("--target", ("0",), ("foo", "", "-1")), _o("--steps", ("2",), INT_BAD),
                            _o("--cascade-steps", ("1",), INT_BAD), _o("--randomization-n", ("2",), INT_BAD),
                            _o("--fill", ("mean",), ("foo", "")), _o("--random-orders", ("1",), INT_BAD),
                            _o("--fractions", ("3",), INT_BAD), _o("--layer", (), ("nope", "")),
                            _o("--baseline", ("blur",), ("foo", "")), _o("--data", DATA_OK, DATA_BAD),
                            _o("--format", (), FMT_BAD), _out("out"), *_flags("--force", "--json")],
          base=("--n", "2", "--steps", "2", "--batch-size", "2", "--cascade-steps", "1", "--randomization-n", "2",
                "--random-orders", "1", "--fractions", "3", "--json")),
    _spec("analyze embeddings", [MODEL_OR_NAME, _o("--layer", (), ("nope", "", "fc:input", ":input", "fc:foo")),
                                 _o("--n", ("16",), INT_BAD), _o("--batch-size", ("8",), INT_BAD),
                                 _o("--data", DATA_OK, DATA_BAD), _o("--format", (), FMT_BAD), _out("out"),
                                 _o("--task", (), TASK_BAD), _o("--weights", ("@weights",), WEIGHTS_BAD),
                                 *_flags("--force", "--json", "--list-layers")],
          base=("--n", "16", "--batch-size", "8", "--json")),
    _spec("analyze fc-importance", [MODEL_OR_NAME, _o("--layer", (), ("nope", "", "features")), _o("--n", ("8",), INT_BAD),
                                    _o("--max-ablate", ("2",), INT_BAD), _o("--conductance-samples", ("2",), INT_BAD),
                                    _o("--conductance-steps", ("2",), INT_BAD), _o("--batch-size", ("4",), INT_BAD),
                                    _o("--data", DATA_OK, DATA_BAD), _o("--format", (), FMT_BAD), _out("out"),
                                    _o("--task", (), TASK_BAD), _o("--weights", ("@weights",), WEIGHTS_BAD),
                                    *_flags("--force", "--json")],
          base=("--n", "8", "--max-ablate", "2", "--conductance-samples", "2", "--conductance-steps", "2", "--json")),
]}


@dataclass(frozen=True)
class Case:
    command: str
    argv: tuple[str, ...]  # with placeholders
    out: str | None  # the --out value (relative to the case folder), None when not given

    def show(self) -> str:
        return "workbench " + " ".join(_quote(a) for a in self.argv)


def _quote(a: str) -> str:
    import shlex

    return shlex.quote(a)


@st.composite
def cases(draw, spec: CommandSpec) -> Case:
    """One case of ``spec``: its required arguments, a few optional ones, at least one value from a bad pool."""
    optional = [o for o in spec.opts if not o.required and o.flag is not None]
    extra = draw(st.lists(st.sampled_from(optional), max_size=4, unique_by=id)) if optional else []
    # Optional positionals come along only sometimes (the second run of `visualize` / `report`).
    chosen = [o for o in spec.opts if o.required or (o.flag is None and draw(st.booleans()))] + extra
    values: list[tuple[Opt, str | None]] = []
    forced_i = None
    if spec.fail_fast:
        forced = draw(st.sampled_from(spec.fail_fast))
        # the forced value must not be overridden: drop drawn options of the same flag (or the positional)
        chosen = [o for o in chosen if o.flag != forced.flag]
        forced_value = (forced, draw(st.sampled_from(forced.bad)))
    else:
        badable = [i for i, o in enumerate(chosen) if o.bad]
        if badable:
            forced_i = draw(st.sampled_from(badable))
        else:  # nothing with a bad pool was drawn: an unknown option is always wrong
            values.append((Opt("--no-such-option"), None))
    for i, o in enumerate(chosen):
        if o.is_flag:
            values.append((o, None))
            continue
        bad = i == forced_i or (bool(o.bad) and draw(st.integers(0, 4)) == 0)
        pool = o.bad if (bad or not o.ok) else o.ok
        if pool:
            values.append((o, draw(st.sampled_from(pool))))
    if spec.fail_fast:
        values.append(forced_value)
    argv = list(spec.words) + [v for o, v in values if o.flag is None] + list(spec.base)
    out = spec.base[spec.base.index("--out") + 1] if "--out" in spec.base else None
    for o, v in values:
        if o.flag is None:
            continue
        if v is None:
            argv.append(o.flag)
        elif v.startswith("-"):  # would read as an option: a user writes --flag=-1
            argv.append(f"{o.flag}={v}")
        else:
            argv += [o.flag, v]
        if o.flag == spec.out_flag and v is not None:
            out = v
    return Case(spec.name, tuple(argv), out)


# ---------------------------------------------------------------------------------------------------------
# The property checker.


class CaseTimeout(BaseException):
    """Raised by the per-case alarm; a BaseException so CliRunner does not swallow it as the command's error."""


@dataclass
class Outcome:
    case: Case
    exit_code: int | None
    seconds: float
    kind: str  # ok0, ok2, traceback, exit, json (exit 0 with --json, stdout not JSON), debris, timeout
    reasons: list[str] = field(default_factory=list)  # short, stable: the KNOWN_FAILURES key is (command, reasons[0])
    last_line: str = ""
    details: str = ""  # traceback tail, or the debris paths

    @property
    def failed(self) -> bool:
        return self.kind in ("traceback", "exit", "json", "debris")

    @property
    def known(self) -> bool:
        return self.failed and (self.case.command, self.reasons[0]) in KNOWN_FAILURES

    def to_dict(self) -> dict:
        return {"command": self.case.command, "argv": list(self.case.argv), "shell": self.case.show(),
                "exit_code": self.exit_code, "seconds": round(self.seconds, 3), "kind": self.kind,
                "reasons": self.reasons, "known": self.known, "last_line": self.last_line, "details": self.details}


def _snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        out[rel + "/"] = ("dir",)
        for f in filenames:
            p = os.path.join(dirpath, f)
            try:
                st_ = os.lstat(p)
                out[os.path.normpath(os.path.join(rel, f))] = (st_.st_size, st_.st_mtime_ns)
            except OSError:
                pass
    return out


def _changed(before: dict, after: dict) -> list[str]:
    return sorted(k for k in after.keys() | before.keys() if before.get(k) != after.get(k))


def _innermost(exc: BaseException) -> tuple[str, str]:
    """(stable reason, detail) of an exception: its type and the innermost frame in this project's code."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if f.filename.startswith(str(REPO)) and "/tests/" not in f.filename] or frames
    f = ours[-1] if ours else None
    where = f"{os.path.relpath(f.filename, REPO)}:{f.name}" if f else "?"
    tail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:])
    detail = (f"{os.path.relpath(f.filename, REPO)}:{f.lineno} in {f.name}: " if f else "") + \
        f"{type(exc).__name__}: {str(exc)[:300]}\n{tail}"
    return f"{type(exc).__name__} in {where}", detail


class Session:
    """Fixtures, and the runner of one case at a time (each in a fresh working directory and temp dir)."""

    def __init__(self, root: Path, fixtures: dict[str, Path] | None = None):
        self.root = Path(root)
        self.fx = {**(fixtures if fixtures is not None else build_fixtures(self.root / "fixtures")), **TOKENS}
        self.fixtures_root = self.root / "fixtures"
        self._fixture_state = _snapshot(self.fixtures_root)
        self._count = 0
        self._sub = re.compile("|".join(re.escape(k) for k in sorted(self.fx, key=len, reverse=True)))

    def resolve(self, token: str) -> str:
        return self._sub.sub(lambda m: str(self.fx[m.group(0)]), token)

    def unresolve(self, text: str, cwd: Path) -> str:
        for key, path in sorted(self.fx.items(), key=lambda kv: -len(str(kv[1]))):
            text = text.replace(str(path), key)
        return text.replace(str(cwd) + "/", "").replace(str(cwd), ".")

    def run(self, case: Case, timeout: float = 20.0) -> Outcome:
        from typer.testing import CliRunner

        from workbench.cli import app

        self._count += 1
        cwd = self.root / "cases" / str(self._count)
        tmp = self.root / "tmp" / str(self._count)
        cwd.mkdir(parents=True)
        tmp.mkdir(parents=True)
        for name, kind in CWD_ITEMS.items():
            if any(a == name or a.startswith(name + "/") for a in case.argv):
                if kind == "file":
                    (cwd / name).write_bytes(self.fx["@png"].read_bytes())
                else:
                    (cwd / name).mkdir()
                    if kind == "dir":
                        (cwd / name / "keep.txt").write_text("keep\n")
        before = _snapshot(cwd)
        argv = [self.resolve(a) for a in case.argv]
        old_cwd, old_tmp, old_env = os.getcwd(), tempfile.tempdir, os.environ.get("TMPDIR")
        res, timed_out = None, False

        def alarm(signum, frame):
            raise CaseTimeout()

        old_handler = signal.signal(signal.SIGALRM, alarm)
        t0 = time.perf_counter()
        try:
            os.chdir(cwd)
            tempfile.tempdir, os.environ["TMPDIR"] = str(tmp), str(tmp)
            signal.setitimer(signal.ITIMER_REAL, timeout)
            res = CliRunner().invoke(app, argv)
        except CaseTimeout:
            timed_out = True
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old_handler)
            seconds = time.perf_counter() - t0
            os.chdir(old_cwd)
            tempfile.tempdir = old_tmp
            if old_env is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = old_env
            _reset_globals()
        try:
            return self._judge(case, res, timed_out, seconds, cwd, tmp, before)
        finally:
            shutil.rmtree(cwd, ignore_errors=True)
            shutil.rmtree(tmp, ignore_errors=True)

    def _judge(self, case, res, timed_out, seconds, cwd, tmp, before) -> Outcome:
        if timed_out:
            self._fixture_state = _snapshot(self.fixtures_root)
            return Outcome(case, None, seconds, "timeout", ["timeout"], details="stopped by the per-case alarm")
        output = self.unresolve(res.output, cwd)
        lines = [ln for ln in output.splitlines() if ln.strip()]
        last = lines[-1].strip()[:300] if lines else ""
        kind_reasons: list[tuple[str, str, str]] = []  # (kind, reason, detail)
        exc = res.exception
        if exc is not None and not isinstance(exc, SystemExit):
            reason, detail = _innermost(exc)
            kind_reasons.append(("traceback", reason, self.unresolve(detail, cwd)))
        elif "Traceback (most recent call last)" in output:
            kind_reasons.append(("traceback", "Traceback printed", output[-1500:]))
        code = res.exit_code
        if code not in (0, 2) and not kind_reasons:
            norm = re.sub(r"\d+(\.\d+)?", "N", last)[:70]
            kind_reasons.append(("exit", f"exit {code}: {norm}", output[-1500:]))
        if code == 0 and "--json" in case.argv and not kind_reasons:
            try:
                json.loads(res.stdout)
            except ValueError as exc:
                kind_reasons.append(("json", "--json output is not JSON", f"{exc}: {res.stdout[:300]!r}"))
        # Debris: new or changed paths in the working directory outside --out; temp files; fixtures touched.
        after = _snapshot(cwd)
        out_rel = None
        if case.out:
            try:
                out_rel = os.path.normpath(case.out)
            except ValueError:
                out_rel = None
            if out_rel in (".", "") or out_rel.startswith(".."):
                out_rel = None
        changed = _changed(before, after)
        if out_rel:
            inside = [p for p in changed if p.rstrip("/") == out_rel or p.startswith(out_rel + "/")]
        else:  # no --out: the command's default output place
            patterns = COMMANDS[case.command].default_out
            inside = [p for p in changed if any(fnmatch.fnmatch(p.rstrip("/"), pat) for pat in patterns)]
        outside = [p for p in changed if p not in inside and p != "./"]
        if outside:
            top = sorted({p.split("/")[0] + ("/" if "/" in p.rstrip("/") or p.endswith("/") else "") for p in outside})
            kind_reasons.append(("debris", "files outside --out: " + ", ".join(top[:3]), "\n".join(outside[:20])))
        # "Nothing is overwritten silently" (DESIGN.md): a file or non-empty folder at --out before the case
        # is kept unless --force (or --resume) is given.
        held = [p for p in before if out_rel and p not in ("./", out_rel + "/")
                and (p.rstrip("/") == out_rel or p.startswith(out_rel + "/"))]
        if held and not {"--force", "--resume"} & set(case.argv) and any(before[p] != after.get(p) for p in held):
            kind_reasons.append(("debris", "replaced an existing --out without --force",
                                 "\n".join(p for p in held if before[p] != after.get(p))))
        if code == 2 and inside:
            what = "--out" if out_rel else "the default output"
            kind_reasons.append(("debris", f"exit 2 left {what}", "\n".join(inside[:20])))
        # Not debris: torch's compile cache (torchinductor_<user>/) and onnxruntime's session id file (.ses), made
        # by those libraries' own code on first use in a process and reused by them.
        leftovers = sorted(p for p in _snapshot(tmp) if p not in ("./", ".ses") and not p.startswith("torchinductor_"))
        if leftovers:
            kind_reasons.append(("debris", "temp files left", "\n".join(leftovers[:20])))
        fixture_state = _snapshot(self.fixtures_root)
        touched = _changed(self._fixture_state, fixture_state)
        if touched:
            self._fixture_state = fixture_state
            kind_reasons.append(("debris", "a fixture changed", "\n".join(touched[:20])))
        if not kind_reasons:
            return Outcome(case, code, seconds, "ok0" if code == 0 else "ok2", [], last)
        return Outcome(case, code, seconds, kind_reasons[0][0], [r for _, r, _ in kind_reasons], last,
                       "\n".join(d for _, _, d in kind_reasons))


def _reset_globals() -> None:
    """Undo what a command may set process-wide (thread counts), so later cases and tests see the defaults."""
    with contextlib.suppress(Exception):
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1") or 1))


def fuzz_command(session: Session, command: str, examples: int, *, timeout: float = 20.0,
                 derandomize: bool = True) -> list[Outcome]:
    """Run ``examples`` generated cases of one command; every outcome is returned (nothing raises, so
    Hypothesis never shrinks: a failing argv is reported as generated)."""
    from hypothesis import HealthCheck, Phase, given, settings

    outcomes: list[Outcome] = []
    seen: set[tuple[str, ...]] = set()

    @settings(max_examples=examples, deadline=None, derandomize=derandomize, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(cases(COMMANDS[command]))
    def prop(case: Case) -> None:
        if case.argv in seen:
            return
        seen.add(case.argv)
        outcomes.append(session.run(case, timeout))

    prop()
    return outcomes


def distinct_failures(outcomes: Iterable[Outcome]) -> dict[tuple[str, str], Outcome]:
    """The first outcome of each (command, reason)."""
    found: dict[tuple[str, str], Outcome] = {}
    for o in outcomes:
        if o.failed:
            found.setdefault((o.case.command, o.reasons[0]), o)
    return found
