"""Measure the server time of answering a click on a cell (issue 34): ``trace_cell`` at 256 px; never asserts.

    python scripts/trace_speed.py [--size 256] [--steps 12] [--cells 200] [--out runs/trace_speed.json]

Runs one ``loop`` rollout (latent and RGB memories), then traces ``--cells`` random cells of random steps (1 to the
last) of each memory, timing each call, and writes the median, p90 and max in milliseconds per memory with the
budget (median at most 100 ms) and ``within_budget``. Machine, versions, date and the load average (the machine may
be shared) go into the JSON with the figures.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import statistics
import time
from pathlib import Path

import torch

from mirage_viz.backbone import load_embedded_backbone
from mirage_viz.rollout import RolloutConfig, read_grid, run_rollout, trace_cell

MEDIAN_BUDGET_MS = 100.0


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--cells", type=int, default=200, help="cells traced per memory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/trace_speed.json"))
    args = parser.parse_args(argv)

    config = RolloutConfig(trajectory="loop", steps=args.steps, size=args.size, seed=args.seed,
                           memories=("latent", "rgb"))
    started = time.perf_counter()
    rollout = run_rollout(config, backbone=load_embedded_backbone())
    rollout_s = time.perf_counter() - started
    pick = random.Random(args.seed)
    memories = {}
    for memory in ("latent", "rgb"):
        rows, cols = read_grid(rollout, memory)
        times, covered = [], 0
        for _ in range(args.cells):
            step, row, col = pick.randrange(1, len(rollout)), pick.randrange(rows), pick.randrange(cols)
            started = time.perf_counter()
            trace = trace_cell(rollout, memory, step, row, col)
            times.append((time.perf_counter() - started) * 1e3)
            covered += trace.covered
        median = statistics.median(times)
        memories[memory] = {"grid": [rows, cols], "cells": len(times), "covered": covered,
                            "median_ms": round(median, 2), "p90_ms": round(_percentile(times, 0.9), 2),
                            "max_ms": round(max(times), 2), "within_budget": median <= MEDIAN_BUDGET_MS}
        print(f"{memory}: median {median:.1f} ms, p90 {_percentile(times, 0.9):.1f} ms over {len(times)} cells")
    report = {"what": "trace_cell server time per click", "budget_median_ms": MEDIAN_BUDGET_MS,
              "rollout": {"trajectory": "loop", "steps": args.steps, "size": args.size, "seed": args.seed,
                          "seconds": round(rollout_s, 1)},
              "memories": memories,
              "machine": {"platform": platform.platform(), "python": platform.python_version(),
                          "torch": torch.__version__, "cpus": os.cpu_count(), "threads": torch.get_num_threads(),
                          "load_average": [round(x, 2) for x in os.getloadavg()]},
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
