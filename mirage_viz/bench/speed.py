"""Speed and bytes, latent against RGB memory, in one process on the same trajectory.

For one image size and one VAE:

1. **Growth**: both memories are filled with the true views along a ``loop`` (exactly the points a
   rollout stores); at ``growth_samples`` evenly spaced steps, each memory reads the next camera
   before it is written: read time and cache bytes as the cache grows.
2. **Reads at the full cache**: ``read_repeats`` reads per memory, interleaved pair by pair after a
   warm-up read (each read follows the other memory's, as in a rollout, where a read follows the
   previous step's heavy decode: caches are cold); medians, and the read speedup as the median of the
   pairwise ratios. Also each memory's reads back to back (``read_ms_warm``: hot caches, the best case).
3. **Whole steps at the full cache**: ``step_repeats`` steps per memory (read, generate, decode,
   estimate depth, write), the memories' order alternating; the write goes to a fresh memory of the
   same kind so the timed cache stays the same. Generation uses the same noise for every memory.

Latents stored by the latent memory come from the embedded VAE (same f = 8, C = 4 shapes as the SD
layout), so filling the caches never runs the slow random SD VAE; the RGB memory's read runs the VAE
under test, which is the cost being measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mirage_viz.backbone import load_embedded_backbone
from mirage_viz.geometry.cameras import Intrinsics
from mirage_viz.rollout.config import RolloutConfig
from mirage_viz.rollout.engine import make_memory
from mirage_viz.memories import SpatialMemory
from mirage_viz.rollout.step import STAGES, run_step
from mirage_viz.scenes.trajectories import make_trajectory
from mirage_viz.scenes.worlds import make_world
from mirage_viz.bench.common import VAE_KINDS, bench_backbone, median, pairwise_ratio, timed_ms, true_observations

__all__ = ["SpeedSetting", "measure_speed"]

TIMED_MEMORIES = ("latent", "rgb", "none")


@dataclass(frozen=True)
class SpeedSetting:
    size: int = 256
    vae: str = "embedded"
    steps: int = 12  # loop steps: the caches hold steps + 1 frames at the end
    growth_samples: int = 8  # steps at which the growing caches are read
    read_repeats: int = 5
    step_repeats: int = 3
    world: str = "room"
    seed: int = 0


def _step(memory: SpatialMemory, scratch: SpatialMemory, backbone, camera, latent_shape, seed: int) -> dict[str, float]:
    """One timed step of ``memory`` at ``camera`` (the rollout's own step); the write goes to ``scratch``."""
    scratch.reset()
    noise = torch.Generator().manual_seed(seed)
    return run_step(memory, backbone, camera, latent_shape, noise, lambda frame: (backbone.estimate_depth(frame), "estimated"),
                    write_to=scratch).timings_ms


@torch.no_grad()
def measure_speed(setting: SpeedSetting) -> dict:
    """Everything measured for one (size, VAE): see the module docstring. JSON-ready."""
    backbone = bench_backbone(setting.vae)
    embedded = load_embedded_backbone()
    config = RolloutConfig(size=setting.size, memories=TIMED_MEMORIES)
    memories = {name: make_memory(name, backbone, config) for name in TIMED_MEMORIES}
    scratch = {name: make_memory(name, backbone, config) for name in TIMED_MEMORIES}
    factor = backbone.downsample_factor
    latent_shape = (backbone.latent_channels, setting.size // factor, setting.size // factor)
    cameras = make_trajectory("loop", setting.steps).cameras(Intrinsics.from_fov(setting.size, setting.size, 60.0))
    observations = true_observations(make_world(setting.world, setting.seed), cameras, embedded.encode)

    # 1. growth: read the next camera, then write its frame
    memories["latent"].read(cameras[1], latent_shape)  # warm-up of both reads (first calls allocate)
    memories["rgb"].read(cameras[1], latent_shape)
    growth = {"step": [], "read_ms": {"latent": [], "rgb": []}, "cache_bytes": {"latent": [], "rgb": []},
              "cache_points": {"latent": [], "rgb": []}}
    sampled = {round(1 + i * (setting.steps - 1) / max(1, setting.growth_samples - 1)) for i in range(setting.growth_samples)}
    for step, observation in enumerate(observations):
        if step in sampled:
            growth["step"].append(step)
            for name in ("latent", "rgb"):
                _, read_ms = timed_ms(lambda: memories[name].read(observation.camera, latent_shape))
                growth["read_ms"][name].append(round(read_ms, 4))
        for name in ("latent", "rgb"):
            memories[name].write(observation)
            if step in sampled:
                stats = memories[name].stats()
                growth["cache_bytes"][name].append(stats.bytes)
                growth["cache_points"][name].append(stats.points)

    # 2. reads at the full cache, pair by pair
    probe = cameras[len(cameras) // 2]
    reads: dict[str, list[float]] = {"latent": [], "rgb": []}
    for repeat in range(setting.read_repeats):
        order = ("latent", "rgb") if repeat % 2 == 0 else ("rgb", "latent")
        for name in order:
            reads[name].append(round(timed_ms(lambda: memories[name].read(probe, latent_shape))[1], 4))  # as written
    warm = {name: [timed_ms(lambda: memories[name].read(probe, latent_shape))[1] for _ in range(setting.read_repeats)]
            for name in ("latent", "rgb")}

    # 3. whole steps at the full cache
    _step(memories["none"], scratch["none"], backbone, probe, latent_shape, setting.seed)  # warm-up
    steps: dict[str, list[dict[str, float]]] = {name: [] for name in TIMED_MEMORIES}
    for repeat in range(setting.step_repeats):
        order = TIMED_MEMORIES if repeat % 2 == 0 else TIMED_MEMORIES[::-1]
        for name in order:
            steps[name].append(_step(memories[name], scratch[name], backbone, probe, latent_shape, setting.seed + repeat))
    step_totals = {name: [round(sum(t.values()), 3) for t in samples] for name, samples in steps.items()}  # as written
    stage_ms = {name: {stage: round(median([t[stage] for t in samples]), 3) for stage in STAGES}
                for name, samples in steps.items()}

    cache_bytes = {name: memories[name].stats().bytes for name in ("latent", "rgb")}
    return {
        "size": setting.size,
        "vae": setting.vae,
        "vae_note": VAE_KINDS[setting.vae],
        "latent_shape": list(latent_shape),
        "frames_in_cache": len(observations),
        "read_ms": {name: round(median(samples), 4) for name, samples in reads.items()},
        "read_samples_ms": reads,
        "read_speedup": pairwise_ratio(reads["rgb"], reads["latent"]),
        "read_ms_warm": {name: round(median(samples), 4) for name, samples in warm.items()},
        "read_speedup_warm": median(warm["rgb"]) / median(warm["latent"]),
        "step_ms": {name: round(median(samples), 3) for name, samples in step_totals.items()},
        "step_samples_ms": step_totals,
        "step_speedup": pairwise_ratio(step_totals["rgb"], step_totals["latent"]),
        "stage_ms": stage_ms,
        "dominant_stage": {name: max(stages, key=stages.get) for name, stages in stage_ms.items()},
        "cache_bytes": cache_bytes,
        "cache_points": {name: memories[name].stats().points for name in ("latent", "rgb")},
        "cache_bytes_ratio": cache_bytes["rgb"] / cache_bytes["latent"],
        "growth": growth,
    }
