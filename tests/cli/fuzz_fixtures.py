"""The files the CLI fuzzer (tests/cli/fuzz_cli.py) runs its cases on: a tiny trained gazenet run and broken
variants of it, images, videos, data sets, checkpoints and recipes, each good or broken in one way. Built
once per session under one folder; argv's name them with placeholders (``@run``, ``@png``, ...)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


TINY_RECIPE = {"n_train": 32, "n_val": 16, "batch_size": 16, "train_subjects": 2, "val_subjects": 2, "epochs": 1}


def _link_copy(src: Path, dst: Path) -> Path:
    """A copy of a run folder made of hard links (cheap); a file to corrupt is replaced, never edited."""
    shutil.copytree(src, dst, copy_function=os.link)
    return dst


def _replace(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


def build_fixtures(root: Path) -> dict[str, Path]:
    """Write every fixture under ``root`` (about 10 s) and return placeholder -> path; a folder built
    before (it holds manifest.json, written last) is reused."""
    import numpy as np
    import torch
    from PIL import Image

    from teachers import get_teacher
    from workbench.train.engine import TrainRequest, fit

    manifest = root / "manifest.json"
    if manifest.exists():
        return {k: Path(v) for k, v in json.loads(manifest.read_text()).items()}
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    fx: dict[str, Path] = {}
    run = root / "run"
    fit(TrainRequest(teacher="gazenet", recipe_overrides=dict(TINY_RECIPE), out=run, progress=False))
    fx["@run"] = run

    cfg_bytes = (run / "config.json").read_bytes()
    ckpt_bytes = (run / "checkpoints" / "best.pt").read_bytes()
    cfg = json.loads(cfg_bytes)

    def variant(name: str, rel: str | None = None, data: bytes | None = None) -> Path:
        path = _link_copy(run, root / name)
        if rel is not None:
            if data is None:
                (path / rel).unlink() if (path / rel).is_file() else shutil.rmtree(path / rel)
            else:
                _replace(path / rel, data)
        fx["@" + name] = path
        return path

    variant("run_cfgtrunc", "config.json", cfg_bytes[: len(cfg_bytes) // 2])
    variant("run_cfglist", "config.json", b"[]")
    variant("run_cfgempty", "config.json", b"{}")
    variant("run_nocfg", "config.json")
    variant("run_cfgnope", "config.json", json.dumps({**cfg, "teacher": "nope",
                                                      "model": {**cfg["model"], "teacher": "nope"}}).encode())
    variant("run_cfgbadmodel", "config.json", json.dumps({**cfg, "model": {**cfg["model"], "width_mult": "abc"}}).encode())
    variant("run_ckpttrunc", "checkpoints/best.pt", ckpt_bytes[: len(ckpt_bytes) // 3])
    variant("run_ckptempty", "checkpoints/best.pt", b"")
    variant("run_nockpt", "checkpoints")
    buf = _save_bytes({"a": 1})
    variant("run_ckptdict", "checkpoints/best.pt", buf)
    ck = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    key = next(k for k, v in ck["model"].items() if v.ndim >= 2)
    ck["model"][key] = ck["model"][key][:1]
    variant("run_ckptshape", "checkpoints/best.pt", _save_bytes(ck))
    variant("run_metricstrunc", "metrics.json", (run / "metrics.json").read_bytes()[:40])
    variant("run_logtrunc", "log.jsonl", (run / "log.jsonl").read_bytes()[:50])

    png = root / "image.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(png)
    fx["@png"] = png
    (root / "emptydir").mkdir()
    fx["@emptydir"] = root / "emptydir"
    for name, text in (("txt", "hello\n"), ("empty", ""), ("json_trunc", '{"teacher": "gazenet", "model": {"wid'),
                       ("toml_trunc", _cut_mid_string((REPO / "examples" / "demo.toml").read_text())),
                       ("toml_badkeys", 'foo = 1\nteachers = ["gazenet"]\n[train]\nbar = 2\n'),
                       ("toml_badtypes", 'seed = "abc"\nteachers = 5\n[train]\nepochs = -1\n'),
                       ("toml_badteacher", 'teachers = ["nope"]\n')):
        suffix = {"txt": ".txt", "empty": ".txt", "json_trunc": ".json"}.get(name, ".toml")
        path = root / (name + suffix)
        path.write_text(text)
        fx["@" + name] = path
    weights = root / "weights.pt"
    torch.save(get_teacher("gazenet").state_dict(), weights)
    fx["@weights"] = weights
    for name, data in (("pt_trunc", weights.read_bytes()[:1000]), ("pt_tensor", _save_bytes(torch.zeros(3))),
                       ("pt_pickle", pickle.dumps(Path("x"))), ("pt_wrongkeys", _save_bytes({"nope.weight": torch.zeros(2)}))):
        (root / (name + ".pt")).write_bytes(data)
        fx["@" + name] = root / (name + ".pt")

    from typer.testing import CliRunner

    from workbench.cli import app

    runner = CliRunner()
    for argv in (["data", "synth", "--out", str(root / "npz"), "--n", "8", "--subjects", "2"],
                 ["export", str(run), "--onnx", str(root / "model.onnx"), "--samples", "2"],
                 ["visualize", str(run), "--out", str(root / "video.mp4"), "--n", "3", "--device", "cpu"]):
        res = runner.invoke(app, argv)
        assert res.exit_code == 0, (argv, res.output, res.exception)
    fx["@npz"] = root / "npz"
    fx["@onnx"] = root / "model.onnx"
    fx["@video"] = root / "video.mp4"
    npz_trunc = root / "npz_trunc"
    npz_trunc.mkdir()
    (npz_trunc / "data.npz").write_bytes((root / "npz" / "data.npz").read_bytes()[:2000])
    fx["@npz_trunc"] = npz_trunc
    for name, src in (("onnx_trunc.onnx", fx["@onnx"]), ("video_trunc.mp4", fx["@video"])):
        (root / name).write_bytes(src.read_bytes()[:700])
        fx["@" + name.split(".")[0]] = root / name
    fx["@missing"] = root / "does" / "not" / "exist"
    manifest.write_text(json.dumps({k: str(v) for k, v in fx.items()}, indent=1))
    return fx


def _cut_mid_string(text: str) -> str:
    """The recipe cut inside its first string value after [analyze]: what a truncated copy looks like."""
    at = text.index('"', text.index("[analyze]")) + 2
    return text[:at]


def _save_bytes(obj) -> bytes:
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()
