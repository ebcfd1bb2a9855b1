"""Measure what the scores that need no truth cost a rollout (issue 35): a posed sequence run with and without them,
side by side in one process; never asserts.

    python scripts/consistency_speed.py [--size 256] [--steps 12] [--repeats 3] [--out runs/consistency_speed.json]

Runs the shipped example sequence (``--steps`` steps at ``--size`` px, the three memories) ``--repeats`` times each
way, alternating, and writes each run's seconds, the median ratio (with scores / without) against the bar (at most
1.5) and ``within_budget``, with the machine, versions, date and the load average (the machine may be shared).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from mirage_viz.backbone import load_embedded_backbone
from mirage_viz.rollout import RolloutConfig, RolloutEngine
from mirage_viz.scenes.sequence import EXAMPLE_SEQUENCE, load_sequence

RATIO_BUDGET = 1.5


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("runs/consistency_speed.json"))
    args = parser.parse_args(argv)

    backbone = load_embedded_backbone()
    sequence = load_sequence(EXAMPLE_SEQUENCE, args.size, args.steps)

    def run(scores: bool) -> float:
        engine = RolloutEngine(RolloutConfig(size=args.size), backbone=backbone, sequence=sequence, scores=scores)
        started = time.perf_counter()
        for _ in engine:
            pass
        return time.perf_counter() - started

    run(False)  # warm-up: first calls allocate
    without, scored = [], []
    for _ in range(args.repeats):
        without.append(run(False))
        scored.append(run(True))
    ratios = [s / w for s, w in zip(scored, without)]
    result = {
        "what": f"the shipped sequence, {args.steps} steps at {args.size} px, latent/rgb/none, with and without the "
                "truth-free scores (camera control, reprojection, flow)",
        "seconds_without_scores": [round(t, 3) for t in without], "seconds_with_scores": [round(t, 3) for t in scored],
        "ratio_median": round(statistics.median(ratios), 3), "ratio_budget": RATIO_BUDGET,
        "within_budget": statistics.median(ratios) <= RATIO_BUDGET,
        "machine": {"processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "load_average": os.getloadavg()},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("ratio_median", "within_budget", "seconds_without_scores",
                                              "seconds_with_scores")}))


if __name__ == "__main__":
    main()
