"""What the CLI fuzzer feeds each `workbench` command (tests/cli/fuzz_cli.py): the pools of valid and invalid
values per option and one CommandSpec per command. Adding an option to a command means adding it here."""

from __future__ import annotations

from dataclasses import dataclass

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
                    _o("--init-from", ("@run",), RUNS_BAD + ("@pt_trunc", "@pt_tensor", "@pt_pickle", "@empty", "")),
                    _o("--init-map", ("features.=features.",), ("features", "=", "a=b=c", "nope.=x.", "")),
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
                    _o("--importance", ("taylor", "lamp", "rank"), ("foo", "", "fc:@missing", "fc:@txt", "fc:@json_trunc", "fc:")),
                    _o("--target-latency", ("0.95",), FLOAT_BAD + ("1.5", "0.001")),
                    _o("--latency-batch", ("2",), INT_BAD), _o("--round-to", ("1", "16"), INT_BAD + ("257",)),
                    _o("--scope", ("global", "erank"), ("foo", "")), _o("--steps", ("1",), INT_BAD),
                    _o("--seed", ("3",), ("abc", "", "1.5")),
                    _o("--finetune-epochs", ("1",), INT_BAD), _o("--final-epochs", ("1",), INT_BAD),
                    _o("--finetune-samples", ("16",), INT_BAD), _o("--lr", ("0.001",), FLOAT_BAD),
                    _o("--calib-samples", ("16",), INT_BAD), _o("--device", DEVICE_OK, DEVICE_BAD),
                    *_flags("--force", "--json")],
          base=("--steps", "1", "--finetune-epochs", "1", "--finetune-samples", "16", "--calib-samples", "16",
                "--device", "cpu", "--json")),
    _spec("distill", [MODEL, _o("--student", ("tinyface",), ("nope", "", "auto", "tinylstm", "os:getcwd"), required=True),
                      _o("--preset", ("tiny",), PRESET_BAD[:3] + ("paper",)),
                      _o("--kd", ("response", "feature", "response,saliency"), ("foo", "", ",", "response,foo")),
                      _o("--alpha", ("0.5",), FLOAT_BAD + ("1.5",)), _o("--temperature", ("2",), FLOAT_BAD),
                      _o("--hint", (), ("x:y", "nope", "", ":", "features:nope")), _o("--hint-weight", ("1",), FLOAT_BAD),
                      _o("--saliency-weight", ("2",), FLOAT_BAD), _o("--saliency-grid", ("8",), INT_BAD),
                      _o("--saliency-target", ("yaw",), ("roll", "", "9", "-1")),
                      _o("--response-loss", ("mse",), ("foo", "")), _o("--epochs", ("1",), INT_BAD),
                      _o("--lr", ("0.01",), FLOAT_BAD), _o("--n-train", ("16",), INT_BAD), _o("--set", (), SET_BAD),
                      _o("--model", (), KV_BAD), _o("--seed", ("1",), ("abc", "")), _out("out", required=True),
                      _o("--task", (), TASK_BAD), _o("--weights", ("@weights",), WEIGHTS_BAD),
                      _o("--device", DEVICE_OK, DEVICE_BAD), *_flags("--force", "--json", "--control")],
          base=("--epochs", "1", "--n-train", "32", "--set", "n_val=16", "--device", "cpu", "--json")),
    _spec("compress", [_o(None, MODEL_OK, RUNS_BAD, required=True), _out("out", required=True),
                       _o("--latency-ms", ("100",), FLOAT_BAD), _o("--speedup", ("0.5",), FLOAT_BAD),
                       _o("--macs", ("1e12",), FLOAT_BAD),
                       _o("--params", ("1e9",), FLOAT_BAD), _o("--budget-x", ("1",), FLOAT_BAD),
                       _o("--budget-minutes", ("0.2",), FLOAT_BAD), _o("--eta", ("3",), INT_BAD + ("1",)),
                       _o("--rung-epochs", ("0.1",), FLOAT_BAD), _o("--batch", ("2",), INT_BAD + ("4097",)),
                       _o("--repeats", ("2",), INT_BAD), _o("--candidates", ("prune", "student"), ("foo", "", ",")),
                       _o("--ratios", ("0.5",), ("foo", "", "0", "1.5", "-1", "nan", ",")),
                       _o("--max-candidates", ("1",), INT_BAD), _o("--device", DEVICE_OK, DEVICE_BAD),
                       *_flags("--force", "--json", "--no-final")],
          base=("--params", "1e9", "--budget-minutes", "0.2", "--max-candidates", "1", "--candidates", "prune",
                "--rung-epochs", "0.1", "--repeats", "2", "--device", "cpu", "--json")),
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
