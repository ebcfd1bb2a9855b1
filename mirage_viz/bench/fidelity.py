"""Consistency and fidelity on synthetic worlds with ``loop`` trajectories.

- :func:`loop_consistency`: full rollouts (generate, decode, lift) of the three memories side by
  side: per-step PSNR and SSIM against the truth, and the revisit (the return frame, back at the
  start pose, against the first frame and against the truth).
- :func:`read_quality`: memories filled with the true views (teacher forcing), each read against the
  true next view: the empty-cell rate of the mask (the paper's figure for depth downsampling modes)
  and the latent error on covered cells, with bytes and read time: depth modes, latent- vs
  pixel-resolution lifting, fused and half-precision caches.
- :func:`half_precision_difference`: one read from a float16 cache against the float32 one.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

import torch

from mirage_viz.backbone import SHARP_VAE, Backbone
from mirage_viz.geometry.cameras import Intrinsics
from mirage_viz.rollout.config import MEMORY_SETTINGS, RolloutConfig
from mirage_viz.rollout.records import StepRecord
from mirage_viz.rollout.engine import run_rollout
from mirage_viz.memories import LatentSpatialMemory, Observation, SpatialMemory
from mirage_viz.metrics import SHARPNESS_MEASURES, gradient_energy, psnr, sharpness_ratios, ssim
from mirage_viz.scenes.trajectories import make_trajectory
from mirage_viz.scenes.worlds import make_world
from mirage_viz.bench.common import median, timed_ms, true_observations

__all__ = ["SHARP_DECODER_ROW", "PAPER_EMPTY_CELL_RATES", "loop_consistency", "memory_options", "rollout_scores", "trajectory_views", "read_quality", "half_precision_difference"]

# Mirage's measured empty-cell rates of the warped latent per depth-downsampling mode (its data, not ours).
PAPER_EMPTY_CELL_RATES = {"bilinear": 0.425, "nearest": 0.478, "area": 0.537, "median": 0.522}


def _mean(values: Sequence[float]) -> float:
    return round(float(statistics.fmean(values)), 4)


def rollout_scores(records: Sequence[StepRecord]) -> dict:
    """One memory's rollout in numbers: mean PSNR/SSIM of the generated steps, the last frame, cache, read time."""
    generated = records[1:]
    return {
        "mean_psnr": _mean([r.psnr for r in generated]),
        "mean_ssim": _mean([r.ssim for r in generated]),
        "return_psnr_vs_truth": round(records[-1].psnr, 4),
        "cache_bytes": records[-1].cache_bytes,
        "cache_points": records[-1].cache_points,
        "read_ms_median": round(median([r.timings_ms["read"] for r in generated]), 4),
    }


def loop_consistency(worlds: Sequence[str], steps: int, size: int, backbone: Backbone, seed: int = 0,
                     **options: object) -> dict:
    """Rollouts of ``loop`` in each world (with the rollout ``options``, such as ``known_cells=True``); per memory:
    per-step and mean PSNR/SSIM, the revisit, and the sharpness of generated frames: against the truth
    (``sharpness``) and against the VAE's own reconstruction of the truth (``sharpness_vs_vae``: what the generator keeps of
    what its VAE can show; the VAE alone keeps about 0.2 of the truth's gradient energy on the synthetic worlds), and in
    mean absolute gradient and in gradient length against the truth (``sharpness_mean_abs``: the measure issue 15's
    figures were taken in; ``sharpness_length`` beside it; ``sharpness`` stays the energy)."""
    per_world = {}
    for world in worlds:
        config = RolloutConfig(world=world, trajectory="loop", steps=steps, size=size, seed=seed).with_options(**options)
        rollout = run_rollout(config, backbone=backbone)
        per_world[world] = {}
        truths = torch.stack([r.true_frame for r in next(iter(rollout.records.values()))[1:]])  # (T-1, 3, H, W)
        codec = backbone.with_decoder_sharpness(config.options()["decoder_sharpness"])  # the decoder the rollout ran
        through_vae = codec.decode(codec.encode(truths))  # (T-1, 3, H, W)
        for name, records in rollout.records.items():
            last, first = records[-1], records[0]
            sharpness = [sharpness_ratios(r.frame, r.true_frame) for r in records[1:]]
            per_world[world][name] = rollout_scores(records) | {
                "psnr": [round(r.psnr, 4) for r in records],
                "ssim": [round(r.ssim, 5) for r in records],
                # identical frames (known cells and a first-hand cache give the first frame back) have no finite PSNR:
                # written as IDENTICAL_PSNR_DB so the JSON stays valid
                "return_psnr_vs_first": round(min(psnr(last.frame, first.frame), IDENTICAL_PSNR_DB), 4),
                "return_ssim_vs_first": round(ssim(last.frame, first.frame), 5),
                "vae_reconstruction_psnr": round(first.psnr, 4),
                **{key: _mean([ratios[key] for ratios in sharpness]) for key in SHARPNESS_MEASURES},
                "sharpness_vs_vae": _mean([gradient_energy(r.frame) / gradient_energy(v) for r, v in zip(records[1:], through_vae)]),
            }
    names = next(iter(per_world.values())).keys()
    overall = {
        name: {
            key: _mean([per_world[w][name][key] for w in worlds])
            for key in ("mean_psnr", "mean_ssim", "return_psnr_vs_truth", "return_psnr_vs_first",
                        "vae_reconstruction_psnr", *SHARPNESS_MEASURES, "sharpness_vs_vae")
        }
        for name in names
    }
    return {"worlds": list(worlds), "steps": steps, "size": size, "per_world": per_world, "mean_over_worlds": overall}


