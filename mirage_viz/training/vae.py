"""Train the embedded VAE on synthetic views: ``python -m mirage_viz.training.vae``.

Seeded and CPU-feasible: every batch is freshly rendered (128x128 views of a pool of training
worlds, random field of view, random colour-channel order), so the model never sees a view twice
and learns colours it was not shown. The model starts as a working mean-colour autoencoder
(:func:`~mirage_viz.models.vae.init_mean_colour_path`, about 24 dB) and learns the detail with
MSE + an 8x8 mean-colour MSE + a small latent penalty, Adam with a cosine schedule. Reports PSNR
on held-out worlds at 256x256 and saves with ``save_pretrained`` (safetensors) into ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
import numpy as np

from mirage_viz.geometry.cameras import Intrinsics
from mirage_viz.scenes.data import HELD_OUT_SEED_START, random_camera, render_views
from mirage_viz.metrics import psnr
from mirage_viz.models.vae import build_embedded_vae, init_mean_colour_path, load_vae, decode_latents, encode_images
from mirage_viz.scenes.worlds import SyntheticWorld
from mirage_viz.training.common import ASSETS, Log, cosine_lr, descend, save_result, seed_everything


@torch.no_grad()
def evaluate(vae, images: torch.Tensor) -> float:
    vae.eval()
    scores = []
    for chunk in images.split(8):
        x = chunk.float() / 255
        scores.append(psnr(decode_latents(vae, encode_images(vae, x)), x))
    vae.train()
    return sum(scores) / len(scores)


class FreshViews:
    """An endless stream of new training views: (B, 3, size, size) in [0, 1]."""

    def __init__(self, worlds: int, size: int, seed: int) -> None:
        self.worlds = [SyntheticWorld(name="train", seed=s) for s in range(worlds)]
        self.rng = np.random.default_rng(seed)
        self.size = size

    def batch(self, count: int) -> torch.Tensor:
        images = []
        for _ in range(count):
            world = self.worlds[int(self.rng.integers(len(self.worlds)))]
            intrinsics = Intrinsics.from_fov(self.size, self.size, float(self.rng.uniform(35.0, 80.0)))
            rgb = world.render(random_camera(world, self.rng, intrinsics)).rgb
            images.append(rgb[self.rng.permutation(3)])  # any colour order is a plausible world
        return torch.stack(images)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=800, help="optimizer steps (~8 min on 2 cores)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=128, help="size of the training views")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--worlds", type=int, default=200, help="pool of training worlds (seeds 0..N-1)")
    parser.add_argument("--low-pass-weight", type=float, default=4.0, help="weight of the 8x8 mean-colour loss")
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", type=Path, default=None, help="start from a saved VAE folder instead of scratch")
    parser.add_argument("--out", type=Path, default=ASSETS / "vae")
    args = parser.parse_args(argv)

    seed_everything(args.seed)
    views = FreshViews(args.worlds, args.crop, args.seed)
    held_out = render_views(range(HELD_OUT_SEED_START, HELD_OUT_SEED_START + 4), 8, 256, rng_seed=args.seed + 1)
    log = Log(args.out.parent / f"{args.out.name}_train_log.jsonl")
    log(event="data", train_worlds=args.worlds, held_out_views=len(held_out))

    if args.resume is not None:  # continue in the unscaled latent space the weights were trained in
        vae = load_vae(args.resume)
        vae.register_to_config(scaling_factor=1.0)
    else:
        vae = init_mean_colour_path(build_embedded_vae())
    optimizer = torch.optim.Adam(vae.parameters(), lr=args.lr)
    for step in range(args.iters):
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, args.iters, args.lr)
        x = views.batch(args.batch)
        latents = encode_images(vae, x)
        reconstruction = (vae.decode(latents).sample + 1) / 2
        # The low-pass term makes each latent cell carry its patch's mean colour from the start;
        # without it a small model spends its 4 channels on luminance and learns chroma last.
        low_pass = F.mse_loss(F.avg_pool2d(reconstruction, 8), F.avg_pool2d(x, 8))
        loss = F.mse_loss(reconstruction, x) + args.low_pass_weight * low_pass + 1e-4 * latents.pow(2).mean()
        descend(loss, optimizer, clip=vae.parameters())
        if step % 50 == 0:
            log(step=step, loss=loss.item())
        if (step + 1) % args.eval_every == 0 or step + 1 == args.iters:
            log(step=step + 1, held_out_psnr=evaluate(vae, held_out))
            vae.save_pretrained(args.out)  # a usable checkpoint at every evaluation

    with torch.no_grad():  # unit-variance latents, as diffusers' scaling_factor
        vae.eval()
        latents = torch.cat([encode_images(vae, views.batch(16)) for _ in range(8)])
        vae.register_to_config(scaling_factor=float(1.0 / latents.std()))
    result = {"held_out_psnr_db": evaluate(vae, held_out), "iters": args.iters, "seed": args.seed,
              "scaling_factor": vae.config.scaling_factor, "held_out_worlds": [HELD_OUT_SEED_START, HELD_OUT_SEED_START + 3]}
    return save_result(vae, args.out, result, log)


if __name__ == "__main__":
    main()
