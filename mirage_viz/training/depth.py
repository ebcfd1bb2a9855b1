"""Train the embedded depth estimator on synthetic renders: ``python -m mirage_viz.training.depth``.

Seeded and CPU-feasible: 128x128 crops of 256x256 views, L1 on log depth at half resolution plus a
scale-invariant term. Reports the held-out AbsRel (mean |d - d*| / d*) and saves safetensors.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mirage_viz.geometry.cameras import Intrinsics
from mirage_viz.scenes.data import HELD_OUT_SEED_START, random_camera
from mirage_viz.models.depth_net import DepthNet
from mirage_viz.scenes.worlds import SyntheticWorld
from mirage_viz.training.common import ASSETS, Log, cosine_lr, descend, save_result, seed_everything


def render_rgbd(seeds: range, views: int, size: int, rng_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (N, 3, size, size) and float depth (N, size, size)."""
    rng = np.random.default_rng(rng_seed)
    intrinsics = Intrinsics.from_fov(size, size, 60.0)
    images, depths = [], []
    for seed in seeds:
        world = SyntheticWorld(name="train", seed=int(seed))
        for _ in range(views):
            render = world.render(random_camera(world, rng, intrinsics))
            images.append((render.rgb * 255).round().to(torch.uint8))
            depths.append(render.depth)
    return torch.stack(images), torch.stack(depths)


@torch.no_grad()
def abs_rel(model: DepthNet, images: torch.Tensor, depths: torch.Tensor) -> float:
    model.eval()
    prediction = torch.cat([model(chunk.float() / 255) for chunk in images.split(8)])
    model.train()
    return ((prediction - depths).abs() / depths).mean().item()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=6000, help="optimizer steps (~6 min on 2 cores)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--worlds", type=int, default=60)
    parser.add_argument("--views", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ASSETS / "depth")
    args = parser.parse_args(argv)

    seed_everything(args.seed)
    images, depths = render_rgbd(range(args.worlds), args.views, 256, args.seed + 10)
    held_images, held_depths = render_rgbd(range(HELD_OUT_SEED_START, HELD_OUT_SEED_START + 4), 8, 256, args.seed + 11)
    log = Log(args.out.parent / f"{args.out.name}_train_log.jsonl")
    model = DepthNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    generator = torch.Generator().manual_seed(args.seed)
    for step in range(args.iters):
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, args.iters, args.lr)
        index = torch.randint(0, len(images), (args.batch,), generator=generator)
        top, left = torch.randint(0, 256 - args.crop + 1, (2,), generator=generator).tolist()
        x = images[index, :, top : top + args.crop, left : left + args.crop].float() / 255
        target = depths[index, None, top : top + args.crop, left : left + args.crop]
        target_log = F.avg_pool2d(target, 2).log()  # (B, 1, crop / 2, crop / 2)
        difference = model.forward_log_depth(x) - target_log
        loss = difference.abs().mean() + 0.5 * (difference - difference.mean(dim=(1, 2, 3), keepdim=True)).abs().mean()
        descend(loss, optimizer)
        if step % 100 == 0:
            log(step=step, loss=loss.item())
    result = {"held_out_abs_rel": abs_rel(model, held_images, held_depths), "iters": args.iters, "seed": args.seed}
    return save_result(model, args.out, result, log)


if __name__ == "__main__":
    main()
