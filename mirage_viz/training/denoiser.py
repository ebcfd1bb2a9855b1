"""Train the embedded warp-conditioned denoiser: ``python -m mirage_viz.training.denoiser``.

It learns to make a target view's latent from a memory's read at the target camera (the warped latent and its hole
mask), on warp pairs from the synthetic worlds (:mod:`mirage_viz.training.warp_pairs` says how they are made and
from which scenarios). ``--covered-weight`` weighs the loss on covered cells; ``--init`` starts from saved weights;
``--pairs-cache FILE`` reuses (or saves) the pairs, and training from such a file needs no world renderer, so
``--device cuda`` trains on a GPU machine from pairs made elsewhere. Needs the trained VAE in
``mirage_viz/assets/vae`` to make pairs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from mirage_viz.models.denoiser import UNET_SIZES, WarpConditionedPipeline, build_embedded_unet, build_scheduler
from mirage_viz.training.common import ASSETS, Log, cosine_lr, descend, save_result, seed_everything
from mirage_viz.training.pair_data import (SCENARIOS, Pairs, add_pair_arguments, check_pair_arguments, load_pairs, recipe_of,
                                          save_pairs)


@torch.no_grad()
def evaluate(pipeline: WarpConditionedPipeline, pairs: Pairs, steps: int) -> dict[str, float]:
    """Latent MSE of sampled latents against targets, per memory kind, on held-out worlds."""
    was_training = pipeline.unet.training
    pipeline.unet.eval()
    generator = torch.Generator().manual_seed(0)
    out = pipeline(pairs["conditions"], pairs["masks"], steps, generator).latents
    errors = (out - pairs["targets"]).pow(2).mean(dim=(1, 2, 3))
    pipeline.unet.train(was_training)
    names = ["none", "latent", "rgb"]
    result = {f"mse_{names[k]}": errors[pairs["kinds"] == k].mean().item() for k in range(3) if (pairs["kinds"] == k).any()}
    if (pairs["kinds"] > 0).any():  # every pair a memory conditions, latent and RGB together
        result["mse_memory"] = errors[pairs["kinds"] > 0].mean().item()
    covered = pairs["masks"].expand_as(out) > 0.5  # (N, C, h, w)
    result["mse_covered"] = (out - pairs["targets"])[covered].pow(2).mean().item() if covered.any() else float("nan")
    for index, name in enumerate(SCENARIOS):
        chosen = (pairs["scenarios"] == index) & (pairs["kinds"] > 0)
        if chosen.any():
            result[f"mse_{name}"] = errors[chosen].mean().item()
    return result


def fit(pipeline: WarpConditionedPipeline, train: Pairs, held_out: Pairs, iters: int, batch: int, lr: float,
        covered_weight: float, seed: int, device: torch.device, log: Log, eval_every: int) -> dict[str, float]:
    """Train ``pipeline.unet`` in place on ``train`` (x0-prediction MSE, covered cells weighed ``covered_weight``) on
    ``device``; the batches and noise are drawn on the CPU from ``seed``, so a run is the same on any device up to
    float rounding. Returns the held-out figures of :func:`evaluate`."""
    unet, scheduler = pipeline.unet.to(device).train(), pipeline.scheduler
    train = {name: values.to(device) for name, values in train.items()}
    held_out = {name: values.to(device) for name, values in held_out.items()}
    optimizer = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    count = len(train["targets"])
    for step in range(iters):
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, iters, lr)
        index = torch.randint(0, count, (batch,), generator=generator).to(device)
        target, condition, mask = train["targets"][index], train["conditions"][index], train["masks"][index]
        noise = torch.randn(target.shape, generator=generator).to(device)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (batch,), generator=generator).to(device)
        noisy = scheduler.add_noise(target, noise, timesteps)
        prediction = unet(torch.cat([noisy, mask, condition], dim=1), timesteps).sample  # prediction_type="sample"
        weight = 1.0 + (covered_weight - 1.0) * mask  # (B, 1, h, w)
        loss = (weight * (prediction - target).square()).mean() / weight.mean()
        descend(loss, optimizer, clip=unet.parameters())
        if step % 50 == 0:
            log(step=step, loss=loss.item())
        if (step + 1) % eval_every == 0 and step + 1 < iters:
            log(step=step + 1, **evaluate(pipeline, held_out, 6))
    figures = evaluate(pipeline, held_out, 6)
    unet.eval().to("cpu")
    return figures


def check_device(parser: argparse.ArgumentParser, name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError:
        parser.error(f"--device: unknown device {name!r}; accepted: cpu, or cuda where a GPU is")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: this machine has no CUDA device; accepted: cpu")
    if device.type not in ("cpu", "cuda"):
        parser.error(f"--device: {name!r} is not supported; accepted: cpu, or cuda where a GPU is")
    return device


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=3000, help="optimizer steps")
    parser.add_argument("--batch", type=int, default=24)
    parser.add_argument("--lr", type=float, default=1e-3)
    add_pair_arguments(parser)
    parser.add_argument("--unet", choices=list(UNET_SIZES), default="small", help="UNet shape (models.denoiser.UNET_SIZES)")
    parser.add_argument("--init", type=Path, default=None, help="start from this saved denoiser (its UNet shape wins)")
    parser.add_argument("--exclude", default="", help="comma-separated scenarios left out of training (ablations)")
    parser.add_argument("--covered-weight", type=float, default=1.0,
                        help="loss weight of covered cells relative to holes (1: the plain x0 MSE)")
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--pairs-cache", type=Path, default=None,
                        help="train from this pairs file if it exists (its recipe wins), else make the pairs and save them here")
    parser.add_argument("--device", default="cpu", help="where to train: cpu, or cuda where a GPU is (the pairs are made on the CPU)")
    parser.add_argument("--out", type=Path, default=ASSETS / "denoiser")
    args = parser.parse_args(argv)
    shares = check_pair_arguments(parser, args)
    excluded = [name.strip() for name in args.exclude.split(",") if name.strip()]
    for name in excluded:
        if name not in SCENARIOS:
            parser.error(f"--exclude: unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    if args.covered_weight <= 0:
        parser.error(f"--covered-weight must be > 0, got {args.covered_weight}")
    if args.iters < 1 or args.batch < 1:
        parser.error(f"--iters and --batch must be >= 1, got {args.iters} and {args.batch}")
    device = check_device(parser, args.device)

    seed_everything(args.seed)
    log = Log(args.out.parent / f"{args.out.name}_train_log.jsonl")
    if args.pairs_cache is not None and args.pairs_cache.exists():
        try:
            train, held_out, recipe = load_pairs(args.pairs_cache)
        except ValueError as error:
            parser.error(f"--pairs-cache: {error}")
    else:
        # Making pairs renders the worlds (open3d); a machine that trains from a pairs file never imports it.
        from mirage_viz.training.warp_pairs import make_training_pairs

        recipe = recipe_of(args)
        try:
            train, held_out = make_training_pairs(args.vae, args.drift_from, args.worlds, args.per_world, args.size,
                                                  args.seed, shares, args.workers)
        except ValueError as error:
            parser.error(str(error))
        if args.pairs_cache is not None:
            save_pairs(args.pairs_cache, train, held_out, recipe)
    keep = ~torch.isin(train["scenarios"], torch.tensor([SCENARIOS.index(name) for name in excluded], dtype=torch.long))
    train = {name: values[keep] for name, values in train.items()}
    log(event="data", train_pairs=len(train["targets"]), held_out_pairs=len(held_out["targets"]),
        train_coverage=train["masks"].mean().item(), excluded=args.exclude, **{f"pairs_{k}": v for k, v in recipe.items()})

    if args.init is not None:
        unet = WarpConditionedPipeline.from_pretrained(args.init).unet
    else:
        unet = build_embedded_unet(train["targets"].shape[1], args.unet)
    pipeline = WarpConditionedPipeline(unet, build_scheduler())
    figures = fit(pipeline, train, held_out, args.iters, args.batch, args.lr, args.covered_weight, args.seed, device, log,
                  args.eval_every)
    result = {"iters": args.iters, "batch": args.batch, "seed": args.seed, "train_pairs": len(train["targets"]),
              "unet": args.unet if args.init is None else f"init {args.init.name}", "pairs": recipe,
              "excluded": args.exclude, "covered_weight": args.covered_weight, "device": device.type, **figures}
    return save_result(pipeline, args.out, result, log)


if __name__ == "__main__":
    main()
