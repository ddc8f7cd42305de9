"""SynthGaze rendering speed, samples per second per view, on a pinned number of threads.

    python benchmarks/synth_speed.py                      # all five views, 2048 samples each, 1 thread
    python benchmarks/synth_speed.py --view face --n 4096 --size 112 --json

The issue's target is >= 1,000 face samples/s at 112x112 on one core. The script reports the figure and
whether it meets the target; it always exits 0 (a benchmark reports, it does not gate). Figures taken on
a machine shared with other work are depressed; run it more than once.
"""

from __future__ import annotations

import argparse
import os
import sys

VIEWS = ("face", "mc4", "itracker", "frame", "track")
TARGET_VIEW, TARGET_SIZE, TARGET_RATE = "face", 112, 1000.0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--view", choices=VIEWS + ("all",), default="all", help="view to time (default: all five)")
    p.add_argument("--n", type=int, default=2048, help="samples rendered per view, after one warm-up chunk")
    p.add_argument("--size", default=None,
                   help="image size: an int for face/mc4/itracker/track, WxH for frame (default: each view's own)")
    p.add_argument("--threads", type=int, default=1, help="threads for numpy/BLAS/torch (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)
    if args.n <= 0 or args.threads <= 0:
        p.error(f"expected positive --n and --threads, got n={args.n}, threads={args.threads}")
    return args


def _size_for(view: str, size: str | None):
    if size is None:
        return None
    if "x" in size.lower():
        w, h = (int(v) for v in size.lower().split("x"))
        return (w, h) if view == "frame" else None
    return int(size) if view != "frame" else None


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    # Pin threads before numpy/torch load their thread pools.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import json
    import time

    import torch

    from workbench.data import synth as S

    torch.set_num_threads(args.threads)
    views = VIEWS if args.view == "all" else (args.view,)
    results = []
    for view in views:
        size = _size_for(view, args.size)
        if size is None:
            size = S.DEFAULT_SIZE[view]
        # Warm up on a chunk the timed run does not use (caches, allocator, lazily built tables).
        S.render_chunk(view, 10_000, seed=args.seed, size=size)
        t0 = time.perf_counter()
        data = S.render(view, args.n, seed=args.seed, size=size)
        dt = time.perf_counter() - t0
        assert len(data["index"]) == args.n
        label = f"{size[0]}x{size[1]}" if isinstance(size, tuple) else f"{size}x{size}"
        results.append({"view": view, "image_size": label, "n": args.n, "seconds": round(dt, 3),
                        "samples_per_s": round(args.n / dt, 1)})

    face = next((r for r in results if r["view"] == TARGET_VIEW and r["image_size"] == f"{TARGET_SIZE}x{TARGET_SIZE}"),
                None)
    target = None
    if face is not None:
        target = {"view": TARGET_VIEW, "image_size": face["image_size"], "threads": args.threads,
                  "samples_per_s": face["samples_per_s"], "target_samples_per_s": TARGET_RATE,
                  "meets": face["samples_per_s"] >= TARGET_RATE, "one_core": args.threads == 1}

    if args.json:
        print(json.dumps({"threads": args.threads, "cpu_count": os.cpu_count(), "results": results, "target": target},
                         indent=2))
        return 0
    print(f"SynthGaze rendering speed ({args.threads} thread{'s' if args.threads > 1 else ''}, "
          f"{args.n} samples per view after one warm-up chunk)")
    print(f"{'view':<10}{'image':>10}{'n':>8}{'seconds':>10}{'samples/s':>12}")
    for r in results:
        print(f"{r['view']:<10}{r['image_size']:>10}{r['n']:>8}{r['seconds']:>10.2f}{r['samples_per_s']:>12.1f}")
    if target is not None:
        verdict = "meets" if target["meets"] else "MISSES"
        where = "one core" if target["one_core"] else f"{args.threads} threads (target is for one core)"
        print(f"target: >= {TARGET_RATE:,.0f} face samples/s at {TARGET_SIZE}x{TARGET_SIZE} on one core; "
              f"measured {target['samples_per_s']:,.1f} on {where}: {verdict}")
    else:
        print(f"target (>= {TARGET_RATE:,.0f} face samples/s at {TARGET_SIZE}x{TARGET_SIZE}) not measured in this run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
