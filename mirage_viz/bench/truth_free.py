"""How far to trust the scores that need no truth (:mod:`mirage_viz.consistency`), checked where the truth exists.

On held-out procedural worlds, full rollouts of the three memories under each memory setting are scored both ways:
PSNR against the true frames, and each truth-free score against nothing but the frames and the cameras. A score
earns trust on footage as far as it orders the memories (and the settings) the way PSNR does:

- ``orders_memories_as_psnr``: the share of runs in which the score ranks latent, RGB and none in PSNR's order (a
  memory the score never measured in a run, such as frames too blurred to pose, ranks last; two such memories tie);
- ``memories_kendall_tau``: Kendall's tau between the two rankings of a run's memories, averaged over runs;
- ``settings_kendall_tau``: the same between the settings, for one world, seed and memory, averaged.

And the estimator behind the camera-control score is checked on the true frames themselves: their camera-control
error should be near zero (``truth_camera_error``).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable, Sequence

import numpy as np

from mirage_viz.backbone import Backbone
from mirage_viz.consistency import SCORES, consistency_scores
from mirage_viz.rollout.config import RolloutConfig, RolloutPlan, plan_rollout
from mirage_viz.rollout.engine import run_rollout
from mirage_viz.scenes.data import HELD_OUT_SEED_START

__all__ = ["truth_free_agreement"]



def _kendall_tau(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Kendall's tau-a of two rankings of the same items (None for fewer than two): concordant minus discordant pairs
    over all pairs; a tie in either counts as neither."""
    pairs = list(itertools.combinations(range(len(a)), 2))
    if not pairs:
        return None
    order = lambda x, y: (x > y) - (x < y)  # noqa: E731 - the sign of a comparison (infinities tie with themselves)
    signs = [order(a[i], a[j]) * order(b[i], b[j]) for i, j in pairs]
    return float(sum(signs) / len(pairs))


def _run_row(rollout, world: str, world_seed: int, setting: str) -> dict:
    """One run in numbers: per memory, the mean PSNR of generated steps and each truth-free score's mean."""
    memories = {}
    for name, records in rollout.records.items():
        memories[name] = {"mean_psnr": round(statistics.fmean(r.psnr for r in records[1:]), 4)}
        memories[name] |= {score: value for score, value in rollout.consistency_means(name).items() if score in SCORES}
    return {"world": world, "world_seed": world_seed, "setting": setting, "memories": memories}


def _truth_camera_errors(plan: RolloutPlan) -> tuple[list[float], list[float]]:
    """The camera-control errors (rotation, direction; degrees) of the true frames along ``plan``'s cameras."""
    renders = [plan.world.render(camera) for camera in plan.cameras]
    scores = consistency_scores([r.rgb for r in renders], [r.depth for r in renders], plan.cameras)
    return ([s.camera_rotation_error_deg for s in scores if s.camera_rotation_error_deg is not None],
            [s.camera_direction_error_deg for s in scores if s.camera_direction_error_deg is not None])


def _agreement(runs: list[dict]) -> dict:
    """Per score: how its rankings of memories (within a run) and of settings (within a world, seed and memory) agree
    with PSNR's."""
    out = {}
    for score, sign in SCORES.items():
        orders, memory_taus = [], []
        for run in runs:
            memories = list(run["memories"].values())
            if all(m.get(score) is None for m in memories):
                continue  # measured for no memory of the run: no ranking to compare
            # a memory whose frames the score could never measure (too few matches to pose them) ranks last
            psnr = [m["mean_psnr"] for m in memories]
            value = [-math.inf if m.get(score) is None else sign * m[score] for m in memories]
            tau = _kendall_tau(psnr, value)
            memory_taus.append(tau)
            orders.append(tau == 1.0)  # every pair in PSNR's order, none tied
        setting_taus = []
        groups: dict[tuple, list[tuple[float, float]]] = {}
        for run in runs:
            for memory, m in run["memories"].items():
                if m.get(score) is not None:
                    groups.setdefault((run["world"], run["world_seed"], memory), []).append((m["mean_psnr"], sign * m[score]))
        for rows in groups.values():
            tau = _kendall_tau([r[0] for r in rows], [r[1] for r in rows])
            if tau is not None:
                setting_taus.append(tau)
        out[score] = {
            "runs_ranked": len(orders),
            "orders_memories_as_psnr": round(float(np.mean(orders)), 4) if orders else None,
            "memories_kendall_tau": round(float(np.mean(memory_taus)), 4) if memory_taus else None,
            "settings_kendall_tau": round(float(np.mean(setting_taus)), 4) if setting_taus else None,
        }
    return out


def truth_free_agreement(worlds: Sequence[str], seeds: int, settings: Sequence[str], steps: int, size: int,
                         backbone: Backbone, seed: int = 0, say: Callable[[str], None] | None = None) -> dict:
    """Rollouts of ``loop`` (``steps`` steps at ``size`` px) in each of ``worlds`` with ``seeds`` held-out world seeds
    (from ``HELD_OUT_SEED_START``, a world whose loop leaves its room skipped for the next), under each memory setting,
    scored against the truth and without it; the agreement of each truth-free score with PSNR, and the camera-control
    error of the true frames."""
    say = say or (lambda message: None)
    runs, rotations, directions = [], [], []
    for world in worlds:
        found, world_seed = 0, HELD_OUT_SEED_START
        while found < seeds and world_seed < HELD_OUT_SEED_START + 20 * seeds:
            base = RolloutConfig(world=world, world_seed=world_seed, trajectory="loop", steps=steps, size=size, seed=seed)
            try:
                plan = plan_rollout(base)  # a camera outside the room or in an object: the next seed
            except ValueError:
                world_seed += 1
                continue
            rotation, direction = _truth_camera_errors(plan)
            rotations += rotation
            directions += direction
            for setting in settings:
                say(f"truth-free scores: {world} seed {world_seed}, {setting}")
                rollout = run_rollout(base.with_memory_setting(setting), backbone=backbone)
                runs.append(_run_row(rollout, world, world_seed, setting))
            found, world_seed = found + 1, world_seed + 1
    truth = {"pairs": steps * len({(r["world"], r["world_seed"]) for r in runs}), "measured": len(rotations),
             "rotation_deg_median": round(statistics.median(rotations), 4) if rotations else None,
             "rotation_under_1_deg": round(float(np.mean(np.array(rotations) < 1.0)), 4) if rotations else None,
             "direction_deg_median": round(statistics.median(directions), 4) if directions else None}
    return {"worlds": list(worlds), "seeds": seeds, "settings": list(settings), "steps": steps, "size": size,
            "truth_camera_error": truth, "agreement": _agreement(runs), "runs": runs}
