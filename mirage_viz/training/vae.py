"""Train the embedded VAE on synthetic views: ``python -m mirage_viz.training.vae``.

Seeded and CPU-feasible: every batch is freshly rendered (128x128 views of a pool of training
worlds, random field of view, random colour-channel order), so the model never sees a view twice
and learns colours it was not shown. The model starts as a working mean-colour autoencoder
(:func:`~mirage_viz.models.vae.init_mean_colour_path`, about 24 dB) and learns the detail with
MSE + an 8x8 mean-colour MSE + a small latent penalty, Adam with a cosine schedule. Reports PSNR
on held-out worlds at 256x256 and saves with ``save_pretrained`` (safetensors) into ``--out``.

``--decoder-only --resume PATH`` sharpens a trained VAE without moving its latent space: the encoder and the
scaling factor stay frozen (so a denoiser trained on those latents stays valid) and the decoder learns, beside
MSE, to draw edges where MSE alone blurs them (``--sharpness-weight``, ``--sharpness-loss``, or a PatchGAN's
hinge loss with ``--adversarial-weight``).

``--downsample-factor 4`` (or 2) and ``--latent-channels C`` train a new VAE with a finer latent than the shipped
f = 8, 4 channels: a measurement of what a finer latent keeps (README, "Embedded models"), not a shipped model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
import numpy as np

from mirage_viz.geometry.cameras import Intrinsics
from mirage_viz.scenes.data import HELD_OUT_SEED_START, random_camera, render_views
from mirage_viz.metrics import gradient_energy, psnr
from mirage_viz.models.vae import (EMBEDDED_DOWNSAMPLE_FACTORS, build_embedded_vae, decode_latents, encode_images,
                                   init_mean_colour_path, load_vae, vae_downsample_factor)
from mirage_viz.scenes.worlds import SyntheticWorld
from mirage_viz.training.discriminator import PatchDiscriminator, discriminator_hinge_loss, generator_hinge_loss
from mirage_viz.training.common import ASSETS, Log, cosine_lr, descend, save_result, seed_everything


def cell_gradient_rms(images: torch.Tensor, cell: int = 8) -> torch.Tensor:
    """images (B, 3, H, W) -> (B, 1, H / cell, W / cell): the RMS finite difference (x and y, all channels) per cell."""
    dx = F.pad(images[..., :, 1:] - images[..., :, :-1], (0, 1, 0, 0)).square().sum(1, keepdim=True)
    dy = F.pad(images[..., 1:, :] - images[..., :-1, :], (0, 0, 0, 1)).square().sum(1, keepdim=True)
    return (F.avg_pool2d(dx + dy, cell) + 1e-8).sqrt()


def gradient_l1(reconstruction: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """L1 between the finite differences (x and y) of two (B, 3, H, W) images (it favours few, sparse edges: measured,
    it made the decoder smoother, not sharper; see the README)."""
    def differences(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]
    (rx, ry), (tx, ty) = differences(reconstruction), differences(truth)
    return F.l1_loss(rx, tx) + F.l1_loss(ry, ty)


SHARPNESS_LOSSES = {
    "cell-rms": lambda reconstruction, truth: F.l1_loss(cell_gradient_rms(reconstruction), cell_gradient_rms(truth)),
    "gradient-l1": gradient_l1,
}


@torch.no_grad()
def evaluate(vae, images: torch.Tensor) -> tuple[float, float]:
    """Held-out PSNR (dB) and sharpness (gradient energy relative to the truth) of the VAE's reconstructions."""
    vae.eval()
    scores, sharpness = [], []
    for chunk in images.split(8):
        x = chunk.float() / 255
        reconstruction = decode_latents(vae, encode_images(vae, x))
        scores.append(psnr(reconstruction, x))
        sharpness.append(gradient_energy(reconstruction) / gradient_energy(x))
    vae.train()
    return sum(scores) / len(scores), sum(sharpness) / len(sharpness)


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
    parser.add_argument("--low-pass-weight", type=float, default=4.0, help="weight of the per-cell mean-colour loss")
    parser.add_argument("--downsample-factor", type=int, choices=EMBEDDED_DOWNSAMPLE_FACTORS, default=8,
                        help="pixels per latent cell of a new VAE (8 ships, as Stable Diffusion's; 4 and 2 are finer)")
    parser.add_argument("--latent-channels", type=int, default=4, help="latent channels of a new VAE (4 ships)")
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--held-out-views", type=int, default=8, help="256x256 views per held-out world (4 worlds)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", type=Path, default=None, help="start from a saved VAE folder instead of scratch")
    parser.add_argument("--decoder-only", action="store_true",
                        help="train the decoder only: the encoder and scaling factor of --resume stay as they are")
    parser.add_argument("--sharpness-weight", type=float, default=0.0,
                        help="weight of the sharpness loss (--sharpness-loss) beside MSE")
    parser.add_argument("--sharpness-loss", choices=sorted(SHARPNESS_LOSSES), default="cell-rms",
                        help="gradient-l1: L1 between the images' finite differences; "
                             "cell-rms: L1 between their RMS gradient per 8x8 cell (detail energy, any phase)")
    parser.add_argument("--adversarial-weight", type=float, default=0.0,
                        help="weight of a PatchGAN discriminator's hinge loss beside MSE (trained alongside, lr 2e-4)")
    parser.add_argument("--out", type=Path, default=ASSETS / "vae")
    args = parser.parse_args(argv)
    if args.resume is not None and (args.downsample_factor != 8 or args.latent_channels != 4):
        parser.error("--downsample-factor and --latent-channels shape a new VAE; --resume keeps the saved one's")
    if args.latent_channels < 3:
        parser.error(f"--latent-channels must be >= 3 (the first three carry colour), got {args.latent_channels}")
    if args.decoder_only and args.resume is None:
        parser.error("--decoder-only sharpens a trained VAE: give it with --resume PATH (e.g. mirage_viz/assets/vae)")
    if args.iters < 1 or args.batch < 1 or args.held_out_views < 1 or args.crop < 8 or args.crop % 8:
        parser.error("--iters, --batch and --held-out-views must be >= 1 and --crop a multiple of 8")
    if args.sharpness_weight < 0 or args.adversarial_weight < 0:
        parser.error(f"--sharpness-weight and --adversarial-weight must be >= 0, "
                     f"got {args.sharpness_weight} and {args.adversarial_weight}")

    seed_everything(args.seed)
    views = FreshViews(args.worlds, args.crop, args.seed)
    held_out = render_views(range(HELD_OUT_SEED_START, HELD_OUT_SEED_START + 4), args.held_out_views, 256, rng_seed=args.seed + 1)
    log = Log(args.out.parent / f"{args.out.name}_train_log.jsonl")
    log(event="data", train_worlds=args.worlds, held_out_views=len(held_out))

    if args.resume is not None:  # continue in the unscaled latent space the weights were trained in
        vae = load_vae(args.resume)
        frozen_scaling_factor = vae.config.scaling_factor
        vae.register_to_config(scaling_factor=1.0)
    else:
        vae = init_mean_colour_path(build_embedded_vae(args.downsample_factor, args.latent_channels))
    cell = vae_downsample_factor(vae)
    vae.train()
    if args.decoder_only:
        vae.encoder.requires_grad_(False)
    trained = [p for p in vae.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trained, lr=args.lr)
    if args.adversarial_weight > 0:
        discriminator = PatchDiscriminator()
        critic_optimizer = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.9))
    for step in range(args.iters):
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, args.iters, args.lr)
        x = views.batch(args.batch)
        with torch.set_grad_enabled(not args.decoder_only):
            latents = encode_images(vae, x)
        reconstruction = (vae.decode(latents).sample + 1) / 2
        # The low-pass term makes each latent cell carry its patch's mean colour from the start;
        # without it a small model spends its 4 channels on luminance and learns chroma last.
        low_pass = F.mse_loss(F.avg_pool2d(reconstruction, cell), F.avg_pool2d(x, cell))
        loss = F.mse_loss(reconstruction, x) + args.low_pass_weight * low_pass + 1e-4 * latents.pow(2).mean()
        if args.sharpness_weight > 0:
            loss = loss + args.sharpness_weight * SHARPNESS_LOSSES[args.sharpness_loss](reconstruction, x)
        if args.adversarial_weight > 0:
            critic_loss = discriminator_hinge_loss(discriminator(x), discriminator(reconstruction.detach()))
            descend(critic_loss, critic_optimizer)
            loss = loss + args.adversarial_weight * generator_hinge_loss(discriminator(reconstruction))
        descend(loss, optimizer, clip=trained)
        if step % 50 == 0:
            log(step=step, loss=loss.item())
        if (step + 1) % args.eval_every == 0 or step + 1 == args.iters:
            held_out_psnr, held_out_sharpness = evaluate(vae, held_out)
            log(step=step + 1, held_out_psnr=held_out_psnr, held_out_sharpness=held_out_sharpness)
            vae.save_pretrained(args.out)  # a usable checkpoint at every evaluation (in the unscaled space)

    with torch.no_grad():  # unit-variance latents, as diffusers' scaling_factor
        vae.eval()
        if args.decoder_only:  # the latents are the resumed VAE's, so is their scale
            vae.register_to_config(scaling_factor=frozen_scaling_factor)
        else:
            latents = torch.cat([encode_images(vae, views.batch(16)) for _ in range(8)])
            vae.register_to_config(scaling_factor=float(1.0 / latents.std()))
    held_out_psnr, held_out_sharpness = evaluate(vae, held_out)
    result = {"held_out_psnr_db": held_out_psnr, "held_out_sharpness": held_out_sharpness, "iters": args.iters,
              "seed": args.seed, "lr": args.lr, "decoder_only": args.decoder_only, "sharpness_weight": args.sharpness_weight,
              "sharpness_loss": args.sharpness_loss if args.sharpness_weight > 0 else None,
              "adversarial_weight": args.adversarial_weight, "downsample_factor": cell,
              "latent_channels": vae.config.latent_channels, "scaling_factor": vae.config.scaling_factor, "held_out_worlds": [HELD_OUT_SEED_START, HELD_OUT_SEED_START + 3]}
    return save_result(vae, args.out, result, log)


if __name__ == "__main__":
    main()
