"""Train the embedded warp-conditioned denoiser: ``python -m mirage_viz.training.denoiser``.

Training pairs are real warps between views of the synthetic worlds, made by the same memories
the engine uses: 1-3 source views near a target view are written into a latent memory (or, for a
share of the pairs, an RGB point-cloud memory, so both memories' conditionings are in
distribution), and the memory's read at the target camera is the conditioning; the target view's
VAE latent is the clean sample. A share of pairs gets an empty conditioning (the no-memory case).
Needs the trained VAE in ``mirage_viz/assets/vae``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, AutoencoderTiny

from mirage_viz.geometry.cameras import Intrinsics
from mirage_viz.scenes.data import HELD_OUT_SEED_START, nearby_camera, random_camera
from mirage_viz.memories import LatentSpatialMemory, NoMemory, Observation, RGBPointCloudMemory
from mirage_viz.models.denoiser import WarpConditionedPipeline, build_embedded_unet, build_scheduler
from mirage_viz.models.vae import encode_images, load_vae
from mirage_viz.scenes.worlds import SyntheticWorld
from mirage_viz.training.common import ASSETS, Log, cosine_lr, descend, save_result, seed_everything


@torch.no_grad()
def make_pairs(vae: AutoencoderKL | AutoencoderTiny, seeds: range, per_world: int, size: int, rng_seed: int) -> dict[str, torch.Tensor]:
    """Targets (N, C, h, w), conditionings (N, C, h, w), masks (N, 1, h, w) and the memory kind (N,)."""
    rng = np.random.default_rng(rng_seed)
    intrinsics = Intrinsics.from_fov(size, size, 60.0)
    encode = lambda images: encode_images(vae, images)  # noqa: E731
    targets, conditions, masks, kinds = [], [], [], []
    for seed in seeds:
        world = SyntheticWorld(name="train", seed=int(seed))
        for _ in range(per_world):
            target_camera = random_camera(world, rng, intrinsics)
            sources = [nearby_camera(target_camera, rng, max_shift=0.6, max_angle=0.35) for _ in range(int(rng.integers(1, 4)))]
            renders = [world.render(c) for c in [target_camera, *sources]]
            latents = encode(torch.stack([r.rgb for r in renders]))
            draw = rng.random()
            kind = 0 if draw < 0.1 else (1 if draw < 0.6 else 2)  # none, latent, rgb
            memory = [NoMemory(), LatentSpatialMemory(), RGBPointCloudMemory(encode)][kind]
            for camera, render, latent in zip(sources, renders[1:], latents[1:]):
                memory.write(Observation(camera=camera, image=render.rgb, latent=latent, depth=render.depth))
            read = memory.read(target_camera, tuple(latents.shape[1:]))
            targets.append(latents[0])
            conditions.append(read.latent)
            masks.append(read.mask[None].float())
            kinds.append(kind)
    return {"targets": torch.stack(targets), "conditions": torch.stack(conditions), "masks": torch.stack(masks),
            "kinds": torch.tensor(kinds)}


@torch.no_grad()
def evaluate(pipeline: WarpConditionedPipeline, pairs: dict[str, torch.Tensor], steps: int) -> dict[str, float]:
    """Latent MSE of sampled latents against targets, per memory kind, on held-out worlds."""
    pipeline.unet.eval()
    generator = torch.Generator().manual_seed(0)
    out = pipeline(pairs["conditions"], pairs["masks"], steps, generator).latents
    errors = (out - pairs["targets"]).pow(2).mean(dim=(1, 2, 3))
    pipeline.unet.train()
    names = ["none", "latent", "rgb"]
    return {f"mse_{names[k]}": errors[pairs["kinds"] == k].mean().item() for k in range(3) if (pairs["kinds"] == k).any()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=3000, help="optimizer steps (~13 min on 2 cores, after ~15 min of pairs)")
    parser.add_argument("--batch", type=int, default=24)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--worlds", type=int, default=60)
    parser.add_argument("--per-world", type=int, default=50, help="training pairs per world")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vae", type=Path, default=ASSETS / "vae")
    parser.add_argument("--pairs-cache", type=Path, default=None, help="reuse or save the generated pairs here (.pt)")
    parser.add_argument("--out", type=Path, default=ASSETS / "denoiser")
    args = parser.parse_args(argv)

    seed_everything(args.seed)
    log = Log(args.out.parent / f"{args.out.name}_train_log.jsonl")
    vae = load_vae(args.vae)
    if args.pairs_cache is not None and args.pairs_cache.exists():
        train = torch.load(args.pairs_cache)
    else:
        train = make_pairs(vae, range(args.worlds), args.per_world, args.size, args.seed)
        if args.pairs_cache is not None:
            torch.save(train, args.pairs_cache)
    held_out = make_pairs(vae, range(HELD_OUT_SEED_START, HELD_OUT_SEED_START + 4), 8, args.size, args.seed + 1)
    log(event="data", train_pairs=len(train["targets"]), held_out_pairs=len(held_out["targets"]),
        train_coverage=train["masks"].mean().item())

    unet = build_embedded_unet(vae.config.latent_channels)
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
        prediction = unet(torch.cat([noisy, mask, condition], dim=1), timesteps).sample
        loss = F.mse_loss(prediction, target)  # prediction_type="sample"
        descend(loss, optimizer, clip=unet.parameters())
        if step % 50 == 0:
            log(step=step, loss=loss.item())
        if (step + 1) % args.eval_every == 0 or step + 1 == args.iters:
            log(step=step + 1, **evaluate(pipeline, held_out, 6))
    unet.eval()
    result = {"iters": args.iters, "seed": args.seed, "train_pairs": count, **evaluate(pipeline, held_out, 6)}
    return save_result(pipeline, args.out, result, log)


if __name__ == "__main__":
    main()
