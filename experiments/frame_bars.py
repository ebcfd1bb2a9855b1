"""Issue 15's bars for memory and sampler settings, side by side in one run: writes runs/frame_bars.json.

For each setting (edge-aware lifting threshold, known-cell sampling) and each world, a loop of 12 steps (and, with
--long, 48) at 256 px runs the three memories; per memory it records the return frame's PSNR against the truth,
the VAE's own reconstruction of the first frame (the ceiling), the mean PSNR over generated steps, the sharpness of
generated frames relative to the truth's (in mean absolute gradient, the measure issue 15's figures were taken in, and
in gradient energy, the word its bar uses, and gradient length) and the median step time.

    python experiments/frame_bars.py                      # about 6 minutes on 2 CPU cores
    python experiments/frame_bars.py --long --settings paper,edge0.1+known
    python experiments/frame_bars.py --settings closest,sharp+close --worlds studio:1,gallery:1   # other world seeds
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from mirage_viz.backbone import ASSETS_DIR, load_backbone, load_embedded_backbone
from mirage_viz.metrics import SHARPNESS_MEASURES, gradient_energy, sharpness_ratios
from mirage_viz.rollout import MEMORY_SETTINGS, RolloutConfig, run_rollout
from mirage_viz.scenes.worlds import WORLD_NAMES

SETTINGS: dict[str, dict] = {  # name -> the RolloutConfig fields it sets
    "paper": {},
    **{f"edge{t}": {"edge_threshold": t} for t in (0.05, 0.1, 0.2, 0.5)},
    "known": {"known_cells": True},
    "edge0.1+known": {"edge_threshold": 0.1, "known_cells": True},
    "ties0": {"depth_tie_bits": 0},
    "ties2": {"depth_tie_bits": 2},
    **{f"ties{b}+known": {"depth_tie_bits": b, "known_cells": True} for b in (0, 1, 2)},
    "ties0+known+edge0.5": {"depth_tie_bits": 0, "known_cells": True, "edge_threshold": 0.5},
    # ties0 + known + nearest depth + seen rays, the app's second setting; "keep-z" the same with the z-test alone
    "keep": MEMORY_SETTINGS["keep what memory holds"],
    "keep-z": MEMORY_SETTINGS["keep what memory holds"] | {"seen_rays": False},
    "subcell": {"warp": "subcell"},
    "keep+subcell": MEMORY_SETTINGS["keep what memory holds"] | {"seen_rays": False, "warp": "subcell"},
    **{f"ties0+known+subcell+{mode}": {"depth_tie_bits": 0, "known_cells": True, "warp": "subcell", "depth_mode": mode}
       for mode in ("bilinear", "median", "min", "center")},
    # the app's third setting: ties0 + known + center depth + subcell, 1 step, the mean of 4 draws
    "closest": MEMORY_SETTINGS["closest to the truth"],
    "sharp+close": MEMORY_SETTINGS["sharp and close"],  # the same decoded 0.6 of the way to the sharp decoder
    # the two with the z-test alone (no seen rays), as they were before seen_rays
    "closest-z": MEMORY_SETTINGS["closest to the truth"] | {"seen_rays": False},
    "sharp+close-z": MEMORY_SETTINGS["sharp and close"] | {"seen_rays": False},
}


def parse_world(spec: str) -> tuple[str, int]:
    """``studio`` or ``studio:3`` -> (world name, world seed); raises ValueError naming what is accepted."""
    name, _, seed = spec.strip().partition(":")
    if name not in WORLD_NAMES or (seed and not seed.isdigit()):
        raise ValueError(f"world {spec!r}: expected NAME or NAME:SEED with NAME from {', '.join(WORLD_NAMES)} "
                         "and SEED a whole number >= 0")
    return name, int(seed or 0)


def measure(setting: str, world: str, steps: int, size: int, backbone, sampler_steps: int | None = None) -> dict:
    options = SETTINGS[setting] | ({} if sampler_steps is None else {"num_inference_steps": sampler_steps})
    codec = backbone.with_decoder_sharpness(options.get("decoder_sharpness", 0.0))  # the decoder the rollout runs

    def through_vae(image: torch.Tensor) -> torch.Tensor:  # (3, H, W): the VAE's own reconstruction, the ceiling
        return codec.decode(codec.encode(image[None]))[0]

    name, world_seed = parse_world(world)
    config = RolloutConfig(world=name, world_seed=world_seed, trajectory="loop", steps=steps, size=size, seed=0,
                           **options)
    start = time.perf_counter()
    rollout = run_rollout(config, backbone=backbone)
    seconds = time.perf_counter() - start
    out = {"seconds": round(seconds, 2)}
    for memory, records in rollout.records.items():
        generated = records[1:]
        sharpness = [sharpness_ratios(r.frame, r.true_frame) for r in generated]
        out[memory] = {
            "vae_reconstruction_psnr": round(records[0].psnr, 3),
            "return_psnr": round(records[-1].psnr, 3),
            "return_mask_coverage": round(records[-1].mask_coverage, 4),
            "mean_psnr": round(statistics.fmean(r.psnr for r in generated), 3),
            **{key: round(statistics.fmean(ratios[key] for ratios in sharpness), 4) for key in SHARPNESS_MEASURES},
            "sharpness_vs_vae": round(statistics.fmean(gradient_energy(r.frame) / gradient_energy(through_vae(r.true_frame))
                                                       for r in generated), 4),
            "step_ms_median": round(statistics.median(sum(r.timings_ms.values()) for r in generated), 1),
            "cache_points": records[-1].cache_points,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated, from {', '.join(SETTINGS)}")
    parser.add_argument("--worlds", default="studio,gallery,room",
                        help="comma-separated NAME or NAME:SEED (the world seed, default 0); studio and gallery at "
                        "any seed are held out from training; room is training world 0 (room:200 and up are held out from every "
                        "shipped model)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--long", action="store_true", help="also the 48-step loop")
    parser.add_argument("--denoiser", type=Path, default=None, help="a saved denoiser to measure instead of the shipped one")
    parser.add_argument("--vae", type=Path, default=None, help="a saved VAE to decode with instead of the shipped one "
                        "(its encoder must be the shipped one's, e.g. a --decoder-only retraining)")
    parser.add_argument("--sampler-steps", default="", help="comma-separated denoising steps per frame to compare "
                        "(default: the generator's own, 6)")
    parser.add_argument("--out", type=Path, default=Path("runs/frame_bars.json"))
    args = parser.parse_args()
    settings = [s for s in args.settings.split(",") if s]
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        parser.error(f"unknown setting {unknown[0]!r}; accepted: {', '.join(SETTINGS)}")
    counts = [n.strip() for n in args.sampler_steps.split(",") if n.strip()]
    if not all(n.isdigit() and int(n) >= 1 for n in counts):
        parser.error(f"--sampler-steps takes positive whole numbers separated by commas, got {args.sampler_steps!r}")
    sampler_steps = [int(n) for n in counts] or [None]
    worlds = [w.strip() for w in args.worlds.split(",") if w.strip()]
    for world in worlds:
        try:
            parse_world(world)
        except ValueError as error:
            parser.error(str(error))
    backbone = load_embedded_backbone()
    if args.denoiser is not None or args.vae is not None:
        backbone = load_backbone(args.vae or ASSETS_DIR / "vae", args.denoiser or ASSETS_DIR / "denoiser",
                                 ASSETS_DIR / "depth", name="measured", vae_name=str(args.vae or "embedded"))
    results: dict = {"size": args.size, "worlds": worlds, "denoiser": str(args.denoiser or "shipped"),
                     "vae": str(args.vae or "shipped"), "settings": {}}
    for setting in settings:
        for n in sampler_steps:
            name = setting if n is None else f"{setting}/sampler{n}"
            results["settings"][name] = {}
            for steps in (12, 48) if args.long else (12,):
                for world in worlds:
                    row = measure(setting, world, steps, args.size, backbone, n)
                    results["settings"][name][f"{world}/loop{steps}"] = row
                    print(f"{name:>15} {world:>8} loop{steps}: return latent {row['latent']['return_psnr']:.2f} "
                          f"rgb {row['rgb']['return_psnr']:.2f} (vae {row['latent']['vae_reconstruction_psnr']:.2f}); "
                          f"mean latent {row['latent']['mean_psnr']:.2f} rgb {row['rgb']['mean_psnr']:.2f} "
                          f"none {row['none']['mean_psnr']:.2f}; sharpness: energy {row['latent']['sharpness']:.3f} "
                          f"(vs VAE {row['latent']['sharpness_vs_vae']:.2f}), mean abs {row['latent']['sharpness_mean_abs']:.3f}, "
                          f"length {row['latent']['sharpness_length']:.3f}; "
                          f"{row['latent']['step_ms_median']:.0f} ms", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
