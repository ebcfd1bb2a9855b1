"""Measure how live a rollout is (issue 36), side by side in one run; never asserts.

    python scripts/live_speed.py [--size 256] [--steps 8] [--out runs/live_speed.json] [--no-cli]

- ``step``: a step of the three memories (read, generate, decode, depth, write) at ``--size`` along a ``loop``,
  the memories generated and decoded together (``run_steps``, the engine's) against one at a time (``run_step``),
  each timed from the same memory states at every step; the median against the bar (0.35 s at 256 px).
- ``engine_step``: the engine's whole step (with its records, the decoded warped latent, PSNR and SSIM), with and
  without the scores that need no truth.
- ``cli``: ``mirage-viz rollout`` of an 8-step loop, from the command to its first frame (step 0 shown by its
  progress bar), to the last step, to the writing of its folder and to its exit (the bar: 9 s at 256 px).
- ``app_start``: ``python app.py`` to its page served (HTTP 200).
Machine, versions, date and the load average (the machine may be shared) go into the JSON with the figures.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import torch

from mirage_viz.backbone import load_embedded_backbone
from mirage_viz.rollout import RolloutConfig, RolloutEngine
from mirage_viz.rollout.engine import step_noise
from mirage_viz.rollout.step import run_step, run_steps

STEP_BAR_S, CLI_BAR_S = 0.35, 9.0


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 4)


def measure_cli(size: int, steps: int) -> dict:
    """``mirage-viz rollout`` in a subprocess: when its progress bar first counts a step (the first frame), when it
    counts the last, when it says it writes the folder, and its exit; seconds from the start."""
    marks: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "mirage_viz", "rollout", "--trajectory", "loop", "--steps",
                                    str(steps), "--size", str(size), "--out", str(Path(folder) / "run")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        text = ""
        while (char := process.stderr.read(1)):
            text += char
            for mark, wanted in (("first_frame_s", f" 1/{steps + 1} "), ("last_step_s", f" {steps + 1}/{steps + 1} "),
                                 ("writing_s", "writing the frames")):
                if mark not in marks and wanted in text[-200:]:
                    marks[mark] = round(time.perf_counter() - started, 2)
        process.wait()
        seconds = time.perf_counter() - started
    if process.returncode:
        raise SystemExit(f"the command failed ({process.returncode}): {text[-2000:]}")
    return {**marks, "seconds": round(seconds, 2), "bar_s": CLI_BAR_S, "within_bar": seconds <= CLI_BAR_S}


def measure_app_start(port: int = 7893, timeout_s: float = 120) -> dict:
    """``python app.py`` (the Space's entry point) until its page answers HTTP 200; the server is stopped after."""
    environment = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "app.py"], cwd=Path(__file__).resolve().parents[1], env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - started < timeout_s and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                    if response.status == 200:
                        return {"page_served_s": round(time.perf_counter() - started, 2)}
            except OSError:
                time.sleep(0.05)
        return {"page_served_s": None, "note": "no page within the time allowed, or the server exited"}
    finally:
        process.terminate()
        process.wait(timeout=30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("runs/live_speed.json"))
    parser.add_argument("--no-cli", action="store_true", help="skip the command line and the app's start-up")
    args = parser.parse_args(argv)
    backbone = load_embedded_backbone()
    config = RolloutConfig(trajectory="loop", steps=args.steps, size=args.size)

    engine = RolloutEngine(config, backbone=backbone, scores=False)
    together, alone = [], []
    for step, camera in enumerate(engine.cameras):
        if step:
            truth = engine.world.render(camera)
            depth = lambda frame: (truth.depth, "truth")  # noqa: E731 - the engine's own depth source here
            before = {name: memory.snapshot() for name, memory in engine.memories.items()}
            for kind in ("together", "alone"):
                started = time.perf_counter()
                if kind == "together":
                    run_steps(engine.memories, backbone, camera, engine.latent_shape, lambda: step_noise(config, step),
                              depth, engine.setup.num_inference_steps)
                else:
                    for memory in engine.memories.values():
                        run_step(memory, backbone, camera, engine.latent_shape, step_noise(config, step), depth,
                                 engine.setup.num_inference_steps)
                (together if kind == "together" else alone).append(time.perf_counter() - started)
                for name, memory in engine.memories.items():
                    memory.restore(before[name])
        engine.step(camera)

    engine_step = {}
    for scores in (False, True):
        timed = RolloutEngine(config, backbone=backbone, scores=scores)
        times = []
        for camera in timed.cameras:
            started = time.perf_counter()
            timed.step(camera)
            times.append(time.perf_counter() - started)
        engine_step["with_scores" if scores else "without_scores"] = _median(times[1:])

    result = {
        "size": args.size, "steps": args.steps,
        "step": {"together_s": _median(together), "alone_s": _median(alone),
                 "speedup": round(statistics.median(together) and statistics.median(alone) / statistics.median(together), 3),
                 "bar_s": STEP_BAR_S, "within_bar": statistics.median(together) <= STEP_BAR_S},
        "engine_step_s": engine_step,
    }
    if not args.no_cli:
        result["cli"] = measure_cli(args.size, args.steps)
        result["app_start"] = measure_app_start()
    result["machine"] = {"processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                         "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                         "load_average": os.getloadavg()}
    result["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in result if k not in ("machine", "created")}))


if __name__ == "__main__":
    main()
