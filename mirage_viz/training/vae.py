"""Train the embedded VAE on synthetic views: ``python -m mirage_viz.training.vae``.

Seeded and CPU-feasible: random 128x128 crops of 256x256 renders, MSE + a small latent penalty,
Adam with a cosine schedule. Reports PSNR on held-out worlds at 256x256 and saves with
``save_pretrained`` (safetensors) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data import HELD_OUT_SEED_START, render_views
from ..metrics import psnr
from ..models.vae import build_embedded_vae, decode_latents, encode_images
from .common import ASSETS, Log, cosine_lr, seed_everything


@torch.no_grad()
def evaluate(vae, images: torch.Tensor) -> float:
    vae.eval()
    scores = []
    for chunk in images.split(8):
        x = chunk.float() / 255
        scores.append(psnr(decode_latents(vae, encode_images(vae, x)), x))
    vae.train()
    return sum(scores) / len(scores)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=4000, help="optimizer steps (default 4000, ~30 min on 2 cores)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--worlds", type=int, default=80, help="training worlds (seeds 0..N-1)")
    parser.add_argument("--views", type=int, default=16, help="views per training world")
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ASSETS / "vae")
    args = parser.parse_args(argv)

    seed_everything(args.seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    train = render_views(range(args.worlds), args.views, 256, rng_seed=args.seed)
    held_out = render_views(range(HELD_OUT_SEED_START, HELD_OUT_SEED_START + 4), 8, 256, rng_seed=args.seed + 1)
    log = Log(args.out.parent / f"{args.out.name}_train_log.jsonl")
    log(event="data", train_views=len(train), held_out_views=len(held_out))

    vae = build_embedded_vae()
    optimizer = torch.optim.Adam(vae.parameters(), lr=args.lr)
    generator = torch.Generator().manual_seed(args.seed)
    for step in range(args.iters):
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, args.iters, args.lr)
        index = torch.randint(0, len(train), (args.batch,), generator=generator)
        top, left = torch.randint(0, 256 - args.crop + 1, (2,), generator=generator).tolist()
        x = train[index, :, top : top + args.crop, left : left + args.crop].float() / 255
        if torch.rand(1, generator=generator).item() < 0.5:
            x = x.flip(-1)
        latents = encode_images(vae, x)
        reconstruction = (vae.decode(latents).sample + 1) / 2
        loss = F.mse_loss(reconstruction, x) + 1e-4 * latents.pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        if step % 50 == 0:
            log(step=step, loss=loss.item())
        if (step + 1) % args.eval_every == 0 or step + 1 == args.iters:
            log(step=step + 1, held_out_psnr=evaluate(vae, held_out))

    with torch.no_grad():  # unit-variance latents, as diffusers' scaling_factor
        vae.eval()
        latents = torch.cat([encode_images(vae, c.float() / 255) for c in train[:256].split(16)])
        vae.register_to_config(scaling_factor=float(1.0 / latents.std()))
    result = {"held_out_psnr_db": evaluate(vae, held_out), "iters": args.iters, "seed": args.seed,
              "scaling_factor": vae.config.scaling_factor, "held_out_worlds": [HELD_OUT_SEED_START, HELD_OUT_SEED_START + 3]}
    vae.save_pretrained(args.out)
    (args.out / "training_result.json").write_text(json.dumps(result, indent=2))
    log(event="done", **result)
    return result


if __name__ == "__main__":
    main()
