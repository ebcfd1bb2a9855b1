"""Make the embedded denoiser's warp pairs from the synthetic worlds: ``python -m mirage_viz.training.warp_pairs``.

Training pairs are real warps between views of the synthetic worlds, made by the same memories the engine uses:
1-3 source views near a target view are written into a latent memory (or, for a share of the pairs, an RGB
point-cloud memory, so both memories' conditionings are in distribution), and the memory's read at the target
camera is the conditioning; the target view's VAE latent is the clean sample. A share of pairs gets an empty
conditioning (the no-memory case).

Each pair is drawn from a scenario (``SCENARIOS``), so the rollouts' harder cases are in the data: ``near``
(sources close to the target), ``revisit`` (one source is the target's own pose, as when a loop returns: the
covered cells are the answer), ``far`` (long excursions) and ``generated`` (the sources are frames a generator
made, ``--drift-from``, not true ones, so the drift of a rollout is learned). Training worlds are seeds
``0 .. worlds-1``; held-out pairs come from worlds the training never sees (``HELD_OUT_SEED_START``).

The pairs file this writes is what ``python -m mirage_viz.training.denoiser --pairs-cache FILE`` trains from,
on a machine that needs no world renderer (a GPU machine, say).
"""

from __future__ import annotations

import argparse
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL, AutoencoderTiny

from mirage_viz.geometry.cameras import Camera, Intrinsics
from mirage_viz.memories import LatentSpatialMemory, NoMemory, Observation, RGBPointCloudMemory
from mirage_viz.models.denoiser import WarpConditionedPipeline
from mirage_viz.models.vae import decode_latents, encode_images, load_vae
from mirage_viz.scenes.data import HELD_OUT_SEED_START, nearby_camera, random_camera
from mirage_viz.scenes.worlds import SyntheticWorld
from mirage_viz.training.pair_data import SCENARIOS, Pairs, add_pair_arguments, check_pair_arguments, parse_shares, recipe_of, save_pairs

__all__ = ["HELD_OUT_WORLDS", "HELD_OUT_PER_WORLD", "drift", "make_pairs", "make_pairs_parallel", "make_training_pairs",
           "source_cameras"]

HELD_OUT_WORLDS, HELD_OUT_PER_WORLD = 4, 8  # the held-out set every training run evaluates on


def source_cameras(target: Camera, scenario: str, rng: np.random.Generator) -> list[Camera]:
    """1-3 cameras whose views go into the memory for ``target``, as ``scenario`` (``SCENARIOS``) chooses them."""
    count = int(rng.integers(1, 4))
    if scenario == "far":
        return [nearby_camera(target, rng, max_shift=1.2, max_angle=0.7) for _ in range(count)]
    sources = [nearby_camera(target, rng, max_shift=0.6, max_angle=0.35) for _ in range(count)]
    if scenario == "revisit":  # the target's own pose was seen first; later views were written after it
        sources[0] = target
    return sources


