"""Measure the app's responsiveness: time from pressing Run to each streamed step (handler side).

    python scripts/app_speed.py [--steps 8] [--out runs/app_speed.json]

Prints and writes the time to the first step and the per-step times at 256x256 and 128x128. It excludes
Gradio's transport and the browser's drawing, which add little on localhost.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import tempfile

from mirage_viz import app
from mirage_viz.backbone import load_embedded_backbone
from mirage_viz.hub import ModelAccess
from mirage_viz.sessions import RunSlots, SessionStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("runs/app_speed.json"))
    args = parser.parse_args()
    start = time.perf_counter()
    load_embedded_backbone()
    results = {"models_load_s": time.perf_counter() - start}
    handlers = app._Handlers(SessionStore(tempfile.mkdtemp()), RunSlots(), ModelAccess.for_visitors())
    for size in (256, 128):
        start, stamps = time.perf_counter(), []
        for _ in handlers.run("room", "loop", 0.0, args.steps, size, 0, progress=lambda *a, **k: None):
            stamps.append(time.perf_counter() - start)
        per_step = [b - a for a, b in zip(stamps, stamps[1:-1])]
        results[str(size)] = {"first_step_s": stamps[0], "step_median_s": statistics.median(per_step),
                              "step_max_s": max(per_step), "exports_s": stamps[-1] - stamps[-2]}
        print(f"{size}x{size}: first step after {stamps[0]:.2f} s, a step {statistics.median(per_step):.2f} s "
              f"(max {max(per_step):.2f}), exports {stamps[-1] - stamps[-2]:.2f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