IDENTICAL_PSNR_DB = 100.0  # the PSNR written for two identical frames (float32 frames that differ are below ~90 dB)


# The memory-options rows are the named memory settings (rollout.config.MEMORY_SETTINGS: row name = setting name), and
# one more: the paper's memory with every frame decoded by the shipped VAE whose decoder was trained with a
# discriminator (``--vae embedded-sharp``: same encoder, same latents, sharper edges). It is what the sharp decoder
# does alone, the end point of "sharp and close"'s ``decoder_sharpness``. Other grids of options: the sweep.
SHARP_DECODER_ROW = f"paper, --vae {SHARP_VAE}"


def memory_options(worlds: Sequence[str], loop_steps: Sequence[int], size: int, backbone: Backbone, seed: int = 0,
                   sharp_backbone: Backbone | None = None) -> dict:
    """:func:`loop_consistency` for every named memory setting (:data:`MEMORY_SETTINGS`) and loop length, side by side;
    with ``sharp_backbone``, also the paper's memory decoded by it (the row :data:`SHARP_DECODER_ROW`)."""
    runs = [(name, setting.options, backbone) for name, setting in MEMORY_SETTINGS.items()]
    if sharp_backbone is not None:
        runs.append((SHARP_DECODER_ROW, MEMORY_SETTINGS["paper"].options, sharp_backbone))
    return {name: {str(steps): loop_consistency(worlds, steps, size, model, seed, **options) for steps in loop_steps}
            for name, options, model in runs}


def trajectory_views(world: str, trajectory: str, steps: int, size: int, backbone: Backbone, laps: int = 1) -> list[Observation]:
    """The true views along a preset (``laps`` times over: a later lap revisits every pose)."""
    cameras = make_trajectory(trajectory, steps).cameras(Intrinsics.from_fov(size, size, 60.0))
    views = true_observations(make_world(world), cameras, backbone.encode)
    return views + views[1:] * (laps - 1)


@torch.no_grad()
def read_quality(observations: Sequence[Observation], make: Callable[[], SpatialMemory]) -> dict:
    """Teacher-forced: read each next view before writing it; compare the read with its true latent."""
    memory = make()
    memory.write(observations[0])
    empty, error, read_ms = [], [], []
    points, nbytes = [memory.stats().points], [memory.stats().bytes]
    for observation in observations[1:]:
        read, elapsed_ms = timed_ms(lambda: memory.read(observation.camera, tuple(observation.latent.shape)))
        covered = read.mask
        empty.append(1.0 - float(covered.float().mean()))
        if covered.any():
            error.append(float(((read.latent - observation.latent)[:, covered] ** 2).mean()))
        read_ms.append(elapsed_ms)
        memory.write(observation)
        points.append(memory.stats().points)
        nbytes.append(memory.stats().bytes)
    stats = memory.stats()
    return {
        "empty_cell_rate": _mean(empty),
        "latent_mse_covered": _mean(error) if error else None,
        "read_ms_median": round(median(read_ms), 4),
        "cache_bytes": stats.bytes,
        "cache_points": stats.points,
        "points_per_step": points,  # after writing frame 0, 1, ...
        "bytes_per_step": nbytes,
    }


@torch.no_grad()
def half_precision_difference(observations: Sequence[Observation]) -> dict:
    """A float16 cache against a float32 one holding the same frames: how much one read changes."""
    caches = {dtype: LatentSpatialMemory(latent_dtype=dtype) for dtype in ("float32", "float16")}
    for memory in caches.values():
        for observation in observations[:-1]:
            memory.write(observation)
    target = observations[-1]
    reads = {dtype: memory.read(target.camera, tuple(target.latent.shape)) for dtype, memory in caches.items()}
    full, half = reads["float32"], reads["float16"]
    both = full.mask & half.mask
    difference = (full.latent - half.latent)[:, both].abs()
    return {
        "mask_agreement": round(float((full.mask == half.mask).float().mean()), 5),
        "max_abs_difference": round(float(difference.max()), 5) if difference.numel() else 0.0,
        "mean_abs_difference": round(float(difference.mean()), 6) if difference.numel() else 0.0,
        "latent_abs_max": round(float(full.latent.abs().max()), 4),
        "bytes": {dtype: memory.stats().bytes for dtype, memory in caches.items()},
    }
