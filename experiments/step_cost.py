"""Peak RSS and time per step of the embedded pipeline at one size (one size per process: peaks do not carry over).

python3 experiments/step_cost.py SIZE [STEPS]  ->  one JSON line: size, baseline and peak RSS (MB), the first frame's
and each step's wall and CPU seconds, and the last step's stage timings (ms) summed over the three memories.
"""
import json, resource, sys, time

import torch

torch.set_num_threads(2)
from mirage_viz.backbone import load_embedded_backbone
from mirage_viz.rollout import RolloutConfig, iter_rollout

size = int(sys.argv[1])
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 1
backbone = load_embedded_backbone()
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
wall, cpu = [time.perf_counter()], [time.process_time()]
rollout = None
for rollout in iter_rollout(RolloutConfig(size=size, steps=steps, trajectory="push_in"), backbone=backbone):
    wall.append(time.perf_counter())
    cpu.append(time.process_time())
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
stages = {}
for records in rollout.records.values():
    for stage, ms in records[-1].timings_ms.items():
        stages[stage] = round(stages.get(stage, 0) + ms)
print(json.dumps({"size": size, "baseline_rss_mb": round(baseline), "peak_rss_mb": round(peak),
                  "wall_s": [round(b - a, 2) for a, b in zip(wall, wall[1:])],
                  "cpu_s": [round(b - a, 2) for a, b in zip(cpu, cpu[1:])], "last_step_stages_ms": stages}))
