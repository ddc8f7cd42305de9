"""Reference predictors for a PoG-from-the-frame run (task `plane_pog`), on the run's own validation frames.

What a frame model's PoG error means depends on what the frames allow. Beside the run's error this prints:

- **constant**: the training mean PoG for every frame (the task's constant predictor);
- **head only, linear**: least squares (ridge) from what the frame shows of the head without looking at
  the eyes' appearance: the face box (centre and size, as fractions of the frame) and the five landmarks
  relative to it;
- **face crop, CNN**: a small CNN given the true face box's crop (enlarged 1.3x, square, resampled to 64x64)
  and the same face-box numbers, trained on the run's training frames with L1 on the PoG: what a model that
  is handed the face, instead of having to find it, gets from these pixels (the ceiling at this frame size).

The frames are rendered again from the run's recipe and seed (SynthGaze is deterministic), so the numbers
are on exactly the frames the run was validated on.

    python benchmarks/pog_references.py runs/bench-teachers/evg            # after train_teachers.py --teachers evg
    python benchmarks/pog_references.py runs/bench-teachers/evg --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CROP = 64
ENLARGE = 1.3


def _frames(config: dict[str, Any]):
    """(task, raw train, raw val, train TaskData, val TaskData) exactly as the run loaded them."""
    from workbench.data.synth import render
    from workbench.tasks import get_task
    from workbench.train.data import SYNTH_SEED_OFFSET, synth_subjects
    from workbench.train.recipes import Recipe

    if config["data"].get("source", "synth") != "synth":
        raise SystemExit("error: the references re-render SynthGaze; this run was trained on a data set on disk")
    recipe = Recipe.from_dict(config["recipe"])
    task = get_task(config["task"], **recipe.task_options)
    if task.name != "plane_pog":
        raise SystemExit(f"error: references are for plane_pog runs, this run's task is {task.name!r}")
    seed = int(config["seed"])
    train_ids, val_ids = synth_subjects(recipe)
    raw_train = render(task.view, recipe.n_train, seed=seed + SYNTH_SEED_OFFSET["train"], subjects=train_ids,
                       size=recipe.size)
    raw_val = render(task.view, recipe.n_val, seed=seed + SYNTH_SEED_OFFSET["val"], subjects=val_ids,
                     size=recipe.size)
    return task, raw_train, raw_val, task.prepare(raw_train), task.prepare(raw_val)


def head_features(raw: dict[str, np.ndarray]) -> np.ndarray:
    """(N, 14): face-box centre and size over the frame size, landmarks relative to the box (box sizes)."""
    h, w = raw["image"].shape[-2:]
    box = raw["face_box"].astype(np.float64)
    c = (box[:, :2] + box[:, 2:]) / 2
    size = np.maximum(box[:, 2:] - box[:, :2], 1e-6)
    lm = (raw["landmarks"].astype(np.float64) - c[:, None]) / size[:, None]
    return np.concatenate([c / [w, h], size / [w, h], lm.reshape(len(box), -1)], 1)


def head_only_linear(raw_train, raw_val, y_train: np.ndarray, y_val: np.ndarray, ridge: float = 1e-3) -> float:
    """Mean PoG error (mm) on the validation frames of ridge regression from :func:`head_features`."""
    xt, xv = head_features(raw_train), head_features(raw_val)
    mu, sd = xt.mean(0), xt.std(0) + 1e-9
    xt, xv = (xt - mu) / sd, (xv - mu) / sd
    xt, xv = np.c_[xt, np.ones(len(xt))], np.c_[xv, np.ones(len(xv))]
    coef = np.linalg.solve(xt.T @ xt + ridge * len(xt) * np.eye(xt.shape[1]), xt.T @ y_train)
    return float(np.linalg.norm(xv @ coef - y_val, axis=1).mean())


def face_crops(raw: dict[str, np.ndarray], batch: int = 256) -> torch.Tensor:
    """(N, 3, CROP, CROP) float crops of the face box, enlarged ENLARGE x about its centre, square."""
    img = raw["image"]
    h, w = img.shape[-2:]
    box = torch.from_numpy(raw["face_box"]).double()
    c = (box[:, :2] + box[:, 2:]) / 2
    half = (box[:, 2:] - box[:, :2]).max(1).values * ENLARGE / 2
    out = []
    for i in range(0, len(img), batch):
        x = torch.from_numpy(img[i:i + batch]).float().div_(255.0)
        n = len(x)
        theta = torch.zeros(n, 2, 3, dtype=torch.float64)  # output [-1, 1] -> input [-1, 1] (align_corners=False)
        theta[:, 0, 0] = half[i:i + n] * 2 / w
        theta[:, 1, 1] = half[i:i + n] * 2 / h
        theta[:, 0, 2] = c[i:i + n, 0] * 2 / w - 1
        theta[:, 1, 2] = c[i:i + n, 1] * 2 / h - 1
        grid = F.affine_grid(theta.float(), [n, 3, CROP, CROP], align_corners=False)
        out.append(F.grid_sample(x, grid, align_corners=False, padding_mode="zeros"))
    return (torch.cat(out) - 0.45) / 0.25


class _CropNet(nn.Module):
    """A small CNN on the face crop, with the head features beside its pooled output."""

    def __init__(self, n_feat: int) -> None:
        super().__init__()
        layers, c = [], 3
        for w in (24, 48, 64, 96):
            layers += [nn.Conv2d(c, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                       nn.Conv2d(w, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            c = w
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(c + n_feat, 128), nn.ReLU(inplace=True), nn.Linear(128, 2))

    def forward(self, crop: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.trunk(crop).mean((2, 3)), feat], 1))


def face_crop_cnn(raw_train, raw_val, y_train: np.ndarray, y_val: np.ndarray, *, epochs: int = 25,
                  seed: int = 0) -> tuple[float, float]:
    """(mean validation PoG error in mm at the best epoch, seconds) of :class:`_CropNet`."""
    torch.manual_seed(seed)
    t0 = time.time()
    ct, cv = face_crops(raw_train), face_crops(raw_val)
    ft, fv = head_features(raw_train), head_features(raw_val)
    mu, sd = ft.mean(0), ft.std(0) + 1e-9
    ft, fv = (torch.from_numpy((f - mu) / sd).float() for f in (ft, fv))
    ym = y_train.mean(0)
    yt = torch.from_numpy((y_train - ym) / 100.0).float()
    net = _CropNet(ft.shape[1])
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=epochs * ((len(ct) + 63) // 64))
    best = float("inf")
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(ct)).split(64):
            loss = F.l1_loss(net(ct[idx], ft[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        net.eval()
        with torch.no_grad():
            pred = torch.cat([net(cv[i:i + 256], fv[i:i + 256]) for i in range(0, len(cv), 256)]).double().numpy()
        best = min(best, float(np.linalg.norm(pred * 100.0 + ym - y_val, axis=1).mean()))
    return best, time.time() - t0


def references(run: str | Path, *, crop_epochs: int = 25) -> dict[str, Any]:
    """The run's own validation error beside the three reference predictors (see the module docstring)."""
    run = Path(run)
    config = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    task, raw_train, raw_val, train, val = _frames(config)
    y_train = train.tensors["pog_cam"].double().numpy()
    y_val = val.tensors["pog_cam"].double().numpy()
    constant = float(np.linalg.norm(y_train.mean(0) - y_val, axis=1).mean())
    crop, crop_s = face_crop_cnn(raw_train, raw_val, y_train, y_val, epochs=crop_epochs, seed=int(config["seed"]))
    model = metrics["best"] if isinstance(metrics.get("best"), (int, float)) else metrics["final"]["pog_error_mm"]
    return {"run": str(run), "frame_size": list(raw_val["image"].shape[-2:][::-1]), "n_train": len(y_train),
            "n_val": len(y_val), "model_mm": float(model), "constant_mm": constant,
            "task_constant_mm": metrics.get("constant", {}).get("pog_error_mm"),
            "head_only_linear_mm": head_only_linear(raw_train, raw_val, y_train, y_val),
            "face_crop_cnn_mm": crop, "face_crop_cnn_seconds": round(crop_s, 1), "face_crop_cnn_epochs": crop_epochs}


def print_table(r: dict[str, Any]) -> None:
    c = r["constant_mm"]
    print(f"PoG error on {r['n_val']} held-out frames ({r['frame_size'][0]}x{r['frame_size'][1]}), "
          f"{r['n_train']} training frames")
    for name, key in (("the run (best epoch)", "model_mm"), ("constant (training mean PoG)", "constant_mm"),
                      ("head only (face box + landmarks), linear", "head_only_linear_mm"),
                      (f"face crop + face box, CNN ({r['face_crop_cnn_epochs']} epochs, "
                       f"{r['face_crop_cnn_seconds']:.0f} s)", "face_crop_cnn_mm")):
        print(f"  {name:48s} {r[key]:8.1f} mm  {r[key] / c:5.2f}x constant")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a plane_pog run folder trained on SynthGaze")
    ap.add_argument("--crop-epochs", type=int, default=25)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not (args.run / "config.json").is_file() or not (args.run / "metrics.json").is_file():
        print(f"error: {args.run}: not a finished run folder (config.json and metrics.json)", file=sys.stderr)
        return 2
    r = references(args.run, crop_epochs=args.crop_epochs)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print_table(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