@torch.no_grad()
def drift(pipeline: WarpConditionedPipeline, latents: torch.Tensor, rng: np.random.Generator, steps: int = 6) -> torch.Tensor:
    """latents (N, C, h, w) -> what ``pipeline`` makes of them when it sees a random part (30-90% of cells) of each:
    generated frames, as a rollout writes them into memory."""
    n, _, h, w = latents.shape
    keep = torch.from_numpy(rng.uniform(0.3, 0.9, size=(n, 1, 1, 1))).float()
    coarse = torch.rand((n, 1, max(1, h // 4), max(1, w // 4)), generator=torch.Generator().manual_seed(int(rng.integers(2**31))))
    mask = (torch.nn.functional.interpolate(coarse, size=(h, w), mode="nearest") < keep).float()  # (N, 1, h, w) blobs
    generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
    return pipeline(latents * mask, mask, steps, generator).latents


@torch.no_grad()
def make_pairs(vae: AutoencoderKL | AutoencoderTiny, seeds: range | list[int], per_world: int, size: int, rng_seed: int,
               shares: np.ndarray | None = None, drift_from: WarpConditionedPipeline | None = None) -> Pairs:
    """Targets (N, C, h, w), conditionings (N, C, h, w), masks (N, 1, h, w), the memory kind (N,) and the scenario
    (N,), an index into ``SCENARIOS``. ``shares`` (len(SCENARIOS),) defaults to all ``near``; the ``generated``
    scenario needs ``drift_from``."""
    shares = parse_shares("near=1") if shares is None else shares
    if shares[SCENARIOS.index("generated")] > 0 and drift_from is None:
        raise ValueError("the 'generated' scenario needs a generator (drift_from) to make its source frames")
    intrinsics = Intrinsics.from_fov(size, size, 60.0)
    encode = lambda images: encode_images(vae, images)  # noqa: E731
    targets, conditions, masks, kinds, scenarios = [], [], [], [], []
    for seed in seeds:
        world = SyntheticWorld(name="train", seed=int(seed))
        rng = np.random.default_rng([rng_seed, int(seed)])  # per world: the pairs do not depend on how worlds are split
        for _ in range(per_world):
            target_camera = random_camera(world, rng, intrinsics)
            scenario = int(rng.choice(len(SCENARIOS), p=shares))
            sources = source_cameras(target_camera, SCENARIOS[scenario], rng)
            renders = [world.render(c) for c in [target_camera, *sources]]
            latents = encode(torch.stack([r.rgb for r in renders]))
            images = [r.rgb for r in renders[1:]]
            if SCENARIOS[scenario] == "generated":
                latents = torch.cat([latents[:1], drift(drift_from, latents[1:], rng)])
                images = list(decode_latents(vae, latents[1:]))
            draw = rng.random()
            kind = 0 if draw < 0.1 else (1 if draw < 0.6 else 2)  # none, latent, rgb
            memory = [NoMemory(), LatentSpatialMemory(), RGBPointCloudMemory(encode)][kind]
            for camera, render, image, latent in zip(sources, renders[1:], images, latents[1:]):
                memory.write(Observation(camera=camera, image=image, latent=latent, depth=render.depth))
            read = memory.read(target_camera, tuple(latents.shape[1:]))
            targets.append(latents[0])
            conditions.append(read.latent)
            masks.append(read.mask[None].float())
            kinds.append(kind)
            scenarios.append(scenario)
    return {"targets": torch.stack(targets), "conditions": torch.stack(conditions), "masks": torch.stack(masks),
            "kinds": torch.tensor(kinds), "scenarios": torch.tensor(scenarios)}


def _pairs_worker(vae_path: Path, drift_path: Path | None, seeds: list[int], per_world: int, size: int, rng_seed: int,
                  shares: np.ndarray) -> Pairs:
    torch.set_num_threads(1)
    drift_from = WarpConditionedPipeline.from_pretrained(drift_path) if drift_path is not None else None
    return make_pairs(load_vae(vae_path), seeds, per_world, size, rng_seed, shares, drift_from)


def make_pairs_parallel(vae_path: Path, drift_path: Path | None, seeds: range, per_world: int, size: int, rng_seed: int,
                        shares: np.ndarray, workers: int) -> Pairs:
    """:func:`make_pairs` over ``workers`` processes (one thread each), worlds split between them; the same pairs."""
    chunks = [list(seeds)[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = list(pool.map(_pairs_worker, *zip(*[(vae_path, drift_path, c, per_world, size, rng_seed, shares) for c in chunks if c])))
    order = torch.cat([torch.tensor(c) for c in chunks if c]).repeat_interleave(per_world).argsort(stable=True)
    return {name: torch.cat([part[name] for part in parts])[order] for name in parts[0]}


def make_training_pairs(vae_path: Path, drift_path: Path, worlds: int, per_world: int, size: int, seed: int,
                        shares: np.ndarray, workers: int = 1) -> tuple[Pairs, Pairs]:
    """(train, held_out): ``per_world`` pairs from each of worlds ``0 .. worlds-1``, and the held-out set
    (``HELD_OUT_PER_WORLD`` pairs from each of ``HELD_OUT_WORLDS`` worlds from ``HELD_OUT_SEED_START``)."""
    if not 1 <= worlds <= HELD_OUT_SEED_START:
        raise ValueError(f"worlds must be in [1, {HELD_OUT_SEED_START}] (later seeds are held out), got {worlds}")
    needs_drift = shares[SCENARIOS.index("generated")] > 0
    drift_from = WarpConditionedPipeline.from_pretrained(drift_path) if needs_drift else None
    vae = load_vae(vae_path)
    if workers > 1:
        train = make_pairs_parallel(vae_path, drift_path if needs_drift else None, range(worlds), per_world, size, seed,
                                    shares, workers)
    else:
        train = make_pairs(vae, range(worlds), per_world, size, seed, shares, drift_from)
    held_out_seeds = range(HELD_OUT_SEED_START, HELD_OUT_SEED_START + HELD_OUT_WORLDS)
    held_out = make_pairs(vae, held_out_seeds, HELD_OUT_PER_WORLD, size, seed + 1, shares, drift_from)
    return train, held_out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_pair_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="the pairs file to write (.pt)")
    args = parser.parse_args(argv)
    shares = check_pair_arguments(parser, args)
    try:
        train, held_out = make_training_pairs(args.vae, args.drift_from, args.worlds, args.per_world, args.size,
                                              args.seed, shares, args.workers)
    except ValueError as error:
        parser.error(str(error))
    recipe = recipe_of(args)
    save_pairs(args.out, train, held_out, recipe)
    summary = {**recipe, "train_pairs": len(train["targets"]), "held_out_pairs": len(held_out["targets"]),
               "bytes": args.out.stat().st_size}
    print(" ".join(f"{k}={v}" for k, v in summary.items()), flush=True)
    return summary


if __name__ == "__main__":
    main()
