"""Can EVG's heads place the PoG peak when they are handed the answer? (issue 17's diagnosis)

EVG has to turn what the encoder saw into a peak somewhere on the PoG heat map, far from the face. This
isolates that last step: the encoder and decoder are replaced by a vector that already holds the true PoG
(a small MLP of the PoG, broadcast to every cell as the global-context branch adds its vector), so whatever
error is left belongs to the heads, the coordinate channels and the heatmap loss. Each configuration trains
EVG's real `cpu` heads (``teachers.evg``) with the task's real loss (``plane_pog``) for the same steps, batch
64, AdamW one-cycle, and prints the hard-decoded PoG error (argmax + offset, the metric) and the
soft-argmax error on 256 PoGs.

    python benchmarks/evg_heads.py               # the five configurations below, ~2 min each on 2 cores
    python benchmarks/evg_heads.py --steps 300 --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GRID = (128, 72)  # the output grid of a 480x270 frame (padded 512x288, stride 4)
CONFIGS = {  # name: (plane_pog task options, coord_scale)
    "focal, coords +-1 (write-up loss)": ({}, 1.0),
    "focal, coords +-10": ({}, 10.0),
    "focal, sigma 12 -> 1.5, coords +-10": ({"sigma_start": 12.0, "sigma_epochs": 4}, 10.0),
    "softmax, coords +-1": ({"hm_loss": "softmax"}, 1.0),
    "softmax, coords +-10": ({"hm_loss": "softmax"}, 10.0),
}


class Oracle(nn.Module):
    """The PoG (mm) -> a vector at every cell + coordinate channels -> EVG's heads."""

    def __init__(self, coord_scale: float) -> None:
        super().__init__()
        from teachers import get_teacher

        evg = get_teacher("evg", preset="cpu", coord_channels=True, global_context=False, context_pog=False,
                          coord_scale=coord_scale)
        self.heads, self.coord_scale = evg.heads, evg.coord_scale
        width = evg.heads["hm"][0].in_channels - 2
        self.width = width
        self.encode = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, width), nn.ReLU())

    def forward(self, pog: torch.Tensor) -> dict[str, torch.Tensor]:
        from teachers.evg import _coords

        x = self.encode(pog / 100).view(-1, self.width, 1, 1).expand(-1, self.width, GRID[1], GRID[0])
        x = torch.cat([x, _coords(x, self.coord_scale)], 1)
        return {name: head(x) for name, head in self.heads.items()}


def run(options: dict, coord_scale: float, steps: int, seed: int = 0) -> dict[str, float]:
    from workbench.tasks import get_task

    task = get_task("plane_pog", loss_weights={"pog": 5.0}, **options)
    torch.manual_seed(seed)
    pog = torch.stack([torch.empty(4096).uniform_(-170, 170), torch.empty(4096).uniform_(10, 200)], -1)
    hm_xy = task.camera_to_grid(pog, GRID).float()
    model = Oracle(coord_scale)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps + 1, pct_start=0.3)
    t0 = time.time()
    for step in range(steps):
        task.set_epoch(step * 6 // steps)  # six "epochs", for the options that follow epochs
        idx = torch.randint(0, len(pog), (64,))
        loss, _ = task.loss(model(pog[idx]), {"hm_xy": hm_xy[idx]})
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    task.epoch = None
    with torch.no_grad():
        test = pog[:256]
        out = model(test)
        hard = (task.decode(out) - test.double()).norm(dim=-1).mean()
        soft = (task.decode(out, soft=True) - test.double()).norm(dim=-1).mean()
        const = (test - pog.mean(0)).norm(dim=-1).mean()
    return {"hard_mm": round(float(hard), 1), "soft_mm": round(float(soft), 1), "constant_mm": round(float(const), 1),
            "seconds": round(time.time() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = {}
    for name, (options, scale) in CONFIGS.items():
        results[name] = run(options, scale, args.steps)
        if not args.json:
            r = results[name]
            print(f"{name:40s} hard {r['hard_mm']:6.1f} mm  soft {r['soft_mm']:6.1f} mm  "
                  f"(constant {r['constant_mm']:.1f} mm, {r['seconds']:.0f} s)", flush=True)
    if args.json:
        print(json.dumps({"steps": args.steps, "results": results}, indent=2))


if __name__ == "__main__":
    main()
