"""Train the embedded warp-conditioned denoiser: ``python -m mirage_viz.training.denoiser``.

Training pairs are real warps between views of the synthetic worlds, made by the same memories
the engine uses: 1-3 source views near a target view are written into a latent memory (or, for a
share of the pairs, an RGB point-cloud memory, so both memories' conditionings are in
distribution), and the memory's read at the target camera is the conditioning; the target view's
VAE latent is the clean sample. A share of pairs gets an empty conditioning (the no-memory case).

Each pair is drawn from a scenario (``SCENARIOS``), so the rollouts' harder cases are in the data:
``near`` (sources close to the target), ``revisit`` (one source is the target's own pose, as when a
loop returns: the covered cells are the answer), ``far`` (long excursions) and ``generated`` (the
sources are frames a generator made, ``--drift-from``, not true ones, so the drift of a rollout is
learned). ``--covered-weight`` weighs the loss on covered cells. ``--init`` starts from saved weights.
Needs the trained VAE in ``mirage_viz/assets/vae``.
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
from mirage_viz.scenes.data import HELD_OUT_SEED_START, nearby_camera, random_camera
from mirage_viz.memories import LatentSpatialMemory, NoMemory, Observation, RGBPointCloudMemory
from mirage_viz.models.denoiser import UNET_SIZES, WarpConditionedPipeline, build_embedded_unet, build_scheduler
from mirage_viz.models.vae import decode_latents, encode_images, load_vae
from mirage_viz.scenes.worlds import SyntheticWorld
from mirage_viz.training.common import ASSETS, Log, cosine_lr, descend, save_result, seed_everything


SCENARIOS = ("near", "revisit", "far", "generated")  # how a pair's source views are chosen (module docstring)
DEFAULT_SHARES = "near=0.4,revisit=0.2,far=0.2,generated=0.2"


def parse_shares(text: str) -> np.ndarray:
    """``"near=0.4,revisit=0.2,..."`` -> probabilities (len(SCENARIOS),) summing to 1; unnamed scenarios get 0."""
    shares = dict.fromkeys(SCENARIOS, 0.0)
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        if name not in shares:
            raise ValueError(f"unknown scenario {name!r} in {text!r}; choose from {', '.join(SCENARIOS)}")
        try:
            shares[name] = float(value)
        except ValueError:
            raise ValueError(f"scenario share must be a number, got {item!r}") from None
    total = sum(shares.values())
    if total <= 0 or min(shares.values()) < 0:
        raise ValueError(f"scenario shares must be >= 0 and not all 0, got {text!r}")
    return np.array([shares[name] / total for name in SCENARIOS])


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
def make_pairs(vae: AutoencoderKL | AutoencoderTiny, seeds: range, per_world: int, size: int, rng_seed: int,
               shares: np.ndarray | None = None, drift_from: WarpConditionedPipeline | None = None) -> dict[str, torch.Tensor]:
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
                  shares: np.ndarray) -> dict[str, torch.Tensor]:
    torch.set_num_threads(1)
    drift_from = WarpConditionedPipeline.from_pretrained(drift_path) if drift_path is not None else None
    return make_pairs(load_vae(vae_path), seeds, per_world, size, rng_seed, shares, drift_from)


def make_pairs_parallel(vae_path: Path, drift_path: Path | None, seeds: range, per_world: int, size: int, rng_seed: int,
                        shares: np.ndarray, workers: int) -> dict[str, torch.Tensor]:
    """:func:`make_pairs` over ``workers`` processes (one thread each), worlds split between them; the same pairs."""
    chunks = [list(seeds)[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = list(pool.map(_pairs_worker, *zip(*[(vae_path, drift_path, c, per_world, size, rng_seed, shares) for c in chunks if c])))
    order = torch.cat([torch.tensor(c) for c in chunks if c]).repeat_interleave(per_world).argsort(stable=True)
    return {name: torch.cat([part[name] for part in parts])[order] for name in parts[0]}


@torch.no_grad()
def evaluate(pipeline: WarpConditionedPipeline, pairs: dict[str, torch.Tensor], steps: int) -> dict[str, float]:
    """Latent MSE of sampled latents against targets, per memory kind, on held-out worlds."""
    pipeline.unet.eval()
    generator = torch.Generator().manual_seed(0)
    out = pipeline(pairs["conditions"], pairs["masks"], steps, generator).latents
    errors = (out - pairs["targets"]).pow(2).mean(dim=(1, 2, 3))
    pipeline.unet.train()
    names = ["none", "latent", "rgb"]
    result = {f"mse_{names[k]}": errors[pairs["kinds"] == k].mean().item() for k in range(3) if (pairs["kinds"] == k).any()}
    covered = pairs["masks"].expand_as(out) > 0.5  # (N, C, h, w)
    result["mse_covered"] = (out - pairs["targets"])[covered].pow(2).mean().item() if covered.any() else float("nan")
    for index, name in enumerate(SCENARIOS):
        chosen = (pairs["scenarios"] == index) & (pairs["kinds"] > 0)
        if chosen.any():
            result[f"mse_{name}"] = errors[chosen].mean().item()
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=3000, help="optimizer steps")
    parser.add_argument("--batch", type=int, default=24)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--worlds", type=int, default=60)
    parser.add_argument("--per-world", type=int, default=50, help="training pairs per world")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--unet", choices=list(UNET_SIZES), default="small", help="UNet shape (models.denoiser.UNET_SIZES)")
    parser.add_argument("--init", type=Path, default=None, help="start from this saved denoiser (its UNet shape wins)")
    parser.add_argument("--shares", default=DEFAULT_SHARES, help=f"scenario shares of the pairs, from {', '.join(SCENARIOS)}")
    parser.add_argument("--drift-from", type=Path, default=ASSETS / "denoiser",
                        help="the generator that makes the 'generated' scenario's source frames")
    parser.add_argument("--exclude", default="", help="comma-separated scenarios left out of training (ablations)")
    parser.add_argument("--covered-weight", type=float, default=1.0,
                        help="loss weight of covered cells relative to holes (1: the plain x0 MSE)")
    parser.add_argument("--workers", type=int, default=1, help="processes that make the pairs (same pairs for any count)")
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vae", type=Path, default=ASSETS / "vae")
    parser.add_argument("--pairs-cache", type=Path, default=None, help="reuse or save the generated pairs here (.pt)")
    parser.add_argument("--out", type=Path, default=ASSETS / "denoiser")
    args = parser.parse_args(argv)
    try:
        shares = parse_shares(args.shares)
    except ValueError as error:
        parser.error(f"--shares: {error}")
    excluded = [name.strip() for name in args.exclude.split(",") if name.strip()]
    for name in excluded:
        if name not in SCENARIOS:
            parser.error(f"--exclude: unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    if args.covered_weight <= 0:
        parser.error(f"--covered-weight must be > 0, got {args.covered_weight}")

    seed_everything(args.seed)
    log = Log(args.out.parent / f"{args.out.name}_train_log.jsonl")
    vae = load_vae(args.vae)
    needs_drift = shares[SCENARIOS.index("generated")] > 0
    drift_from = WarpConditionedPipeline.from_pretrained(args.drift_from) if needs_drift else None
    if args.pairs_cache is not None and args.pairs_cache.exists():
        train = torch.load(args.pairs_cache)
    else:
        if args.workers > 1:
            train = make_pairs_parallel(args.vae, args.drift_from if needs_drift else None, range(args.worlds), args.per_world,
                                        args.size, args.seed, shares, args.workers)
        else:
            train = make_pairs(vae, range(args.worlds), args.per_world, args.size, args.seed, shares, drift_from)
        if args.pairs_cache is not None:
            torch.save(train, args.pairs_cache)
    held_out = make_pairs(vae, range(HELD_OUT_SEED_START, HELD_OUT_SEED_START + 4), 8, args.size, args.seed + 1, shares, drift_from)
    keep = ~torch.isin(train["scenarios"], torch.tensor([SCENARIOS.index(name) for name in excluded], dtype=torch.long))
    train = {name: values[keep] for name, values in train.items()}
    log(event="data", train_pairs=len(train["targets"]), held_out_pairs=len(held_out["targets"]),
        train_coverage=train["masks"].mean().item(), excluded=args.exclude)

    if args.init is not None:
        unet = WarpConditionedPipeline.from_pretrained(args.init).unet
    else:
        unet = build_embedded_unet(vae.config.latent_channels, args.unet)
    scheduler = build_scheduler()
    pipeline = WarpConditionedPipeline(unet, scheduler)
    unet.train()
    optimizer = torch.optim.AdamW(unet.parameters(), lr=args.lr, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(args.seed)
    count = len(train["targets"])
    for step in range(args.iters):
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, args.iters, args.lr)
        index = torch.randint(0, count, (args.batch,), generator=generator)
        target, condition, mask = train["targets"][index], train["conditions"][index], train["masks"][index]
        noise = torch.randn(target.shape, generator=generator)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (args.batch,), generator=generator)
        noisy = scheduler.add_noise(target, noise, timesteps)
        prediction = unet(torch.cat([noisy, mask, condition], dim=1), timesteps).sample  # prediction_type="sample"
        weight = 1.0 + (args.covered_weight - 1.0) * mask  # (B, 1, h, w)
        loss = (weight * (prediction - target).square()).mean() / weight.mean()
        descend(loss, optimizer, clip=unet.parameters())
        if step % 50 == 0:
            log(step=step, loss=loss.item())
        if (step + 1) % args.eval_every == 0 or step + 1 == args.iters:
            log(step=step + 1, **evaluate(pipeline, held_out, 6))
    unet.eval()
    result = {"iters": args.iters, "seed": args.seed, "train_pairs": count, "unet": args.unet if args.init is None else f"init {args.init.name}",
              "shares": args.shares, "excluded": args.exclude, "covered_weight": args.covered_weight,
              **evaluate(pipeline, held_out, 6)}
    return save_result(pipeline, args.out, result, log)


if __name__ == "__main__":
    main()
